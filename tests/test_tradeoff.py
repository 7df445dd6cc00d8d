"""The UDL ch. 8 toy trade-off: features, interpolation, exact zero bias, decomposition."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from biasvar.core.errors import ParamError
from biasvar.core.rng import numpy_generator
from biasvar.studies.tradeoff import (
    TRADEOFF_COLUMNS,
    TradeoffParams,
    decompose_hidden_units,
    fit_second_layer,
    make_datasets,
    predict,
    regression_decomposition,
    relu_features,
    run_tradeoff,
    stratified_inputs,
    true_function,
)


def test_features_are_intercept_and_shifted_relus():
    x = np.array([0.0, 0.3, 0.6, 0.95])
    got = relu_features(x, 4)  # knots 0, 0.25, 0.5, 0.75
    want = np.array([[1, 0.0, 0, 0, 0],
                     [1, 0.3, 0.05, 0, 0],
                     [1, 0.6, 0.35, 0.1, 0],
                     [1, 0.95, 0.7, 0.45, 0.2]])
    np.testing.assert_allclose(got, want, atol=1e-15)


def test_stratified_inputs_one_per_stratum():
    x = stratified_inputs(numpy_generator(0, "t"), 15)
    np.testing.assert_array_equal(np.floor(x * 15), np.arange(15))


@pytest.mark.parametrize("seed", range(5))
def test_d_equal_to_number_of_points_interpolates(seed):
    """With one knot at the left end of each stratum the design has full row rank."""
    rng = numpy_generator(seed, "interp")
    n = 15
    x = stratified_inputs(rng, n)
    y = true_function(x) + 0.3 * rng.standard_normal(n)
    coef = fit_second_layer(x, y, hidden_units=n)
    np.testing.assert_allclose(predict(coef, x), y, atol=1e-9)
    # one unit fewer cannot interpolate noisy data in general
    coef = fit_second_layer(x, y, hidden_units=n - 5)
    assert np.abs(predict(coef, x) - y).max() > 1e-3


def _decompose(truth, d, noise_std=0.0, k=20):
    data = make_datasets(k, 15, noise_std, 50, 1, seed=3, truth=truth)
    return decompose_hidden_units(data, d, noise_std, truth=truth)


@pytest.mark.parametrize("d", [1, 2, 5, 12])
def test_linear_truth_has_exactly_zero_bias(d):
    """The model contains a + b x (intercept + the unit ReLU(x - 0) = x on [0, 1])."""
    row = _decompose(lambda x: 0.7 - 1.3 * x, d)
    assert row.bias2 < 1e-24 and row.variance < 1e-24 and row.train_loss < 1e-24


def test_bias_is_zero_exactly_when_the_knot_is_in_the_model():
    """A kink at x = 1/2 is in the class for even D (knot c/D = 1/2), not for D = 3."""
    truth = lambda x: 0.5 + x - 2.0 * np.maximum(x - 0.5, 0.0)  # noqa: E731
    for d in (2, 4):
        assert _decompose(truth, d).bias2 < 1e-24
    assert _decompose(truth, 3).bias2 > 1e-4


def test_expected_loss_matches_measured_test_loss():
    """noise + bias^2 + variance is the expected loss on fresh targets (Monte Carlo check)."""
    data = make_datasets(100, 15, 0.3, 100, 20, seed=0)
    row = decompose_hidden_units(data, 4, 0.3)
    assert row.noise == pytest.approx(0.09)
    assert row.total == pytest.approx(row.noise + row.bias2 + row.variance)
    assert abs(row.test_loss - row.total) < 3 * row.test_loss_se


def test_run_tradeoff_tiny_is_u_shaped():
    res = run_tradeoff(range(1, 13), n_datasets=30, n_train=15, noise_std=0.3, n_grid=50,
                       test_draws=2, seed=0)
    t = res.table
    assert list(t.columns) == list(TRADEOFF_COLUMNS)
    assert list(t["hidden_units"]) == list(range(1, 13))
    assert (t["n_params"] == t["hidden_units"] + 1).all()
    # bias falls and variance rises with D, so the total is U-shaped
    assert t["bias2"].iloc[0] > 10 * t["bias2"].iloc[-1]
    assert t["variance"].iloc[-1] > 5 * t["variance"].iloc[0]
    best = res.metrics["argmin_total"]
    assert 1 < best < 12
    assert t.loc[t["hidden_units"] == best, "total"].item() == t["total"].min()
    # same seed, same result
    again = run_tradeoff(range(1, 13), 30, 15, 0.3, 50, 2, 0)
    assert again.table.equals(t)


def test_params_validate():
    raw = {"hidden_units": [1, 2], "n_datasets": 10, "n_train": 15, "noise_std": 0.3,
           "n_grid": 100, "test_draws": 1, "seed": 0}
    assert TradeoffParams.from_dict(raw).hidden_units == (1, 2)
    for key, value, words in [("hidden_units", [], "non-empty list"),
                              ("n_train", 1, ">= 2"), ("noise_std", "x", ">= 0")]:
        bad = copy.deepcopy(raw)
        bad[key] = value
        with pytest.raises(ParamError, match=f"tradeoff.{key}.*{words}"):
            TradeoffParams.from_dict(bad)


def test_regression_decomposition_by_monte_carlo():
    rng = np.random.default_rng(5)
    x = np.linspace(0, 1, 30)
    f = np.sin(2 * np.pi * x)
    sigma = 0.3
    fits = f + 0.2 + rng.normal(scale=0.1, size=(500, 30))  # biased by 0.2, var 0.01
    t = regression_decomposition(fits, f, sigma**2)
    y = f + rng.normal(scale=sigma, size=(400, 500, 30))  # a fresh noisy target per fit
    mc = ((fits[None] - y) ** 2).mean(axis=(0, 1))
    np.testing.assert_allclose(t.expected_loss, mc, rtol=0.01)
    np.testing.assert_allclose(t.bias2.mean(), 0.04, rtol=0.05)
    np.testing.assert_allclose(t.var.mean(), 0.01, rtol=0.1)
