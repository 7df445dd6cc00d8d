"""``arrays``: a user's ``.npz`` at ``data.root`` with ``x_train, y_train, x_test, y_test``.

Any input shape (``x_*`` of shape (n, *input_shape), the same for train and
test), integer labels ``0 ... C-1`` with C = the largest label + 1. Inputs are
used as stored, cast to float32 (float64 is kept), not normalized.
``num_samples`` null keeps everything; an integer keeps
``int(num_samples * train_split)`` training and the rest test examples, drawn
uniformly without replacement (not stratified, seeded by ``seed``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biasvar.core.errors import InputError
from biasvar.data.providers import Source, check_examples, sha256_files, subsample

NAME = "arrays"
KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read(root: str | None, keys: tuple[str, ...] = KEYS) -> dict[str, np.ndarray]:
    if not root:
        raise InputError("data.root: null, expected the path of an .npz with "
                         + ", ".join(KEYS))
    path = Path(root)
    if not path.is_file():
        raise InputError(f"{path}: file not found, expected an .npz with {', '.join(KEYS)}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in KEYS if k not in z.files]
            if missing:
                raise InputError(f"{path}: lacks array {missing[0]}, expected "
                                 f"{', '.join(KEYS)}")
            return {k: np.asarray(z[k]) for k in keys}
    except InputError:
        raise
    except Exception as e:  # not a zip, an object array, a truncated file
        raise InputError(f"{path}: not a readable .npz ({e.__class__.__name__}), expected "
                         f"arrays {', '.join(KEYS)}") from e


def train_size(num_samples: int | None, train_split: float, seed: int = 0,
               root: str | None = None) -> int:
    """``int(num_samples * train_split)``, or (null) the length of the file's ``y_train``."""
    if num_samples is not None:
        return int(num_samples * train_split)
    return len(_read(root, ("y_train",))["y_train"])


def load(num_samples: int | None, train_split: float, seed: int,
         root: str | None = None) -> Source:
    """The user's arrays: ``x_*`` (n, *input_shape) float32/float64, ``y_*`` int64."""
    a = _read(root)
    c = check_examples(root, a["x_train"], a["y_train"], a["x_test"], a["y_test"])
    keep = subsample(num_samples, train_split, seed, len(a["y_train"]), len(a["y_test"]), root)
    if keep is not None:
        for part, idx in (("train", keep[0]), ("test", keep[1])):
            a[f"x_{part}"], a[f"y_{part}"] = a[f"x_{part}"][idx], a[f"y_{part}"][idx]
    x = {k: a[k].astype(np.float64 if a[k].dtype == np.float64 else np.float32)
         for k in ("x_train", "x_test")}
    return Source(x["x_train"], a["y_train"].astype(np.int64), x["x_test"],
                  a["y_test"].astype(np.int64), c, NAME, str(root),
                  sha256_files([Path(root)]))
