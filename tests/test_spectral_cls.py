"""Spectral bias on classification: the path DFT against synthetic functions, the trend
metrics, and one real tiny run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biasvar.studies import spectral_cls as sc

BASE = dict(arch="mlp", activation="relu", depth=2, width=16, label_noise=0.0, members=2,
            optimizer="adam", lr=0.01, steps=20, batch_size=50, init_scale=1.0, data="mnist1d")


def _cfg(shared=None, **kw) -> sc.SpectralClsRun:
    sec = sc.SpectralClsParams.from_dict({"num_samples": 200, "data_seed": 42, "paths": 5,
                                          "points": 16, "log_every": 10, "seed": 0,
                                          **(shared or {}), "base": BASE, "configs": {"c": kw}})
    return sec.runs[0]


def test_params_name_the_bad_key():
    from biasvar.core.errors import ParamError

    with pytest.raises(ParamError, match=r"spectral_cls.configs.c.arch = 'rnn' is invalid"):
        _cfg(arch="rnn")
    with pytest.raises(ParamError, match=r"spectral_cls.configs.c.label_noise = 1.5"):
        _cfg(label_noise=1.5)
    with pytest.raises(ParamError, match=r"spectral_cls.log_every = 50 is invalid"):
        _cfg(shared={"log_every": 50})
    with pytest.raises(ParamError, match=r"spectral_cls.configs = 'a b'"):
        sc.SpectralClsParams.from_dict({"num_samples": 200, "data_seed": 42, "paths": 5,
                                        "points": 16, "log_every": 10, "seed": 0,
                                        "base": BASE, "configs": {"a b": {}}})


def test_path_inputs_run_from_a_to_b_evenly():
    a, b = np.zeros((2, 3)), np.array([[4.0, 8, 0], [1, 1, 1]])
    p = sc.path_inputs(a, b, 4)  # (paths, 5, 3)
    assert p.shape == (2, 5, 3)
    np.testing.assert_allclose(p[:, 0], a)
    np.testing.assert_allclose(p[:, -1], b)
    np.testing.assert_allclose(p[0, :, 1], [0, 2, 4, 6, 8])


def test_path_dft_recovers_the_frequencies_of_a_synthetic_function():
    """f(t) = a + b t + sum_j c_j sin(2 pi j t) + d_j (cos(2 pi j t) - 1): the straight line
    is removed exactly and A_j = (c_j^2 + d_j^2) / 4 at the planted frequencies only."""
    points = 64
    t = np.arange(points + 1) / points
    planted = {3: (1.0, 0.0), 7: (0.5, 0.2), 20: (0.0, 0.3)}
    f = 2.0 - 5.0 * t
    for j, (c, d) in planted.items():
        f = f + c * np.sin(2 * np.pi * j * t) + d * (np.cos(2 * np.pi * j * t) - 1)
    energy = sc.path_spectrum(f[None, :, None])  # one path, one class
    expect = np.zeros(points // 2)
    for j, (c, d) in planted.items():
        expect[j - 1] = (c**2 + d**2) / 4
    np.testing.assert_allclose(energy, expect, atol=1e-12)


def test_a_straight_line_has_no_energy_and_averaging_is_over_paths_and_classes():
    t = np.arange(33) / 32
    line = (3 * t - 1)[None, :, None]
    np.testing.assert_allclose(sc.path_spectrum(line), 0, atol=1e-20)
    s1 = np.sin(2 * np.pi * t)[None, :, None]
    both = np.concatenate([s1, 2 * s1], axis=2)  # two classes: A_1 = (1/4 + 4/4) / 2
    assert sc.path_spectrum(both)[0] == pytest.approx(0.625)


def test_centroid_and_trend_metrics():
    assert sc.centroid(np.array([1.0, 0, 0, 1])) == pytest.approx(2.5)
    rows = []
    for step, e in [(0, [1, 1, 1]), (10, [1, 0.1, 0.01]), (20, [1, 0.2, 0.02]),
                    (30, [1, 0.4, 0.04])]:
        rows += [{"step": step, "k": k + 1, "energy": v} for k, v in enumerate(e)]
    m = sc.spectral_trend(pd.DataFrame(rows))
    assert m["centroid_init"] == pytest.approx(2.0)
    assert m["centroid_first"] == pytest.approx((1 + 0.2 + 0.03) / 1.11)
    assert m["centroid_final"] == pytest.approx((1 + 0.8 + 0.12) / 1.44)
    assert m["centroid_spearman"] == pytest.approx(1.0)
    assert m["centroid_change"] == pytest.approx(m["centroid_final"] - m["centroid_first"])


@pytest.mark.parametrize("over", [{}, {"arch": "cnn", "width": 4, "label_noise": 0.3},
                                  {"activation": "tanh", "data": "whitened", "optimizer": "sgd"}])
def test_a_tiny_run_gives_the_documented_table(over):
    from biasvar.data.dataset import make_mnist1d

    d = make_mnist1d(200, 0.5, 42)
    cfg = _cfg(**over)
    res = sc.spectral_cls(d["x"], d["y"], d["x_test"], d["y_test"], cfg, threads=1)
    t = res.table
    assert tuple(t.columns) == sc.SPECTRAL_CLS_COLUMNS
    assert sorted(t.step.unique()) == [0, 10, 20]
    assert sorted(t.k.unique()) == list(range(1, 9))  # points 16 -> k = 1 .. 8
    # R_k are log shares: they sum to 1 after exp at every step
    np.testing.assert_allclose(t.groupby("step").log_ratio.apply(lambda r: np.exp(r).sum()), 1)
    assert t.train_error.between(0, 1).all() and t.test_error.between(0, 1).all()
    assert res.metrics["final_test_error"] == t[t.step == 20].test_error.iloc[0]
