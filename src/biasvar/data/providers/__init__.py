"""Data providers: where a dataset's examples come from (``data.name``).

A provider turns ``data.*`` (size, split, seed, ``root``) into a ``Source``: the
train/test arrays, the input shape, the number of classes and the metadata the
logits file records (provider name, source path, fingerprint). Label noise is
not a provider's business: ``dataset.generate`` adds it to any provider's
training labels.

Providers, one module each:

- ``mnist1d``: ``mnist1d.data.make_dataset`` (the default; inputs (40,), 10 classes);
- ``digits``: scikit-learn's bundled 8x8 digits (1797 images), inputs (1, 8, 8);
- ``cifar10`` / ``cifar100``: the python-pickle layout in a local directory
  ``data.root``, inputs (3, 32, 32), 10 / 100 (fine) classes;
- ``arrays``: a user's ``.npz`` at ``data.root`` (any input shape, labels 0 ... C-1).

Nothing is ever downloaded. A missing or malformed file raises one
``InputError`` that names the path and what was expected, before any training.

Adding a provider is one new module with a ``NAME``, a ``load(num_samples,
train_split, seed, root) -> Source`` and a ``train_size(...) -> int`` (the
``split`` stage's training-set size, computed without building the inputs when
it can), plus its name in ``PROVIDER_NAMES`` below.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from biasvar.core.errors import InputError

# The choices of ``data.name``; each is the module biasvar.data.providers.<name>
# (cifar10 and cifar100 share ``cifar``). Kept as plain strings so that the
# params model can list them without importing any provider.
PROVIDER_NAMES = ("mnist1d", "digits", "cifar10", "cifar100", "arrays")
FILE_PROVIDERS = ("cifar10", "cifar100", "arrays")  # need data.root
_MODULES = {"cifar10": "cifar", "cifar100": "cifar"}


@dataclass(frozen=True)
class Source:
    """One provider's examples before label noise.

    ``x_*`` are float arrays of shape ``(n, *input_shape)``; ``y_*`` int64 class
    indices in ``[0, n_classes)``. ``source`` is the file or directory read
    (empty for generated data), ``fingerprint`` a sha256 of what was read (the
    files' bytes, or the generated arrays), so a changed file changes the
    dataset written by ``generate``.
    """

    x_train: np.ndarray  # (n_train, *input_shape)
    y_train: np.ndarray  # (n_train,) int64
    x_test: np.ndarray  # (n_test, *input_shape)
    y_test: np.ndarray  # (n_test,) int64
    n_classes: int
    name: str
    source: str = ""
    fingerprint: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input, e.g. ``(40,)`` or ``(3, 32, 32)``."""
        return tuple(int(s) for s in self.x_train.shape[1:])


def provider(name: str) -> ModuleType:
    """The module of provider ``name`` (one of ``PROVIDER_NAMES``)."""
    if name not in PROVIDER_NAMES:
        raise ValueError(f"unknown data provider {name!r}; one of {', '.join(PROVIDER_NAMES)}")
    return importlib.import_module(f"{__name__}.{_MODULES.get(name, name)}")


def load_source(name: str, num_samples: int | None, train_split: float, seed: int,
                root: str | None = None) -> Source:
    """The examples of provider ``name`` for the given ``data.*`` values."""
    mod = provider(name)
    if name in _MODULES:
        return mod.load(name, num_samples, train_split, seed, root)
    return mod.load(num_samples, train_split, seed, root)


def train_size(name: str, num_samples: int | None, train_split: float, seed: int = 0,
               root: str | None = None) -> int:
    """Training-set size of provider ``name``: what ``split`` draws indices from.

    Exact, and cheap where it can be (a formula for ``mnist1d``, ``digits`` and a
    given ``num_samples``); file providers with ``num_samples: null`` read the
    labels of their file, so a missing file fails here too, before any training.
    """
    mod = provider(name)
    if name in _MODULES:
        return mod.train_size(name, num_samples, train_split, seed, root)
    return mod.train_size(num_samples, train_split, seed, root)


# ---------------------------------------------------------------- shared helpers
def sha256_files(paths: list[Path]) -> str:
    """sha256 over the bytes of ``paths`` in order (each name and length included)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def check_examples(path: str | Path, x_train: np.ndarray, y_train: np.ndarray,
                   x_test: np.ndarray, y_test: np.ndarray,
                   n_classes: int | None = None) -> int:
    """Validate a file's arrays; returns the class count C (``n_classes`` or max label + 1).

    One ``InputError`` naming ``path`` and the field: inputs that are not numeric
    or hold NaN/inf, train and test inputs of different shapes, labels that are
    not integers, not one per input or outside ``[0, C)``.
    """
    for k, x in (("x_train", x_train), ("x_test", x_test)):
        if x.dtype.kind not in "biuf" or x.ndim < 2:
            raise InputError(f"{path}: {k} has dtype {x.dtype} and shape {x.shape}, expected "
                             "numeric inputs of shape (n, *input_shape)")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise InputError(f"{path}: {k} holds NaN or infinite inputs")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InputError(f"{path}: x_train inputs have shape {x_train.shape[1:]} but x_test "
                         f"inputs {x_test.shape[1:]}, expected equal input shapes")
    for k, y, x in (("y_train", y_train, x_train), ("y_test", y_test, x_test)):
        if y.dtype.kind not in "iu":
            raise InputError(f"{path}: {k} has dtype {y.dtype}, expected integer labels")
        if y.shape != x.shape[:1]:
            raise InputError(f"{path}: {k} has shape {y.shape}, expected "
                             f"({x.shape[0]},), one label per input")
    if len(y_train) == 0 or len(y_test) == 0:
        raise InputError(f"{path}: {len(y_train)} train / {len(y_test)} test examples, "
                         "expected both non-empty")
    c = n_classes if n_classes is not None else int(max(y_train.max(), y_test.max())) + 1
    for k, y in (("y_train", y_train), ("y_test", y_test)):
        if y.min() < 0 or y.max() >= c:
            raise InputError(f"{path}: {k} has labels outside [0, {c}), expected 0 ... {c - 1}")
    if c < 2:
        raise InputError(f"{path}: labels hold 1 class, expected at least 2")
    return c


def subsample(num_samples: int | None, train_split: float, seed: int, n_train: int,
              n_test: int, path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices kept from a file's train and test sets; None keeps everything.

    ``num_samples`` examples in all: ``int(num_samples * train_split)`` drawn from
    the file's training set and the rest from its test set, each uniformly
    without replacement (not stratified), seeded by ``seed``, returned sorted so
    the kept examples keep the file's order.
    """
    if num_samples is None:
        return None
    k_train = int(num_samples * train_split)
    k_test = num_samples - k_train
    if k_train > n_train or k_test > n_test:
        raise InputError(f"{path}: holds {n_train} train / {n_test} test examples, expected "
                         f"at least {k_train} / {k_test} (data.num_samples {num_samples} x "
                         f"data.train_split {train_split:g})")
    from biasvar.core.rng import numpy_generator

    rng = numpy_generator(seed, "subsample")
    return (np.sort(rng.choice(n_train, k_train, replace=False)),
            np.sort(rng.choice(n_test, k_test, replace=False)))
