"""MNIST-1D with label noise.

``make_mnist1d`` calls ``mnist1d.data.make_dataset`` (never ``get_dataset``,
which downloads and caches a pickle keyed by nothing). ``add_label_noise``
replaces each training label with probability p by a uniform random class,
using the project's own seeded generator: the uniforms and replacement
classes are drawn once per ``noise_seed``, independent of p, so the noisy sets
are nested across noise levels (a label noisy at p = 0.1 is noisy at 0.2 too)
and comparisons between noise levels are paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasvar.core.errors import InputError
from biasvar.core.io import atomic_path
from biasvar.core.rng import numpy_generator

N_CLASSES = 10
DATASET_KEYS = ("x_train", "y_train", "y_train_clean", "noisy", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    """One label-noise level of MNIST-1D.

    ``y_train`` is the label members train on (noisy), ``y_train_clean`` the
    generator's label, ``noisy`` marks labels that actually changed (a
    replacement that drew the same class is not noisy). Test labels are clean.
    """

    x_train: np.ndarray  # (n_train, 40) float64
    y_train: np.ndarray  # (n_train,) int64
    y_train_clean: np.ndarray  # (n_train,) int64
    noisy: np.ndarray  # (n_train,) bool
    x_test: np.ndarray  # (n_test, 40) float64
    y_test: np.ndarray  # (n_test,) int64
    label_noise: float

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)


def make_mnist1d(num_samples: int, train_split: float, seed: int) -> dict[str, np.ndarray]:
    """The raw ``make_dataset`` output for the given size, split and generator seed."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()  # an ObjectView, as make_dataset expects
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    # make_dataset reseeds the global random/numpy.random; our own generators
    # are created after it and never touch global state.
    return make_dataset(args)


def add_label_noise(y: np.ndarray, p: float, noise_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Replace each label with probability ``p`` by a uniform class.

    Returns ``(y_noisy, noisy)`` where ``noisy`` marks labels that changed.
    """
    rng = numpy_generator(noise_seed, "label_noise")
    u = rng.random(len(y))  # (n_train,) one uniform per example, shared by every p
    replacement = rng.integers(0, N_CLASSES, size=len(y))  # (n_train,)
    replaced = u < p
    y_noisy = np.where(replaced, replacement, y).astype(np.int64)
    return y_noisy, y_noisy != y


def generate(num_samples: int, train_split: float, seed: int, label_noise: float,
             noise_seed: int) -> Dataset:
    """MNIST-1D at one label-noise level."""
    raw = make_mnist1d(num_samples, train_split, seed)
    y_clean = np.asarray(raw["y"], dtype=np.int64)
    y_noisy, noisy = add_label_noise(y_clean, label_noise, noise_seed)
    return Dataset(np.asarray(raw["x"]), y_noisy, y_clean, noisy, np.asarray(raw["x_test"]),
                   np.asarray(raw["y_test"], dtype=np.int64), float(label_noise))


def save_dataset(ds: Dataset, path: str | Path) -> None:
    """Write ``ds`` as an ``.npz`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, label_noise=np.float64(ds.label_noise),
                 **{k: getattr(ds, k) for k in DATASET_KEYS})


def load_dataset(path: str | Path, label_noise: float | None = None) -> Dataset:
    """Read a dataset written by ``save_dataset``; a corrupted file is named.

    With ``label_noise``, the level the file records must be that one: a
    ``noise-0.15.npz`` that holds another level (copied, renamed, left by a
    variant) is refused rather than read as what its name says.
    """
    path = Path(path)
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in (*DATASET_KEYS, "label_noise")}
    except FileNotFoundError as e:
        raise InputError(f"{path}: dataset not found") from e
    except KeyError as e:
        raise InputError(f"{path}: dataset lacks array {e}") from e
    except Exception as e:  # zipfile/pickle errors of a truncated or foreign file
        raise InputError(f"{path}: not a readable dataset ({e.__class__.__name__}: {e})") from e
    n, m = len(arrays["y_train"]), len(arrays["y_test"])
    expect = {"x_train": (n, None), "y_train_clean": (n,), "noisy": (n,), "x_test": (m, None)}
    for k, shape in expect.items():
        got = arrays[k].shape
        if len(got) != len(shape) or got[0] != shape[0]:
            raise InputError(f"{path}: array {k} has shape {got}, expected {shape}")
    if arrays["x_train"].shape[1] != arrays["x_test"].shape[1]:
        raise InputError(f"{path}: x_train and x_test have different lengths")
    for k in ("y_train", "y_train_clean", "y_test"):
        a = arrays[k]
        if a.size and (a.min() < 0 or a.max() >= N_CLASSES):
            raise InputError(f"{path}: array {k} has labels outside [0, {N_CLASSES})")
    recorded = float(arrays.pop("label_noise"))
    if label_noise is not None and recorded != float(label_noise):
        raise InputError(f"{path}: records label_noise {recorded:g}, but is read as the "
                         f"dataset of label_noise {float(label_noise):g} (regenerate it)")
    return Dataset(**arrays, label_noise=recorded)
