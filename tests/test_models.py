"""Stacked members against plain torch.nn references."""

from __future__ import annotations

import pytest
import torch

from biasvar.core.rng import torch_generator
from biasvar.ensemble.models import (
    init_members,
    member_state,
    n_parameters,
    reference_model,
    stacked_model,
)


def test_parameter_counts_match_mnist1d_reference_models():
    assert n_parameters("mlp", 100, depth=2, residual=True) == 15_210
    assert n_parameters("cnn", 25) == 5_210
    assert n_parameters("logistic", 1) == 410
    # Greydanus' double-descent MLP: h^2 + 52 h + 10 parameters.
    assert n_parameters("mlp", 44, depth=2) == 44**2 + 52 * 44 + 10


@pytest.mark.parametrize(("arch", "width", "depth", "residual"), [
    ("mlp", 16, 2, True), ("mlp", 12, 3, False), ("mlp", 7, 1, False),
    ("cnn", 6, 2, False), ("logistic", 1, 2, False)])
def test_stacked_members_equal_reference_modules(arch, width, depth, residual):
    members = 3
    model = stacked_model(arch, members, width, depth, residual)
    init_members(model, [torch_generator(0, "init", m) for m in range(members)])
    x = torch.randn(members, 9, 40)  # a different batch per member
    out = model(x)  # (members, 9, classes)
    feats = model.features(x)
    for m in range(members):
        ref = reference_model(arch, width, depth, residual)
        ref.load_state_dict(member_state(model, m))
        torch.testing.assert_close(out[m], ref(x[m]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(feats[m], ref.features(x[m]), rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the in-place scoring path gives the same logits
        torch.testing.assert_close(model(x), out, rtol=0, atol=0)
    stacked_count = sum(p.numel() for p in model.parameters())
    assert stacked_count == members * n_parameters(arch, width, depth, residual)


def test_init_matches_pytorch_default_distribution():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): for a wide layer, max |w| approaches the bound."""
    model = stacked_model("mlp", 2, 300, 2, False)
    init_members(model, [torch_generator(0, "init", m) for m in range(2)])
    w = model.hidden[1].weight.detach()  # (2, 300, 300), fan_in 300
    bound = 300 ** -0.5
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.99 * bound
    assert abs(w.var().item() - bound**2 / 3) < 0.02 * bound**2  # var of U(-b, b) = b^2/3


def test_member_init_depends_only_on_its_generator():
    a = stacked_model("mlp", 2, 8, 2, False)
    b = stacked_model("mlp", 3, 8, 2, False)
    init_members(a, [torch_generator(0, "init", m) for m in (5, 6)])
    init_members(b, [torch_generator(0, "init", m) for m in (4, 5, 6)])
    for k, v in member_state(a, 0).items():
        torch.testing.assert_close(v, member_state(b, 1)[k], rtol=0, atol=0)


@pytest.mark.parametrize(("width", "depth", "residual"), [
    (16, 2, True), (12, 3, False), (9, 3, True), (7, 1, False)])
def test_hand_backward_equals_autograd_of_reference_modules(width, depth, residual):
    """StackedMLP.loss_and_grad against loss.backward() of each plain member."""
    import torch.nn.functional as F

    from biasvar.ensemble.optim import FlatParams

    members, batch = 3, 11
    model = stacked_model("mlp", members, width, depth, residual)
    init_members(model, [torch_generator(0, "init", m) for m in range(members)])
    flat = FlatParams(model)
    flat.grad.fill_(123.0)  # stale values: the hand backward must overwrite, not add
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(members, batch, 40, generator=gen)
    y = torch.randint(0, 10, (members, batch), generator=gen)
    y[0, :] = model(x)[0].argmax(-1)  # member 0 right on every example: accuracy 1
    loss, acc = model.loss_and_grad(x, y)
    assert acc[0] == 1.0
    grads = {name: p.grad for name, p in model.named_parameters()}
    # the gradients live in the optimizer's flat buffer, no stale value left
    assert not (flat.grad == 123.0).any()
    for m in range(members):
        ref = reference_model("mlp", width, depth, residual)
        ref.load_state_dict(member_state(model, m))
        logits = ref(x[m])
        ref_loss = F.cross_entropy(logits, y[m])
        ref_loss.backward()
        torch.testing.assert_close(loss[m], ref_loss.detach(), rtol=1e-6, atol=1e-6)
        assert acc[m] == (logits.argmax(-1) == y[m]).float().mean()
        for name, p in ref.named_parameters():
            torch.testing.assert_close(grads[name][m], p.grad, rtol=1e-5, atol=1e-6)
