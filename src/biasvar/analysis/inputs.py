"""The checked inputs of every public function and of ``biasvar analyze``: one config's
member outputs ``(members, examples, classes)``, labels and the draws × seeds grid.

Its own module (``biasvar.analysis.api`` re-exports ``ensemble_inputs``) so that the
pipeline's ``import`` stage, which needs only these checks, does not depend on the
decompositions: editing them reruns no import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from biasvar.core.errors import InputError


def _array(x: Any, name: str) -> np.ndarray:
    """numpy view of a numpy array, a torch tensor (any device) or a nested sequence."""
    if hasattr(x, "detach"):  # torch, without importing it
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # ragged lists
        raise InputError(f"{name}: not an array ({type(e).__name__}: {e})") from None


def ensemble_inputs(logits: Any = None, probs: Any = None, labels: Any = None,
                    draw: Any = None, seed: Any = None, where: str = ""
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``(logits float64 (K, N, C), labels int64 (N,), draw (K,), seed (K,))``.

    Exactly one of ``logits`` and ``probs``; probabilities become log-probabilities
    (what every decomposition uses: softmax of log p is p). ``where`` prefixes each
    message (a file name). Raises ``InputError`` naming the array and what was
    expected: shape, dtype, NaN or inf, probabilities off the simplex, labels out of
    range, an unbalanced draws x seeds grid or a (draw, seed) pair given twice.
    """
    pre = f"{where}: " if where else ""
    if (logits is None) == (probs is None):
        raise InputError(f"{pre}give exactly one of logits and probs, of shape "
                         "(members, examples, classes)")
    name = "logits" if logits is not None else "probs"
    a = _array(logits if logits is not None else probs, f"{pre}{name}")
    if a.ndim != 3 or min(a.shape) < 1:
        raise InputError(f"{pre}{name}: shape {a.shape}; expected (members, examples, classes)"
                         " with each at least 1")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InputError(f"{pre}{name}: dtype {a.dtype}; expected real numbers")
    a = a.astype(np.float64)
    k, n, c = a.shape
    if c < 2:
        raise InputError(f"{pre}{name}: {c} class; expected at least 2")
    bad = ~np.isfinite(a)
    if bad.any():
        m = int(np.flatnonzero(bad.reshape(k, -1).any(1))[0])
        raise InputError(f"{pre}{name}: {int(bad.sum())} values are NaN or inf (first in "
                         f"member {m}); expected finite values")
    if probs is not None:
        if (a < 0).any() or (a > 1).any():
            raise InputError(f"{pre}probs: values outside [0, 1] (min {a.min():.3g}, max "
                             f"{a.max():.3g}); expected probabilities")
        sums = a.sum(-1)
        if not np.allclose(sums, 1.0, atol=1e-4):
            worst = float(np.abs(sums - 1).max())
            raise InputError(f"{pre}probs: rows sum to 1 within {worst:.3g}, not 1e-4; "
                             "expected probabilities over the classes (last axis)")
        with np.errstate(divide="ignore"):
            # log 0 = -inf would make NaN downstream; the smallest normal double is as
            # good as 0 for every term (exp gives it back as 0 to within 1e-308)
            a = np.log(np.maximum(a / sums[..., None], np.finfo(np.float64).tiny))
    if labels is None:
        raise InputError(f"{pre}labels: missing; expected integer labels of shape ({n},)")
    y = _array(labels, f"{pre}labels")
    if y.shape != (n,):
        raise InputError(f"{pre}labels: shape {y.shape}; expected ({n},), one per example")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if not (np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all()
                and (y == np.round(y)).all()):
            raise InputError(f"{pre}labels: dtype {y.dtype}; expected integers")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= c:
        raise InputError(f"{pre}labels: values {y.min()}..{y.max()}; expected 0..{c - 1} "
                         f"({c} classes)")
    d = np.arange(k) if draw is None else _grid_array(draw, "draw", k, pre)
    s = np.zeros(k, np.int64) if seed is None else _grid_array(seed, "seed", k, pre)
    if draw is not None and seed is None:  # seeds numbered within each draw
        s = np.zeros(k, np.int64)
        for v in np.unique(d):
            s[d == v] = np.arange((d == v).sum())
    _, counts = np.unique(d, return_counts=True)
    if len(set(counts.tolist())) != 1:
        raise InputError(f"{pre}draw: draws have {sorted(set(counts.tolist()))} members; "
                         "expected the same number of seeds in every draw (a balanced grid)")
    pairs = np.unique(np.stack([d, s], 1), axis=0)
    if len(pairs) != k:
        raise InputError(f"{pre}seed: {k - len(pairs)} (draw, seed) pairs occur twice; "
                         "expected each member to have its own (draw, seed)")
    return a, y, d, s


def _grid_array(x: Any, name: str, k: int, pre: str) -> np.ndarray:
    a = _array(x, f"{pre}{name}")
    if a.shape != (k,):
        raise InputError(f"{pre}{name}: shape {a.shape}; expected ({k},), one per member")
    if not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{pre}{name}: dtype {a.dtype}; expected integers")
    return a.astype(np.int64)
