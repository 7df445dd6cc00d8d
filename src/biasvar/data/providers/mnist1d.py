"""``mnist1d``: MNIST-1D from ``mnist1d.data.make_dataset`` (inputs (40,), 10 classes).

``make_dataset`` is called directly (never ``get_dataset``, which downloads and
caches a pickle keyed by nothing). ``num_samples`` is make_dataset's total
(train + test; it draws ``num_samples // 10`` per class), ``train_split`` its
training fraction, ``seed`` its own seed; ``root`` must be null. Inputs are
make_dataset's float64 values, not normalized.
"""

from __future__ import annotations

import numpy as np

from biasvar.core.io import sha256_arrays
from biasvar.data.providers import Source

NAME = "mnist1d"
N_CLASSES = 10
INPUT_SHAPE = (40,)


def make_mnist1d(num_samples: int, train_split: float, seed: int) -> dict[str, np.ndarray]:
    """The raw ``make_dataset`` output for the given size, split and generator seed."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()  # an ObjectView, as make_dataset expects
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    # make_dataset reseeds the global random/numpy.random; our own generators
    # are created after it and never touch global state.
    return make_dataset(args)


def train_size(num_samples: int | None, train_split: float, seed: int = 0,
               root: str | None = None) -> int:
    """Training-set size exactly as ``make_dataset`` computes it (whole classes first)."""
    n = (int(num_samples) // N_CLASSES) * N_CLASSES
    return int(n * train_split)


def load(num_samples: int | None, train_split: float, seed: int,
         root: str | None = None) -> Source:
    """MNIST-1D: ``x_train`` (n_train, 40) float64, ``y_*`` int64 in [0, 10)."""
    raw = make_mnist1d(int(num_samples), train_split, seed)
    x_train, x_test = np.asarray(raw["x"]), np.asarray(raw["x_test"])
    y_train = np.asarray(raw["y"], dtype=np.int64)
    y_test = np.asarray(raw["y_test"], dtype=np.int64)
    return Source(x_train, y_train, x_test, y_test, N_CLASSES, NAME, "",
                  sha256_arrays(x_train, y_train, x_test, y_test))


def study_data(num_samples: int, data_seed: int, train_split: float = 0.5) -> Source:
    """MNIST-1D as the companion studies read it (pc_bias, erank_depth, spectral_cls,
    collapse): the one place their size, split and seed reach ``make_dataset``.

    The studies train on the first half (``train_split`` 0.5 unless a study sets it)
    and evaluate on the second; the arrays are exactly ``make_dataset``'s.
    """
    return load(num_samples, train_split, data_seed)
