"""One config's decomposition: the per-example table and the per-config summary.

``per_example`` runs every decomposition of ``biasvar.analysis.decompose`` on one
config and partition and returns the columns of the per-example table.

``summarize`` gives, per config, three things for every quantity of
``QUANTITIES``: the example mean of the per-example column (``value``, what the
table of examples averages to: plug-in where the name says nothing else), an
estimate of its *population* value (``estimate``) and a confidence interval
for that population value (``ci_low``, ``ci_high``).

Population value
    The members are a sample of a two-stage design: D training-set draws,
    independent and identically distributed, and within each draw S
    optimization seeds (member ``m = draw * S + seed``). The test examples are
    fixed. A quantity's population value is its value for the *infinite*
    ensemble (infinitely many draws, infinitely many seeds per draw) or, for a
    per-member quantity, its expectation over one random member:

    ==========================  ===============================================
    ``mse_loss``, ``ce_loss``   expected loss of one member
    ``member_error``,           expected 0-1 error of one member
    ``zero_one_error``
    ``member_ece``              expected ECE of one member
    ``mse_bias2``, ``mse_var``  ``||E p - e_y||^2`` (infinite-ensemble bias²)
    (and ``_unbiased``)         and ``E||p - E p||^2`` (variance of one member)
    ``var_optimization``,       ``E_draw Var_seed p`` and ``Var_draw E_seed p``,
    ``var_sampling`` (and       Neal's split of that variance
    ``_unbiased``)
    ``ce_bias``, ``ce_var``     Bregman terms around the infinite-ensemble
                                central prediction ``∝ exp(E log p)``
    ``ensemble_error``,         expected value for an ensemble of the *same*
    ``ensemble_ece``,           design (D draws x S seeds), not for the infinite
    ``zero_one_bias``,          ensemble: see below
    ``zero_one_net_var``
    ==========================  ===============================================

Estimators of the population value
    * Member means (losses, member error, member ECE) are unbiased as they are.
    * bias² and variances: the finite-K *unbiased* estimators that respect the
      grid (as in ``decompose.neal_split``): within-draw variance x S/(S-1),
      across-draw variance of draw means x D/(D-1) minus optimization
      variance / S, and ``bias2 - Var(p_bar)``. The plug-in ``mse_bias2`` (high
      by ``Var(p_bar)``), ``mse_var``, ``var_optimization`` and
      ``var_sampling`` (low by about (K-1)/K, (S-1)/S, ...) keep their plug-in
      ``value``; their ``estimate`` and interval are those of the unbiased
      estimator of the same population quantity. A plug-in value may then lie
      outside its own interval: that is the finite-ensemble bias, shown, not
      hidden.
    * CE bias and variance have no unbiased estimator; they are smooth
      functions of the mean log-probabilities, so their bias is
      ``c/D + O(1/D^2)`` at fixed S, and the delete-one-draw jackknife removes
      the ``c/D`` term: ``estimate = D θ - (D-1) mean_i θ_(-i)``. (For the MSE
      bias² this correction *is* the unbiased estimator above; for unbiased
      estimators, U-statistics in the draws, it is zero.)
    * Argmax and binned statistics of the ensemble (``ensemble_error``,
      Domingos' ``zero_one_bias`` and ``zero_one_net_var``, ``ensemble_ece``)
      are step functions of the ensemble mean: their finite-D bias has no
      smooth expansion to remove, and the jackknife bias correction only adds
      noise (in the simulation of ``tests/test_intervals.py`` the corrected
      intervals covered the infinite-ensemble value in 27-63 % of
      repetitions). Their target is therefore the expected value for an
      ensemble of the design that was trained (D draws x S seeds), for which
      ``estimate = value`` is unbiased; the jackknife variance of such a
      statistic is biased upwards (Efron-Stein), so the interval is valid but
      conservative (simulated coverage 94-100 %, 1.5-3 times too wide). The
      same intervals also contained the infinite-ensemble value in 95-100 %
      of simulated repetitions, but only because they are that wide: that is
      not claimed.

Interval: delete-one-draw jackknife
    ``θ_(-i)`` is the estimator recomputed without draw i and all its seeds (a
    balanced D-1 x S grid, so the estimator keeps its meaning). The jackknife
    standard error is ``se = sqrt((D-1)/D Σ_i (θ_(-i) - mean θ_(-i))^2)`` and the
    interval is ``estimate ± t_{D-1} se`` (Student t, D-1 degrees of freedom).
    The bias² and variance terms (``LOG_SCALE``: nonnegative and right-skewed
    with few draws) take the same interval on the log scale,
    ``estimate x exp(± t_{D-1} se_log)`` with ``se_log`` the jackknife standard
    error of ``log θ_(-i)``, when the estimate and all replicates are positive
    (an unbiased variance can be <= 0: then the linear interval). Losses,
    errors and ECEs have their intervals clipped to their range (``BOUNDS``).
    Draws are the independent units, so the jackknife needs no independence
    between examples (a draw moves every example) or between the seeds of a
    draw. Unlike a bootstrap over draws it never duplicates a draw, which would make
    members share a training set *and* an optimization seed and bias every
    variance estimator. Each leave-one-out replicate is a 0/1 draw-weight
    vector, and all D of them are computed at once with matrix products of
    per-draw sums (``_means``): no loop over replicates or examples.

Undefined (NaN)
    With one draw every interval is NaN, and so are the estimates that need
    more than one draw: total and sampling variance, unbiased bias², the
    jackknife-corrected CE terms. With two draws the leave-one-out grids have
    one draw, so the variance and bias² intervals are NaN. With one seed per
    draw Neal's optimization / sampling split is NaN (value, estimate and
    interval). ``tests/test_intervals.py`` measures the coverage of every
    interval by simulation, for 8 x 4, 32 x 4 and 16 x 1 grids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biasvar.analysis.calibration import ece_batched, reliability
from biasvar.analysis.decompose import (
    DecompositionError,
    ce_decomposition,
    diversity_decomposition,
    log_softmax,
    mse_decomposition,
    neal_split,
    zero_one_decomposition,
)

# Quantities of the summary table, in order. ``_unbiased`` variants use the
# finite-K corrections (grid-aware when seeds_per_draw > 1).
QUANTITIES = (
    "mse_loss", "mse_bias2", "mse_var", "mse_bias2_unbiased", "mse_var_unbiased",
    "var_optimization", "var_sampling", "var_optimization_unbiased", "var_sampling_unbiased",
    "ce_loss", "ce_bias", "ce_var",
    "zero_one_error", "zero_one_bias", "zero_one_net_var",
    "member_error", "ensemble_error", "member_ece", "ensemble_ece",
    "mse_ensemble_loss", "mse_diversity", "ce_ensemble_loss", "ce_diversity",
)

# The estimator of each quantity's population value (see the module docstring):
# plug-in MSE terms borrow the unbiased estimator of the same population quantity.
POPULATION_ESTIMATOR = {q: q for q in QUANTITIES} | {
    "mse_bias2": "mse_bias2_unbiased", "mse_var": "mse_var_unbiased",
    "var_optimization": "var_optimization_unbiased", "var_sampling": "var_sampling_unbiased",
}
# Smooth nonlinear functions of the ensemble mean: no unbiased estimator, jackknife
# bias correction towards the infinite ensemble.
JACKKNIFE_CORRECTED = frozenset({"ce_bias", "ce_var"})
# Argmax / binned statistics of the ensemble: their target is the expected value for
# an ensemble of the same D x S design, not the infinite ensemble (module docstring).
FINITE_ENSEMBLE = frozenset({"zero_one_bias", "zero_one_net_var", "ensemble_error",
                             "ensemble_ece"})
# Bias and variance terms: nonnegative, right-skewed with few draws; their intervals
# are computed on the log scale when the estimate and every replicate are positive.
LOG_SCALE = frozenset({"mse_bias2", "mse_var", "mse_bias2_unbiased", "mse_var_unbiased",
                       "var_optimization", "var_sampling", "var_optimization_unbiased",
                       "var_sampling_unbiased", "ce_bias", "ce_var", "mse_diversity",
                       "ce_diversity"})
# Range of the population value, for quantities whose every estimate lies in it:
# intervals are clipped to it (which cannot lower their coverage).
BOUNDS = {q: (0.0, 1.0) for q in ("zero_one_error", "zero_one_bias", "member_error",
                                  "ensemble_error", "member_ece", "ensemble_ece")} | {
    "zero_one_net_var": (-1.0, 1.0), "mse_loss": (0.0, 2.0), "ce_loss": (0.0, np.inf),
    "mse_ensemble_loss": (0.0, 2.0), "ce_ensemble_loss": (0.0, np.inf)}


@dataclass(frozen=True)
class Grid:
    """Members arranged as draws x seeds: ``order`` sorts members draw-major."""

    order: np.ndarray  # (K,) member positions, sorted by draw
    n_draws: int
    n_seeds: int

    @classmethod
    def from_draws(cls, draws: np.ndarray) -> Grid:
        draws = np.asarray(draws)
        uniq, counts = np.unique(draws, return_counts=True)
        if len(set(counts.tolist())) != 1:
            raise DecompositionError(f"draws must all have the same number of seeds, got "
                                     f"{sorted(set(counts.tolist()))}")
        return cls(np.argsort(draws, kind="stable"), len(uniq), int(counts[0]))


def per_example(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray,
                noisy: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every per-example term for one config and partition.

    ``logits``: ``(K, N, C)``; ``labels``: ``(N,)`` the labels members were scored
    against; ``draws``: ``(K,)``; ``noisy``: ``(N,)`` label-noise flags or None.
    The unbiased MSE terms are the grid-aware ones of ``neal_split`` (NaN with
    one draw: the total variance needs more than one training set).
    """
    k, n, c = logits.shape
    logp = log_softmax(logits)  # (K, N, C) float64
    probs = np.exp(logp)
    mse = mse_decomposition(probs, labels)
    ce = ce_decomposition(logp, labels)
    zo = zero_one_decomposition(logits.argmax(-1), labels, c)
    neal = neal_split(probs, draws)
    div = diversity_decomposition(logp, labels, draws)
    ens_pred = mse.mean_prob.argmax(-1)
    return {
        "example": np.arange(n),
        "label": np.asarray(labels),
        "noisy": np.zeros(n, bool) if noisy is None else np.asarray(noisy, bool),
        "ensemble_prediction": ens_pred,
        "correct": ens_pred == np.asarray(labels),
        "ensemble_confidence": mse.mean_prob.max(-1),
        "mse_loss": mse.loss, "mse_bias2": mse.bias2, "mse_var": mse.var,
        "mse_bias2_unbiased": mse.bias2 - neal.mean_var_unbiased,
        "mse_var_unbiased": neal.var_unbiased,
        "var_optimization": neal.optimization, "var_sampling": neal.sampling,
        "var_optimization_unbiased": neal.optimization_unbiased,
        "var_sampling_unbiased": neal.sampling_unbiased,
        "ce_loss": ce.loss, "ce_bias": ce.bias, "ce_var": ce.var,
        "zero_one_error": zo.error, "zero_one_bias": zo.bias, "zero_one_var": zo.var,
        "zero_one_net_var": zo.net_var,
        "mse_ensemble_loss": div.mse_ensemble_loss, "mse_diversity": div.mse_diversity,
        "ce_ensemble_loss": div.ce_ensemble_loss, "ce_diversity": div.ce_diversity,
    }


@dataclass(frozen=True)
class _DrawStats:
    """Per-draw sufficient statistics: every quantity is a function of their weighted sums."""

    n_seeds: int
    labels: np.ndarray  # (N,)
    onehot: np.ndarray  # (N, C)
    center: np.ndarray  # (N, C) mean of all members: subtracted for numerical accuracy
    draw_mean: np.ndarray  # (D, N, C) mean probabilities of the draw's seeds, minus center
    draw_sq: np.ndarray  # (D, N) ||draw_mean||^2
    within: np.ndarray  # (D, N) mean over seeds of ||p - draw mean||^2
    loss: np.ndarray  # (D, N) sum over seeds of ||p - e_y||^2
    ce: np.ndarray  # (D, N) sum over seeds of -log p_y
    logp: np.ndarray  # (D, N, C) sum over seeds of log p
    votes: np.ndarray  # (D, N, C) sum over seeds of one-hot member predictions
    ece: np.ndarray  # (D,) sum over seeds of the member ECEs
    ens_mse: np.ndarray  # (D, N) squared error of the draw's ensemble (mean probabilities)
    ens_ce: np.ndarray  # (D, N) CE of the draw's ensemble (normalized geometric mean)
    ce_div: np.ndarray  # (D, N) mean over seeds of KL(draw ensemble || member) = -log Z


def _draw_stats(logits: np.ndarray, labels: np.ndarray, grid: Grid, n_bins: int) -> _DrawStats:
    """``logits`` ``(K, N, C)`` in grid (draw-major) order."""
    d, s = grid.n_draws, grid.n_seeds
    k, n, c = logits.shape
    logp = log_softmax(logits)
    probs = np.exp(logp)
    onehot = np.eye(c)[labels]
    rows = np.arange(n)

    def by_draw(a: np.ndarray) -> np.ndarray:
        return a.reshape(d, s, *a.shape[1:])

    center = probs.mean(0)
    probs_g = by_draw(probs - center)
    draw_mean = probs_g.mean(1)  # (D, N, C)
    g = by_draw(logp).mean(1)  # (D, N, C) mean log-probabilities of each draw's seeds
    g_max = g.max(-1, keepdims=True)
    log_z = np.log(np.exp(g - g_max).sum(-1)) + g_max[..., 0]  # (D, N)
    return _DrawStats(
        n_seeds=s, labels=labels, onehot=onehot, center=center, draw_mean=draw_mean,
        draw_sq=(draw_mean**2).sum(-1),
        within=((probs_g - draw_mean[:, None]) ** 2).sum(-1).mean(1),
        loss=by_draw(((probs - onehot) ** 2).sum(-1)).sum(1),
        ce=by_draw(-logp[:, rows, labels]).sum(1),
        logp=by_draw(logp).sum(1),
        votes=by_draw(np.eye(c)[logits.argmax(-1)]).sum(1),
        ece=by_draw(ece_batched(probs, labels, n_bins)).sum(1),
        ens_mse=((draw_mean + center - onehot) ** 2).sum(-1),
        ens_ce=log_z - g[:, rows, labels],
        # one seed: the ensemble is the member, KL 0 exactly (log Z is 0 up to rounding)
        ce_div=np.maximum(-log_z, 0.0) if s > 1 else np.zeros_like(log_z),
    )


def _means(w: np.ndarray, st: _DrawStats, n_bins: int) -> dict[str, np.ndarray]:
    """Example-averaged plug-in and unbiased quantities for draw weights ``w`` ``(B, D)``.

    ``w`` is 0/1 (draw in or out): replicate b is the ensemble of the draws it
    keeps, each with all its seeds. Every quantity comes back as ``(B,)``;
    terms that replicate's grid cannot estimate are NaN.
    """
    w = np.asarray(w, dtype=np.float64)
    s = st.n_seeds
    nd = w.sum(1)  # (B,) draws kept
    kk = (nd * s)[:, None]  # members kept
    labels, rows = st.labels, np.arange(len(st.labels))
    out: dict[str, np.ndarray] = {}
    dev = np.einsum("bd,dnc->bnc", w, st.draw_mean) / nd[:, None, None]  # p_bar - center
    p_bar = dev + st.center
    bias2 = ((p_bar - st.onehot) ** 2).sum(-1)  # (B, N)
    opt = (w @ st.within) / nd[:, None]  # (B, N) plug-in E_draw Var_seed
    samp = (w @ st.draw_sq) / nd[:, None] - (dev**2).sum(-1)  # (B, N) plug-in Var_draw E_seed
    out["mse_loss"] = ((w @ st.loss) / kk).mean(-1)
    out["mse_bias2"], out["mse_var"] = bias2.mean(-1), (opt + samp).mean(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        several = (nd > 1)[:, None]
        # Unbiased, grid-aware (see decompose.neal_split); one seed: no within-draw part.
        opt_unb = opt * s / (s - 1) if s > 1 else np.zeros_like(opt)
        samp_unb = np.where(several, samp * nd[:, None] / (nd[:, None] - 1) - opt_unb / s,
                            np.nan)
        mean_var = np.where(several, samp / (nd[:, None] - 1), np.nan)  # unbiased Var(p_bar)
    out["mse_bias2_unbiased"] = (bias2 - mean_var).mean(-1)
    out["mse_var_unbiased"] = (opt_unb + samp_unb).mean(-1)
    nan = np.full(len(w), np.nan)
    if s > 1:
        out["var_optimization"], out["var_optimization_unbiased"] = opt.mean(-1), opt_unb.mean(-1)
        out["var_sampling"] = np.where(nd > 1, samp.mean(-1), np.nan)
        out["var_sampling_unbiased"] = samp_unb.mean(-1)
    else:  # one seed per draw: Neal's split is undefined
        for q in ("var_optimization", "var_sampling", "var_optimization_unbiased",
                  "var_sampling_unbiased"):
            out[q] = nan
    # cross-entropy: mean log-probabilities -> central prediction
    g = np.einsum("bd,dnc->bnc", w, st.logp) / kk[..., None]  # (B, N, C)
    g_max = g.max(-1, keepdims=True)
    log_z = np.log(np.exp(g - g_max).sum(-1)) + g_max[..., 0]  # (B, N)
    out["ce_loss"] = ((w @ st.ce) / kk).mean(-1)
    out["ce_bias"] = (log_z - g[:, rows, labels]).mean(-1)
    out["ce_var"] = np.maximum(-log_z, 0.0).mean(-1)
    # 0-1: votes (B, N, C); the mode takes the first maximum, as in zero_one_decomposition
    votes = np.einsum("bd,dnc->bnc", w, st.votes)
    mode = votes.argmax(-1)
    right = votes[:, rows, labels] / kk
    zo_bias = (mode != labels).astype(np.float64)
    zo_var = 1.0 - np.take_along_axis(votes, mode[..., None], -1)[..., 0] / kk
    out["zero_one_error"] = out["member_error"] = (1.0 - right).mean(-1)
    out["zero_one_bias"] = zo_bias.mean(-1)
    out["zero_one_net_var"] = np.where(zo_bias == 0, zo_var, -right).mean(-1)
    out["ensemble_error"] = (p_bar.argmax(-1) != labels).mean(-1)
    out["member_ece"] = (w @ st.ece) / (nd * s)
    # bias-variance-diversity: each draw's seeds are one ensemble; means over draws
    out["mse_ensemble_loss"] = ((w @ st.ens_mse) / nd[:, None]).mean(-1)
    out["mse_diversity"] = opt.mean(-1)  # the within-draw spread, as a plug-in mean
    out["ce_ensemble_loss"] = ((w @ st.ens_ce) / nd[:, None]).mean(-1)
    out["ce_diversity"] = ((w @ st.ce_div) / nd[:, None]).mean(-1)
    out["ensemble_ece"] = ece_batched(p_bar, labels, n_bins)
    return out


@dataclass(frozen=True)
class Summary:
    quantities: tuple[str, ...]
    value: np.ndarray  # (Q,) example mean of the per-example column (plug-in where so named)
    estimate: np.ndarray  # (Q,) estimate of the population value (see the module docstring)
    ci_low: np.ndarray  # (Q,) delete-one-draw jackknife interval for the population value
    ci_high: np.ndarray  # (Q,)
    n_members: int
    n_draws: int
    n_seeds: int
    reliability_members: object
    reliability_ensemble: object


def summarize(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray,
              intervals: bool = True, ci: float = 0.95, n_bins: int = 15) -> Summary:
    """Per-config means, population estimates and jackknife intervals over draws.

    ``intervals = False`` skips the intervals (the ``decompose.intervals``
    param). The jackknife has exactly one replicate per draw and no
    randomness. ``ci`` is the confidence level of the Student-t intervals
    (D-1 df).
    """
    labels = np.asarray(labels)
    grid = Grid.from_draws(draws)
    logits = np.asarray(logits)[grid.order]
    k, n, c = logits.shape
    if k < 2:
        raise DecompositionError(f"a summary needs at least 2 members, got {k}")
    st = _draw_stats(logits, labels, grid, n_bins)
    d = grid.n_draws
    full = _means(np.ones((1, d)), st, n_bins)
    value = np.array([full[q][0] for q in QUANTITIES])
    theta = np.array([full[POPULATION_ESTIMATOR[q]][0] for q in QUANTITIES])
    estimate = theta.copy()
    lo = np.full(len(QUANTITIES), np.nan)
    hi = np.full(len(QUANTITIES), np.nan)
    corrected = np.array([q in JACKKNIFE_CORRECTED for q in QUANTITIES])
    if d == 1:
        estimate[corrected] = np.nan  # no draw to leave out: the bias cannot be removed
    else:
        loo = _means(1.0 - np.eye(d), st, n_bins)  # (D,) replicates, draw i left out
        reps = np.stack([loo[POPULATION_ESTIMATOR[q]] for q in QUANTITIES], 1)  # (D, Q)
        estimate[corrected] = (d * theta - (d - 1) * reps.mean(0))[corrected]
        if intervals:
            lo, hi = _jackknife_interval(estimate, reps, ci)
    probs = np.exp(log_softmax(logits))
    return Summary(QUANTITIES, value, estimate, lo, hi, k, d, grid.n_seeds,
                   reliability(probs.reshape(k * n, c), np.tile(labels, k), n_bins),
                   reliability(probs.mean(0), labels, n_bins))


def _jackknife_se(reps: np.ndarray) -> np.ndarray:
    """Delete-one jackknife standard error from the ``(D, Q)`` leave-one-out replicates."""
    d = len(reps)
    return np.sqrt((d - 1) / d * ((reps - reps.mean(0)) ** 2).sum(0))


def _jackknife_interval(estimate: np.ndarray, reps: np.ndarray,
                        ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Student-t intervals (D-1 df) around ``estimate`` ``(Q,)``; log scale for ``LOG_SCALE``.

    A quantity whose estimate or leave-one-out replicates are not all positive
    (an unbiased variance can be <= 0) falls back to the linear scale. NaN
    replicates (a term the D-1 grid cannot estimate) give a NaN interval.
    """
    from scipy import stats

    d = len(reps)
    t = stats.t.ppf((1 + ci) / 2, d - 1)
    half = t * _jackknife_se(reps)
    lo, hi = estimate - half, estimate + half
    log = np.array([q in LOG_SCALE for q in QUANTITIES])
    with np.errstate(invalid="ignore"):
        log &= (estimate > 0) & (reps > 0).all(0)
    if log.any():
        center, spread = np.log(estimate[log]), t * _jackknife_se(np.log(reps[:, log]))
        lo[log], hi[log] = np.exp(center - spread), np.exp(center + spread)
    floor = np.array([BOUNDS.get(q, (-np.inf, np.inf))[0] for q in QUANTITIES])
    ceil = np.array([BOUNDS.get(q, (-np.inf, np.inf))[1] for q in QUANTITIES])
    return np.maximum(lo, floor), np.minimum(hi, ceil)  # NaN stays NaN
