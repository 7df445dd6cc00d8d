"""Alignment regression: log var on log bias^2."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from biasvar.analysis.alignment import fit_alignment


def test_recovers_a_known_power_law():
    rng = np.random.default_rng(0)
    bias2 = np.exp(rng.uniform(-8, 0, 5000))
    var = np.exp(0.8 * np.log(bias2) - 0.5 + rng.normal(scale=0.3, size=5000))
    f = fit_alignment(bias2, var, n_boot=300)
    assert f.slope == pytest.approx(0.8, abs=0.02)
    assert f.intercept == pytest.approx(-0.5, abs=0.05)
    assert f.slope_ci[0] < f.slope < f.slope_ci[1]
    assert f.slope_ci[0] < 0.8 < f.slope_ci[1]
    # against scipy's OLS
    ref = stats.linregress(np.log(bias2), np.log(var))
    assert f.slope == pytest.approx(ref.slope, rel=1e-10)
    assert f.r2 == pytest.approx(ref.rvalue**2, rel=1e-10)
    assert f.pearson == pytest.approx(ref.rvalue, rel=1e-10)


def test_exclusions_are_counted_not_silent():
    bias2 = np.array([0.1, 0.2, 0.0, -0.01, np.nan, 0.3, 0.4, 0.5])
    var = np.array([0.1, 0.2, 0.3, 0.1, 0.1, 0.0, 0.4, 0.5])
    mask = np.array([True] * 7 + [False])
    f = fit_alignment(bias2, var, mask, subset="correct", n_boot=0)
    assert (f.n_subset, f.excluded_zero, f.excluded_negative, f.excluded_nonfinite) == (7, 2, 1, 1)
    assert f.n == 3  # 0.1, 0.2, 0.4
    assert f.slope == pytest.approx(1.0) and f.r2 == pytest.approx(1.0)
    assert f.mean_log_ratio == pytest.approx(0.0, abs=1e-12)


def test_too_few_examples_gives_nan_not_a_crash():
    f = fit_alignment(np.array([0.1, 0.2]), np.array([0.1, 0.3]), n_boot=10)
    assert f.n == 2 and np.isnan(f.slope)
