"""``cifar10`` / ``cifar100``: the python-pickle layout in a local directory ``data.root``.

CIFAR-10 reads ``data_batch_1`` ... ``data_batch_5`` (training) and
``test_batch``, labels ``b"labels"``; CIFAR-100 reads ``train`` and ``test``,
labels ``b"fine_labels"`` (100 classes). Each file is a pickled dict whose
``b"data"`` is uint8 of shape (N, 3072), channel-major (3 x 32 x 32). Images are
returned as float32 (N, 3, 32, 32) in [0, 1]: bytes divided by 255, no
per-channel mean/std normalization (float32: 50000 float64 images take 1.2 GB).
``num_samples`` null keeps everything; an integer keeps
``int(num_samples * train_split)`` training and the rest test images, drawn
uniformly without replacement (not stratified, seeded by ``seed``). Nothing is
downloaded: a missing file is an ``InputError`` naming it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from biasvar.core.errors import InputError
from biasvar.data.providers import Source, check_examples, sha256_files, subsample

INPUT_SHAPE = (3, 32, 32)
# name -> (training files, test files, label key, classes)
LAYOUT = {
    "cifar10": (tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                b"labels", 10),
    "cifar100": (("train",), ("test",), b"fine_labels", 100),
}


def _read(path: Path, label_key: bytes, images: bool = True) -> tuple[np.ndarray | None,
                                                                     np.ndarray]:
    """One pickled batch: ``(data (N, 3, 32, 32) uint8 or None, labels (N,))``."""
    if not path.is_file():
        raise InputError(f"{path}: CIFAR file not found, expected the python-pickle layout "
                         "(nothing is downloaded)")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # a truncated or foreign file
        raise InputError(f"{path}: not a pickled CIFAR batch ({e.__class__.__name__})") from e
    if not isinstance(d, dict):
        raise InputError(f"{path}: holds a {type(d).__name__}, expected a pickled dict")
    for key in (b"data", label_key):
        if key not in d:
            raise InputError(f"{path}: lacks key {key!r}, expected {b'data'!r} and "
                             f"{label_key!r}")
    labels = np.asarray(d[label_key])
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise InputError(f"{path}: {label_key!r} has dtype {labels.dtype} and shape "
                         f"{labels.shape}, expected a list of integer labels")
    data = np.asarray(d[b"data"]) if images else None
    if images and (data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072
                   or len(data) != len(labels)):
        raise InputError(f"{path}: {b'data'!r} has dtype {data.dtype} and shape {data.shape}, "
                         f"expected uint8 of shape ({len(labels)}, 3072)")
    return (data.reshape(-1, *INPUT_SHAPE) if images else None), labels.astype(np.int64)


def _files(name: str, root: str | None) -> tuple[list[Path], list[Path], bytes, int]:
    if not root:
        raise InputError(f"data.root: null, expected the directory of the {name} files")
    train, test, key, c = LAYOUT[name]
    root_path = Path(root)
    if not root_path.is_dir():
        raise InputError(f"{root_path}: {name} directory not found, expected "
                         f"{', '.join(train + test)} in it (nothing is downloaded)")
    return [root_path / f for f in train], [root_path / f for f in test], key, c


def _load_all(paths: list[Path], key: bytes, images: bool):
    parts = [_read(p, key, images) for p in paths]
    y = np.concatenate([p[1] for p in parts])
    x = np.concatenate([p[0] for p in parts]) if images else None
    return x, y


def train_size(name: str, num_samples: int | None, train_split: float, seed: int = 0,
               root: str | None = None) -> int:
    """``int(num_samples * train_split)``, or (null) the labels in the training files."""
    if num_samples is not None:
        return int(num_samples * train_split)
    train, _, key, _ = _files(name, root)
    return len(_load_all(train, key, images=False)[1])


def load(name: str, num_samples: int | None, train_split: float, seed: int,
         root: str | None = None) -> Source:
    """CIFAR-10/100: ``x_*`` (n, 3, 32, 32) float32 in [0, 1], ``y_*`` int64."""
    train, test, key, c = _files(name, root)
    x_train, y_train = _load_all(train, key, images=True)
    x_test, y_test = _load_all(test, key, images=True)
    check_examples(root, x_train, y_train, x_test, y_test, c)
    keep = subsample(num_samples, train_split, seed, len(y_train), len(y_test), root)
    if keep is not None:
        x_train, y_train = x_train[keep[0]], y_train[keep[0]]
        x_test, y_test = x_test[keep[1]], y_test[keep[1]]
    # uint8 -> [0, 1] after subsampling: only the kept images are converted.
    x_train = x_train.astype(np.float32) / np.float32(255)
    x_test = x_test.astype(np.float32) / np.float32(255)
    return Source(x_train, y_train, x_test, y_test, c, name, str(root),
                  sha256_files(train + test))
