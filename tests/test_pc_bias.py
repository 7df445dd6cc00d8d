"""PC bias study: compact maps, the PCA basis, and the closed form of a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biasvar.studies import pc_bias as pcb

BASE = dict(activation="linear", depth=3, width=16, members=8, optimizer="sgd", lr=0.05,
            steps=40, init_scale=1.0, data="pca")


def _cfg(**kw) -> pcb.PCBiasRun:
    shared = {k: kw.pop(k) for k in ("log_every", "converged_fraction", "seed") if k in kw}
    sec = pcb.PCBiasParams.from_dict({"num_samples": 100, "data_seed": 42, "log_every": 10,
                                      "converged_fraction": 0.5, "seed": 0, **shared,
                                      "base": BASE, "configs": {"c": kw}})
    return sec.runs[0]


def test_params_name_the_bad_key():
    from biasvar.core.errors import ParamError

    with pytest.raises(ParamError, match=r"pc_bias.configs.c.activation = 'gelu' is invalid"):
        _cfg(activation="gelu")
    with pytest.raises(ParamError, match=r"pc_bias.configs.c.steps = 5 is invalid: an integer "
                                         r">= pc_bias.log_every = 10"):
        _cfg(steps=5)


def test_compact_map_of_a_linear_net_is_the_product_of_its_layers():
    w = pcb.init_weights(4, [6, 5, 7, 3], 1.0, seed=1)
    with torch.no_grad():
        prod = w[2] @ w[1] @ w[0]  # (M, 3, 6)
        # the network applied to the basis vectors: column j = f(e_j)
        eye = torch.eye(6).expand(4, -1, -1)
        cols = pcb.forward(w, eye, "linear").transpose(1, 2)
    z = torch.randn(4, 50, 6)
    torch.testing.assert_close(pcb.compact_map(w, z, "linear"), prod)
    torch.testing.assert_close(cols, prod)
    # the linearization (mean input Jacobian) of a linear net is the same map
    torch.testing.assert_close(pcb.mean_jacobian(w, z, "linear"), prod, atol=1e-6, rtol=1e-5)


def test_mean_jacobian_of_a_relu_net_against_finite_differences():
    w = pcb.init_weights(2, [4, 8, 3], 1.0, seed=2)
    z = torch.randn(2, 30, 4, dtype=torch.float32)
    jac = pcb.mean_jacobian(w, z, "relu").double().numpy()
    eps = 1e-3
    fd = np.zeros_like(jac)
    with torch.no_grad():
        for j in range(4):
            dz = torch.zeros(4)
            dz[j] = eps
            diff = (pcb.forward(w, z + dz, "relu") - pcb.forward(w, z - dz, "relu")) / (2 * eps)
            fd[:, :, j] = diff.mean(1).double().numpy()
    np.testing.assert_allclose(jac, fd, atol=2e-3)


def test_pca_rotation_recovers_a_known_basis_and_spectrum():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # the true principal directions (columns)
    sd = np.array([5.0, 3.0, 2.0, 1.0, 0.5])
    x = (rng.normal(size=(200_000, 5)) * sd) @ q.T + 7.0
    z, evals, v = pcb.pca_rotate(x)
    np.testing.assert_allclose(evals, sd**2, rtol=0.02)
    np.testing.assert_allclose(np.abs(v.T @ q), np.eye(5), atol=0.01)  # same axes, up to sign
    np.testing.assert_allclose(np.cov(z.T, bias=True), np.diag(evals), atol=1e-8)


def test_sd_along_pcs_is_taken_per_input_coordinate():
    """Maps that differ across members only along coordinate 2 have spread only there."""
    rng = np.random.default_rng(1)
    maps = np.tile(rng.normal(size=(1, 3, 4)), (6, 1, 1))
    noise = rng.normal(size=(6, 3))
    maps[:, :, 2] += noise
    sd = pcb.sd_along_pcs(maps)
    assert sd[[0, 1, 3]] == pytest.approx([0, 0, 0], abs=1e-12)
    assert sd[2] == pytest.approx(np.sqrt(noise.var(axis=0, ddof=1).mean()))


def test_linear_model_spread_decays_at_the_closed_form_rate():
    """Depth 1, full-batch GD on the MSE: along PC j the members' differences shrink
    by |1 - 2 lr lambda_j / C| per step, so sd_ratio(t) is that factor to the t."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 6)) * np.array([3.0, 2.0, 1.5, 1.0, 0.5, 0.25])
    y = rng.integers(0, 4, size=400)
    cfg = _cfg(depth=1, steps=30, log_every=10, lr=0.05, members=6)
    res = pcb.pc_bias(x, y, cfg, classes=4)
    t = res.table
    evals = t[t.step == 0].sort_values("pc").eigenvalue.to_numpy()
    for step in (10, 20, 30):
        got = t[t.step == step].sort_values("pc").sd_ratio.to_numpy()
        want = np.abs(1 - 2 * cfg.lr * evals / 4) ** step
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-5)
    # larger eigenvalue, earlier convergence: a perfect negative rank correlation
    assert res.metrics["spearman_eigenvalue_vs_convergence"] == pytest.approx(-1.0, abs=0.1)


def test_whitened_inputs_leave_nothing_to_order():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 6)) * np.array([3.0, 2.0, 1.5, 1.0, 0.5, 0.25])
    y = rng.integers(0, 4, size=400)
    res = pcb.pc_bias(x, y, _cfg(depth=1, steps=30, log_every=10, data="whitened"), classes=4)
    last = res.table[res.table.step == 30].sd_ratio.to_numpy()
    assert np.ptp(last) < 1e-3  # every PC converges at the same rate


def test_convergence_steps_and_censoring():
    import pandas as pd

    t = pd.DataFrame({"step": [0, 10, 20] * 2, "pc": [0] * 3 + [1] * 3,
                      "sd_ratio": [1.0, 0.4, 0.1, 1.0, 0.9, 0.8]})
    steps = pcb.convergence_steps(t, 0.5)
    assert steps[0] == 10 and np.isnan(steps[1])
    assert pcb.rank_correlation(np.array([2.0, 1.0]), steps, censor=30.0) == pytest.approx(-1.0)
