"""``digits``: scikit-learn's bundled 8x8 digits (1797 images, 10 classes, no download).

Images are (1, 8, 8) float64 in [0, 1]: sklearn's 0 ... 16 grey levels divided
by 16 (the only normalization). A seeded permutation (``seed``) of all 1797
images keeps the first ``num_samples`` (null: all) and puts the first
``int(n * train_split)`` of those in the training set; the split is uniform,
not stratified. ``root`` must be null.
"""

from __future__ import annotations

import numpy as np

from biasvar.core.io import sha256_arrays
from biasvar.data.providers import Source

NAME = "digits"
N_CLASSES = 10
N_IMAGES = 1797
INPUT_SHAPE = (1, 8, 8)


def _kept(num_samples: int | None) -> int:
    return N_IMAGES if num_samples is None else min(int(num_samples), N_IMAGES)


def train_size(num_samples: int | None, train_split: float, seed: int = 0,
               root: str | None = None) -> int:
    """``int(n * train_split)`` of the ``n`` images kept."""
    return int(_kept(num_samples) * train_split)


def load(num_samples: int | None, train_split: float, seed: int,
         root: str | None = None) -> Source:
    """The digits: ``x_*`` (n, 1, 8, 8) float64 in [0, 1], ``y_*`` int64 in [0, 10)."""
    from sklearn.datasets import load_digits

    from biasvar.core.rng import numpy_generator

    d = load_digits()
    x = (np.asarray(d.images, dtype=np.float64) / 16.0)[:, None]  # (1797, 1, 8, 8)
    y = np.asarray(d.target, dtype=np.int64)
    order = numpy_generator(seed, "digits_split").permutation(len(y))[:_kept(num_samples)]
    n_train = train_size(num_samples, train_split)
    tr, te = order[:n_train], order[n_train:]
    out = (x[tr], y[tr], x[te], y[te])
    return Source(*out, N_CLASSES, NAME, "sklearn.datasets.load_digits", sha256_arrays(*out))
