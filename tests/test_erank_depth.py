"""Effective rank against depth: the trend metrics and one real tiny run checked against
an independent computation from the members' weights."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.studies import erank_depth as ed
from biasvar.studies.effective_rank import effective_rank

BASE = dict(activation="linear", width=12, members=2, optimizer="adam", lr=0.01, steps=10,
            batch_size=50, init_scale=1.0, data="mnist1d")


def _cfg(**kw) -> ed.ErankDepthRun:
    return ed.ErankDepthParams.from_dict({"num_samples": 200, "data_seed": 42,
                                          "depths": [1, 3], "center": False, "seed": 0,
                                          "base": BASE, "configs": {"c": kw}}).runs[0]


def test_params_name_the_bad_key():
    from biasvar.core.errors import ParamError

    with pytest.raises(ParamError, match=r"erank_depth.configs.c.data = 'mnist' is invalid"):
        _cfg(data="mnist")
    with pytest.raises(ParamError, match=r"erank_depth.depths"):
        ed.ErankDepthParams.from_dict({"num_samples": 200, "data_seed": 42, "depths": [0, 2],
                                       "center": False, "seed": 0, "base": BASE,
                                       "configs": {"c": {}}})


def test_effective_rank_of_a_known_spectrum():
    """Singular values (4, 2, 1, 1): p = (1/2, 1/4, 1/8, 1/8), H = 1.75 log 2, erank 2^1.75."""
    u, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(30, 4)))
    v, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(6, 4)))
    m = u @ np.diag([4.0, 2, 1, 1]) @ v.T
    assert effective_rank(m) == pytest.approx(2 ** 1.75)


def test_depth_trend():
    rho, ratio = ed.depth_trend(np.array([4, 1, 2]), np.array([2.0, 8.0, 5.0]))
    assert rho == pytest.approx(-1.0) and ratio == pytest.approx(0.25)
    rho, _ = ed.depth_trend(np.array([1, 2, 3]), np.array([3.0, 3.0, 3.0]))
    assert np.isnan(rho)


def test_a_tiny_run_measures_the_members_embeddings():
    """The init row of depth 1 equals the effective rank of x_test W_1^T + b_1 computed from
    a network rebuilt with the same seed (linear activation: the embedding is affine)."""
    from biasvar.data.dataset import make_mnist1d
    from biasvar.studies import nets

    d = make_mnist1d(200, 0.5, 42)
    cfg = _cfg()
    res = ed.erank_depth(d["x"], d["y"], d["x_test"], d["y_test"], cfg, threads=1)
    t = res.table
    assert tuple(t.columns) == ed.ERANK_DEPTH_COLUMNS
    assert len(t) == 2 * 2 * 2  # depths x members x phases
    net = nets.build("mlp", 2, 1, 12, "linear", 1.0, 0, "erank_depth/1")
    w, b = (p.detach().numpy().astype(np.float64) for p in (net.hidden[0].weight,
                                                          net.hidden[0].bias))
    xt = d["x_test"].astype(np.float32).astype(np.float64)
    for m in range(2):
        want = effective_rank(xt @ w[m].T + b[m])
        got = t[(t.depth == 1) & (t.member == m) & (t.phase == "init")].erank.iloc[0]
        assert got == pytest.approx(want, rel=1e-5)
    init = t[t.phase == "init"].groupby("depth").erank.mean()
    assert res.metrics["init"]["erank"] == pytest.approx(list(init))
    assert res.metrics["init"]["ratio_deepest_shallowest"] == pytest.approx(init[3] / init[1])
    assert t.test_error.between(0, 1).all()
