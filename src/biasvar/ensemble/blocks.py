"""What a trained block leaves on disk, and reading it back.

``<block dir>/``
- ``logits.npz``   members, draws, seeds, test/train logits ``(members, examples, classes)``
                   float32 and the labels they were scored against
- ``curves.csv``   ``CURVE_COLUMNS``: member, step, then per log step the running
                   minibatch train_loss/train_accuracy, test_loss/test_accuracy and
                   the in-bag and out-of-bag loss and error (see ``METRICS``)
- ``members.json`` the block's identity (``block_info``: label_noise, width, block,
                   params, layout, the dataset (name, input shape, class count) and the
                   dataset and split fingerprints) and, under
                   ``members``, per-member final metrics (``METRICS`` plus
                   n_in_bag, n_oob; ``null`` where undefined)
- ``checkpoints/member-<id>.pt``  each member's reference-module ``state_dict``
- ``dynamics.npz`` the checkpoint steps (``train.checkpoints``, log-spaced): ``steps``
                   (S,), ``test`` logits (S, members, n_test, classes) float32 and each
                   member's scores ``METRICS`` (S, members) at each step (S may be 0)

``load_block`` refuses a block whose files are unreadable, malformed or hold
non-finite logits, naming the file (and the member).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biasvar.core.checks import require_finite_logits
from biasvar.core.errors import InputError
from biasvar.core.io import atomic_dir, check_complete, read_json, sha256_arrays

CURVE_COLUMNS = ("member", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                 "in_bag_loss", "in_bag_error", "oob_loss", "oob_error")
# Per-member scores (train.train_block): at the end (members.json), at every log step
# (curves.csv) and at every checkpoint step (dynamics.npz): loss (mean CE) and accuracy
# over the whole training partition, on the test set, and loss and error on the member's
# in-bag and out-of-bag training examples.
METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy",
           "in_bag_loss", "in_bag_error", "oob_loss", "oob_error")
# Keys every members.json holds (written by ``block_info`` + ``save_block``).
INFO_KEYS = ("label_noise", "width", "block", "params", "layout", "dataset", "split", "members")


def block_dir(root: str | Path, label_noise: float, width: int, block: int) -> Path:
    """The output directory of one train stage (matches dvc.yaml)."""
    return Path(root) / f"noise-{label_noise}" / f"width-{width}" / f"block-{block}"


def checkpoint_name(member: int) -> str:
    return f"member-{member:06d}.pt"


def split_scalars(path: str | Path) -> dict[str, Any]:
    """Every scalar a split file records besides its arrays (method, n_train, and a seed
    or parts if the split stage writes them), as JSON values."""
    out = {}
    with np.load(path) as z:
        for k in z.files:
            try:
                a = z[k]
            except ValueError:  # an object array (pickled): not a plain scalar
                continue
            if a.ndim == 0:
                out[k] = a.item()
    return out


def dataset_identity(dataset) -> dict[str, Any]:
    """What identifies a dataset file's contents: its sizes and the SHA-256 of its inputs,
    test labels, clean and (noisy) training labels, and what the data is
    (``Dataset.metadata()``: provider ``name``, ``input_shape``, ``n_classes``, the
    ``source`` file or directory read and its ``fingerprint``). Recorded by ``train`` in
    each block and by ``collect`` in each logits file, where the report reads the data's
    name and shape; readers recompute it from the dataset they load and refuse a mismatch
    (another ``data.*``, ``data.noise_seed``, label-noise level).
    """
    return {
        "n_train": int(len(dataset.y_train)), "n_test": int(len(dataset.y_test)),
        "x_sha256": sha256_arrays(dataset.x_train, dataset.x_test),
        "y_test_sha256": sha256_arrays(np.asarray(dataset.y_test, np.int64)),
        "y_train_clean_sha256": sha256_arrays(np.asarray(dataset.y_train_clean, np.int64)),
        "y_train_sha256": sha256_arrays(np.asarray(dataset.y_train, np.int64)),
        **dataset.metadata(),
    }


def draw_fingerprints(split) -> dict[str, str]:
    """``{draw: SHA-256 of its training indices}`` of a split (JSON keys are strings)."""
    return {str(int(d)): sha256_arrays(np.asarray(row, np.int64))
            for d, row in zip(split.draws, split.indices, strict=True)}


def block_info(label_noise: float, width: int, block: int, params: dict[str, Any],
               layout: dict[str, Any], dataset, split, split_file: str | Path | None = None
               ) -> dict[str, Any]:
    """What identifies a block, for ``members.json``.

    ``params`` are the producing params (model, train, split method), ``layout``
    the member layout (block_size, seeds_per_draw). The dataset and the split
    are recorded by fingerprint, so that ``collect`` can tell blocks trained on
    other data (``data.*``, ``data.noise_seed``) or another split apart:
    ``dataset``: sizes and SHA-256 of the inputs, the test labels, the clean and
    the (noisy) training labels; ``split``: its scalars (method, n_train, …), its
    draws, the SHA-256 of the whole split and of each draw's indices.
    """
    dataset_id = dataset_identity(dataset)
    draws = np.asarray(split.draws, np.int64)
    indices = np.asarray(split.indices, np.int64)
    scalars = split_scalars(split_file) if split_file is not None else {}
    split_id = {
        **scalars, "method": str(split.method), "n_train": int(split.n_train),
        "draws": draws.tolist(), "sha256": sha256_arrays(draws, indices),
        "draw_sha256": draw_fingerprints(split),
    }
    return {"label_noise": label_noise, "width": width, "block": block, "params": params,
            "layout": layout, "dataset": dataset_id, "split": split_id}


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats (an undefined OOB score) as ``null``: JSON has no NaN."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in row.items()}


def save_block(result, out_dir: str | Path, info: dict[str, Any], y_test: np.ndarray,
               y_train: np.ndarray) -> None:
    """Write a ``BlockResult`` into ``out_dir`` atomically (the whole directory at once)."""
    import pandas as pd
    import torch

    spec = result.spec
    with atomic_dir(out_dir) as tmp:
        np.savez(tmp / "logits.npz",
                 members=np.asarray(spec.members, np.int64),
                 draws=np.asarray(spec.draws, np.int64),
                 seeds=np.asarray(spec.seeds, np.int64),
                 test=result.test_logits, train=result.train_logits,
                 test_labels=np.asarray(y_test, np.int64),
                 train_labels=np.asarray(y_train, np.int64))
        c = result.curves
        n_logs, n_members = c["train_loss"].shape
        curves = pd.DataFrame({
            "member": np.tile(np.asarray(spec.members), n_logs),  # row-major (logs, members)
            "step": np.repeat(c["step"], n_members),
            **{k: c[k].reshape(-1) for k in CURVE_COLUMNS[2:]},
        })
        curves.to_csv(tmp / "curves.csv", index=False, float_format="%.6g")
        _save_dynamics(tmp / "dynamics.npz", result, len(spec.members),
                       result.test_logits.shape[1:])
        (tmp / "checkpoints").mkdir()
        for m, state in zip(spec.members, result.states, strict=True):
            torch.save(state, tmp / "checkpoints" / checkpoint_name(m))
        import json

        # No wall time or device here: the block's outputs must be byte-identical
        # when nothing changed (DVC compares hashes); the stage prints both.
        (tmp / "members.json").write_text(json.dumps(
            {**info, "members": [_json_safe(r) for r in result.metrics]}, indent=2,
            allow_nan=False) + "\n")


def _save_dynamics(path: Path, result, n_members: int, shape: tuple[int, ...]) -> None:
    c = result.checkpoints or {}
    steps = np.asarray(c.get("step", np.zeros(0)), np.int64)
    np.savez(path, steps=steps,
             test=np.asarray(c.get("test", np.zeros((0, n_members, *shape))), np.float32),
             **{k: np.asarray(c.get(k, np.zeros((0, n_members))), np.float64)
                for k in METRICS})


@dataclass(frozen=True)
class BlockDynamics:
    """A block's checkpoint logits and scores (``dynamics.npz``)."""

    steps: np.ndarray  # (S,) ascending
    test: np.ndarray  # (S, M, n_test, C) float32
    scores: dict[str, np.ndarray]  # METRICS -> (S, M)


def load_dynamics(path: str | Path, members: np.ndarray, n_test: int,
                  n_classes: int) -> BlockDynamics:
    """Read ``<block>/dynamics.npz``, checking its shapes against the block's ``members``
    and final test logits (``n_test``, ``n_classes``) and that every logit is finite; a
    missing, malformed or non-finite file is named (with the step and member)."""
    f = Path(path) / "dynamics.npz"
    check_complete(f)
    try:
        with np.load(f) as z:
            arrays = {k: z[k] for k in ("steps", "test", *METRICS)}
    except FileNotFoundError as e:
        raise InputError(f"{f}: not found (trained by an older version? retrain the "
                         "block)") from e
    except KeyError as e:
        raise InputError(f"{f}: lacks array {e}") from e
    except Exception as e:
        raise InputError(f"{f}: not readable ({e.__class__.__name__}: {e})") from e
    steps, m = arrays["steps"], len(members)
    if steps.ndim != 1 or steps.dtype.kind not in "iu" or np.any(np.diff(steps) <= 0) or (
            len(steps) and steps[0] < 1):
        raise InputError(f"{f}: 'steps' must be ascending positive integers, found "
                         f"{steps.tolist()}")
    s = len(steps)
    want = (s, m, n_test, n_classes)
    if arrays["test"].shape != want or arrays["test"].dtype != np.float32:
        raise InputError(f"{f}: test logits have shape {arrays['test'].shape} and type "
                         f"{arrays['test'].dtype}; expected float32 {want} (steps, members, "
                         "test examples, classes)")
    for k in METRICS:
        if arrays[k].shape != (s, m):
            raise InputError(f"{f}: {k!r} has shape {arrays[k].shape}, expected {(s, m)}")
    for i, step in enumerate(steps.tolist()):
        require_finite_logits(arrays["test"][i], members, f"{f} (step {step})", "test")
    return BlockDynamics(steps, arrays["test"], {k: arrays[k] for k in METRICS})


@dataclass(frozen=True)
class BlockLogits:
    members: np.ndarray  # (M,)
    draws: np.ndarray  # (M,)
    seeds: np.ndarray  # (M,)
    test: np.ndarray  # (M, n_test, C) float32
    train: np.ndarray  # (M, n_train, C) float32
    test_labels: np.ndarray  # (n_test,)
    train_labels: np.ndarray  # (n_train,)
    info: dict[str, Any]


def load_block(path: str | Path) -> BlockLogits:
    """Read a block's logits and info; a missing or corrupted file is named."""
    path = Path(path)
    f = path / "logits.npz"
    check_complete(f)
    keys = ("members", "draws", "seeds", "test", "train", "test_labels", "train_labels")
    try:
        with np.load(f) as z:
            arrays = {k: z[k] for k in keys}
    except FileNotFoundError as e:
        raise InputError(f"{f}: not found (was this block trained?)") from e
    except KeyError as e:
        raise InputError(f"{f}: lacks array {e}") from e
    except Exception as e:
        raise InputError(f"{f}: not readable ({e.__class__.__name__}: {e})") from e
    m = len(arrays["members"])
    for key in ("members", "draws", "seeds"):
        if arrays[key].shape != (m,) or arrays[key].dtype.kind not in "iu":
            raise InputError(f"{f}: array {key!r} has shape {arrays[key].shape} and type "
                             f"{arrays[key].dtype}, expected {m} integers")
    for part in ("test", "train"):
        a, labels = arrays[part], arrays[f"{part}_labels"]
        if a.ndim != 3 or a.shape[0] != m or a.shape[1] != len(labels):
            raise InputError(f"{f}: {part} logits have shape {a.shape} for {m} members and "
                             f"{len(labels)} examples")
        if a.dtype != np.float32:
            raise InputError(f"{f}: {part} logits are {a.dtype}, expected float32")
    info = read_info(path / "members.json", arrays["members"])
    where = (f"{f} (label_noise {info['label_noise']}, width {info['width']}, "
             f"block {info['block']})")
    for part in ("test", "train"):
        require_finite_logits(arrays[part], arrays["members"], where, part)
    return BlockLogits(**arrays, info=info)


def read_info(path: str | Path, members: np.ndarray | None = None) -> dict[str, Any]:
    """Read a block's ``members.json``, checking its structure; errors name the file.

    ``members``: the member ids its ``members`` list must hold, in order.
    """
    path = Path(path)
    info = read_json(path)
    if not isinstance(info, dict):
        raise InputError(f"{path}: expected a JSON object with keys {', '.join(INFO_KEYS)}; "
                         f"found a JSON {type(info).__name__}")
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise InputError(f"{path}: lacks key{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))} (written by an older version or "
                         "edited? retrain the block)")
    rows = info["members"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "member" in r
                                             for r in rows):
        raise InputError(f"{path}: 'members' must be a list of objects with a 'member' key")
    if members is not None and [r["member"] for r in rows] != np.asarray(members).tolist():
        raise InputError(f"{path}: lists members {[r['member'] for r in rows]}, but "
                         f"logits.npz holds {np.asarray(members).tolist()}")
    for key, kind in (("params", dict), ("layout", dict), ("dataset", dict), ("split", dict)):
        if not isinstance(info[key], kind):
            raise InputError(f"{path}: {key!r} must be a JSON object, found "
                             f"{type(info[key]).__name__}")
    return info


def load_curves(path: str | Path, members: np.ndarray) -> Any:
    """Read a block's ``curves.csv`` as a DataFrame; wrong columns or members are named."""
    import pandas as pd

    f = Path(path) / "curves.csv"
    try:
        c = pd.read_csv(f)
    except FileNotFoundError as e:
        raise InputError(f"{f}: not found (was this block trained?)") from e
    except Exception as e:
        raise InputError(f"{f}: not a readable CSV ({e.__class__.__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from e
    if list(c.columns) != list(CURVE_COLUMNS):
        raise InputError(f"{f}: columns are {list(c.columns)}, expected {list(CURVE_COLUMNS)}")
    for col in CURVE_COLUMNS:
        if not pd.api.types.is_numeric_dtype(c[col]):
            raise InputError(f"{f}: column {col!r} is not numeric")
    got = np.unique(c["member"].to_numpy())
    if not np.array_equal(got, np.unique(members)):
        raise InputError(f"{f}: holds members {got.tolist()}, logits.npz holds "
                         f"{np.asarray(members).tolist()}")
    return c
