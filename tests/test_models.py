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
