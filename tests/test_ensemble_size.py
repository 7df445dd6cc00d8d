"""Alignment against ensemble size: estimators, nesting, extrapolation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import special, stats

from biasvar.analysis.alignment import fit_alignment
from biasvar.analysis.decompose import DecompositionError, ce_decomposition, mse_decomposition
from biasvar.analysis.ensemble_size import (
    COLUMNS,
    EXTRAPOLATION_COLUMNS,
    EXTRAPOLATION_METHOD_UNWEIGHTED,
    alignment_by_ensemble_size,
    draw_sizes,
    estimator_terms,
    extrapolate_inverse_k,
    fit_assignments,
    split_halves,
)
from biasvar.analysis.summary import per_example


def _ensemble(d: int, s: int, n: int = 300, c: int = 5, seed: int = 0):
    """Logits with a draw and a seed effect, members in shuffled order; returns (logits,
    labels, draws)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    mu = rng.normal(size=(n, c)) * 1.5
    mu[np.arange(n), labels] += 2.5
    logits = (mu + 0.8 * rng.normal(size=(d, 1, n, c)) + 0.5 * rng.normal(size=(d, s, n, c)))
    logits = logits.reshape(d * s, n, c)
    perm = rng.permutation(d * s)
    return logits[perm], labels, np.repeat(np.arange(d), s)[perm] * 7 + 3  # ids need not be 0..D-1


def _first_draws(logits, draws, d):
    """Members of the d smallest draw ids, in member order (independent of the module)."""
    keep = np.isin(draws, np.unique(draws)[:d])
    return logits[keep], draws[keep]


# (a) the full-K fits against independent computations ------------------------------------

def test_full_ensemble_fits_equal_direct_decompositions():
    logits, labels, draws = _ensemble(8, 2)
    res = alignment_by_ensemble_size(logits, labels, draws, n_boot=200)
    t = res.table
    probs = special.softmax(logits.astype(np.float64), -1)
    mse = mse_decomposition(probs, labels)
    ce = ce_decomposition(special.log_softmax(logits.astype(np.float64), -1), labels)
    correct = probs.mean(0).argmax(-1) == labels
    cols = per_example(logits, labels, draws)  # the pipeline's own unbiased columns
    cases = {("mse", "plugin"): (mse.bias2, mse.var), ("ce", "plugin"): (ce.bias, ce.var),
             ("mse", "unbiased"): (cols["mse_bias2_unbiased"], cols["mse_var_unbiased"])}
    for (loss, est), (b, v) in cases.items():
        for sub, mask in (("correct", correct), ("all", None)):
            row = t[(t.loss == loss) & (t.estimator == est) & (t.subset == sub)
                    & (t.n_draws == 8)].iloc[0]
            f = fit_alignment(b, v, mask, sub, n_boot=0)
            assert row.n == f.n and row.n_subset == f.n_subset
            assert row.excluded == f.excluded_zero + f.excluded_negative + f.excluded_nonfinite
            assert row.slope == pytest.approx(f.slope, rel=1e-9)
            assert row.intercept == pytest.approx(f.intercept, rel=1e-9)
            assert row.r2 == pytest.approx(f.r2, rel=1e-9)
            assert row.gap == pytest.approx(f.mean_log_ratio, rel=1e-9)
            m = np.ones(len(b), bool) if mask is None else mask
            ref = stats.linregress(np.log(b[m]), np.log(v[m]))
            assert row.slope == pytest.approx(ref.slope, rel=1e-9)
            assert row.slope_ci_low < row.slope < row.slope_ci_high
            assert row.gap_ci_low < row.gap < row.gap_ci_high
            # the bootstrap SE of a mean is close to the textbook one
            gap_i = np.log(v[m]) - np.log(b[m])
            assert row.gap_se == pytest.approx(gap_i.std(ddof=1) / np.sqrt(m.sum()), rel=0.25)
    assert int(correct.sum()) == t[(t.subset == "correct")].n_subset.iloc[0]


def test_nested_plugin_fit_uses_the_first_draws_only():
    logits, labels, draws = _ensemble(8, 2, seed=3)
    t = alignment_by_ensemble_size(logits, labels, draws, n_boot=0).table
    sub_logits, _ = _first_draws(logits, draws, 4)
    mse = mse_decomposition(special.softmax(sub_logits, -1), labels)
    f = fit_alignment(mse.bias2, mse.var, None, "all", n_boot=0)
    row = t[(t.loss == "mse") & (t.estimator == "plugin") & (t.subset == "all")
            & (t.n_draws == 4)].iloc[0]
    assert row.n_members == 8 and row.slope == pytest.approx(f.slope, rel=1e-9)


def test_mse_unbiased_is_the_delete_one_draw_jackknife_and_ce_jackknife_matches_a_loop():
    logits, labels, draws = _ensemble(5, 3, n=120, seed=4)
    d = 5
    sub, sub_draws = _first_draws(logits, draws, d)
    ids = np.unique(sub_draws)
    probs, logp = special.softmax(sub, -1), special.log_softmax(sub, -1)

    def jackknife(fn, x):
        full = np.array(fn(x))
        loo = np.array([fn(x[sub_draws != i]) for i in ids])  # loop over draws, not examples
        return d * full - (d - 1) * loo.mean(0)

    mse_j = jackknife(lambda p: (mse_decomposition(p, labels).bias2,
                                 mse_decomposition(p, labels).var), probs)
    b, v = estimator_terms(logits, labels, draws, d, "mse", "unbiased")
    np.testing.assert_allclose(b[0], mse_j[0], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(v[0], mse_j[1], rtol=1e-9, atol=1e-13)
    ce_j = jackknife(lambda lp: (ce_decomposition(lp, labels).bias,
                                 ce_decomposition(lp, labels).var), logp)
    b, v = estimator_terms(logits, labels, draws, d, "ce", "jackknife")
    np.testing.assert_allclose(b[0], ce_j[0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(v[0], ce_j[1], rtol=1e-8, atol=1e-12)


# (b) estimators by simulation: unbiased terms, and a known power law -----------------------

def test_unbiased_and_split_half_terms_are_unbiased_by_simulation():
    """Each column of the example axis is an independent replicate ensemble (4 draws x 2
    seeds); the mean over replicates must match the infinite-ensemble value."""
    rng = np.random.default_rng(1)
    mu = np.array([[2.0, 0.0, -1.0], [3.0, 1.0, 0.5], [1.0, 0.8, -0.5], [4.0, 0.0, 0.0]])
    n_ex, c = mu.shape
    sd, ss, d, s, reps = 1.0, 0.7, 4, 2, 4000
    # population of one member: logits mu + sqrt(sd^2 + ss^2) * N(0, 1), by Monte Carlo
    z = mu + np.hypot(sd, ss) * rng.normal(size=(200_000, n_ex, c))
    lp = special.log_softmax(z, -1)
    p = np.exp(lp)
    e_p = p.mean(0)
    pop = {"mse": (((e_p - np.eye(c)[0]) ** 2).sum(-1), ((p - e_p) ** 2).sum(-1).mean(0))}
    g = lp.mean(0)
    lse = np.log(np.exp(g).sum(-1))
    pop["ce"] = (lse - g[:, 0], -lse)
    logits = (mu + sd * rng.normal(size=(d, 1, reps, n_ex, c))
              + ss * rng.normal(size=(d, s, reps, n_ex, c))).reshape(d * s, reps * n_ex, c)
    draws = np.repeat(np.arange(d), s)
    labels = np.zeros(reps * n_ex, int)

    def z_scores(loss, est):
        out = []
        for term, target in zip(estimator_terms(logits, labels, draws, d, loss, est),
                                pop[loss], strict=True):
            t = term.reshape(len(term), reps, n_ex)
            out.append((t.mean(1) - target) / (t.std(1) / np.sqrt(reps)))
        return np.array(out)  # (2 terms, A, n_ex)

    for est in ("unbiased", "split_half"):
        assert np.abs(z_scores("mse", est)).max() < 4, est
    plug = z_scores("mse", "plugin")
    assert (plug[0] > 5).all() and (plug[1] < -5).all()  # bias2 high by Var(p_bar), var low
    # CE: no unbiased estimator; the jackknife removes most of the plug-in's bias
    plug, jack = np.abs(z_scores("ce", "plugin")), np.abs(z_scores("ce", "jackknife"))
    assert (jack < plug).all() and np.median(jack) < 3


def _power_law_ensemble(n, k, a, b, seed, eps=1e-3):
    """Members p_k = q_y + lam_k (q_z - q_y), lam_k ~ Beta: per example the infinite-ensemble
    MSE terms satisfy log V = a + b log B^2 exactly (three classes, label 0)."""
    rng = np.random.default_rng(seed)
    q_y, q_z = np.array([1 - 2 * eps, eps, eps]), np.array([eps, 1 - 2 * eps, eps])
    u = q_z - q_y
    m = np.exp(rng.uniform(np.log(0.02), np.log(0.3), n))  # E lam: the bias
    b2 = (((q_y - np.eye(3)[0]) + m[:, None] * u) ** 2).sum(1)
    v = np.exp(a + b * np.log(b2))
    nu = m * (1 - m) / (v / (u @ u)) - 1  # Beta(m nu, (1-m) nu) has variance v / |u|^2
    assert (nu > 0).all()
    lam = rng.beta(m * nu, (1 - m) * nu, size=(k, n))
    return np.log(q_y + lam[..., None] * u), np.zeros(n, int), b2, v


def test_known_power_law_split_half_recovers_it_plugin_is_pulled_toward_one():
    a, b, k = -1.5, 0.5, 128
    logits, labels, b2, v = _power_law_ensemble(2000, k, a, b, seed=0)
    assert stats.linregress(np.log(b2), np.log(v)).slope == pytest.approx(b)
    t = alignment_by_ensemble_size(logits, labels, np.arange(k), sizes=[4, 8, 16, 32, 64, 128],
                                   losses=("mse",), n_boot=0).table
    slope = t[t.subset == "all"].pivot(index="n_members", columns="estimator", values="slope")
    # plug-in: bias2 ~ B^2 + V/K floors at log V - log K, a line of slope 1
    assert slope.plugin[4] > 0.9
    assert slope.plugin[16] > b + 0.15 and slope.plugin[32] > b + 0.07
    # split-half: errors of the two terms independent -> near b from K = 16 on
    for kk in (16, 32, 64, 128):
        assert slope.split_half[kk] == pytest.approx(b, abs=0.06), kk
    # unbiased: removes the floor (closer to b than plug-in at every K), but the errors of
    # its two terms are correlated: it converges only at large K
    for kk in (4, 8, 16, 32, 64):
        assert abs(slope.unbiased[kk] - b) < abs(slope.plugin[kk] - b) - 0.005, kk
    assert slope.unbiased[128] == pytest.approx(b, abs=0.04)
    assert (np.diff(slope.plugin.to_numpy()) < 0).all()  # drifts down toward b with K


# (c) nested whole draws and disjoint halves ------------------------------------------------

@pytest.mark.parametrize("d", [4, 5, 8, 9])
def test_split_halves_are_disjoint_and_cover_the_first_draws(d):
    a, b = split_halves(d)
    assert set(a).isdisjoint(b) and sorted([*a, *b]) == list(range(d))
    assert len(a) == d // 2 and len(b) == d - d // 2


def test_terms_use_whole_draws_of_the_nested_subset_and_split_half_uses_disjoint_halves():
    logits, labels, draws = _ensemble(8, 3, n=80, seed=5)
    ids = np.unique(draws)  # grid order: increasing draw id
    d = 6
    half_a, half_b = split_halves(d)

    def perturbed(draw_positions, member_of_draw=None):
        out = logits.copy()
        for pos in draw_positions:
            members = np.flatnonzero(draws == ids[pos])
            if member_of_draw is not None:
                members = members[[member_of_draw]]
            out[members] += np.random.default_rng(pos).normal(size=out[members].shape)
        return out

    for loss, est in (("mse", "split_half"), ("ce", "split_half")):
        b0, v0 = estimator_terms(logits, labels, draws, d, loss, est)
        b1, v1 = estimator_terms(perturbed(half_b), labels, draws, d, loss, est)
        np.testing.assert_array_equal(b1[0], b0[0])  # bias of half A: untouched by half B
        np.testing.assert_array_equal(v1[1], v0[1])  # variance of half A
        assert not np.allclose(v1[0], v0[0]) and not np.allclose(b1[1], b0[1])
        b2_, v2_ = estimator_terms(perturbed(half_a), labels, draws, d, loss, est)
        np.testing.assert_array_equal(b2_[1], b0[1])
        np.testing.assert_array_equal(v2_[0], v0[0])
    for loss, est in (("mse", "plugin"), ("mse", "unbiased"), ("ce", "jackknife"),
                      ("mse", "split_half")):
        b0, v0 = estimator_terms(logits, labels, draws, d, loss, est)
        later = estimator_terms(perturbed([6, 7]), labels, draws, d, loss, est)  # outside
        np.testing.assert_array_equal(later[0], b0)
        np.testing.assert_array_equal(later[1], v0)
        one_seed = estimator_terms(perturbed([d - 1], member_of_draw=2), labels, draws, d,
                                   loss, est)  # the last seed of the last draw is used
        assert not np.allclose(one_seed[1], v0)


def test_table_layout_sizes_and_skips():
    logits, labels, draws = _ensemble(6, 2, n=150, seed=6)
    res = alignment_by_ensemble_size(logits, labels, draws, n_boot=50)
    t = res.table
    assert list(t.columns) == list(COLUMNS)
    assert list(res.extrapolation.columns) == list(EXTRAPOLATION_COLUMNS)
    assert draw_sizes(6) == [1, 2, 4, 6] and draw_sizes(8) == [1, 2, 4, 8]
    got = t.groupby(["loss", "estimator"]).n_draws.apply(lambda x: sorted(set(x))).to_dict()
    assert got == {("mse", "plugin"): [1, 2, 4, 6], ("mse", "unbiased"): [2, 4, 6],
                   ("mse", "split_half"): [4, 6], ("ce", "plugin"): [1, 2, 4, 6],
                   ("ce", "jackknife"): [2, 4, 6], ("ce", "split_half"): [4, 6]}
    assert len(t) == 2 * (4 + 3 + 2) * 2
    assert (t.n_members == 2 * t.n_draws).all()
    sh = t[t.estimator == "split_half"]
    assert (sh.members_bias + sh.members_var == sh.n_members).all()
    assert (t.excluded == t.excluded_zero + t.excluded_negative + t.excluded_nonfinite).all()
    assert (t.n + t.excluded == t.n_subset).all()
    json.dumps(res.headline)  # JSON-ready
    assert set(res.headline["ce"]) == {"plugin", "jackknife", "split_half"}
    with pytest.raises(DecompositionError, match="at least 4 draws"):
        estimator_terms(logits, labels, draws, 3, "mse", "split_half")
    with pytest.raises(DecompositionError, match="not defined"):
        estimator_terms(logits, labels, draws, 4, "ce", "unbiased")
    bad = logits.copy()
    bad[3, 0, 0] = np.nan
    with pytest.raises(DecompositionError, match="non-finite"):
        alignment_by_ensemble_size(bad, labels, draws)
    with pytest.raises(DecompositionError, match="same number of seeds"):
        alignment_by_ensemble_size(logits, labels, np.r_[draws[:-1], 99])


# (d) exclusions ------------------------------------------------------------------------------

def test_exclusions_are_counted_by_kind_across_assignments():
    bias = np.array([[0.1, 0.2, 0.3, 0.0, 0.5, -0.1, np.nan, 0.4, 0.2, 0.3],
                     [0.1, 0.2, 0.3, 0.4, 0.5, 0.2, 0.3, 0.4, 0.2, 0.3]])
    var = np.array([[0.2, 0.1, 0.3, 0.4, 0.5, 0.2, 0.3, 0.4, 0.2, 0.3],
                    [0.2, 0.1, 0.3, 0.4, 0.0, 0.2, 0.3, -0.4, np.inf, 0.3]])
    mask = np.ones(10, bool)
    mask[-1] = False
    row = fit_assignments(bias, var, mask, "correct", n_boot=0)
    # zero: 3 (bias A), 4 (var B); negative: 5 (bias A), 7 (var B); non-finite: 6, 8
    assert (row["n_subset"], row["excluded_zero"], row["excluded_negative"],
            row["excluded_nonfinite"], row["n"]) == (9, 2, 2, 2, 3)
    fits = [fit_alignment(bias[i, :3], var[i, :3], n_boot=0) for i in range(2)]
    assert row["slope"] == pytest.approx(np.mean([f.slope for f in fits]))
    single = fit_assignments(bias[0], var[0], mask, "correct", n_boot=0)
    f = fit_alignment(bias[0], var[0], mask, "correct", n_boot=0)
    assert (single["excluded_zero"], single["excluded_negative"],
            single["excluded_nonfinite"]) == (f.excluded_zero, f.excluded_negative,
                                              f.excluded_nonfinite)


def test_exclusions_on_a_hand_made_ensemble():
    """Examples 0-2: every member one-hot on the label (all terms exactly 0, every estimator);
    examples 3-4: identical members, not one-hot (MSE variance exactly 0); the rest regular
    (the CE jackknife terms of a few of them are negative: counted as negative)."""
    logits, labels, draws = _ensemble(4, 2, n=40, c=3, seed=7)
    logits[:, :3] = np.where(np.arange(3) == labels[:3, None], 0.0, -1000.0)
    logits[:, 3:5] = logits[0, 3:5]
    t = alignment_by_ensemble_size(logits, labels, draws, n_boot=0).table
    t = t[t.subset == "all"]
    mse = t[t.loss == "mse"]
    assert (mse.excluded_zero == 5).all() and (mse.excluded == 5).all() and (mse.n == 35).all()
    assert (t.excluded_nonfinite == 0).all()
    for row in t.itertuples():
        b, v = estimator_terms(logits, labels, draws, row.n_draws, row.loss, row.estimator)
        assert (b[:, :3] == 0).all() and (v[:, :3] == 0).all()
        if row.loss == "mse":
            assert (v[:, 3:5] == 0).all() and (b[:, 3:5] > 0).all()
        neg = ((b < 0) | (v < 0)).any(0)
        zero = ~neg & ((b == 0) | (v == 0)).any(0)
        assert (row.excluded_negative, row.excluded_zero) == (neg.sum(), zero.sum())
        if row.estimator == "plugin":  # plug-in terms are never negative
            assert row.excluded_negative == 0
    ce_jack = t[(t.loss == "ce") & (t.estimator != "plugin")]
    assert ce_jack.excluded_negative.sum() > 0  # the case exercises the negative count


# (e) extrapolation ----------------------------------------------------------------------------

def test_extrapolation_recovers_a_known_limit():
    k = np.array([4, 8, 16, 32, 64])
    s_inf, c = 0.62, 1.3
    exact = extrapolate_inverse_k(k, s_inf + c / k)
    assert exact.value_inf == pytest.approx(s_inf, abs=1e-12)
    assert exact.coef == pytest.approx(c, abs=1e-12)
    # unweighted (no standard errors): a residual sum is not a chi², so there is none
    assert np.isnan(exact.chi2) and exact.method == EXTRAPOLATION_METHOD_UNWEIGHTED
    weighted = extrapolate_inverse_k(k, s_inf + c / k, se=np.full(len(k), 0.01))
    assert weighted.chi2 == pytest.approx(0, abs=1e-20) and weighted.method.startswith("WLS")
    # noisy replicates with a shared (correlated) component, as bootstrap replicates over
    # the same examples at every K are
    rng = np.random.default_rng(0)
    se = 0.02
    shared = rng.normal(size=(4000, 1)) * se * 0.8
    reps = s_inf + c / k + shared + rng.normal(size=(4000, len(k))) * se * 0.6
    truth = s_inf + c / k + rng.normal(size=len(k)) * se * 0.6 + 0.01
    f = extrapolate_inverse_k(k, truth, replicates=reps - reps.mean(0) + truth)
    assert f.value_inf == pytest.approx(s_inf + 0.01, abs=3 * f.value_inf_se)
    assert f.coef == pytest.approx(c, abs=3 * f.coef_se)
    # the SE of the limit follows the replicates: the shared part passes straight through
    direct = (reps - reps.mean(0)) @ np.linalg.lstsq(
        np.stack([np.ones(len(k)), 1 / k], 1), np.eye(len(k)), rcond=None)[0][0]
    assert f.value_inf_se == pytest.approx(direct.std(ddof=1), rel=0.1)
    assert f.value_inf_ci[0] < f.value_inf < f.value_inf_ci[1]
    # known standard errors without replicates: the WLS formula
    g = extrapolate_inverse_k(k, s_inf + c / k, se=np.full(len(k), se))
    x = np.stack([np.ones(len(k)), 1 / k], 1)
    assert g.value_inf_se == pytest.approx(se * np.sqrt(np.linalg.inv(x.T @ x)[0, 0]))
    two = extrapolate_inverse_k([16, 32], [0.7, 0.66])
    assert two.value_inf == pytest.approx(0.62) and two.dof == 0
    assert np.isnan(extrapolate_inverse_k([32], [0.66]).value_inf)
    assert np.isnan(extrapolate_inverse_k([16, 32], [np.nan, 0.66]).value_inf)


def test_module_extrapolation_uses_its_own_table():
    logits, labels, draws = _ensemble(8, 2, n=200, seed=8)
    res = alignment_by_ensemble_size(logits, labels, draws, n_boot=100, losses=("mse",))
    t, ex = res.table, res.extrapolation
    for est in ("plugin", "unbiased", "split_half"):
        g = t[(t.estimator == est) & (t.subset == "correct")].sort_values("n_members")
        e = ex[(ex.estimator == est) & (ex.subset == "correct") & (ex.quantity == "slope")]
        ref = extrapolate_inverse_k(g.n_members, g.slope, se=g.slope_se)
        assert e.value_inf.iloc[0] == pytest.approx(ref.value_inf, rel=1e-9)
        assert e.n_sizes.iloc[0] == len(g) and e.k_max.iloc[0] == 16
        assert e.value_inf_se.iloc[0] > 0
        h = res.headline["mse"][est]
        assert h["slope"] == pytest.approx(g.slope.iloc[-1], abs=1e-6)
        assert h["slope_inf"] == pytest.approx(ref.value_inf, abs=1e-6)


def test_without_bootstrap_the_extrapolation_is_unweighted_and_unchecked():
    """n_boot = 0 (``alignment_size.bootstrap: 0``, "no intervals"): the K -> inf value is
    the unweighted line, and it says so; no chi², no standard error, no interval (before,
    the unweighted residual sum was reported as a chi² under the WLS method's name)."""
    logits, labels, draws = _ensemble(8, 2, n=200, seed=8)
    with_boot = alignment_by_ensemble_size(logits, labels, draws, n_boot=100, losses=("mse",))
    without = alignment_by_ensemble_size(logits, labels, draws, n_boot=0, losses=("mse",))
    ex, ref = without.extrapolation, with_boot.extrapolation
    assert (ex.method == EXTRAPOLATION_METHOD_UNWEIGHTED).all()
    assert (ref.method != EXTRAPOLATION_METHOD_UNWEIGHTED).all()
    for col in ("chi2", "value_inf_se", "value_inf_ci_low", "value_inf_ci_high", "coef_inv_k_se"):
        assert ex[col].isna().all(), col
    assert ref.chi2[ref.dof > 0].notna().all()
    # the point estimate is the unweighted line through the per-size values
    t = without.table
    g = t[(t.estimator == "plugin") & (t.subset == "correct")].sort_values("n_members")
    e = ex[(ex.estimator == "plugin") & (ex.subset == "correct") & (ex.quantity == "slope")]
    fit = np.polyfit(1 / g.n_members.to_numpy(float), g.slope.to_numpy(), 1)
    assert e.value_inf.iloc[0] == pytest.approx(fit[1], rel=1e-9)
    assert e.coef_inv_k.iloc[0] == pytest.approx(fit[0], rel=1e-9)
    assert without.headline["mse"]["plugin"]["slope_inf_se"] is None
