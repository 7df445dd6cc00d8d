"""The binary neural-collapse study: Chen et al.'s Assumption 5.1 in closed form, NC1, terms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biasvar.studies.collapse import (
    COLLAPSE_EXAMPLE_COLUMNS,
    COLLAPSE_MEMBER_COLUMNS,
    COLLAPSE_SUMMARY_COLUMNS,
    RATIO_AT_ZERO,
    CollapseParams,
    chen_log_terms,
    chen_ratio,
    chen_terms,
    example_terms,
    margins,
    model_curve,
    nc1,
    run_collapse,
    scaled_log_terms,
)


# ------------------------------------------------------------------ Assumption 5.1
def test_chen_terms_at_zero_are_those_of_a_uniform_probability():
    # c = 0: p = sigmoid(L) is uniform on [0, 1]: bias2 = (1/2)^2, var = 1/12.
    b, v = chen_terms(0.0)
    assert b[0] == pytest.approx(0.25, rel=1e-12)
    assert v[0] == pytest.approx(1 / 12, rel=1e-12)
    assert RATIO_AT_ZERO == pytest.approx(0.5579, abs=1e-4)  # the 0.557 quoted for Cor. 5.3
    assert chen_ratio(0.0)[0] == pytest.approx(RATIO_AT_ZERO, rel=1e-12)


@pytest.mark.parametrize("c", [0.2, 0.5, 1.3, 4.0, 9.0, -1.0])
def test_chen_terms_match_monte_carlo_of_gumbel_logits(c):
    # Simulate the assumption itself: two-class softmax of (c, 0) + i.i.d. standard Gumbels.
    rng = np.random.default_rng(7)
    g = rng.gumbel(size=(2_000_000, 2))
    p = 1.0 / (1.0 + np.exp(-(c + g[:, 0] - g[:, 1])))
    b, v = chen_terms(c)
    n = len(p)
    se_mean = p.std() / math.sqrt(n)  # of the simulated E[1 - p]
    se_var = ((p - p.mean()) ** 2).std() / math.sqrt(n)  # of the simulated variance
    assert abs(math.sqrt(b[0]) - (1 - p.mean())) < 4 * se_mean
    assert abs(v[0] - p.var()) < 4 * se_var


def test_chen_terms_are_continuous_across_the_quadrature_switch():
    lb, lv = chen_log_terms(np.array([0.5 - 1e-9, 0.5 + 1e-9]))
    assert lb[0] == pytest.approx(lb[1], abs=1e-7)
    assert lv[0] == pytest.approx(lv[1], abs=1e-7)


def test_chen_ratio_rises_from_0558_toward_2_and_large_c_has_closed_asymptotes():
    c = np.linspace(0, 400, 2001)
    r = chen_ratio(c)
    assert np.all(np.diff(r) > 0)
    assert r[0] == pytest.approx(RATIO_AT_ZERO) and 1.96 < r[-1] < 2
    lb, lv = chen_log_terms(np.array([300.0]))
    # var ~ e^-c and bias2 ~ (c - 1)^2 e^-2c for large c (no underflow in log space)
    assert lv[0] == pytest.approx(-300.0, abs=1e-9)
    assert lb[0] == pytest.approx(-600.0 + 2 * math.log(299.0), abs=1e-9)


def test_scaled_model_with_unit_scale_is_the_closed_form_and_matches_simulation_otherwise():
    c = np.array([0.0, 0.3, 2.0, 15.0, 40.0])
    lb, lv = scaled_log_terms(c, 1.0)
    rb, rv = chen_log_terms(c)
    np.testing.assert_allclose(lb, rb, atol=1e-9)
    np.testing.assert_allclose(lv, rv, atol=1e-9)
    rng = np.random.default_rng(3)
    p = 1.0 / (1.0 + np.exp(-(6.0 + 4.0 * rng.logistic(size=2_000_000))))
    sb, sv = scaled_log_terms(np.array([6.0]), 4.0)
    assert sb[0] == pytest.approx(2 * np.log(1 - p.mean()), abs=0.01)
    assert sv[0] == pytest.approx(np.log(p.var()), abs=0.01)


def test_model_curve_starts_at_c_zero():
    m = model_curve()
    assert m.c.iloc[0] == 0 and m.ratio.iloc[0] == pytest.approx(RATIO_AT_ZERO)
    assert m.c.is_monotonic_increasing


# ------------------------------------------------------------------ NC1
def _features(noise: float, seed: int = 0, n: int = 300, f: int = 12, k: int = 2):
    """Class means plus within-class noise of sd ``noise``, centered per class (so the
    class means are exactly ``means`` whatever the noise)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, f)) * 3
    y = np.arange(n) % k
    e = rng.normal(size=(n, f))
    for j in range(k):
        e[y == j] -= e[y == j].mean(0)
    return means[y] + noise * e, y


def test_nc1_is_zero_for_collapsed_features_and_grows_with_within_class_noise():
    h, y = _features(0.0)
    assert nc1(h, y) == pytest.approx(0.0, abs=1e-20)
    values = [nc1(*_features(s)) for s in (0.1, 0.3, 1.0, 3.0)]
    assert np.all(np.diff(values) > 0)
    # within-class noise of sd s scales Sigma_W by s^2, so NC1 by s^2 (same draws)
    assert nc1(*_features(0.2)) / nc1(*_features(0.1)) == pytest.approx(4.0, rel=1e-9)
    h, y = _features(1.0)
    assert nc1(h, y) == pytest.approx(nc1(h * 7.0, y), rel=1e-9)  # scale-free


def test_nc1_binary_closed_form_and_multiclass_pinv_reference():
    h, y = _features(0.7)
    d = h[y == 1].mean(0) - h[y == 0].mean(0)
    centered = h - np.where(y[:, None] == 1, h[y == 1].mean(0), h[y == 0].mean(0))
    sw = centered.T @ centered / len(h)
    assert nc1(h, y) == pytest.approx(2 * d @ sw @ d / (d @ d) ** 2, rel=1e-10)
    # K = 4, balanced: Papyan's definition with a pseudo-inverse (cutoff well above rounding)
    h, y = _features(0.5, k=4, n=400)
    mus = np.stack([h[y == j].mean(0) for j in range(4)])
    mu_g = h.mean(0)
    sb = (mus - mu_g).T @ (mus - mu_g) / 4
    c = h - mus[y]
    sw = c.T @ c / len(h)
    ref = np.trace(sw @ np.linalg.pinv(sb, rcond=1e-8, hermitian=True)) / 4
    assert nc1(h, y, n_classes=4) == pytest.approx(ref, rel=1e-8)


def test_nc1_is_nan_without_both_classes():
    h, _ = _features(0.1)
    assert math.isnan(nc1(h, np.zeros(len(h), dtype=int)))


# ------------------------------------------------------------------ per-example terms
def test_example_terms_identity_and_margin_sign():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 50, 2)) * 3  # (M, N, 2)
    labels = rng.integers(0, 2, 50)
    z = margins(logits, labels)
    np.testing.assert_allclose(z[:, labels == 0], (logits[..., 0] - logits[..., 1])[:, labels == 0])
    t = example_terms(logits, labels)
    p = 1 / (1 + np.exp(-z))
    # bias2 + var = mean over members of the squared error of the true-class probability
    np.testing.assert_allclose(t["bias2"] + t["var"], ((1 - p) ** 2).mean(0), rtol=1e-12)
    np.testing.assert_array_equal(t["correct"], p.mean(0) > 0.5)


def test_ratio_above_two_is_impossible_for_a_correct_example():
    # var <= p(1 - p) < sqrt(bias2) for a correct example, so log bias2 / log var <= 2:
    # the upper end of Cor. 5.3's range is no test of the model.
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8, 5000, 2)) * rng.uniform(0.1, 20, size=(1, 5000, 1))
    labels = rng.integers(0, 2, 5000)
    t = example_terms(logits, labels)
    ok = t["correct"] & (t["var"] > 0)
    assert ok.sum() > 1000
    assert np.all(np.log(t["bias2"][ok]) / np.log(t["var"][ok]) <= 2.0)


# ------------------------------------------------------------------ one real run
def test_run_collapse_trains_and_fills_every_column():
    cfg = CollapseParams.from_dict({
        "classes": [8, 9], "num_samples": 1000, "train_split": 0.5, "data_seed": 42,
        "widths": [4, 16], "depth": 2, "draws": 2, "seeds_per_draw": 2, "steps": 200,
        "batch_size": 25, "lr": 0.01, "seed": 0})
    result, examples, members = run_collapse(cfg, threads=1, log=lambda *_: None)
    assert list(examples.columns) == list(COLLAPSE_EXAMPLE_COLUMNS)
    assert list(members.columns) == list(COLLAPSE_MEMBER_COLUMNS)
    assert list(result.table.columns) == list(COLLAPSE_SUMMARY_COLUMNS)
    assert len(members) == 8 and set(members.draw) == {0, 1}
    assert set(examples.label) == {0, 1} and len(examples) == 2 * result.metrics["n_test"]
    assert examples[["bias2", "var", "margin_sd"]].notna().all().all()
    # 200 steps fit a ~100-example draw (and NC1 is finite): real training happened
    assert (members[members.width == 16].train_error < 0.2).all()
    assert np.isfinite(members.nc1_train).all()
    # the summary's error is the example table's
    e16 = examples[examples.width == 16]
    assert result.table.ensemble_test_error.iloc[1] == pytest.approx(1 - e16.correct.mean())
