"""Datasets with label noise, from any provider (``data.name``).

``generate`` asks the provider (``biasvar.data.providers``) for the clean
examples and adds training-label noise. ``add_label_noise`` replaces each
training label with probability p by a uniform random class of the dataset's
``n_classes``, using the project's own seeded generator: the uniforms and
replacement classes are drawn once per ``noise_seed``, independent of p, so the
noisy sets are nested across noise levels (a label noisy at p = 0.1 is noisy at
0.2 too) and comparisons between noise levels are paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasvar.core.errors import InputError
from biasvar.core.io import atomic_path
from biasvar.core.rng import numpy_generator
from biasvar.data.providers import load_source
from biasvar.data.providers.mnist1d import make_mnist1d  # noqa: F401 - re-exported

DATASET_KEYS = ("x_train", "y_train", "y_train_clean", "noisy", "x_test", "y_test")
# Metadata saved with the arrays. A file written before they existed holds none of
# them and loads as MNIST-1D: inputs (40,), 10 classes.
META_KEYS = ("input_shape", "n_classes", "name", "source", "fingerprint")
LEGACY = {"name": "mnist1d", "n_classes": 10, "source": "", "fingerprint": ""}


@dataclass(frozen=True)
class Dataset:
    """One label-noise level of one provider's examples.

    ``y_train`` is the label members train on (noisy), ``y_train_clean`` the
    provider's label, ``noisy`` marks labels that actually changed (a
    replacement that drew the same class is not noisy). Test labels are clean.
    ``input_shape`` is one input's shape (``x_train.shape[1:]``; left empty it is
    taken from ``x_train``), ``n_classes`` the class count C (labels in [0, C)),
    ``name`` the provider (``data.name``), ``source`` the file or directory read
    and ``fingerprint`` a sha256 of it (both empty for MNIST-1D files written
    before providers existed).
    """

    x_train: np.ndarray  # (n_train, *input_shape) float
    y_train: np.ndarray  # (n_train,) int64
    y_train_clean: np.ndarray  # (n_train,) int64
    noisy: np.ndarray  # (n_train,) bool
    x_test: np.ndarray  # (n_test, *input_shape) float
    y_test: np.ndarray  # (n_test,) int64
    label_noise: float
    input_shape: tuple[int, ...] = ()
    n_classes: int = 10
    name: str = "mnist1d"
    source: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in np.shape(self.x_train)[1:])
        if not self.input_shape:
            object.__setattr__(self, "input_shape", shape)
        elif tuple(self.input_shape) != shape:
            raise ValueError(f"input_shape {self.input_shape} but x_train inputs {shape}")
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)

    def metadata(self) -> dict[str, object]:
        """What the logits file records about the data: provider ``name``, ``input_shape``
        (a list), ``n_classes``, ``source`` path and its sha256 ``fingerprint`` (JSON-ready)."""
        return {"name": self.name, "input_shape": list(self.input_shape),
                "n_classes": self.n_classes, "source": self.source,
                "fingerprint": self.fingerprint}


def add_label_noise(y: np.ndarray, p: float, noise_seed: int,
                    n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Replace each label with probability ``p`` by a class uniform over ``n_classes``.

    ``y`` is (n_train,) int; returns ``(y_noisy, noisy)``, both (n_train,), where
    ``noisy`` marks labels that changed (about ``p (C - 1) / C`` of them). With
    ``n_classes`` 10 the draws are those of every earlier MNIST-1D run.
    """
    rng = numpy_generator(noise_seed, "label_noise")
    u = rng.random(len(y))  # (n_train,) one uniform per example, shared by every p
    replacement = rng.integers(0, n_classes, size=len(y))  # (n_train,)
    replaced = u < p
    y_noisy = np.where(replaced, replacement, y).astype(np.int64)
    return y_noisy, y_noisy != y


def generate(num_samples: int | None, train_split: float, seed: int, label_noise: float,
             noise_seed: int, *, name: str = "mnist1d", root: str | None = None) -> Dataset:
    """Provider ``name``'s examples at one label-noise level (the ``generate`` stage)."""
    src = load_source(name, num_samples, train_split, seed, root)
    y_noisy, noisy = add_label_noise(src.y_train, label_noise, noise_seed, src.n_classes)
    return Dataset(src.x_train, y_noisy, src.y_train, noisy, src.x_test, src.y_test,
                   float(label_noise), src.input_shape, src.n_classes, src.name, src.source,
                   src.fingerprint)


def save_dataset(ds: Dataset, path: str | Path) -> None:
    """Write ``ds`` as an ``.npz`` atomically (arrays and metadata)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, label_noise=np.float64(ds.label_noise),
                 input_shape=np.asarray(ds.input_shape, dtype=np.int64),
                 n_classes=np.int64(ds.n_classes), name=np.str_(ds.name),
                 source=np.str_(ds.source), fingerprint=np.str_(ds.fingerprint),
                 **{k: getattr(ds, k) for k in DATASET_KEYS})


def load_dataset(path: str | Path, label_noise: float | None = None) -> Dataset:
    """Read a dataset written by ``save_dataset``; a corrupted file is named.

    With ``label_noise``, the level the file records must be that one: a
    ``noise-0.15.npz`` that holds another level (copied, renamed, left by a
    variant) is refused rather than read as what its name says. A file without
    metadata (written before providers) loads as MNIST-1D with 10 classes.
    """
    path = Path(path)
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in (*DATASET_KEYS, "label_noise")}
            meta = {k: z[k] for k in META_KEYS if k in z.files}
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
        if (len(got) < 2 if shape[1:] else len(got) != 1) or got[0] != shape[0]:
            raise InputError(f"{path}: array {k} has shape {got}, expected {shape}")
    shape = arrays["x_train"].shape[1:]
    if arrays["x_test"].shape[1:] != shape:
        raise InputError(f"{path}: x_train and x_test have different input shapes")
    try:
        n_classes = int(meta.get("n_classes", LEGACY["n_classes"]))
        recorded_shape = tuple(int(s) for s in meta.get("input_shape", shape))
        info = {k: str(meta.get(k, LEGACY[k])) for k in ("name", "source", "fingerprint")}
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: unreadable metadata ({e})") from e
    if recorded_shape != shape:
        raise InputError(f"{path}: records input_shape {recorded_shape}, but x_train inputs "
                         f"have shape {shape}")
    for k in ("y_train", "y_train_clean", "y_test"):
        a = arrays[k]
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise InputError(f"{path}: array {k} has labels outside [0, {n_classes})")
    recorded = float(arrays.pop("label_noise"))
    if label_noise is not None and recorded != float(label_noise):
        raise InputError(f"{path}: records label_noise {recorded:g}, but is read as the "
                         f"dataset of label_noise {float(label_noise):g} (regenerate it)")
    return Dataset(**arrays, label_noise=recorded, input_shape=shape, n_classes=n_classes,
                   **info)
