"""Calibration as a cause of alignment, tested by intervention: per-member temperature scaling.

Chen et al. (ICLR 2024, Section 4) show that when the models are well
calibrated, bias and variance align (log var ≈ log bias² over correctly
classified examples). This module
intervenes on calibration and measures what happens to alignment: it fits one
temperature per member on held-out data, rescales that member's test logits,
and recomputes calibration, the MSE terms and the alignment fit before and
after. Notation: K members, N examples, C classes; ``z_k(x)`` member k's
logits, ``p_k = softmax(z_k)``, ``e_y`` the one-hot label.

Temperature (``fit_temperatures``)
    Member k's temperature ``T_k`` minimizes the mean negative log-likelihood of
    ``softmax(z_k / T)`` on its *out-of-bag* (OOB) training examples, those of
    the training partition that its bootstrap draw does not hold (a member is
    fitted to the distinct examples of its draw, so the OOB examples are
    held-out data for it), scored against the training labels it was trained
    on (noisy at label noise > 0):
    ``NLL_k(T) = mean_{i OOB for k} [logsumexp(z_ki / T) - z_ki,y_i / T]``.
    In ``β = 1/T`` this is convex (a log-sum-exp of functions linear in β minus
    a linear term), with derivative ``mean_i (E_{p_β}[z_i] - z_i,y_i)`` and second
    derivative ``mean_i Var_{p_β}[z_i] >= 0``; in ``log T`` it is therefore
    unimodal. It is minimized by a Newton iteration on β safeguarded by a
    bracket (a step leaving the bracket is replaced by its geometric midpoint),
    vectorized over members, within ``T ∈ [t_min, t_max]`` (default
    [0.01, 100]); where the NLL is still falling at a bound (e.g. every OOB
    example is classified correctly, so sharper is always better) the bound is
    returned and counted (``n_at_bound``). A member with no OOB example (split
    method ``full``) has no held-out data: that is an error, not T = 1.

Before / after (``calibration_intervention``), on the test partition
    ``before`` uses the logits as trained, ``after`` the member-wise scaled
    logits ``z_k / T_k``. For each state: member ECE (mean over members of each
    member's ECE) and ensemble ECE (the ECE of ``p̄ = mean_k p_k``), both top-label
    with ``n_bins`` equal-width bins (``calibration.ece_batched``); ensemble
    error (argmax of ``p̄``); the plug-in MSE terms per example
    (``decompose.mse_decomposition``: ``bias2 = ||p̄ - e_y||²``, ``var = mean_k
    ||p_k - p̄||²``); the alignment fit ``log var = slope · log bias2 +
    intercept`` by ``alignment.fit_alignment`` over the examples the state's
    own ensemble classifies correctly (temperature scaling does not change a
    member's argmax but can change the argmax of p̄, so the set can differ;
    ``n_flipped`` counts the examples whose ensemble correctness changes), and
    the gap = mean over the fitted examples of ``log(var / bias2)`` (nats; 0 on
    the line y = x). ``*_after_same`` refits *after* on the examples that are
    correct *before*, so the change of the terms can be read on a fixed set.

Intervals
    ``slope_ci_*`` are ``fit_alignment``'s percentile bootstrap over the fitted
    examples. ``gap_*``, ``gap_change``, ``ensemble_ece_change`` and
    ``member_ece_change`` intervals are percentile bootstraps over the N test
    examples (``n_boot`` replicates, the same resample for both states, so the
    changes are paired; a replicate's correct set is the resampled examples
    of that set). They cover the sampling of test examples with the members
    and their temperatures held fixed, not the randomness of training or of
    the temperature fit. An ECE is biased upward at finite N and its
    replicates more so, most for a small ECE; a percentile interval of an ECE
    change can therefore sit to one side of the point estimate: read it as
    the spread of the change, not as a bias-corrected interval.

What is (and is not) intervened on
    The temperatures calibrate each *member* on its held-out data. The
    average of calibrated members need not be calibrated (averaging spreads
    probability mass, so it tends to be underconfident): the ensemble ECE can
    rise while the member ECE falls. Both are reported.

Confidence bins (the per-bin table)
    Test examples are binned by the ensemble's confidence ``max_c p̄_c`` of the
    state, equal-width bins as in ``calibration.reliability`` (q in bin b when
    b/B < q <= (b+1)/B). Per bin: count, mean confidence, accuracy, the
    calibration error ``|accuracy - confidence|``, and the mean
    ``log(var / bias2)`` over the bin's examples (and over its correctly
    classified ones) whose terms are finite and > 0.

Everything is vectorized over members and examples; Python loops run over
the two states and over configs only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biasvar.analysis.alignment import fit_alignment
from biasvar.analysis.calibration import ece, ece_batched, reliability
from biasvar.analysis.decompose import DecompositionError, log_softmax, mse_decomposition
from biasvar.core.errors import InputError

STATES = ("before", "after")

# Per state: column stem -> meaning (units). The table holds ``<stem>_before``
# and ``<stem>_after`` for each stem, in this order.
_STATE_COLUMNS = {
    "member_ece": "mean over members of the member's top-label ECE (probability units, [0, 1])",
    "ensemble_ece": "top-label ECE of the ensemble mean p̄ (probability units, [0, 1])",
    "ensemble_error": "fraction of test examples where argmax p̄ != label",
    "bias2": "mean over all test examples of plug-in bias² ||p̄ - e_y||² (squared prob.)",
    "var": "mean over all test examples of plug-in var mean_k ||p_k - p̄||² (squared prob.)",
    "n_correct": "test examples the ensemble of this state classifies correctly",
    "n": "examples in the alignment fit (correct, bias² and var finite and > 0)",
    "excluded": "correct examples left out of the fit (a term zero, negative or non-finite)",
    "slope": "OLS slope of log var on log bias² over the correct examples (1 = aligned)",
    "slope_ci_low": "fit_alignment's percentile bootstrap interval of the slope, lower end",
    "slope_ci_high": "upper end",
    "intercept": "OLS intercept (natural-log units of var)",
    "r2": "R² of the fit",
    "gap": "mean over fitted examples of log(var / bias²) (nats; 0 = on y = x)",
    "gap_ci_low": "percentile bootstrap interval of the gap (test examples resampled), lower",
    "gap_ci_high": "upper end",
}

# The per-config table, in order: column -> meaning (units).
COLUMNS = {
    "label_noise": "label-noise level of the training labels (driver only)",
    "width": "model width (driver only)",
    "n_members": "K, members of the config",
    "n_test": "test examples",
    "n_train": "training-partition examples",
    "oob_min": "fewest out-of-bag training examples of a member",
    "oob_mean": "mean out-of-bag training examples per member",
    "temperature_mean": "mean over members of the fitted temperature T (dimensionless; "
                        "> 1 softens, < 1 sharpens)",
    "temperature_median": "median over members of T",
    "temperature_min": "smallest T over members",
    "temperature_max": "largest T over members",
    "n_at_bound": "members whose T is at t_min or t_max (NLL still falling there)",
    "oob_nll_before": "mean over members of the OOB NLL at T = 1 (nats per example)",
    "oob_nll_after": "mean over members of the OOB NLL at the fitted T (nats per example)",
    **{f"{stem}_{s}": f"{text} [{s} temperature scaling]"
       for s in STATES for stem, text in _STATE_COLUMNS.items()},
    "n_flipped": "test examples whose ensemble correctness differs between before and after",
    "n_after_same": "examples in the 'after' fit over the examples correct *before*",
    "slope_after_same": "slope after scaling, fitted on the examples correct before",
    "r2_after_same": "R² of that fit",
    "gap_after_same": "gap after scaling over the examples correct before (nats)",
    "gap_change": "gap_after - gap_before (nats; < 0 = moved toward alignment from above)",
    "gap_change_ci_low": "paired percentile bootstrap interval (test examples), lower end",
    "gap_change_ci_high": "upper end",
    "ensemble_ece_change": "ensemble_ece_after - ensemble_ece_before",
    "ensemble_ece_change_ci_low": "paired percentile bootstrap interval, lower end",
    "ensemble_ece_change_ci_high": "upper end",
    "member_ece_change": "member_ece_after - member_ece_before",
    "member_ece_change_ci_low": "paired percentile bootstrap interval, lower end",
    "member_ece_change_ci_high": "upper end",
}

# The per-bin table: one row per (config,) state and confidence bin.
BIN_COLUMNS = {
    "label_noise": "as in the per-config table (driver only)",
    "width": "as in the per-config table (driver only)",
    "state": "'before' | 'after' temperature scaling",
    "bin": "bin index b (0 = lowest confidence)",
    "lower": "bin lower edge b/B (exclusive)",
    "upper": "bin upper edge (b+1)/B (inclusive)",
    "count": "test examples whose ensemble confidence max_c p̄_c falls in the bin",
    "confidence": "mean ensemble confidence of the bin (NaN if empty)",
    "accuracy": "fraction of the bin's examples the ensemble classifies correctly (NaN if empty)",
    "calibration_error": "|accuracy - confidence| (NaN if empty)",
    "n_fit": "examples of the bin with bias² and var finite and > 0",
    "gap": "mean over those examples of log(var / bias²) (nats; NaN if none)",
    "n_fit_correct": "of those, the correctly classified ones",
    "gap_correct": "mean log(var / bias²) over the correctly classified ones (NaN if none)",
}

BOOTSTRAP_PURPOSE = "calibration-intervention-bootstrap"


# --------------------------------------------------------------------- temperatures


def _check_members(logits: np.ndarray, labels: np.ndarray, what: str) -> tuple[int, int, int]:
    if logits.ndim != 3:
        raise DecompositionError(f"{what} logits must be (members, examples, classes), "
                                 f"got shape {logits.shape}")
    k, n, c = logits.shape
    if labels.shape != (n,):
        raise DecompositionError(f"{what} labels must have shape ({n},), got {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= c):
        raise DecompositionError(f"{what} labels must lie in [0, {c}), got "
                                 f"[{labels.min()}, {labels.max()}]")
    if not np.all(np.isfinite(logits)):
        raise DecompositionError(f"{what} logits hold NaN or inf")
    return k, n, c


def _nll_grad_hess(z: np.ndarray, zy: np.ndarray, w: np.ndarray, beta: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted mean NLL of softmax(beta z) and its first two derivatives in beta, each ``(K,)``.

    ``z`` ``(K, N, C)`` float64, ``zy`` ``(K, N)`` the label's logit, ``w``
    ``(K, N)`` weights summing to 1 per member, ``beta`` ``(K,)``.
    """
    s = beta[:, None, None] * z
    m = s.max(-1, keepdims=True)
    e = np.exp(s - m)
    se = e.sum(-1)  # (K, N)
    p = e / se[..., None]
    lse = np.log(se) + m[..., 0]
    ez = (p * z).sum(-1)  # E_p[z]
    vz = (p * (z - ez[..., None]) ** 2).sum(-1)  # Var_p[z] (centered: no cancellation)
    f = (w * (lse - beta[:, None] * zy)).sum(-1)
    g = (w * (ez - zy)).sum(-1)
    h = (w * vz).sum(-1)
    return f, g, h


def _prepare_oob(train_logits, train_labels, out_of_bag, members):
    z = np.asarray(train_logits, dtype=np.float64)
    y = np.asarray(train_labels)
    k, n, _ = _check_members(z, y, "training")
    oob = np.asarray(out_of_bag)
    if oob.shape != (k, n) or oob.dtype != bool:
        raise DecompositionError(f"out_of_bag must be a ({k}, {n}) bool array, got "
                                 f"{oob.dtype} {oob.shape}")
    n_oob = oob.sum(1)
    empty = np.flatnonzero(n_oob == 0)
    if len(empty):
        ids = np.arange(k) if members is None else np.asarray(members)
        raise DecompositionError(
            f"member {int(ids[empty[0]])} has no out-of-bag training example "
            f"({len(empty)} of {k} members have none; split method 'full'?): its "
            "temperature cannot be fitted on held-out data")
    zy = np.take_along_axis(z, y[None, :, None].repeat(k, 0), -1)[..., 0]  # (K, N)
    w = oob / n_oob[:, None]
    return z, zy, w, n_oob


def oob_nll(train_logits: np.ndarray, train_labels: np.ndarray, out_of_bag: np.ndarray,
            temperatures: np.ndarray | float = 1.0) -> np.ndarray:
    """Mean OOB negative log-likelihood (nats) of each member at temperature T: ``(K,)``.

    ``train_logits`` ``(K, N, C)``, ``train_labels`` ``(N,)``, ``out_of_bag``
    ``(K, N)`` bool, ``temperatures`` scalar or ``(K,)``.
    """
    z, zy, w, _ = _prepare_oob(train_logits, train_labels, out_of_bag, None)
    t = np.broadcast_to(np.asarray(temperatures, dtype=np.float64), (z.shape[0],))
    return _nll_grad_hess(z, zy, w, 1.0 / t)[0]


def fit_temperatures(train_logits: np.ndarray, train_labels: np.ndarray,
                     out_of_bag: np.ndarray, *, t_min: float = 0.01, t_max: float = 100.0,
                     rtol: float = 1e-12, max_iter: int = 200,
                     members: np.ndarray | None = None) -> np.ndarray:
    """Per-member temperature minimizing the out-of-bag NLL: ``(K,)`` float64.

    ``train_logits`` ``(K, N, C)`` (the training partition), ``train_labels``
    ``(N,)`` (the labels the members were trained on), ``out_of_bag`` ``(K, N)``
    bool (True where the example is not in the member's draw). ``members``
    ``(K,)`` only names members in errors. Raises ``DecompositionError`` if a
    member has no OOB example. Newton on β = 1/T (convex) inside the bracket
    ``[1/t_max, 1/t_min]``; converged when the step or the bracket is below
    ``rtol`` relative to β. Returns exactly ``t_min`` or ``t_max`` where the
    optimum lies at or beyond that bound.
    """
    if not 0 < t_min < t_max:
        raise DecompositionError(f"need 0 < t_min < t_max, got {t_min}, {t_max}")
    z, zy, w, _ = _prepare_oob(train_logits, train_labels, out_of_bag, members)
    k = z.shape[0]
    lo = np.full(k, 1.0 / t_max)
    hi = np.full(k, 1.0 / t_min)
    _, g_lo, _ = _nll_grad_hess(z, zy, w, lo)
    _, g_hi, _ = _nll_grad_hess(z, zy, w, hi)
    at_tmax = g_lo >= 0  # NLL rising already at the softest allowed T
    at_tmin = g_hi <= 0  # NLL still falling at the sharpest allowed T
    beta = np.clip(np.ones(k), lo, hi)
    done = at_tmax | at_tmin
    for _ in range(max_iter):
        if done.all():
            break
        _, g, h = _nll_grad_hess(z, zy, w, beta)
        # the minimizer lies where g changes sign: shrink the bracket
        hi = np.where(g > 0, beta, hi)
        lo = np.where(g < 0, beta, lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(h > 0, g / h, np.inf)
        newton = beta - step
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        converged = (g == 0) | (np.abs(step) <= rtol * beta) | (hi - lo <= rtol * beta)
        # a step that leaves the bracket is replaced by its geometric midpoint; a
        # converged member keeps beta unless its (tiny) Newton step stays inside
        new = np.where(inside, newton, np.where(converged, beta, np.sqrt(lo * hi)))
        beta = np.where(done, beta, new)
        done |= converged
    else:
        if not done.all():
            raise DecompositionError(f"temperature fit did not converge in {max_iter} "
                                     f"iterations for {int((~done).sum())} members")
    t = 1.0 / beta
    return np.where(at_tmax, t_max, np.where(at_tmin, t_min, t))


# --------------------------------------------------------------------- intervention


@dataclass(frozen=True)
class CalibrationIntervention:
    """One config: the per-config row, the per-bin table and the temperatures."""

    row: dict  # COLUMNS without label_noise / width
    bins: pd.DataFrame  # BIN_COLUMNS without label_noise / width
    temperatures: np.ndarray  # (K,)


@dataclass(frozen=True)
class _State:
    probs: np.ndarray  # (K, N, C)
    mean_prob: np.ndarray  # (N, C)
    bias2: np.ndarray  # (N,)
    var: np.ndarray  # (N,)
    correct: np.ndarray  # (N,) bool
    log_ratio: np.ndarray  # (N,) log(var / bias2), NaN where a term is not finite and > 0
    member_ece: np.ndarray  # (K,)


def _state(logits: np.ndarray, labels: np.ndarray, n_bins: int) -> _State:
    probs = np.exp(log_softmax(logits))
    mse = mse_decomposition(probs, labels)
    correct = mse.mean_prob.argmax(-1) == labels
    ok = np.isfinite(mse.bias2) & np.isfinite(mse.var) & (mse.bias2 > 0) & (mse.var > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.where(ok, np.log(mse.var) - np.log(mse.bias2), np.nan)
    return _State(probs, mse.mean_prob, mse.bias2, mse.var, correct, lr,
                  ece_batched(probs, labels, n_bins))


def confidence_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index ``(N,)`` of each confidence: b with b/B < q <= (b+1)/B (q = 0 in bin 0).

    The rule of ``calibration.reliability`` (tested to give its counts).
    """
    q = np.asarray(confidence, dtype=np.float64)
    return np.clip(np.ceil(q * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def _bin_table(st: _State, labels: np.ndarray, n_bins: int, state: str) -> pd.DataFrame:
    rel = reliability(st.mean_prob, labels, n_bins)
    b = confidence_bins(st.mean_prob.max(-1), n_bins)
    fit = np.isfinite(st.log_ratio)
    lr0 = np.where(fit, st.log_ratio, 0.0)
    n_fit = np.bincount(b, weights=fit, minlength=n_bins)
    fc = fit & st.correct
    n_fc = np.bincount(b, weights=fc, minlength=n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.bincount(b, weights=lr0 * fit, minlength=n_bins) / n_fit
        gap_c = np.bincount(b, weights=lr0 * fc, minlength=n_bins) / n_fc
    return pd.DataFrame({
        "state": state, "bin": np.arange(n_bins), "lower": rel.lower, "upper": rel.upper,
        "count": rel.count.astype(np.int64), "confidence": rel.confidence,
        "accuracy": rel.accuracy, "calibration_error": np.abs(rel.accuracy - rel.confidence),
        "n_fit": n_fit.astype(np.int64), "gap": np.where(n_fit > 0, gap, np.nan),
        "n_fit_correct": n_fc.astype(np.int64), "gap_correct": np.where(n_fc > 0, gap_c, np.nan),
    })


def _ece_contrib(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> np.ndarray:
    """``(N, P * B)``: example i's ``correct - confidence`` in column (predictor, bin).

    ``probs`` ``(P, N, C)``. For example multiplicities ``w`` ``(R, N)``, ``|w @ A|``
    summed over each predictor's bins and divided by ``w.sum()`` is that
    predictor's ECE on the reweighted examples (``ece_batched`` at w = 1).
    """
    p, n, _ = probs.shape
    conf = probs.max(-1)
    diff = (probs.argmax(-1) == labels[None]).astype(np.float64) - conf  # (P, N)
    cols = np.arange(p)[:, None] * n_bins + confidence_bins(conf, n_bins)  # (P, N)
    a = np.zeros((n, p * n_bins))
    a[np.broadcast_to(np.arange(n), (p, n)), cols] = diff
    return a


def _percentile(a: np.ndarray, ci: float) -> tuple[float, float]:
    a = a[np.isfinite(a)]
    if not len(a):
        return float("nan"), float("nan")
    lo, hi = np.percentile(a, [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100])
    return float(lo), float(hi)


def calibration_intervention(test_logits: np.ndarray, test_labels: np.ndarray,
                             train_logits: np.ndarray, train_labels: np.ndarray,
                             out_of_bag: np.ndarray, n_bins: int = 15, n_boot: int = 1000,
                             seed: int = 0, ci: float = 0.95, t_min: float = 0.01,
                             t_max: float = 100.0,
                             members: np.ndarray | None = None) -> CalibrationIntervention:
    """Fit per-member temperatures on OOB data and compare the test partition before/after.

    ``test_logits`` ``(K, N, C)``, ``test_labels`` ``(N,)`` (clean);
    ``train_logits`` ``(K, M, C)``, ``train_labels`` ``(M,)`` (as trained on),
    ``out_of_bag`` ``(K, M)`` bool. Returns the per-config row (``COLUMNS``
    less ``label_noise``/``width``), the per-bin table (``BIN_COLUMNS`` less
    those two, ``2 * n_bins`` rows: before then after) and the ``(K,)``
    temperatures. ``n_boot = 0`` gives NaN intervals.
    """
    from biasvar.core.rng import numpy_generator

    zt = np.asarray(test_logits, dtype=np.float64)
    yt = np.asarray(test_labels)
    k, n, c = _check_members(zt, yt, "test")
    k_tr, m, c_tr = np.shape(train_logits)
    if (k_tr, c_tr) != (k, c):
        raise DecompositionError(f"train logits {np.shape(train_logits)} do not match test "
                                 f"logits {zt.shape} in members or classes")
    temps = fit_temperatures(train_logits, train_labels, out_of_bag, t_min=t_min,
                             t_max=t_max, members=members)
    oob = np.asarray(out_of_bag)
    nll_before = oob_nll(train_logits, train_labels, oob, 1.0)
    nll_after = oob_nll(train_logits, train_labels, oob, temps)
    states = {"before": _state(zt, yt, n_bins),
              "after": _state(zt / temps[:, None, None], yt, n_bins)}

    row: dict = {
        "n_members": k, "n_test": n, "n_train": m,
        "oob_min": int(oob.sum(1).min()), "oob_mean": float(oob.sum(1).mean()),
        "temperature_mean": float(temps.mean()), "temperature_median": float(np.median(temps)),
        "temperature_min": float(temps.min()), "temperature_max": float(temps.max()),
        "n_at_bound": int(((temps == t_min) | (temps == t_max)).sum()),
        "oob_nll_before": float(nll_before.mean()), "oob_nll_after": float(nll_after.mean()),
    }

    # Paired bootstrap over test examples: multiplicities (R, N), same for both states.
    rng = numpy_generator(seed, BOOTSTRAP_PURPOSE)
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = np.bincount((idx + np.arange(n_boot)[:, None] * n).ravel(),
                         minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    reps: dict[str, dict[str, np.ndarray]] = {}
    for s, st in states.items():
        f = fit_alignment(st.bias2, st.var, st.correct, subset="correct", n_boot=n_boot,
                          seed=seed)
        ens_ece = ece(st.mean_prob, yt, n_bins)
        row.update({
            f"member_ece_{s}": float(st.member_ece.mean()), f"ensemble_ece_{s}": ens_ece,
            f"ensemble_error_{s}": float(1.0 - st.correct.mean()),
            f"bias2_{s}": float(st.bias2.mean()), f"var_{s}": float(st.var.mean()),
            f"n_correct_{s}": int(st.correct.sum()), f"n_{s}": f.n,
            f"excluded_{s}": f.excluded_zero + f.excluded_negative + f.excluded_nonfinite,
            f"slope_{s}": f.slope, f"slope_ci_low_{s}": f.slope_ci[0],
            f"slope_ci_high_{s}": f.slope_ci[1], f"intercept_{s}": f.intercept,
            f"r2_{s}": f.r2, f"gap_{s}": f.mean_log_ratio,
        })
        fitted = st.correct & np.isfinite(st.log_ratio)
        with np.errstate(divide="ignore", invalid="ignore"):
            gap_r = (counts @ np.where(fitted, st.log_ratio, 0.0)) / (counts @ fitted)
        a_ens = _ece_contrib(st.mean_prob[None], yt, n_bins)
        a_mem = _ece_contrib(st.probs, yt, n_bins)
        ens_r = np.abs(counts @ a_ens).sum(-1) / n
        mem_r = np.abs(counts @ a_mem).reshape(n_boot, k, n_bins).sum(-1).mean(-1) / n
        reps[s] = {"gap": gap_r, "ensemble_ece": ens_r, "member_ece": mem_r}
        row[f"gap_ci_low_{s}"], row[f"gap_ci_high_{s}"] = _percentile(gap_r, ci)

    before, after = states["before"], states["after"]
    same = fit_alignment(after.bias2, after.var, before.correct, subset="correct", n_boot=0)
    row.update({"n_flipped": int((before.correct != after.correct).sum()),
                "n_after_same": same.n, "slope_after_same": same.slope,
                "r2_after_same": same.r2, "gap_after_same": same.mean_log_ratio})
    for q in ("gap", "ensemble_ece", "member_ece"):
        row[f"{q}_change"] = row[f"{q}_after"] - row[f"{q}_before"]
        lo, hi = _percentile(reps["after"][q] - reps["before"][q], ci)
        row[f"{q}_change_ci_low"], row[f"{q}_change_ci_high"] = lo, hi
    row = {c: row[c] for c in COLUMNS if c in row}
    bins = pd.concat([_bin_table(st, yt, n_bins, s) for s, st in states.items()],
                     ignore_index=True)
    return CalibrationIntervention(row, bins, temps)


# --------------------------------------------------------------------- driver


def out_of_bag_mask(draws: np.ndarray, in_bag: dict[int, np.ndarray], n_train: int,
                    members: np.ndarray | None = None, where: str = "") -> np.ndarray:
    """``(K, n_train)`` bool: True where the example is not among the member's draw's indices.

    ``draws`` ``(K,)``; ``in_bag[d]`` draw d's training indices (duplicates
    allowed, as a bootstrap has them). Raises ``InputError`` for a draw that
    ``in_bag`` lacks.
    """
    draws = np.asarray(draws)
    ids = np.arange(len(draws)) if members is None else np.asarray(members)
    oob = np.ones((len(draws), n_train), dtype=bool)
    for i, d in enumerate(draws):
        if int(d) not in in_bag:
            raise InputError(f"no split file holds draw {int(d)} of member {int(ids[i])}"
                             f"{where}")
        oob[i, np.asarray(in_bag[int(d)], dtype=np.int64)] = False
    return oob


def _r(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 6)


def calibration_all(logits_dir: str | Path, label_noise: list, widths: list,
                    in_bag: dict[int, np.ndarray], n_bins: int = 15, n_boot: int = 1000,
                    seed: int = 0, ci: float = 0.95
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """``calibration_intervention`` for every config of the logits dataset.

    Reads each config's test and train partitions (``ensemble.logits.read_config``),
    builds the OOB mask from the members' draws and ``in_bag`` (draw -> its
    training indices, the split files). Returns the per-config table
    (``COLUMNS``, one row per config, sorted by label_noise then width), the
    per-bin table (``BIN_COLUMNS``) and the DVC metrics: per noise level
    (``noise-<p>``), at the widest width, temperature, ECE, slope and gap
    before and after.
    """
    from biasvar.ensemble.logits import config_file, read_config

    rows, bins, metrics = [], [], {}
    for p in sorted(label_noise, key=float):
        for w in sorted(widths):
            test = read_config(logits_dir, p, w, "test")
            train = read_config(logits_dir, p, w, "train")
            where = f" ({config_file(logits_dir, p, w)}, label_noise {p}, width {w})"
            if not np.array_equal(test.members, train.members):
                raise InputError(f"test and train partitions hold different members{where}")
            oob = out_of_bag_mask(train.draws, in_bag, train.logits.shape[1], train.members,
                                  where)
            r = calibration_intervention(test.logits, test.labels, train.logits, train.labels,
                                         oob, n_bins=n_bins, n_boot=n_boot, seed=seed, ci=ci,
                                         members=train.members)
            rows.append({"label_noise": float(p), "width": int(w), **r.row})
            bins.append(r.bins.assign(label_noise=float(p), width=int(w))[list(BIN_COLUMNS)])
            if w == max(widths):
                row = r.row
                metrics[f"noise-{float(p):g}"] = {
                    "width": int(w), "temperature_mean": _r(row["temperature_mean"]),
                    **{f"{q}_{s}": _r(row[f"{q}_{s}"])
                       for q in ("member_ece", "ensemble_ece", "slope", "gap") for s in STATES}}
    return (pd.DataFrame(rows, columns=list(COLUMNS)), pd.concat(bins, ignore_index=True),
            metrics)
