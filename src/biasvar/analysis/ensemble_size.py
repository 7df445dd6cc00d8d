"""Alignment against ensemble size: is the slope a property of the models or of the estimator?

Chen et al. (ICLR 2024) fit ``log var = slope * log bias2 + intercept`` over the
examples an ensemble classifies correctly. With K members the plug-in bias²
estimates ``B² + Var(p_bar)`` (``≈ B² + V/K`` for independent members), so
where ``B² ≲ V/K`` the plug-in ``log bias2`` floors near ``log V - log K``: a
line of slope 1 whose intercept moves with K. This module refits the
alignment regression of one config on nested subsets of *whole* training-set
draws, for several estimators of the per-example terms, and extrapolates the
slope and the gap to an infinite ensemble.

Design and nested subsets
    Members form a balanced draws x seeds grid (``summary.Grid``): D training-set
    draws, S optimization seeds each. Draws are taken in increasing order of
    their id; the subset of size ``d`` holds the first ``d`` draws with all
    their seeds (``K = d * S`` members), so subsets are nested and never split
    a draw. Default sizes: ``d = 1, 2, 4, 8, ...`` below D, then D. A size is
    skipped (no row) for an estimator that it cannot support (below).

Examples
    ``correct``: the examples the *full* ensemble (all K members, mean of the
    softmax outputs, argmax) classifies correctly, the same set at every size,
    so that only the estimator changes along the curve; ``all``: every example.

Estimators (per example; ``p_k`` softmax outputs, ``e_y`` one-hot label)
    MSE on probabilities (``loss = "mse"``; the "bias" term is bias², in
    squared probability units):

    * ``plugin``: ``bias2 = ||p_bar - e_y||²``, ``var = mean_k ||p_k - p_bar||²``
      over the K members (``decompose.mse_decomposition``). Needs K >= 2. With
      one draw (d = 1) the members share a training set and the variance is
      the optimization variance only; that point is kept (it is what a
      single-draw ensemble reports) and its row says ``n_draws = 1``.
    * ``unbiased``: the grid-aware finite-K unbiased terms of
      ``summary.per_example``: ``var = neal_split(...).var_unbiased`` (within-
      draw variance x S/(S-1) + across-draw variance of draw means x
      d/(d-1) - that optimization variance / S) and ``bias2 = plug-in bias2 -
      Var(p_bar)_unbiased`` (``= plug-in bias2 - samp/(d-1)``, samp the plug-in
      variance of the draw means). Needs d >= 2. Both are unbiased for the
      infinite-ensemble ``||E p - e_y||²`` and one member's ``E||p - E p||²``.
      The bias² equals the U-statistic ``mean_{i≠j} (m_i - e_y)·(m_j - e_y)`` over
      draw means m_i, which is >= 0 for probability vectors, so in exact
      arithmetic it is never negative; it is 0 where the members' outputs
      round to one-hot, and float cancellation can make it slightly negative.
      Such examples are excluded from the fit and counted (``excluded_*``).
      It also equals the delete-one-draw jackknife bias correction of the
      plug-in terms (tested).
    * ``split_half``: the d draws are split into two disjoint halves, ``A`` =
      the first ``floor(d/2)`` draws, ``B`` = the rest, and each half's
      *unbiased* terms (as above, from that half's members only) are
      computed. Assignment 1 pairs bias² of A with the variance of B,
      assignment 2 bias² of B with the variance of A: within one assignment
      the two terms come from disjoint draws, so their estimation errors are
      independent (both halves are unbiased, so neither carries the V/K floor).
      An example is fitted when all four terms are finite and > 0; the slope,
      intercept, R², r, rho, gap and mean logs are the *average of the two
      assignments' fits* on that common set (each fit is an OLS on pairs with
      independent errors; the average halves the noise of swapping the roles).
      Needs d >= 4 (two draws per half). ``members_bias`` and ``members_var``
      give the members behind each term of assignment 1.

    Cross-entropy (Bregman, ``loss = "ce"``; the "bias" term is the Bregman
    bias ``-log p_tilde_y`` itself, not squared, in nats; the variance in nats):

    * ``plugin``: ``p_tilde ∝ exp(mean_k log p_k)``, ``bias = -log p_tilde_y``,
      ``var = mean_k KL(p_tilde || p_k)`` (``decompose.ce_decomposition``).
    * ``jackknife``: no unbiased estimator exists (the terms are nonlinear
      functions of the mean log-probabilities), so this is the delete-one-draw
      jackknife bias correction, per example: ``θ_J = d θ - (d-1) mean_i
      θ_(-i)``, θ_(-i) the plug-in term without draw i (all its seeds). It
      removes the O(1/d) bias (the analogue of the MSE ``V/K``); for the MSE
      terms the same correction gives exactly the ``unbiased`` estimator.
      Needs d >= 2. ``θ_J`` may be <= 0: excluded and counted.
    * ``split_half``: as for MSE, with each half's ``jackknife`` terms.
      Needs d >= 4.

Fit and intervals (per loss x estimator x size x subset)
    OLS of ``log var`` on ``log bias`` over the subset's examples whose terms are
    finite and > 0 (``alignment.fit_alignment`` for the point estimates;
    exclusions counted as there: non-finite first, then negative, then zero).
    Intervals: percentile bootstrap over the test examples, ``n_boot``
    replicates, *the same resampled examples for every size, estimator and
    loss of a subset* (a replicate resamples the subset; its excluded examples
    get weight 0). They cover the sampling of test examples with the trained
    members held fixed; they do not cover the randomness of the members
    (which draws and seeds were trained): that is what the K-curve and the
    comparison of estimators show.

Extrapolation to K -> ∞ (``extrapolate_inverse_k``)
    For each loss x estimator x subset and quantity (slope, gap), weighted
    least squares of the value on ``1/K`` over the sizes the estimator has,
    ``value(K) = value_inf + c / K``, weights ``1 / se(K)²`` with ``se(K)`` the
    bootstrap standard error; ``value_inf`` is the intercept. Its standard
    error is the standard deviation over bootstrap replicates of the same
    weighted fit applied to each replicate's values at every size (the
    replicates resample the same examples at every size, so the correlation
    between nested sizes is kept). With two sizes the line goes through both
    points; with one there is no extrapolation (NaN). ``1/K`` is the leading
    order of the finite-ensemble bias of the plug-in terms (``Var(p_bar)`` is
    exactly proportional to 1/d on the nested grid) but a slope is a nonlinear
    function of the terms, so the fit's lack of fit over more than two sizes
    (``chi2``, ``dof``) is reported next to it. ``chi2`` uses the example-
    bootstrap standard errors, which leave out the randomness of the members:
    a large ``chi2`` says that the 1/K model does not hold over the sizes or
    that those errors are too small, and ``value_inf`` should then be read as
    a trend, not a measurement. Without bootstrap replicates (``n_boot = 0``,
    ``alignment_size.bootstrap: 0``) there are no per-size standard errors: the
    fit is unweighted OLS (``method`` says so), and ``chi2``, ``value_inf_se``,
    its interval and ``coef_inv_k_se`` are NaN. An unweighted residual sum of
    squares is not a chi²: reported as one, it turned the verdict on the 1/K
    model from "does not fit" into "fits" merely because intervals were off.
    For an unbiased estimator the coefficient ``c`` measures the residual
    drift: the log of an unbiased but noisy term is biased low (Jensen) and
    its noise attenuates the slope, both roughly in proportion to 1/K, and
    exclusions change with K.

Caveat for the bias-corrected terms
    Where the true bias is much smaller than the finite-K term it corrects
    for (``B ≪ V/K``), a corrected term is mostly noise: the CE jackknife bias
    is then often negative, and a fit over the remaining examples is over a
    selected subset. ``excluded_negative`` says how many; read such a row
    with it.

Everything is vectorized over examples (and over bootstrap replicates);
Python loops run over sizes, estimators and losses only. Memory: the logits
twice in float64, plus ``n_boot x n_subset`` float64 bootstrap weights per subset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from biasvar.analysis.alignment import fit_alignment
from biasvar.analysis.decompose import (
    DecompositionError,
    ce_decomposition,
    log_softmax,
    mse_decomposition,
    neal_split,
)
from biasvar.analysis.summary import Grid

LOSSES = ("mse", "ce")
ESTIMATORS = {"mse": ("plugin", "unbiased", "split_half"),
              "ce": ("plugin", "jackknife", "split_half")}
SUBSETS = ("correct", "all")
EXTRAPOLATED = ("slope", "gap")

# The per-size table, in order: column -> meaning (units). ``bias`` is bias² for
# loss "mse" and the Bregman bias -log p_tilde_y for loss "ce".
COLUMNS = {
    "loss": "'mse' (terms on softmax probabilities) | 'ce' (Bregman / cross-entropy terms)",
    "estimator": "'plugin' | 'unbiased' (mse) | 'jackknife' (ce) | 'split_half'",
    "subset": "'correct' (examples the full ensemble classifies correctly) | 'all'",
    "n_draws": "d, training-set draws in the nested subset (the first d by draw id)",
    "n_seeds": "S, seeds per draw",
    "n_members": "K = d * S, members in the subset (both halves for split_half)",
    "members_bias": "members the bias term is computed from (assignment 1 for split_half)",
    "members_var": "members the variance term is computed from (assignment 1 for split_half)",
    "n_subset": "examples in the subset",
    "n": "examples in the fit (subset minus exclusions)",
    "excluded": "examples excluded: a term non-finite, < 0 or == 0 (sum of the next three)",
    "excluded_nonfinite": "a term NaN or inf",
    "excluded_negative": "a term < 0 (and none non-finite)",
    "excluded_zero": "a term == 0 (and none negative or non-finite)",
    "slope": "OLS slope of log var on log bias (dimensionless; 1 = aligned)",
    "slope_se": "bootstrap standard error of the slope (examples resampled)",
    "slope_ci_low": "percentile bootstrap interval of the slope, lower end",
    "slope_ci_high": "upper end",
    "intercept": "OLS intercept (natural-log units of var)",
    "intercept_ci_low": "percentile bootstrap interval, lower end",
    "intercept_ci_high": "upper end",
    "r2": "R² of the fit",
    "r2_ci_low": "percentile bootstrap interval, lower end",
    "r2_ci_high": "upper end",
    "gap": "mean over fitted examples of log(var / bias) (nats; 0 = on y = x)",
    "gap_se": "bootstrap standard error of the gap",
    "gap_ci_low": "percentile bootstrap interval of the gap, lower end",
    "gap_ci_high": "upper end",
    "pearson": "Pearson r of log bias and log var",
    "spearman": "Spearman rho of log bias and log var",
    "mean_log_bias": "mean over fitted examples of log bias (natural log)",
    "mean_log_var": "mean over fitted examples of log var (natural log)",
}

# The extrapolation table: one row per loss x estimator x subset x quantity.
EXTRAPOLATION_COLUMNS = {
    "loss": "as in the per-size table",
    "estimator": "as in the per-size table",
    "subset": "as in the per-size table",
    "quantity": "'slope' | 'gap'",
    "value_inf": "extrapolated value at K -> ∞ (intercept of value = value_inf + c/K)",
    "value_inf_se": "its bootstrap standard error",
    "value_inf_ci_low": "percentile bootstrap interval of value_inf, lower end",
    "value_inf_ci_high": "upper end",
    "coef_inv_k": "c: the drift coefficient of 1/K (value(K) - value_inf = c / K)",
    "coef_inv_k_se": "its bootstrap standard error",
    "chi2": "weighted residual sum of squares of the fit (lack of fit; 0 with 2 sizes; "
            "NaN for an unweighted fit: no bootstrap standard errors)",
    "dof": "sizes - 2",
    "n_sizes": "sizes in the fit",
    "k_min": "smallest K in the fit",
    "k_max": "largest K in the fit",
    "value_k_max": "the value at k_max",
    "method": "how value_inf was obtained",
}

EXTRAPOLATION_METHOD = "WLS of value on 1/K, weights 1/se(K)^2; se over bootstrap replicates"
# Without standard errors (no bootstrap): the line is still fitted, but nothing checks it.
EXTRAPOLATION_METHOD_UNWEIGHTED = ("OLS of value on 1/K, unweighted (no bootstrap standard "
                                   "errors): no chi2, no check of the 1/K model")


def draw_sizes(n_draws: int) -> list[int]:
    """Default nested sizes in draws: 1, 2, 4, ... below ``n_draws``, then ``n_draws``."""
    if n_draws < 1:
        raise DecompositionError(f"need at least one draw, got {n_draws}")
    sizes, d = [], 1
    while d < n_draws:
        sizes.append(d)
        d *= 2
    return [*sizes, n_draws]


def split_halves(n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw positions (grid order) of the two split-half halves of the first ``n_draws``.

    ``A = [0, floor(d/2))``, ``B = [floor(d/2), d)``: disjoint, and together the
    first ``d`` draws.
    """
    h = n_draws // 2
    return np.arange(h), np.arange(h, n_draws)


def min_draws(estimator: str, n_seeds: int) -> int:
    """The smallest nested size (in draws) at which ``estimator`` is defined."""
    if estimator == "plugin":
        return 1 if n_seeds >= 2 else 2  # at least two members
    if estimator in ("unbiased", "jackknife"):
        return 2  # a total variance needs two training sets
    if estimator == "split_half":
        return 4  # two draws per half
    raise DecompositionError(f"unknown estimator {estimator!r}")


@dataclass(frozen=True)
class _Prepared:
    """Log-probabilities and probabilities in grid order, shaped ``(D, S, N, C)``."""

    logp: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    n_draws: int
    n_seeds: int


def _prepare(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray) -> _Prepared:
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 3:
        raise DecompositionError(f"logits must be (K, N, C), got shape {logits.shape}")
    k, n, c = logits.shape
    if labels.shape != (n,):
        raise DecompositionError(f"labels must be ({n},), got shape {labels.shape}")
    if len(np.asarray(draws)) != k:
        raise DecompositionError(f"draws must be ({k},), got {len(np.asarray(draws))}")
    if n and (labels.min() < 0 or labels.max() >= c):
        raise DecompositionError(f"labels must lie in [0, {c}), got {labels.min()}..{labels.max()}")
    bad = ~np.isfinite(logits).all(axis=(1, 2))
    if bad.any():
        raise DecompositionError(f"non-finite logits in member(s) {np.flatnonzero(bad).tolist()}")
    grid = Grid.from_draws(draws)
    logp = log_softmax(logits[grid.order]).reshape(grid.n_draws, grid.n_seeds, n, c)
    return _Prepared(logp, np.exp(logp), labels, grid.n_draws, grid.n_seeds)


def _mse_terms(prep: _Prepared, lo: int, hi: int, unbiased: bool):
    """MSE (bias², var) from draws ``[lo, hi)`` (grid order), each ``(N,)``."""
    _, s, n, c = prep.probs.shape
    p = prep.probs[lo:hi].reshape(-1, n, c)
    mse = mse_decomposition(p, prep.labels)
    if not unbiased:
        return mse.bias2, mse.var
    neal = neal_split(p, np.repeat(np.arange(hi - lo), s))
    return mse.bias2 - neal.mean_var_unbiased, neal.var_unbiased


def _ce_terms(prep: _Prepared, lo: int, hi: int, jackknife: bool):
    """CE (bias, var) from draws ``[lo, hi)``; jackknife-corrected over those draws."""
    _, s, n, c = prep.logp.shape
    lp = prep.logp[lo:hi]  # (d, S, N, C)
    ce = ce_decomposition(lp.reshape(-1, n, c), prep.labels)
    if not jackknife:
        return ce.bias, ce.var
    d = hi - lo
    per_draw = lp.sum(1)  # (d, N, C)
    g = (per_draw.sum(0) - per_draw) / ((d - 1) * s)  # (d, N, C) mean log p without draw i
    g_max = g.max(-1, keepdims=True)
    lse = np.log(np.exp(g - g_max).sum(-1)) + g_max[..., 0]  # (d, N)
    bias_loo = lse - np.take_along_axis(g, prep.labels[None, :, None], -1)[..., 0]
    var_loo = np.maximum(-lse, 0.0)
    return (d * ce.bias - (d - 1) * bias_loo.mean(0),
            d * ce.var - (d - 1) * var_loo.mean(0))


def _terms(prep: _Prepared, n_draws: int, loss: str, estimator: str):
    """``(bias, var)``, each ``(A, N)``: A = 1, or 2 assignments for split_half."""
    if loss not in ESTIMATORS:
        raise DecompositionError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    if estimator not in ESTIMATORS[loss]:
        raise DecompositionError(f"estimator {estimator!r} is not defined for loss {loss!r}; "
                                 f"expected one of {ESTIMATORS[loss]}")
    if not 1 <= n_draws <= prep.n_draws:
        raise DecompositionError(f"n_draws must lie in [1, {prep.n_draws}], got {n_draws}")
    need = min_draws(estimator, prep.n_seeds)
    if n_draws < need:
        raise DecompositionError(f"{loss} {estimator} needs at least {need} draws "
                                 f"({prep.n_seeds} seeds each), got {n_draws}")
    fn = _mse_terms if loss == "mse" else _ce_terms
    if estimator != "split_half":
        b, v = fn(prep, 0, n_draws, estimator != "plugin")
        return b[None], v[None]
    a, bh = split_halves(n_draws)
    b_a, v_a = fn(prep, int(a[0]), int(a[-1]) + 1, True)
    b_b, v_b = fn(prep, int(bh[0]), int(bh[-1]) + 1, True)
    return np.stack([b_a, b_b]), np.stack([v_b, v_a])


def estimator_terms(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray, n_draws: int,
                    loss: str = "mse", estimator: str = "plugin"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-example ``(bias, var)`` of the nested subset of the first ``n_draws`` draws.

    ``logits`` ``(K, N, C)``, ``labels`` ``(N,)``, ``draws`` ``(K,)`` (balanced
    grid). Returns two ``(A, N)`` float64 arrays: ``A = 1``, or for
    ``split_half`` ``A = 2`` assignments (row 0: bias of half A with the
    variance of half B; row 1: bias of B with the variance of A). Raises
    ``DecompositionError`` where the estimator is undefined at that size.
    """
    return _terms(_prepare(logits, labels, draws), n_draws, loss, estimator)


def _classify(b: np.ndarray, v: np.ndarray):
    """Exclusion masks over examples ``(n,)`` from terms ``(A, n)``, as fit_alignment counts."""
    nonfinite = ~(np.isfinite(b) & np.isfinite(v)).all(0)
    with np.errstate(invalid="ignore"):
        negative = ~nonfinite & ((b < 0) | (v < 0)).any(0)
        zero = ~nonfinite & ~negative & ((b == 0) | (v == 0)).any(0)
    return nonfinite, negative, zero


def _bootstrap_counts(n: int, n_boot: int, seed: int, subset: str) -> np.ndarray:
    """``(n_boot, n)`` multiplicities of a resample of n examples with replacement."""
    from biasvar.core.rng import numpy_generator

    rng = numpy_generator(seed, "ensemble-size-bootstrap", SUBSETS.index(subset))
    idx = rng.integers(0, max(n, 1), size=(n_boot, n))
    flat = (idx + np.arange(n_boot)[:, None] * n).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _replicates(lx: np.ndarray, ly: np.ndarray, keep: np.ndarray,
                counts: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted OLS per bootstrap replicate, averaged over assignments.

    ``lx``, ``ly``: ``(A, n)`` logs of the terms of the subset's examples, any
    value where ``keep`` ``(n,)`` is False; ``counts``: ``(B, n)`` multiplicities.
    Returns ``(B,)`` arrays of slope, intercept, r2 and gap (NaN where a
    replicate has fewer than 3 kept examples or no spread). All sums come from
    one matrix product ``counts @ features``.
    """
    a_n = len(lx)
    cx = lx[:, keep].mean(1, keepdims=True)
    cy = ly[:, keep].mean(1, keepdims=True)
    x = np.where(keep, lx - cx, 0.0)  # centered for accuracy; excluded examples weigh 0
    y = np.where(keep, ly - cy, 0.0)
    feats = np.concatenate([keep[None].astype(np.float64), x, y, x * x, y * y, x * y])
    sums = counts @ feats.T  # (B, 1 + 5A)
    s0 = sums[:, 0]
    sx, sy, sxx, syy, sxy = (sums[:, 1 + i * a_n:1 + (i + 1) * a_n].T for i in range(5))
    with np.errstate(invalid="ignore", divide="ignore"):
        vxx, vyy, vxy = s0 * sxx - sx**2, s0 * syy - sy**2, s0 * sxy - sx * sy
        slope = vxy / vxx
        r2 = vxy**2 / (vxx * vyy)
        intercept = cy + (sy - slope * sx) / s0 - slope * cx
        gap = (cy - cx) + (sy - sx) / s0
    out = {"slope": slope, "intercept": intercept, "r2": r2, "gap": gap}
    few = s0 < 3
    return {k: np.where(few, np.nan, v.mean(0)) for k, v in out.items()}


def _fit_row(bias: np.ndarray, var: np.ndarray, mask: np.ndarray, subset: str,
             counts: np.ndarray, ci: float) -> tuple[dict, dict[str, np.ndarray]]:
    """One row of the table and the bootstrap replicates of its slope and gap."""
    b, v = bias[:, mask], var[:, mask]
    nonfinite, negative, zero = _classify(b, v)
    keep = ~(nonfinite | negative | zero)
    row = {"n_subset": int(mask.sum()), "n": int(keep.sum()),
           "excluded": int((~keep).sum()), "excluded_nonfinite": int(nonfinite.sum()),
           "excluded_negative": int(negative.sum()), "excluded_zero": int(zero.sum())}
    fit_mask = mask.copy()
    fit_mask[mask] = keep
    fits = [fit_alignment(bias[a], var[a], fit_mask, subset, n_boot=0)
            for a in range(len(bias))]
    for name in ("slope", "intercept", "r2", "pearson", "spearman"):
        row[name] = float(np.mean([getattr(f, name) for f in fits]))
    row["gap"] = float(np.mean([f.mean_log_ratio for f in fits]))
    with np.errstate(invalid="ignore", divide="ignore"):
        lx, ly = np.log(np.where(keep, b, 1.0)), np.log(np.where(keep, v, 1.0))
    row["mean_log_bias"] = float(lx[:, keep].mean()) if keep.any() else float("nan")
    row["mean_log_var"] = float(ly[:, keep].mean()) if keep.any() else float("nan")
    reps = _replicates(lx, ly, keep, counts) if keep.sum() >= 3 else {
        k: np.full(len(counts), np.nan) for k in ("slope", "intercept", "r2", "gap")}
    q = [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]
    for name, r in reps.items():
        finite = np.isfinite(r).any()
        lo, hi = np.nanpercentile(r, q) if finite else (np.nan, np.nan)
        row[f"{name}_ci_low"], row[f"{name}_ci_high"] = float(lo), float(hi)
        if name in EXTRAPOLATED:
            row[f"{name}_se"] = float(np.nanstd(r, ddof=1)) if finite else float("nan")
    return row, {k: reps[k] for k in EXTRAPOLATED}


def fit_assignments(bias: np.ndarray, var: np.ndarray, subset_mask: np.ndarray | None = None,
                    subset: str = "all", n_boot: int = 1000, seed: int = 0,
                    ci: float = 0.95) -> dict:
    """The fit of one row of the table from per-example terms ``(A, N)`` (or ``(N,)``).

    With ``A = 2`` (split-half assignments) an example is fitted when all its
    terms are finite and > 0, and the statistics are the averages of the two
    assignments' fits on those examples. Returns the row's fit columns
    (``n_subset`` ... ``mean_log_var`` of ``COLUMNS``).
    """
    bias = np.atleast_2d(np.asarray(bias, dtype=np.float64))
    var = np.atleast_2d(np.asarray(var, dtype=np.float64))
    if bias.shape != var.shape:
        raise DecompositionError(f"bias {bias.shape} and var {var.shape} differ in shape")
    n = bias.shape[1]
    mask = np.ones(n, bool) if subset_mask is None else np.asarray(subset_mask, bool)
    if subset not in SUBSETS:
        raise DecompositionError(f"subset must be one of {SUBSETS}, got {subset!r}")
    counts = _bootstrap_counts(int(mask.sum()), n_boot, seed, subset)
    return _fit_row(bias, var, mask, subset, counts, ci)[0]


@dataclass(frozen=True)
class InverseKFit:
    """``value(K) = value_inf + coef / K`` by weighted least squares."""

    value_inf: float
    value_inf_se: float
    value_inf_ci: tuple[float, float]
    coef: float
    coef_se: float
    chi2: float  # weighted residual sum of squares
    dof: int  # sizes - 2
    n_sizes: int
    method: str


def extrapolate_inverse_k(n_members, values, se=None, replicates=None,
                          ci: float = 0.95) -> InverseKFit:
    """Extrapolate ``values`` at ensemble sizes ``n_members`` to K -> ∞, linear in 1/K.

    Weights ``1/se²``: ``se`` given, else the standard deviation of
    ``replicates`` (``(B, sizes)``, bootstrap replicates of ``values`` that
    share their resampling across sizes), else equal. The standard errors of
    ``value_inf`` and ``coef`` are the standard deviations of the same
    (fixed-weight) fit applied to each replicate; without replicates, the
    WLS formula ``(X' W X)^-1`` for known variances ``se²`` (it ignores any
    correlation between sizes), or with neither, OLS with the residual
    variance (needs 3 sizes). NaN values are left out; fewer than 2 sizes give NaN.
    ``chi2`` is the weighted residual sum of squares; an unweighted fit (no ``se``, or
    replicates without spread at some size) has none (NaN, and ``method`` says so).
    """
    k = np.asarray(n_members, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    reps = None if replicates is None else np.asarray(replicates, dtype=np.float64)
    ok = np.isfinite(y) & np.isfinite(k) & (k > 0)
    if se is not None:
        se = np.asarray(se, dtype=np.float64)
        ok &= np.isfinite(se) & (se > 0)
    elif reps is not None:
        with np.errstate(invalid="ignore"):
            se = np.nanstd(reps, axis=0, ddof=1)
        if not (np.isfinite(se[ok]) & (se[ok] > 0)).all():
            se = None  # a size without spread: fall back to equal weights
    n = int(ok.sum())
    nan = float("nan")
    method = EXTRAPOLATION_METHOD if se is not None else EXTRAPOLATION_METHOD_UNWEIGHTED
    if n < 2:
        return InverseKFit(nan, nan, (nan, nan), nan, nan, nan, n - 2, n, method)
    x = np.stack([np.ones(n), 1.0 / k[ok]], 1)  # (n, 2)
    w = np.ones(n) if se is None else 1.0 / se[ok] ** 2
    xtwx_inv = np.linalg.inv(x.T @ (w[:, None] * x))
    h = xtwx_inv @ (x.T * w)  # (2, n): the linear map values -> (value_inf, coef)
    beta = h @ y[ok]
    resid = y[ok] - x @ beta
    rss = float((w * resid**2).sum())
    chi2 = rss if se is not None else nan  # unweighted: a residual sum, not a chi²
    lo_q, hi_q = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    if reps is not None:
        r = reps[:, ok]
        r = r[np.isfinite(r).all(1)]
        b_reps = r @ h.T  # (B', 2)
        ses = b_reps.std(0, ddof=1) if len(b_reps) > 1 else np.full(2, nan)
        lo, hi = np.percentile(b_reps[:, 0], [lo_q, hi_q]) if len(b_reps) > 1 else (nan, nan)
    else:
        if se is not None:
            cov = xtwx_inv
        elif n > 2:
            cov = xtwx_inv * rss / (n - 2)
        else:
            cov = np.full((2, 2), nan)
        ses = np.sqrt(np.diag(cov))
        from scipy import stats

        z = stats.norm.ppf((1 + ci) / 2)
        lo, hi = beta[0] - z * ses[0], beta[0] + z * ses[0]
    return InverseKFit(float(beta[0]), float(ses[0]), (float(lo), float(hi)), float(beta[1]),
                       float(ses[1]), chi2, n - 2, n, method)


@dataclass(frozen=True)
class EnsembleSizeResult:
    table: pd.DataFrame  # one row per loss x estimator x size x subset (COLUMNS)
    extrapolation: pd.DataFrame  # one row per loss x estimator x subset x quantity
    headline: dict  # small, JSON-ready (None for NaN): see alignment_by_ensemble_size


def alignment_by_ensemble_size(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray,
                               sizes=None, losses=LOSSES, n_boot: int = 1000, seed: int = 0,
                               ci: float = 0.95) -> EnsembleSizeResult:
    """Alignment fits of one config on nested subsets of whole draws, per loss and estimator.

    ``logits`` ``(K, N, C)``; ``labels`` ``(N,)``; ``draws`` ``(K,)`` the draw of
    each member (a balanced draws x seeds grid). ``sizes``: nested sizes in
    *draws* (default ``draw_sizes(D)``: 1, 2, 4, ..., D). ``n_boot``
    bootstrap replicates over examples (0: no intervals, no extrapolation
    standard errors, an unweighted extrapolation with no ``chi2``), ``seed``
    their base seed, ``ci`` the interval level.
    See the module docstring for the estimators, intervals and extrapolation;
    ``COLUMNS`` and ``EXTRAPOLATION_COLUMNS`` document the two tables.

    ``headline``: ``{"n_members", "n_draws", "n_seeds", "subset": "correct",
    <loss>: {<estimator>: {"slope", "slope_ci_low", "slope_ci_high" (at all
    K), "slope_inf", "slope_inf_se", "drift" (coefficient c of 1/K),
    "gap", "gap_inf", "gap_inf_se", "excluded" (at all K)}}}`` for the
    ``correct`` subset.
    """
    prep = _prepare(logits, labels, draws)
    d_all, s = prep.n_draws, prep.n_seeds
    sizes = draw_sizes(d_all) if sizes is None else sorted({int(d) for d in sizes})
    if not sizes or sizes[0] < 1 or sizes[-1] > d_all:
        raise DecompositionError(f"sizes must lie in [1, {d_all}] draws, got {sizes}")
    for loss in losses:
        if loss not in ESTIMATORS:
            raise DecompositionError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    labels = prep.labels
    n = len(labels)
    p_bar = prep.probs.reshape(-1, n, prep.probs.shape[-1]).mean(0)
    masks = {"correct": p_bar.argmax(-1) == labels, "all": np.ones(n, bool)}
    counts = {sub: _bootstrap_counts(int(m.sum()), n_boot, seed, sub) for sub, m in masks.items()}
    rows, reps = [], {}
    for loss in losses:
        for est in ESTIMATORS[loss]:
            for d in sizes:
                if d < min_draws(est, s):
                    continue
                bias, var = _terms(prep, d, loss, est)
                h = d // 2 if est == "split_half" else d
                for sub in SUBSETS:
                    row, rep = _fit_row(bias, var, masks[sub], sub, counts[sub], ci)
                    rows.append({"loss": loss, "estimator": est, "subset": sub, "n_draws": d,
                                 "n_seeds": s, "n_members": d * s, "members_bias": h * s,
                                 "members_var": (d - h) * s if est == "split_half" else d * s,
                                 **row})
                    reps[(loss, est, sub, d)] = rep
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    extrap = _extrapolate_all(table, reps, ci)
    return EnsembleSizeResult(table, extrap, _headline(table, extrap, d_all, s))


def _extrapolate_all(table: pd.DataFrame, reps: dict, ci: float) -> pd.DataFrame:
    out = []
    for (loss, est, sub), g in table.groupby(["loss", "estimator", "subset"], sort=False):
        g = g.sort_values("n_draws")
        for q in EXTRAPOLATED:
            r = np.stack([reps[(loss, est, sub, d)][q] for d in g["n_draws"]], 1)
            boot = bool(np.isfinite(r).any())  # False: n_boot = 0
            f = extrapolate_inverse_k(g["n_members"], g[q], replicates=r if boot else None,
                                      ci=ci)
            if not boot:
                # No intervals, as documented for n_boot = 0: not the OLS residual-based
                # ones either; chi2 is NaN already (an unweighted fit).
                nan = float("nan")
                f = InverseKFit(f.value_inf, nan, (nan, nan), f.coef, nan, f.chi2, f.dof,
                                f.n_sizes, f.method)
            out.append({"loss": loss, "estimator": est, "subset": sub, "quantity": q,
                        "value_inf": f.value_inf, "value_inf_se": f.value_inf_se,
                        "value_inf_ci_low": f.value_inf_ci[0],
                        "value_inf_ci_high": f.value_inf_ci[1], "coef_inv_k": f.coef,
                        "coef_inv_k_se": f.coef_se, "chi2": f.chi2, "dof": f.dof,
                        "n_sizes": f.n_sizes, "k_min": int(g["n_members"].min()),
                        "k_max": int(g["n_members"].max()),
                        "value_k_max": float(g[q].iloc[-1]), "method": f.method})
    return pd.DataFrame(out, columns=list(EXTRAPOLATION_COLUMNS))


def _r(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 6)


def _headline(table: pd.DataFrame, extrap: pd.DataFrame, d_all: int, s: int) -> dict:
    out: dict = {"n_members": d_all * s, "n_draws": d_all, "n_seeds": s, "subset": "correct"}
    full = table[(table.subset == "correct") & (table.n_draws == d_all)]
    ex = extrap[extrap.subset == "correct"].set_index(["loss", "estimator", "quantity"])
    for row in full.itertuples():
        e_s, e_g = ex.loc[(row.loss, row.estimator, "slope")], ex.loc[
            (row.loss, row.estimator, "gap")]
        out.setdefault(row.loss, {})[row.estimator] = {
            "slope": _r(row.slope), "slope_ci_low": _r(row.slope_ci_low),
            "slope_ci_high": _r(row.slope_ci_high), "slope_inf": _r(e_s.value_inf),
            "slope_inf_se": _r(e_s.value_inf_se), "drift": _r(e_s.coef_inv_k),
            "gap": _r(row.gap), "gap_inf": _r(e_g.value_inf), "gap_inf_se": _r(e_g.value_inf_se),
            "excluded": int(row.excluded)}
    return out


def ensemble_size_all(logits_dir, label_noise: list, widths: list, n_boot: int, seed: int,
                      ci: float) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """``alignment_by_ensemble_size`` on the test partition of every config.

    Returns the per-size table and the extrapolation table, each with
    ``label_noise`` and ``width`` columns first, and the DVC metrics: per noise
    level, the widest width's headline (MSE; plug-in, unbiased, split-half:
    slope at all K, its K -> infinity extrapolation and the 1/K drift).
    """
    from biasvar.ensemble.logits import read_config

    tables, extraps, metrics = [], [], {}
    for p in sorted(label_noise, key=float):
        for w in sorted(widths):
            c = read_config(logits_dir, p, w, "test")
            r = alignment_by_ensemble_size(c.logits, c.labels, c.draws, n_boot=n_boot,
                                           seed=seed, ci=ci)
            for df, out in ((r.table, tables), (r.extrapolation, extraps)):
                out.append(df.assign(label_noise=float(p), width=int(w))[
                    ["label_noise", "width", *df.columns]])
            if w == max(widths):
                mse = r.headline["mse"]
                metrics[f"noise-{float(p):g}"] = {
                    "width": int(w), "n_members": r.headline["n_members"],
                    **{f"{est}_{k}": mse[est][k] for est in ("plugin", "unbiased", "split_half")
                       if est in mse for k in ("slope", "slope_inf", "drift")}}
    return pd.concat(tables, ignore_index=True), pd.concat(extraps, ignore_index=True), metrics


def write_csv(table: pd.DataFrame, path) -> None:
    """Write a tidy table as CSV atomically (no index; floats with 8 significant digits)."""
    from biasvar.core.io import atomic_path

    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.8g")
