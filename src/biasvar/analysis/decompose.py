"""Per-example bias-variance decompositions of an ensemble's predictions.

Pure numpy, float64 accumulation, vectorized over members x examples x
classes. Notation: K members, N examples, C classes; ``p_k(x)`` member k's
softmax output, ``e_y`` the one-hot label. Every function returns per-example
arrays of shape ``(N,)``; averaging over examples is the caller's choice.

- MSE on probabilities (Chen; Neal; Yang):
  ``bias2 = ||p_bar - e_y||^2``, ``var = mean_k ||p_k - p_bar||^2``, and exactly
  ``mean_k ||p_k - e_y||^2 = bias2 + var`` for the plug-in terms.
- Cross-entropy (Pfau's Bregman decomposition): central prediction
  ``p_tilde ∝ exp(mean_k log p_k)``; ``bias = -log p_tilde_y``,
  ``var = mean_k KL(p_tilde || p_k)``; exactly ``mean_k CE_k = bias + var``.
- 0-1 loss (Domingos 2000): main prediction = mode of member votes; ``bias =
  [mode != y]``; ``var = P_k[pred_k != mode]``; net variance = var on unbiased
  examples and ``-P_k[pred_k = y]`` on biased ones (Domingos' c2 * V), so
  ``mean_k [pred_k != y] = bias + net_var`` exactly.
- Neal's split of the MSE variance on the draws x seeds grid: ``var =
  E_draw[Var_seed] + Var_draw(E_seed)`` (optimization + sampling), exact on a
  balanced grid.
- Finite-K: the plug-in variance is biased low by (K-1)/K and the plug-in
  bias2 high by Var/K. For K *independent* members, ``mse_decomposition``'s
  ``unbiased`` estimates scale the variance by K/(K-1) and subtract
  var_unbiased/K from bias2, which may then be negative. Members that share
  draws are not independent: ``neal_split`` gives the grid-aware unbiased
  total variance and Var(p_bar), and NaN with one draw (one training set says
  nothing about the sampling variance, so K/(K-1) var would estimate only the
  optimization variance).
- Regression (toy studies): with the true function f and noise variance
  sigma^2, expected squared error on a fresh noisy target = sigma^2 + bias^2 +
  variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biasvar.core.errors import BiasvarError


class DecompositionError(BiasvarError):
    """An estimate that the inputs cannot support (e.g. a variance from one member)."""


def _need_members(k: int, what: str, at_least: int = 2) -> None:
    if k < at_least:
        raise DecompositionError(f"{what} needs at least {at_least} members, got {k}")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


def _mean0(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0, shifted by the first entry: exactly a[0] when all entries are equal.

    A plain mean of K identical floats can be off by an ulp, which would give
    identical members a variance of 1e-33 instead of 0 (and a log of -76).
    """
    return a[0] + (a - a[0]).mean(axis=0)


def _anchor_mask(p: np.ndarray) -> np.ndarray:
    """(N, C) bool, True at each example's most probable class of ``p`` (N, C)."""
    return np.eye(p.shape[-1], dtype=bool)[p.argmax(-1)]


def _anchored(delta: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """``delta`` (..., N, C), a difference of probability vectors (it sums to 0 over C),
    with the ``anchor`` (N, C) component recomputed as minus the sum of the others.

    For a saturated example the anchor (most probable) class has p within 1e-16 of
    1, where float64 rounds the difference p_a - q_a to 0 or to a multiple of
    eps; the other components are small numbers with full relative precision, so
    their sum gives the anchor's difference exactly. Without this, bias² and
    variance below ~1e-32 come from the off-class components alone (off by up to
    a factor of C) and a log-log fit over such examples leans on rounding.
    """
    rest = np.where(anchor, 0.0, delta).sum(-1, keepdims=True)
    return np.where(anchor, -rest, delta)


def _onehot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float64)[np.asarray(labels)]  # (N, C)


@dataclass(frozen=True)
class MSETerms:
    loss: np.ndarray  # (N,) mean_k ||p_k - e_y||^2
    bias2: np.ndarray  # (N,) plug-in
    var: np.ndarray  # (N,) plug-in
    bias2_unbiased: np.ndarray  # (N,) may be negative
    var_unbiased: np.ndarray  # (N,)
    mean_prob: np.ndarray  # (N, C) p_bar


def mse_decomposition(probs: np.ndarray, labels: np.ndarray) -> MSETerms:
    """MSE-on-probabilities terms. ``probs``: ``(K, N, C)``, ``labels``: ``(N,)``."""
    probs = np.asarray(probs, dtype=np.float64)
    k, _, c = probs.shape
    _need_members(k, "the MSE variance")
    p_bar = _mean0(probs)  # (N, C)
    onehot = _onehot(labels, c)
    anchor = _anchor_mask(p_bar)  # saturated classes: differences from the others (_anchored)
    bias2 = (_anchored(p_bar - onehot, anchor) ** 2).sum(-1)
    # sum over members and classes of (p - p_bar)^2, without a (K, N, C) temporary
    # beyond probs itself: E||p||^2 - ||p_bar||^2, kept exact by a centered pass.
    var = np.zeros(len(p_bar))
    loss = np.zeros(len(p_bar))
    for p_k in probs:  # K iterations over (N, C) slices: bounded memory
        var += (_anchored(p_k - p_bar, anchor) ** 2).sum(-1)
        loss += (_anchored(p_k - onehot, anchor) ** 2).sum(-1)
    var /= k
    loss /= k
    var_unb = var * k / (k - 1)
    return MSETerms(loss, bias2, var, bias2 - var_unb / k, var_unb, p_bar)


@dataclass(frozen=True)
class CETerms:
    loss: np.ndarray  # (N,) mean_k CE_k
    bias: np.ndarray  # (N,) -log p_tilde_y
    var: np.ndarray  # (N,) mean_k KL(p_tilde || p_k)
    central: np.ndarray  # (N, C) p_tilde, the normalized geometric mean


def ce_decomposition(log_probs: np.ndarray, labels: np.ndarray) -> CETerms:
    """Bregman (cross-entropy) terms. ``log_probs``: ``(K, N, C)`` log-softmax outputs.

    With ``g = mean_k log p_k`` and ``Z = sum_c exp(g_c)``, ``log p_tilde = g - log Z``
    and ``mean_k KL(p_tilde || p_k) = sum_c p_tilde_c (log p_tilde_c - g_c) = -log Z``.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    k, n, _ = log_probs.shape
    _need_members(k, "the cross-entropy variance")
    g = _mean0(log_probs)  # (N, C)
    g_max = g.max(-1, keepdims=True)
    log_z = (np.log(np.exp(g - g_max).sum(-1, keepdims=True)) + g_max)[:, 0]  # (N,)
    log_central = g - log_z[:, None]
    rows = np.arange(n)
    labels = np.asarray(labels)
    loss = -g[rows, labels]  # mean_k -log p_k,y
    bias = -log_central[rows, labels]
    # -log Z >= 0 by AM-GM; clip the last ulp of rounding so it never reads as negative.
    var = np.maximum(-log_z, 0.0)
    return CETerms(loss, bias, var, np.exp(log_central))


@dataclass(frozen=True)
class ZeroOneTerms:
    error: np.ndarray  # (N,) mean_k [pred_k != y]
    bias: np.ndarray  # (N,) [mode != y], 0.0 or 1.0
    var: np.ndarray  # (N,) P_k[pred_k != mode]
    net_var: np.ndarray  # (N,) var if unbiased, -P_k[pred_k = y] if biased
    main_prediction: np.ndarray  # (N,) mode of the votes (ties: smallest class)


def zero_one_decomposition(preds: np.ndarray, labels: np.ndarray,
                           n_classes: int) -> ZeroOneTerms:
    """Domingos' 0-1 decomposition from member predictions ``preds``: ``(K, N)`` ints."""
    preds = np.asarray(preds)
    k, n = preds.shape
    _need_members(k, "the 0-1 variance")
    labels = np.asarray(labels)
    # votes (N, C): one bincount over (example, class) codes, no loop over examples
    codes = (np.arange(n)[None, :] * n_classes + preds).ravel()
    votes = np.bincount(codes, minlength=n * n_classes).reshape(n, n_classes)
    mode = votes.argmax(-1)  # argmax takes the first maximum: ties go to the smallest class
    rows = np.arange(n)
    error = 1.0 - votes[rows, labels] / k
    bias = (mode != labels).astype(np.float64)
    var = 1.0 - votes[rows, mode] / k
    net_var = np.where(bias == 0, var, -votes[rows, labels] / k)
    return ZeroOneTerms(error, bias, var, net_var, mode)


@dataclass(frozen=True)
class NealTerms:
    """MSE variance split on a balanced draws x seeds grid (NaN where undefined)."""

    optimization: np.ndarray  # (N,) E_draw[Var_seed], plug-in
    sampling: np.ndarray  # (N,) Var_draw(E_seed), plug-in
    optimization_unbiased: np.ndarray  # (N,)
    sampling_unbiased: np.ndarray  # (N,)
    # Grid-aware unbiased total variance of one member (optimization + sampling)
    # and variance of the ensemble mean p_bar (what inflates the plug-in bias2);
    # NaN with one draw.
    var_unbiased: np.ndarray  # (N,)
    mean_var_unbiased: np.ndarray  # (N,)
    n_draws: int
    n_seeds: int
    note: str  # why a term is undefined, or ""


def neal_split(probs: np.ndarray, draws: np.ndarray) -> NealTerms:
    """Split the MSE variance of ``probs`` ``(K, N, C)`` by the members' ``draws`` ``(K,)``.

    Plug-in terms add up exactly to ``mse_decomposition(...).var``. Unbiased:
    within-draw variance x S/(S-1); across-draw variance of draw means x
    D/(D-1) minus the unbiased optimization variance / S. With one seed per
    draw the optimization variance (and so the split) is undefined (NaN, never
    0), but the members are independent and the total variance is the iid
    K/(K-1) estimate. With one draw the sampling variance is undefined, and so
    are the total variance of a member and Var(p_bar) (``var_unbiased``,
    ``mean_var_unbiased``): all NaN. K/(K-1) x plug-in variance would estimate
    only the optimization variance there, which ``optimization_unbiased``
    already reports under its own name.
    """
    probs = np.asarray(probs, dtype=np.float64)
    draws = np.asarray(draws)
    k, n, c = probs.shape
    _need_members(k, "the Neal variance split")
    order = np.argsort(draws, kind="stable")
    uniq, counts = np.unique(draws, return_counts=True)
    if len(set(counts.tolist())) != 1:
        raise DecompositionError(f"the Neal split needs a balanced draws x seeds grid; draws "
                                 f"have {sorted(set(counts.tolist()))} seeds")
    d, s = len(uniq), int(counts[0])
    grid = probs[order].reshape(d, s, n, c)
    draw_mean = _mean0(grid.swapaxes(0, 1))  # (D, N, C)
    overall = _mean0(draw_mean)  # (N, C)
    anchor = _anchor_mask(overall)  # saturated classes: see _anchored
    opt = (_anchored(grid - draw_mean[:, None], anchor) ** 2).sum(-1).mean(axis=(0, 1))  # (N,)
    samp = (_anchored(draw_mean - overall, anchor) ** 2).sum(-1).mean(axis=0)  # (N,)
    def nan() -> np.ndarray:
        return np.full(n, np.nan)

    if s == 1:
        # independent members (one per draw): the iid correction is the grid-aware one
        note = "one seed per draw: optimization and sampling variance cannot be separated"
        var_unb = samp * d / (d - 1)
        return NealTerms(nan(), nan(), nan(), nan(), var_unb, var_unb / d, d, s, note)
    opt_unb = opt * s / (s - 1)
    if d == 1:
        note = ("one draw: sampling variance, total variance and Var(p_bar) undefined "
                "(only the optimization variance is estimable)")
        return NealTerms(opt, nan(), opt_unb, nan(), nan(), nan(), d, s, note)
    # E[samp] = (D-1)/D (sigma2_samp + sigma2_opt / S)
    samp_unb = samp * d / (d - 1) - opt_unb / s
    return NealTerms(opt, samp, opt_unb, samp_unb, opt_unb + samp_unb,
                     samp_unb / d + opt_unb / (d * s), d, s, "")


@dataclass(frozen=True)
class DiversityTerms:
    """Bias-variance-diversity (Wood et al. 2023) per example: the seeds of a draw are
    one ensemble trained on that draw, combined by the centroid combiner of each loss
    (mean probabilities for squared error, normalized geometric mean for CE).

    ``*_ensemble_loss`` is the mean over draws of that ensemble's loss, ``*_diversity``
    the mean over draws of the members' mean divergence from their ensemble
    (``||p - p_bar_d||^2``; ``KL(p_bar_d || p)``). Both are plain means over draws,
    unbiased for the expected loss and diversity of an S-member ensemble; with the
    member terms: ensemble loss = bias + variance - diversity, exactly, for the
    plug-in terms of all members (MSE: ``mse_bias2 + mse_var - diversity``; CE:
    ``ce_bias + ce_var - diversity``) and for the unbiased MSE terms. With one seed per
    draw each ensemble is one member: diversity 0, ensemble loss = member loss.
    """

    mse_ensemble_loss: np.ndarray  # (N,)
    mse_diversity: np.ndarray  # (N,)
    ce_ensemble_loss: np.ndarray  # (N,)
    ce_diversity: np.ndarray  # (N,)


def diversity_decomposition(log_probs: np.ndarray, labels: np.ndarray,
                            draws: np.ndarray) -> DiversityTerms:
    """Bias-variance-diversity terms of ``log_probs`` ``(K, N, C)`` on a balanced grid of
    ``draws`` ``(K,)`` (each draw's seeds are one ensemble): see ``DiversityTerms``.

    The CE terms follow the Decompose package (``BregmanDecomposition``:
    ``expected_ensemble_loss`` and ``diversity`` with the ``CrossEntropy`` generator);
    there the ensemble is ``softmax(mean_s log p)`` and ``KL(p_bar || p_s)`` averaged
    over its members is ``-log Z`` of that softmax, which is how it is computed here.
    """
    logp = np.asarray(log_probs, dtype=np.float64)
    labels = np.asarray(labels)
    k, n, c = logp.shape
    order = np.argsort(np.asarray(draws), kind="stable")
    uniq, counts = np.unique(draws, return_counts=True)
    if len(set(counts.tolist())) != 1:
        raise DecompositionError(f"the diversity decomposition needs a balanced draws x seeds "
                                 f"grid; draws have {sorted(set(counts.tolist()))} seeds")
    d, s = len(uniq), int(counts[0])
    rows = np.arange(n)
    grid = logp[order].reshape(d, s, n, c)
    probs = np.exp(grid)
    draw_mean = probs.mean(1)  # (D, N, C) each draw's ensemble (mean probabilities)
    onehot = np.eye(c)[labels]
    mse_ens = ((draw_mean - onehot) ** 2).sum(-1).mean(0)  # (N,)
    mse_div = ((probs - draw_mean[:, None]) ** 2).sum(-1).mean((0, 1))
    g = grid.mean(1)  # (D, N, C) mean log-probabilities of the draw's seeds
    g_max = g.max(-1, keepdims=True)
    log_z = np.log(np.exp(g - g_max).sum(-1)) + g_max[..., 0]  # (D, N), <= 0
    ce_ens = (log_z - g[:, rows, labels]).mean(0)
    # rounding can leave -1e-17; one seed: the ensemble is the member, KL 0 exactly
    ce_div = np.maximum(-log_z, 0.0).mean(0) if s > 1 else np.zeros(n)
    return DiversityTerms(mse_ens, mse_div, ce_ens, ce_div)


def out_of_bag_prediction(logits: np.ndarray, out_of_bag: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The out-of-bag ensemble of each example: members that did not train on it.

    ``logits`` (K, N, C), ``out_of_bag`` (K, N) bool. Returns ``(count (N,),
    prediction (N,))``: how many members are out of bag for the example and the
    argmax of their mean probabilities (-1 where no member is).
    """
    probs = softmax(logits)  # (K, N, C)
    oob = np.asarray(out_of_bag, dtype=np.float64)
    count = oob.sum(0)  # (N,)
    mean = np.einsum("kn,knc->nc", oob, probs)  # (N, C), unnormalized: argmax is the same
    pred = np.where(count > 0, mean.argmax(-1), -1)
    return count.astype(np.int32), pred.astype(np.int16)
