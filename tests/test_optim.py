"""The flat-buffer optimizers reproduce torch.optim step by step."""

from __future__ import annotations

import pytest
import torch

from biasvar.ensemble.optim import FlatParams, make_optimizer


def _models():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    b = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize(("name", "lr", "momentum", "wd"), [
    ("adam", 1e-2, 0.0, 0.0), ("adam", 3e-3, 0.0, 1e-2),
    ("sgd", 0.1, 0.9, 0.0), ("sgd", 0.05, 0.0, 1e-3), ("sgd", 0.05, 0.5, 1e-2)])
def test_flat_optimizer_matches_torch(name, lr, momentum, wd):
    ours, ref = _models()
    flat = FlatParams(ours)
    opt = make_optimizer(name, flat, lr, momentum, wd)
    if name == "adam":
        ref_opt = torch.optim.Adam(ref.parameters(), lr=lr, weight_decay=wd)
    else:
        ref_opt = torch.optim.SGD(ref.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        x = torch.randn(16, 5, generator=g)
        y = torch.randint(0, 3, (16,), generator=g)
        flat.zero_grad()
        torch.nn.functional.cross_entropy(ours(x), y).backward()
        opt.step()
        ref_opt.zero_grad()
        torch.nn.functional.cross_entropy(ref(x), y).backward()
        ref_opt.step()
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_gradients_accumulate_into_the_flat_buffer():
    model, _ = _models()
    flat = FlatParams(model)
    ptr = flat.grad.data_ptr()
    model(torch.randn(4, 5)).sum().backward()
    assert flat.grad.data_ptr() == ptr
    assert flat.grad.abs().sum() > 0
    assert model[0].weight.grad.data_ptr() == ptr  # first parameter's view starts the buffer
