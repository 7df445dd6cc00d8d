"""Decompositions: exact identities, slow per-example references, estimator bias, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.analysis.decompose import (
    DecompositionError,
    ce_decomposition,
    diversity_decomposition,
    log_softmax,
    mse_decomposition,
    neal_split,
    softmax,
    zero_one_decomposition,
)

K, N, C = 12, 40, 5


@pytest.fixture()
def random_ensemble():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(K, N, C))
    labels = rng.integers(0, C, N)
    return logits, labels


# ---------------------------------------------------------------- identities (1e-10)
def test_mse_identity(random_ensemble):
    logits, labels = random_ensemble
    t = mse_decomposition(softmax(logits), labels)
    np.testing.assert_allclose(t.loss, t.bias2 + t.var, rtol=0, atol=1e-10)
    np.testing.assert_allclose(t.loss, t.bias2_unbiased + t.var_unbiased, rtol=0, atol=1e-10)


def test_ce_identity(random_ensemble):
    logits, labels = random_ensemble
    t = ce_decomposition(log_softmax(logits), labels)
    np.testing.assert_allclose(t.loss, t.bias + t.var, rtol=0, atol=1e-10)
    assert np.all(t.var >= 0)
    np.testing.assert_allclose(t.central.sum(-1), 1.0, atol=1e-12)


def test_zero_one_identity(random_ensemble):
    logits, labels = random_ensemble
    t = zero_one_decomposition(logits.argmax(-1), labels, C)
    np.testing.assert_allclose(t.error, t.bias + t.net_var, rtol=0, atol=1e-10)


def test_neal_identity_on_balanced_grid(random_ensemble):
    logits, _ = random_ensemble
    draws = np.repeat(np.arange(4), 3)[np.random.default_rng(1).permutation(K)]  # shuffled
    p = softmax(logits)
    t = neal_split(p, draws)
    var = mse_decomposition(p, np.zeros(N, int)).var
    np.testing.assert_allclose(t.optimization + t.sampling, var, rtol=0, atol=1e-10)
    assert (t.n_draws, t.n_seeds) == (4, 3)


# ---------------------------------------------------------------- slow references
def test_against_slow_per_example_loops(random_ensemble):
    logits, labels = random_ensemble
    draws = np.repeat(np.arange(3), 4)
    p = softmax(logits)
    mse = mse_decomposition(p, labels)
    ce = ce_decomposition(log_softmax(logits), labels)
    zo = zero_one_decomposition(logits.argmax(-1), labels, C)
    neal = neal_split(p, draws)
    for i in range(N):
        ps = [list(p[k, i]) for k in range(K)]  # plain lists: the obvious computation
        y = [1.0 if c == labels[i] else 0.0 for c in range(C)]
        mean = [sum(ps[k][c] for k in range(K)) / K for c in range(C)]
        bias2 = sum((mean[c] - y[c]) ** 2 for c in range(C))
        var = sum(sum((ps[k][c] - mean[c]) ** 2 for c in range(C)) for k in range(K)) / K
        assert mse.bias2[i] == pytest.approx(bias2, abs=1e-12)
        assert mse.var[i] == pytest.approx(var, abs=1e-12)
        # CE: normalized geometric mean, KL from it to each member
        geo = [np.exp(sum(np.log(ps[k][c]) for k in range(K)) / K) for c in range(C)]
        z = sum(geo)
        central = [g / z for g in geo]
        assert ce.bias[i] == pytest.approx(-np.log(central[labels[i]]), abs=1e-10)
        kl = [sum(central[c] * np.log(central[c] / ps[k][c]) for c in range(C))
              for k in range(K)]
        assert ce.var[i] == pytest.approx(sum(kl) / K, abs=1e-10)
        # 0-1: mode of votes (ties to the smallest class), Domingos' net variance
        preds = [int(np.argmax(ps[k])) for k in range(K)]
        counts = [preds.count(c) for c in range(C)]
        mode = counts.index(max(counts))
        b = 1.0 if mode != labels[i] else 0.0
        v = sum(pr != mode for pr in preds) / K
        net = v if b == 0 else -sum(pr == labels[i] for pr in preds) / K
        assert (zo.bias[i], zo.var[i], zo.net_var[i]) == pytest.approx((b, v, net))
        # Neal: within-draw variance averaged over draws; variance of draw means
        dm = {d: [sum(ps[k][c] for k in range(K) if draws[k] == d) / 4 for c in range(C)]
              for d in range(3)}
        opt = sum(sum((ps[k][c] - dm[draws[k]][c]) ** 2 for c in range(C))
                  for k in range(K)) / K
        samp = sum(sum((dm[d][c] - mean[c]) ** 2 for c in range(C)) for d in range(3)) / 3
        assert neal.optimization[i] == pytest.approx(opt, abs=1e-12)
        assert neal.sampling[i] == pytest.approx(samp, abs=1e-12)


def test_neal_unbiased_terms_equal_pairwise_u_statistics():
    """Unbiased terms as averages over member pairs (an independent closed form).

    For members a, b of *different* draws, E||p_a - p_b||^2 / 2 is the total
    variance; of the same draw, the optimization variance; and for draws i != j,
    E<X_i - e_y, X_j - e_y> (X a draw mean) is the infinite-ensemble bias2.
    """
    rng = np.random.default_rng(2)
    d, s, n, c = 4, 3, 15, 3
    logits = rng.normal(size=(d, 1, n, c)) + 0.7 * rng.normal(size=(d, s, n, c))
    p = softmax(logits.reshape(d * s, n, c))
    labels = rng.integers(0, c, n)
    draws = np.repeat(np.arange(d), s)
    t = neal_split(p, draws)
    bias2 = mse_decomposition(p, labels).bias2
    e = np.eye(c)[labels]
    half_sq = {True: [], False: []}  # same draw?
    for a in range(d * s):
        for b in range(d * s):
            if a != b:
                half_sq[bool(draws[a] == draws[b])].append(((p[a] - p[b]) ** 2).sum(-1) / 2)
    total, opt = np.mean(half_sq[False], 0), np.mean(half_sq[True], 0)
    x = p.reshape(d, s, n, c).mean(1)
    cross = np.mean([((x[i] - e) * (x[j] - e)).sum(-1) for i in range(d) for j in range(d)
                     if i != j], 0)
    np.testing.assert_allclose(t.optimization_unbiased, opt, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(t.var_unbiased, total, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(t.sampling_unbiased, total - opt, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(bias2 - t.mean_var_unbiased, cross, rtol=1e-9, atol=1e-14)


# ---------------------------------------------------------------- estimator bias
def test_unbiased_estimates_by_simulation():
    """Members drawn iid around a known mean: unbiased terms hit the truth, plug-in does not."""
    rng = np.random.default_rng(3)
    k, n, c = 4, 20000, 3  # n examples act as independent replications
    mu = np.array([0.6, 0.3, 0.1])
    eps = rng.normal(scale=0.05, size=(k, n, c))
    eps -= eps.mean(-1, keepdims=True)  # stay on the simplex
    p = mu + eps
    labels = np.zeros(n, int)
    true_var = (0.05**2 * (1 - 1 / c)) * c  # E||eps||^2 after centering across classes
    true_bias2 = float(((mu - np.eye(c)[0]) ** 2).sum())
    t = mse_decomposition(p, labels)
    se_var = t.var_unbiased.std() / np.sqrt(n)
    assert abs(t.var_unbiased.mean() - true_var) < 3 * se_var
    assert t.var.mean() == pytest.approx(true_var * (k - 1) / k, rel=0.02)  # plug-in low
    se_b = t.bias2_unbiased.std() / np.sqrt(n)
    assert abs(t.bias2_unbiased.mean() - true_bias2) < 3 * se_b
    # plug-in bias2 is high by Var/K (= 4 standard errors here), and only by that
    assert abs(t.bias2.mean() - true_bias2) > 3 * se_b
    assert abs(t.bias2.mean() - true_bias2 - true_var / k) < 3 * se_b


def test_neal_unbiased_by_simulation():
    """Hierarchical members: draw effect (sd a) + seed effect (sd b)."""
    rng = np.random.default_rng(4)
    d, s, n, c = 3, 2, 20000, 2
    a, b = 0.08, 0.05
    draw_eff = rng.normal(scale=a, size=(d, 1, n, 1))
    seed_eff = rng.normal(scale=b, size=(d, s, n, 1))
    p = 0.5 + np.concatenate([draw_eff + seed_eff, -(draw_eff + seed_eff)], -1)
    p = p.reshape(d * s, n, c)
    draws = np.repeat(np.arange(d), s)
    t = neal_split(p, draws)
    # per example, ||.||^2 over 2 classes doubles each scalar variance
    for est, truth in ((t.optimization_unbiased, 2 * b**2), (t.sampling_unbiased, 2 * a**2),
                       (t.var_unbiased, 2 * (a**2 + b**2))):
        se = est.std() / np.sqrt(n)
        assert abs(est.mean() - truth) < 3 * se
    assert t.optimization.mean() == pytest.approx(2 * b**2 * (s - 1) / s, rel=0.03)
    truth_mean_var = 2 * (a**2 / d + b**2 / (d * s))
    se = t.mean_var_unbiased.std() / np.sqrt(n)
    assert abs(t.mean_var_unbiased.mean() - truth_mean_var) < 3 * se


# ---------------------------------------------------------------- degenerate cases
def test_identical_members_have_zero_variance(random_ensemble):
    logits, labels = random_ensemble
    same = np.repeat(logits[:1], 6, axis=0)
    assert np.all(mse_decomposition(softmax(same), labels).var == 0)
    np.testing.assert_allclose(ce_decomposition(log_softmax(same), labels).var, 0, atol=1e-12)
    assert np.all(zero_one_decomposition(same.argmax(-1), labels, C).var == 0)


def test_one_member_is_a_clear_error(random_ensemble):
    logits, labels = random_ensemble
    for fn, arg in ((mse_decomposition, softmax(logits[:1])),
                    (ce_decomposition, log_softmax(logits[:1]))):
        with pytest.raises(DecompositionError, match="at least 2 members, got 1"):
            fn(arg, labels)
    with pytest.raises(DecompositionError, match="at least 2 members"):
        zero_one_decomposition(logits[:1].argmax(-1), labels, C)


def test_one_draw_leaves_sampling_and_total_variance_undefined(random_ensemble):
    """One training set: K/(K-1) var would be the optimization variance mislabelled."""
    logits, _ = random_ensemble
    t = neal_split(softmax(logits), np.zeros(K, int))
    assert np.all(np.isnan(t.sampling)) and np.all(np.isnan(t.sampling_unbiased))
    assert np.all(np.isnan(t.var_unbiased)) and np.all(np.isnan(t.mean_var_unbiased))
    assert np.all(np.isfinite(t.optimization))
    var = mse_decomposition(softmax(logits), np.zeros(N, int)).var
    np.testing.assert_allclose(t.optimization_unbiased, var * K / (K - 1), rtol=1e-12)
    assert "sampling variance" in t.note and "total variance" in t.note


def test_one_seed_per_draw_has_total_variance_but_no_split(random_ensemble):
    """Independent members: the grid-aware total is the iid K/(K-1) correction."""
    logits, labels = random_ensemble
    t = neal_split(softmax(logits), np.arange(K))
    assert np.all(np.isnan(t.optimization)) and "cannot be separated" in t.note
    assert np.all(np.isnan(t.sampling_unbiased))
    iid = mse_decomposition(softmax(logits), labels)
    np.testing.assert_allclose(t.var_unbiased, iid.var_unbiased, rtol=1e-12)
    np.testing.assert_allclose(iid.bias2 - t.mean_var_unbiased, iid.bias2_unbiased, rtol=1e-12,
                               atol=1e-15)


def test_unbalanced_grid_is_refused(random_ensemble):
    logits, _ = random_ensemble
    with pytest.raises(DecompositionError, match="balanced"):
        neal_split(softmax(logits), np.array([0] * 5 + [1] * 7))


def test_out_of_bag_prediction_against_a_loop():
    from biasvar.analysis.decompose import out_of_bag_prediction

    rng = np.random.default_rng(3)
    k, n, c = 5, 40, 4
    logits = rng.normal(size=(k, n, c))
    oob = rng.uniform(size=(k, n)) < 0.4
    oob[:, 0] = False  # an example every member trained on
    count, pred = out_of_bag_prediction(logits, oob)
    for i in range(n):
        members = [m for m in range(k) if oob[m, i]]
        assert count[i] == len(members)
        if not members:
            assert pred[i] == -1
            continue
        p = np.mean([np.exp(logits[m, i]) / np.exp(logits[m, i]).sum() for m in members], 0)
        assert pred[i] == int(np.argmax(p))


def test_saturated_probabilities_keep_full_precision():
    """Two classes, logit gaps of 50 and 52 nats: p_other = sigmoid(-gap) ~ 1e-22, far below
    float64's resolution of 1 - p_y. Closed forms: bias² = 2 pbar_o², var = 2 mean (p_o - pbar_o)²
    (both components of p - q are equal and opposite). Rounding 1 - p_y to 0 would halve them."""
    from biasvar.analysis.decompose import neal_split

    gaps = np.array([50.0, 52.0, 50.0, 52.0])
    logits = np.zeros((4, 1, 2))
    logits[:, 0, 0] = gaps  # members: (4,), one example, label 0
    probs = softmax(logits)
    p_o = 1 / (1 + np.exp(gaps))  # (4,) the other class, exact
    m = p_o.mean()
    t = mse_decomposition(probs, np.array([0]))
    np.testing.assert_allclose(t.bias2, [2 * m**2], rtol=1e-10)
    np.testing.assert_allclose(t.var, [2 * ((p_o - m) ** 2).mean()], rtol=1e-10)
    np.testing.assert_allclose(t.loss, [2 * (p_o**2).mean()], rtol=1e-10)
    # Neal: draws (0, 0, 1, 1): draw means of p_o, then the same closed forms
    nt = neal_split(probs, np.array([0, 0, 1, 1]))
    dm = p_o.reshape(2, 2).mean(1)
    np.testing.assert_allclose(nt.optimization, [2 * ((p_o.reshape(2, 2) - dm[:, None]) ** 2
                                                      ).mean()], rtol=1e-10)
    np.testing.assert_allclose(nt.sampling, [2 * ((dm - dm.mean()) ** 2).mean()], rtol=1e-10)



# ---------------------------------------------------------------- bias-variance-diversity
def _decompose_reference(pred: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Wood et al.'s terms for ``pred`` (D trials, M members, N, C), following the formulas
    of the Decompose package (EchoStatements/Decompose, commit 8903ca8,
    ``decompose/decompositions.py``: ``expected_ensemble_loss = _error_function(1, 0)``,
    ``diversity = _bregman_expectation(1, (), (0, 1))``; ``decompose/bregman_losses.py``:
    ``CrossEntropy`` with dual coordinates log q and generator sum q log q,
    ``MultivariateSquaredLoss`` with generator sum q²), written out with explicit loops
    over trials and members."""
    d, m, n, c = pred.shape
    onehot = np.eye(c)[labels]
    out = {k: np.zeros(n) for k in ("mse_ens", "mse_div", "ce_ens", "ce_div")}
    for t in range(d):
        arith = pred[t].mean(0)  # squared loss: the centroid of q is the mean
        geo = np.exp(np.log(pred[t]).mean(0))
        geo /= geo.sum(-1, keepdims=True)  # CE: normalized geometric mean
        out["mse_ens"] += ((arith - onehot) ** 2).sum(-1) / d
        out["ce_ens"] += -np.log(geo[np.arange(n), labels]) / d
        for i in range(m):
            q = pred[t, i]
            # Bregman divergence B(p, q) = phi(p) - phi(q) - <grad phi(q), p - q>
            out["mse_div"] += ((arith**2).sum(-1) - (q**2).sum(-1)
                               - (2 * q * (arith - q)).sum(-1)) / (d * m)
            out["ce_div"] += ((geo * np.log(geo)).sum(-1) - (q * np.log(q)).sum(-1)
                              - (np.log(q) * (geo - q)).sum(-1)) / (d * m)
    return out


def test_diversity_against_the_decompose_formulas(random_ensemble):
    logits, labels = random_ensemble  # 12 members: 4 draws x 3 seeds, draw-major
    draws = np.repeat(np.arange(4), 3)
    got = diversity_decomposition(log_softmax(logits), labels, draws)
    ref = _decompose_reference(softmax(logits).reshape(4, 3, N, C), labels)
    np.testing.assert_allclose(got.mse_ensemble_loss, ref["mse_ens"], rtol=1e-10)
    np.testing.assert_allclose(got.mse_diversity, ref["mse_div"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.ce_ensemble_loss, ref["ce_ens"], rtol=1e-10)
    np.testing.assert_allclose(got.ce_diversity, ref["ce_div"], rtol=1e-9, atol=1e-12)
    # members listed in any order: the grid comes from ``draws``
    perm = np.random.default_rng(1).permutation(K)
    again = diversity_decomposition(log_softmax(logits)[perm], labels, draws[perm])
    np.testing.assert_allclose(again.ce_diversity, got.ce_diversity, rtol=1e-12)


def test_ensemble_loss_is_bias_plus_variance_minus_diversity(random_ensemble):
    logits, labels = random_ensemble
    draws = np.repeat(np.arange(4), 3)
    logp = log_softmax(logits)
    div = diversity_decomposition(logp, labels, draws)
    mse = mse_decomposition(np.exp(logp), labels)
    ce = ce_decomposition(logp, labels)
    neal = neal_split(np.exp(logp), draws)
    np.testing.assert_allclose(div.mse_ensemble_loss, mse.bias2 + mse.var - div.mse_diversity,
                               atol=1e-12)
    np.testing.assert_allclose(div.mse_ensemble_loss,
                               mse.bias2 - neal.mean_var_unbiased + neal.var_unbiased
                               - div.mse_diversity, atol=1e-12)
    np.testing.assert_allclose(div.ce_ensemble_loss, ce.bias + ce.var - div.ce_diversity,
                               atol=1e-12)
    # squared error: the diversity of S-seed ensembles is the plug-in optimization variance
    np.testing.assert_allclose(div.mse_diversity, neal.optimization, atol=1e-12)
    assert (div.ce_diversity > 0).all() and (div.ce_ensemble_loss < ce.loss).all()


def test_one_seed_per_draw_has_no_diversity(random_ensemble):
    logits, labels = random_ensemble
    logp = log_softmax(logits)
    div = diversity_decomposition(logp, labels, np.arange(K))
    assert (div.mse_diversity == 0).all() and (div.ce_diversity == 0).all()
    np.testing.assert_allclose(div.ce_ensemble_loss, ce_decomposition(logp, labels).loss,
                               rtol=1e-12)
    with pytest.raises(DecompositionError, match="balanced"):
        diversity_decomposition(logp, labels, np.r_[np.zeros(5), np.ones(7)])
