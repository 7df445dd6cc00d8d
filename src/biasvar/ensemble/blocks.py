"""What a trained block leaves on disk, and reading it back.

``<block dir>/``
- ``logits.npz``   members, draws, seeds, test/train logits ``(members, examples, classes)``
                   float32 and the labels they were scored against
- ``curves.csv``   member, step, train_loss, train_accuracy, test_loss, test_accuracy
- ``members.json`` producing params and per-member final metrics
- ``checkpoints/member-<id>.pt``  each member's reference-module ``state_dict``
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biasvar.core.errors import InputError
from biasvar.core.io import atomic_dir, read_json

CURVE_COLUMNS = ("member", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


def block_dir(root: str | Path, label_noise: float, width: int, block: int) -> Path:
    """The output directory of one train stage (matches dvc.yaml)."""
    return Path(root) / f"noise-{label_noise}" / f"width-{width}" / f"block-{block}"


def checkpoint_name(member: int) -> str:
    return f"member-{member:06d}.pt"


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
        (tmp / "checkpoints").mkdir()
        for m, state in zip(spec.members, result.states, strict=True):
            torch.save(state, tmp / "checkpoints" / checkpoint_name(m))
        import json

        # No wall time or device here: the block's outputs must be byte-identical
        # when nothing changed (DVC compares hashes); the stage prints both.
        (tmp / "members.json").write_text(json.dumps(
            {**info, "members": result.metrics}, indent=2) + "\n")


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
    for part in ("test", "train"):
        a, labels = arrays[part], arrays[f"{part}_labels"]
        if a.ndim != 3 or a.shape[0] != m or a.shape[1] != len(labels):
            raise InputError(f"{f}: {part} logits have shape {a.shape} for {m} members and "
                             f"{len(labels)} examples")
        if a.dtype != np.float32:
            raise InputError(f"{f}: {part} logits are {a.dtype}, expected float32")
    info = read_json(path / "members.json")
    return BlockLogits(**arrays, info=info)
