"""Per-config summary against independent computations.

The summary computes every replicate from weighted per-draw sums; the
references here recompute each quantity from scratch with the per-example
decompositions on the members actually kept (a loop over left-out draws),
and build the jackknife estimate and interval by hand. Coverage of the truth
is measured by simulation in ``test_intervals.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from biasvar.analysis.calibration import ece
from biasvar.analysis.decompose import softmax
from biasvar.analysis.summary import QUANTITIES, per_example, summarize

N_BINS = 10
# The estimator of each population value, restated here (not imported) on purpose.
UNBIASED = {"mse_bias2": "mse_bias2_unbiased", "mse_var": "mse_var_unbiased",
            "var_optimization": "var_optimization_unbiased",
            "var_sampling": "var_sampling_unbiased"}
BIAS_CORRECTED = ("ce_bias", "ce_var")
RANGE = {q: (0.0, 1.0) for q in ("zero_one_error", "zero_one_bias", "member_error",
                                  "ensemble_error", "member_ece", "ensemble_ece")} | {
    "zero_one_net_var": (-1.0, 1.0), "mse_loss": (0.0, 2.0), "ce_loss": (0.0, np.inf),
    "mse_ensemble_loss": (0.0, 2.0), "ce_ensemble_loss": (0.0, np.inf)}
LOG = ("mse_bias2", "mse_var", "var_optimization", "var_sampling", "ce_bias", "ce_var",
       "mse_diversity", "ce_diversity")


@pytest.fixture(params=[(4, 3), (6, 1), (1, 5)], ids=["4draws-3seeds", "6draws-1seed", "1draw"])
def ensemble(request):
    d, s = request.param
    rng = np.random.default_rng(0)
    n, c = 60, 4
    draw_effect = rng.normal(size=(d, 1, n, c))
    logits = (draw_effect + 0.5 * rng.normal(size=(d, s, n, c))).reshape(d * s, n, c)
    draws = np.repeat(np.arange(d), s)
    perm = rng.permutation(d * s)  # members need not come draw-major
    return logits[perm], rng.integers(0, c, n), draws[perm]


def slow_values(logits, labels, draws) -> dict[str, float]:
    """Every summary quantity from the per-example decompositions and plain ECE calls."""
    cols = per_example(logits, labels, draws)
    p = softmax(logits)
    out = {q: float(cols[q].mean()) for q in QUANTITIES if q in cols}
    out["member_error"] = float(cols["zero_one_error"].mean())
    out["ensemble_error"] = float(1 - cols["correct"].mean())
    out["member_ece"] = float(np.mean([ece(pk, labels, N_BINS) for pk in p]))
    out["ensemble_ece"] = ece(p.mean(0), labels, N_BINS)
    return out


def test_point_values_equal_independent_computation(ensemble):
    logits, labels, draws = ensemble
    s = summarize(logits, labels, draws, n_bins=N_BINS)
    ref = slow_values(logits, labels, draws)
    got = dict(zip(s.quantities, s.value, strict=True))
    for q in QUANTITIES:
        np.testing.assert_allclose(got[q], ref[q], rtol=1e-9, atol=1e-12, err_msg=q)
    # identities on the means
    assert got["mse_loss"] == pytest.approx(got["mse_bias2"] + got["mse_var"], abs=1e-12)
    assert got["ce_loss"] == pytest.approx(got["ce_bias"] + got["ce_var"], abs=1e-12)
    assert got["zero_one_error"] == pytest.approx(got["zero_one_bias"]
                                                  + got["zero_one_net_var"], abs=1e-12)
    # bias-variance-diversity: a draw's ensemble loses the diversity of its members
    assert got["mse_ensemble_loss"] == pytest.approx(
        got["mse_bias2"] + got["mse_var"] - got["mse_diversity"], abs=1e-12)
    assert got["ce_ensemble_loss"] == pytest.approx(
        got["ce_bias"] + got["ce_var"] - got["ce_diversity"], abs=1e-12)


def test_jackknife_against_leave_one_draw_out_loop(ensemble):
    """Estimates and intervals equal a by-hand jackknife over re-decomposed subsets."""
    logits, labels, draws = ensemble
    uniq = np.unique(draws)
    d = len(uniq)
    if d == 1:
        pytest.skip("no draw to leave out")
    full = slow_values(logits, labels, draws)
    loo = [slow_values(logits[draws != i], labels, draws[draws != i]) for i in uniq]
    s = summarize(logits, labels, draws, ci=0.9, n_bins=N_BINS)
    t = stats.t.ppf(0.95, d - 1)
    for j, q in enumerate(QUANTITIES):
        est_q = UNBIASED.get(q, q)
        theta = full[est_q]
        reps = np.array([r[est_q] for r in loo])
        if not np.isfinite(theta):  # Neal's split with one seed per draw
            assert np.isnan(s.estimate[j]) and np.isnan(s.ci_low[j]), q
            continue
        est = d * theta - (d - 1) * reps.mean() if q in BIAS_CORRECTED else theta
        assert s.estimate[j] == pytest.approx(est, rel=1e-9, abs=1e-12), q
        base = q.removesuffix("_unbiased")
        if base in LOG and est > 0 and (reps > 0).all():
            se = np.sqrt((d - 1) / d * ((np.log(reps) - np.log(reps).mean()) ** 2).sum())
            lo, hi = est * np.exp(-t * se), est * np.exp(t * se)
        else:
            se = np.sqrt((d - 1) / d * ((reps - reps.mean()) ** 2).sum())
            lo, hi = est - t * se, est + t * se
        lo, hi = max(lo, RANGE.get(q, (-np.inf,))[0]), min(hi, RANGE.get(q, (0, np.inf))[1])
        assert (s.ci_low[j], s.ci_high[j]) == pytest.approx((lo, hi), rel=1e-8, abs=1e-12), q


def test_mean_quantity_interval_is_the_classical_t_interval():
    """One seed per draw: a member mean's jackknife interval is mean ± t sd/sqrt(D)."""
    rng = np.random.default_rng(5)
    d, n, c = 9, 30, 3
    logits = rng.normal(scale=2.0, size=(d, n, c))
    labels = rng.integers(0, c, n)
    s = summarize(logits, labels, np.arange(d), ci=0.95)
    p = softmax(logits)
    loss = ((p - np.eye(c)[labels]) ** 2).sum(-1).mean(-1)  # (D,) each member's mean loss
    lo, hi = stats.t.interval(0.95, d - 1, loc=loss.mean(), scale=stats.sem(loss))
    j = s.quantities.index("mse_loss")
    assert (s.ci_low[j], s.ci_high[j]) == pytest.approx((lo, hi), rel=1e-10)


def test_unbiased_estimates_lie_inside_their_intervals(ensemble):
    """The failure of the former bootstrap: unbiased estimates outside their own CI."""
    logits, labels, draws = ensemble
    s = summarize(logits, labels, draws)
    if s.n_draws == 1:
        assert np.isnan(s.ci_low).all() and np.isnan(s.ci_high).all()
        return
    for j, q in enumerate(QUANTITIES):
        if np.isfinite(s.ci_low[j]) and s.value[j] == pytest.approx(s.estimate[j], abs=1e-12):
            assert s.ci_low[j] <= s.value[j] <= s.ci_high[j], q


def test_one_draw_total_variance_is_undefined(ensemble):
    """One training set says nothing about the sampling variance: NaN, not K/(K-1) var."""
    logits, labels, draws = ensemble
    s = summarize(logits, labels, draws)
    got = dict(zip(s.quantities, s.value, strict=True))
    cols = per_example(logits, labels, draws)
    if s.n_draws == 1:
        for q in ("mse_var_unbiased", "mse_bias2_unbiased", "var_sampling"):
            assert np.isnan(got[q]) and np.isnan(cols[q]).all(), q
        assert np.isfinite(got["var_optimization_unbiased"])
        assert np.isfinite(got["mse_var"])  # the plug-in stays, under its own name
    else:
        assert np.isfinite(got["mse_var_unbiased"]) and np.isfinite(cols["mse_var_unbiased"]).all()


def test_member_order_and_n_boot_zero(ensemble):
    logits, labels, draws = ensemble
    a = summarize(logits, labels, draws)
    perm = np.random.default_rng(9).permutation(len(draws))
    b = summarize(logits[perm], labels, draws[perm])
    np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.ci_low, b.ci_low, rtol=1e-9, atol=1e-12)
    z = summarize(logits, labels, draws, intervals=False)
    assert np.isnan(z.ci_low).all() and np.isnan(z.ci_high).all()
    np.testing.assert_array_equal(z.estimate, a.estimate)
