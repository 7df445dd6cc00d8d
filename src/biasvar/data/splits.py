"""Each draw's training-set indices.

A draw's indices depend only on ``(split seed, method, draw, n_train[, K])``,
never on the width, the label-noise level or which block asks for them, so
draw d is the same resample everywhere (paired comparisons across the sweep).

- ``bootstrap``: n_train indices sampled with replacement (Neal; Chen).
- ``disjoint``: one seeded permutation cut into K equal parts; draw d takes
  part d (Yang et al.); leftover ``n_train mod K`` examples are unused.
- ``half``: n_train // 2 distinct indices drawn without replacement, independently
  per draw (half-sampling, "subagging" with m = n/2; Buja & Stuetzle 2006): every
  member fits as many distinct examples as a bootstrap of the smaller set would
  only nominally hold, and each exactly once (no duplicated, double-weighted
  examples). Draws still differ, so Neal's sampling variance is defined.
- ``full``: every draw is the whole training set; only seeds differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasvar.core.errors import InputError
from biasvar.core.io import atomic_path
from biasvar.core.rng import numpy_generator

METHODS = ("bootstrap", "disjoint", "full", "half")


def draw_indices(method: str, n_train: int, draw: int, seed: int,
                 parts: int | None = None) -> np.ndarray:
    """Training indices of one draw, as int64, shape ``(n_draw,)``."""
    if method == "bootstrap":
        return numpy_generator(seed, "bootstrap", draw).integers(0, n_train, size=n_train)
    if method == "full":
        return np.arange(n_train, dtype=np.int64)
    if method == "half":
        perm = numpy_generator(seed, "half", draw).permutation(n_train)
        return np.sort(perm[: n_train // 2]).astype(np.int64)
    if method == "disjoint":
        if parts is None or not 0 <= draw < parts:
            raise ValueError(f"disjoint split needs 0 <= draw < parts, got {draw}, {parts}")
        perm = numpy_generator(seed, "disjoint").permutation(n_train)
        size = n_train // parts
        return np.sort(perm[draw * size:(draw + 1) * size])
    raise ValueError(f"unknown split method {method!r}; allowed: {', '.join(METHODS)}")


@dataclass(frozen=True)
class Split:
    """The draws one block needs: ``indices[i]`` belongs to ``draws[i]``."""

    draws: np.ndarray  # (n_draws,) int64
    indices: np.ndarray  # (n_draws, n_draw) int64
    method: str
    n_train: int
    seed: int = -1  # split.seed (-1: not recorded); collect compares it across blocks
    parts: int = 0  # K of a disjoint split (0: not disjoint)

    def for_draw(self, draw: int) -> np.ndarray:
        row = np.flatnonzero(self.draws == draw)
        if len(row) != 1:
            raise KeyError(f"draw {draw} is not in this split (has {self.draws.tolist()})")
        return self.indices[row[0]]


def make_split(method: str, n_train: int, draws: list[int], seed: int,
               parts: int | None = None) -> Split:
    """Indices for ``draws`` (sorted, distinct)."""
    draws_arr = np.array(sorted(set(draws)), dtype=np.int64)
    rows = [draw_indices(method, n_train, int(d), seed, parts) for d in draws_arr]
    return Split(draws_arr, np.stack(rows).astype(np.int64), method, n_train, int(seed),
                 int(parts or 0) if method == "disjoint" else 0)


def save_split(split: Split, path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, draws=split.draws, indices=split.indices, method=np.str_(split.method),
                 n_train=np.int64(split.n_train), seed=np.int64(split.seed),
                 parts=np.int64(split.parts))


def load_split(path: str | Path) -> Split:
    """Read a split file; a corrupted or inconsistent one is named."""
    path = Path(path)
    try:
        with np.load(path) as z:
            draws, indices = z["draws"], z["indices"]
            method, n_train = str(z["method"]), int(z["n_train"])
            seed = int(z["seed"]) if "seed" in z.files else -1
            parts = int(z["parts"]) if "parts" in z.files else 0
    except FileNotFoundError as e:
        raise InputError(f"{path}: split not found") from e
    except Exception as e:
        raise InputError(f"{path}: not a readable split ({e.__class__.__name__}: {e})") from e
    if indices.ndim != 2 or len(draws) != len(indices):
        raise InputError(f"{path}: indices have shape {indices.shape} for {len(draws)} draws")
    if indices.size and (indices.min() < 0 or indices.max() >= n_train):
        raise InputError(f"{path}: indices outside [0, {n_train})")
    return Split(draws, indices, method, n_train, seed, parts)


def split_file(directory: str | Path, block: int) -> Path:
    """The split stage's file of ``block`` (``split@<block>`` in dvc.yaml)."""
    return Path(directory) / f"block-{block}.npz"


def load_block_splits(directory: str | Path, blocks) -> dict[int, Split]:
    """The split files of exactly the blocks params list (never a glob of ``directory``:
    a file left by an earlier variant must not change the result); a missing one is
    named."""
    from biasvar.core.errors import ParamError

    if not isinstance(blocks, (list, tuple)) or not blocks or not all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in blocks):
        raise ParamError("ensemble.blocks", blocks,
                         "a non-empty list of distinct block ids (integers >= 0)")
    return {int(b): load_split(split_file(directory, b)) for b in sorted(set(blocks))}


def in_bag_indices(splits) -> dict[int, np.ndarray]:
    """Each draw's distinct training indices: ``{draw: (n_in_bag,)}``, from ``Split``
    objects or split file paths."""
    out: dict[int, np.ndarray] = {}
    for f in splits:
        s = f if isinstance(f, Split) else load_split(f)
        out.update({int(d): np.unique(s.for_draw(int(d))) for d in s.draws})
    return out
