"""Min-norm least squares on Legendre features: the fit, and double descent at P = N."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.core.errors import ParamError
from biasvar.core.rng import numpy_generator
from biasvar.studies.ridgeless import (
    RIDGELESS_COLUMNS,
    RidgelessParams,
    legendre_features,
    min_norm_fit,
    run_ridgeless,
    target_function,
)


def test_legendre_features_are_degrees_one_to_p():
    x = np.linspace(-1, 1, 7)
    f = legendre_features(x, 3)
    np.testing.assert_allclose(f, np.stack([x, (3 * x**2 - 1) / 2, (5 * x**3 - 3 * x) / 2], 1),
                               atol=1e-14)


@pytest.mark.parametrize("p", [3, 14, 15, 16, 40, 200])
def test_fit_equals_lstsq_min_norm_solution(p):
    """Under-, exactly and over-parameterized: the pseudo-inverse fit is lstsq's solution."""
    rng = numpy_generator(1, "ridgeless-test", p)
    x = rng.uniform(-1, 1, 15)
    y = target_function(x)
    feats = legendre_features(x, p)
    beta = min_norm_fit(feats, y)
    want, *_ = np.linalg.lstsq(feats, y, rcond=None)
    scale = max(1.0, np.abs(want).max())
    np.testing.assert_allclose(beta, want, rtol=1e-7, atol=1e-9 * scale)
    if p > 15:
        # interpolates, and no other interpolant has a smaller norm: beta is in the row space
        np.testing.assert_allclose(feats @ beta, y, atol=1e-7)
        null = np.linalg.svd(feats)[2][15:]  # (P - N, P) basis of the null space
        np.testing.assert_allclose(null @ beta, 0, atol=1e-7 * scale)


def test_fit_equals_lstsq_on_rank_deficient_design():
    """Duplicated columns: both drop the same zero singular value."""
    rng = numpy_generator(2, "ridgeless-test")
    a = rng.standard_normal((10, 4))
    feats = np.concatenate([a, a[:, :2]], axis=1)  # rank 4, 6 columns
    y = rng.standard_normal(10)
    want, *_ = np.linalg.lstsq(feats, y, rcond=None)
    np.testing.assert_allclose(min_norm_fit(feats, y), want, atol=1e-10)


def test_run_ridgeless_peaks_at_the_interpolation_threshold():
    res = run_ridgeless(list(range(1, 21)) + [40, 100], n_train=10, n_test=200, repeats=30,
                        noise_std=0.0, seed=0)
    t = res.table
    assert list(t.columns) == list(RIDGELESS_COLUMNS)
    assert res.metrics["peak_n_features"] == 10
    assert res.metrics["n_train"] == 10
    # interpolation beyond the threshold, not before it
    assert (t.loc[t["n_features"] >= 10, "train_mse_median"] < 1e-12).all()
    assert (t.loc[t["n_features"] < 10, "train_mse_median"] > 1e-4).all()
    # second descent: far beyond the threshold the error is far below the peak
    peak = t["test_mse_median"].max()
    assert t.loc[t["n_features"] == 100, "test_mse_median"].item() < peak / 100
    assert res.metrics["best_n_features_over"] > 10


def test_params_validate():
    raw = {"n_features": [1, 2, 3], "n_train": 15, "n_test": 100, "repeats": 5,
           "noise_std": 0.0, "seed": 0}
    assert RidgelessParams.from_dict(raw).n_features == (1, 2, 3)
    with pytest.raises(ParamError, match=r"ridgeless.n_features\[1\] = 0"):
        RidgelessParams.from_dict({**raw, "n_features": [1, 0]})
    with pytest.raises(ParamError, match="ridgeless.repeats"):
        RidgelessParams.from_dict({**raw, "repeats": 0})
