"""One config's decomposition: the per-example table and the per-config summary.

``per_example`` runs every decomposition of ``biasvar.analysis.decompose`` on one
config and partition and returns the columns of the per-example table.

``summarize`` gives the config-level means with bootstrap CIs. The resampling
unit is the *draw* (its seeds move together, which keeps the draws x seeds
grid balanced for Neal's split); with ``seeds_per_draw: 1`` a draw is a
member. A bootstrap replicate is a vector of draw counts w (multinomial), and
every quantity is a function of count-weighted member sums, so all replicates
are computed with a few matrix products instead of re-running the
decomposition B times. The point estimate is the same function at w = 1,
which the tests check against the mean of the per-example columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biasvar.analysis.calibration import ece_batched, reliability
from biasvar.analysis.decompose import (
    ce_decomposition,
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
)


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
            from biasvar.analysis.decompose import DecompositionError

            raise DecompositionError(f"draws must all have the same number of seeds, got "
                                     f"{sorted(set(counts.tolist()))}")
        return cls(np.argsort(draws, kind="stable"), len(uniq), int(counts[0]))


def per_example(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray,
                noisy: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every per-example term for one config and partition.

    ``logits``: ``(K, N, C)``; ``labels``: ``(N,)`` the labels members were scored
    against; ``draws``: ``(K,)``; ``noisy``: ``(N,)`` label-noise flags or None.
    """
    k, n, c = logits.shape
    logp = log_softmax(logits)  # (K, N, C) float64
    probs = np.exp(logp)
    mse = mse_decomposition(probs, labels)
    ce = ce_decomposition(logp, labels)
    zo = zero_one_decomposition(logits.argmax(-1), labels, c)
    neal = neal_split(probs, draws)
    if np.isfinite(neal.var_unbiased).all():
        # members share draws: the iid K/(K-1) correction would be wrong
        var_unb, bias2_unb = neal.var_unbiased, mse.bias2 - neal.mean_var_unbiased
    else:
        var_unb, bias2_unb = mse.var_unbiased, mse.bias2_unbiased
    ens_pred = mse.mean_prob.argmax(-1)
    return {
        "example": np.arange(n),
        "label": np.asarray(labels),
        "noisy": np.zeros(n, bool) if noisy is None else np.asarray(noisy, bool),
        "ensemble_prediction": ens_pred,
        "correct": ens_pred == np.asarray(labels),
        "ensemble_confidence": mse.mean_prob.max(-1),
        "mse_loss": mse.loss, "mse_bias2": mse.bias2, "mse_var": mse.var,
        "mse_bias2_unbiased": bias2_unb, "mse_var_unbiased": var_unb,
        "var_optimization": neal.optimization, "var_sampling": neal.sampling,
        "var_optimization_unbiased": neal.optimization_unbiased,
        "var_sampling_unbiased": neal.sampling_unbiased,
        "ce_loss": ce.loss, "ce_bias": ce.bias, "ce_var": ce.var,
        "zero_one_error": zo.error, "zero_one_bias": zo.bias, "zero_one_var": zo.var,
        "zero_one_net_var": zo.net_var,
    }


def _replicate_means(w_draw: np.ndarray, grid: Grid, probs: np.ndarray, logp: np.ndarray,
                     onehot: np.ndarray, member_stats: dict[str, np.ndarray],
                     member_ece: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Example-averaged quantities for draw-count vectors ``w_draw`` ``(B, D)``.

    ``probs``/``logp`` are ``(K, N, C)`` in grid (draw-major) order.
    """
    d, s = grid.n_draws, grid.n_seeds
    k = d * s
    w = np.repeat(w_draw, s, axis=1).astype(np.float64)  # (B, K) member counts
    rows = np.arange(len(labels))
    out: dict[str, np.ndarray] = {}
    p_bar = np.einsum("bk,knc->bnc", w, probs) / k  # (B, N, C)
    sq_bar = (w @ member_stats["sq_norm"]) / k  # (B, N) weighted mean ||p_k||^2
    out["mse_loss"] = ((w @ member_stats["mse_loss"]) / k).mean(-1)
    bias2 = ((p_bar - onehot) ** 2).sum(-1)  # (B, N)
    var = sq_bar - (p_bar**2).sum(-1)  # E||p||^2 - ||p_bar||^2 = mean ||p - p_bar||^2
    out["mse_bias2"], out["mse_var"] = bias2.mean(-1), var.mean(-1)
    # Neal: draw means and within-draw variances, weighted by draw counts
    probs_g = probs.reshape(d, s, *probs.shape[1:])
    draw_mean = probs_g.mean(1)  # (D, N, C)
    within = ((probs_g - draw_mean[:, None]) ** 2).sum(-1).mean(1)  # (D, N)
    opt = (w_draw @ within) / d  # (B, N)
    samp = (w_draw @ (draw_mean**2).sum(-1)) / d - (p_bar**2).sum(-1)  # (B, N)
    nan = np.full(len(w_draw), np.nan)
    if s > 1:
        out["var_optimization"], out["var_sampling"] = opt.mean(-1), samp.mean(-1)
        opt_unb = opt * s / (s - 1)
        out["var_optimization_unbiased"] = opt_unb.mean(-1)
        if d > 1:
            samp_unb = samp * d / (d - 1) - opt_unb / s
            out["var_sampling_unbiased"] = samp_unb.mean(-1)
            var_unb = opt_unb + samp_unb
            bias2_unb = bias2 - (samp_unb / d + opt_unb / (d * s))
        else:
            out["var_sampling"] = out["var_sampling_unbiased"] = nan
            var_unb, bias2_unb = var * k / (k - 1), bias2 - var / (k - 1)
    else:
        for q in ("var_optimization", "var_sampling", "var_optimization_unbiased",
                  "var_sampling_unbiased"):
            out[q] = nan
        var_unb, bias2_unb = var * k / (k - 1), bias2 - var / (k - 1)
    out["mse_bias2_unbiased"], out["mse_var_unbiased"] = bias2_unb.mean(-1), var_unb.mean(-1)
    # cross-entropy: weighted mean log-probabilities -> central prediction
    g = np.einsum("bk,knc->bnc", w, logp) / k  # (B, N, C)
    g_max = g.max(-1, keepdims=True)
    log_z = np.log(np.exp(g - g_max).sum(-1)) + g_max[..., 0]  # (B, N)
    out["ce_loss"] = ((w @ member_stats["ce_loss"]) / k).mean(-1)
    out["ce_bias"] = (log_z - g[:, rows, labels]).mean(-1)
    out["ce_var"] = np.maximum(-log_z, 0.0).mean(-1)
    # 0-1: weighted votes (B, N, C)
    votes = np.einsum("bk,knc->bnc", w, member_stats["pred_onehot"])
    mode = votes.argmax(-1)
    err = 1.0 - votes[:, rows, labels] / k
    zo_bias = (mode != labels).astype(np.float64)
    zo_var = 1.0 - np.take_along_axis(votes, mode[..., None], -1)[..., 0] / k
    out["zero_one_error"] = err.mean(-1)
    out["zero_one_bias"] = zo_bias.mean(-1)
    out["zero_one_net_var"] = np.where(zo_bias == 0, zo_var, -votes[:, rows, labels] / k
                                       ).mean(-1)
    out["member_error"] = out["zero_one_error"]
    out["ensemble_error"] = (p_bar.argmax(-1) != labels).mean(-1)
    out["member_ece"] = (w @ member_ece) / k
    return out


@dataclass(frozen=True)
class Summary:
    quantities: tuple[str, ...]
    value: np.ndarray  # (Q,)
    ci_low: np.ndarray  # (Q,) basic bootstrap interval over draws
    ci_high: np.ndarray  # (Q,)
    n_members: int
    n_draws: int
    n_seeds: int
    reliability_members: object
    reliability_ensemble: object


def summarize(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray, n_boot: int = 200,
              seed: int = 0, ci: float = 0.95, n_bins: int = 15, chunk: int = 25) -> Summary:
    """Per-config means of every quantity with basic bootstrap CIs over draws."""
    from biasvar.core.rng import numpy_generator

    labels = np.asarray(labels)
    grid = Grid.from_draws(draws)
    logits = np.asarray(logits)[grid.order]
    k, n, c = logits.shape
    logp = log_softmax(logits)
    probs = np.exp(logp)
    onehot = np.eye(c)[labels]  # (N, C)
    preds = logits.argmax(-1)  # (K, N)
    member_stats = {
        "sq_norm": (probs**2).sum(-1),  # (K, N)
        "mse_loss": ((probs - onehot) ** 2).sum(-1),
        "ce_loss": -logp[:, np.arange(n), labels],
        "pred_onehot": np.eye(c)[preds],  # (K, N, C)
    }
    member_ece = ece_batched(probs, labels, n_bins)  # (K,)

    def means(w_draw: np.ndarray) -> dict[str, np.ndarray]:
        out = _replicate_means(w_draw, grid, probs, logp, onehot, member_stats, member_ece,
                               labels)
        p_bar = np.einsum("bk,knc->bnc", np.repeat(w_draw, grid.n_seeds, 1), probs) / k
        out["ensemble_ece"] = ece_batched(p_bar, labels, n_bins)
        return out

    point = means(np.ones((1, grid.n_draws)))
    value = np.array([point[q][0] for q in QUANTITIES])
    lo = np.full(len(QUANTITIES), np.nan)
    hi = np.full(len(QUANTITIES), np.nan)
    if n_boot > 0 and grid.n_draws > 1:
        rng = numpy_generator(seed, "summary-bootstrap")
        w_all = rng.multinomial(grid.n_draws, np.full(grid.n_draws, 1 / grid.n_draws),
                                size=n_boot)  # (B, D)
        reps = [means(w_all[i:i + chunk]) for i in range(0, n_boot, chunk)]
        q_lo, q_hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
        for j, q in enumerate(QUANTITIES):
            r = np.concatenate([x[q] for x in reps])
            if np.isfinite(r).all():
                # Basic (pivotal) interval 2*theta - quantiles: a resample repeats
                # draws, so plug-in bias2 is inflated and variance deflated in
                # every replicate; percentile intervals would sit off the estimate.
                r_lo, r_hi = np.percentile(r, [q_lo, q_hi])
                lo[j], hi[j] = 2 * value[j] - r_hi, 2 * value[j] - r_lo
    p_ens = probs.mean(0)
    return Summary(QUANTITIES, value, lo, hi, k, grid.n_draws, grid.n_seeds,
                   reliability(probs.reshape(k * n, c), np.tile(labels, k), n_bins),
                   reliability(p_ens, labels, n_bins))
