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


def _step_both(ours, flat, opt, ref, ref_opt, steps: int, seed: int) -> None:
    """Train both copies on the same minibatches; assert equal parameters at the end."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
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
    _step_both(ours, flat, opt, ref, ref_opt, steps=25, seed=1)


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_fused_and_unfused_adam_agree_with_torch(wd):
    from biasvar.ensemble.optim import FlatAdam

    results = []
    for fused in (True, False):
        ours, ref = _models()
        flat = FlatParams(ours)
        opt = FlatAdam(flat.flat, flat.grad, 1e-2, wd, fused=fused)
        assert opt.fused == fused
        ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2, weight_decay=wd)
        _step_both(ours, flat, opt, ref, ref_opt, steps=40, seed=2)
        results.append(flat.flat.clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_gradients_accumulate_into_the_flat_buffer():
    model, _ = _models()
    flat = FlatParams(model)
    ptr = flat.grad.data_ptr()
    model(torch.randn(4, 5)).sum().backward()
    assert flat.grad.data_ptr() == ptr
    assert flat.grad.abs().sum() > 0
    assert model[0].weight.grad.data_ptr() == ptr  # first parameter's view starts the buffer
