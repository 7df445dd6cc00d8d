"""Calibration: expected calibration error and reliability-diagram bins.

Equal-width confidence bins on [0, 1], top label: an example with top
probability (confidence) q falls in bin b when b/B < q <= (b+1)/B (q = 0
would fall in bin 0; it cannot happen with softmax outputs). ECE =
sum_b (n_b / N) |accuracy_b - confidence_b|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    # ceil(q B) - 1 puts q in (b/B, (b+1)/B]; clip keeps q = 0 in bin 0
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def ece_batched(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """ECE of each of a batch of predictors: ``probs`` ``(K, N, C)`` -> ``(K,)``.

    One ``bincount`` over (predictor, bin) codes: no loop over predictors or examples.
    """
    probs = np.asarray(probs, dtype=np.float64)
    k, n, _ = probs.shape
    conf = probs.max(-1)  # (K, N)
    correct = (probs.argmax(-1) == np.asarray(labels)[None, :]).astype(np.float64)
    codes = (np.arange(k)[:, None] * n_bins + _bin_index(conf, n_bins)).ravel()
    size = k * n_bins
    sum_conf = np.bincount(codes, weights=conf.ravel(), minlength=size).reshape(k, n_bins)
    sum_acc = np.bincount(codes, weights=correct.ravel(), minlength=size).reshape(k, n_bins)
    # sum_b (n_b/N) |acc_b - conf_b| = (1/N) sum_b |sum_acc_b - sum_conf_b|
    return np.abs(sum_acc - sum_conf).sum(-1) / n


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE of one predictor: ``probs`` ``(N, C)``."""
    return float(ece_batched(np.asarray(probs)[None], labels, n_bins)[0])


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram data, one entry per bin."""

    lower: np.ndarray  # (B,) bin edges
    upper: np.ndarray  # (B,)
    count: np.ndarray  # (B,) examples in the bin
    confidence: np.ndarray  # (B,) mean top probability (NaN for empty bins)
    accuracy: np.ndarray  # (B,) fraction correct (NaN for empty bins)


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> Reliability:
    """Bins of a predictor ``probs`` ``(N, C)`` (or pooled members: reshape to ``(K*N, C)``)."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(-1)
    correct = (probs.argmax(-1) == np.asarray(labels)).astype(np.float64)
    b = _bin_index(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(b, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(b, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return Reliability(edges[:-1], edges[1:], count, confidence, accuracy)
