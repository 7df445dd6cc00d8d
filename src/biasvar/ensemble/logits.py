"""The logits Parquet dataset: build it from blocks, read configs back densely.

The dataset is a directory with one file per config,
``noise-<label_noise>_width-<width>.parquet``, each in the ``schema.LOGITS``
long layout (one row per member, partition, example, class), sorted. Dense
reads reshape the ``logit`` column straight into ``(members, examples,
classes)`` after checking, vectorized, that the key columns form exactly that
grid: no Python loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from biasvar.core.errors import InputError
from biasvar.core.schema import LOGITS, PARTITIONS, read_table, write_table


def config_file(root: str | Path, label_noise: float, width: int) -> Path:
    return Path(root) / f"noise-{label_noise}_width-{width}.parquet"


def logits_table(label_noise: float, width: int, members: np.ndarray, draws: np.ndarray,
                 seeds: np.ndarray, partitions: dict[str, tuple[np.ndarray, np.ndarray]]
                 ) -> pa.Table:
    """The long table of one config.

    ``partitions[name] = (logits (M, N, C), labels (N,))``; rows come out sorted
    by member, partition, example, class because they are laid out in exactly
    that nesting order (members must be ascending).
    """
    members = np.asarray(members)
    if np.any(np.diff(members) <= 0):
        raise ValueError("members must be strictly ascending")
    n_members = len(members)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in LOGITS.arrow.names}
    # Per member: test rows then train rows ('test' < 'train'). Build the
    # (member, partition) blocks with broadcasting, then interleave by member.
    per_member_rows = sum(part[0].shape[1] * part[0].shape[2] for part in partitions.values())
    part_blocks = []
    for name in PARTITIONS:
        if name not in partitions:
            continue
        logits, labels = partitions[name]
        _, n, c = logits.shape
        part_blocks.append({
            "partition": np.full(n * c, name, dtype=object),
            "example": np.repeat(np.arange(n, dtype=np.int32), c),
            "label": np.repeat(np.asarray(labels, dtype=np.int16), c),
            "class": np.tile(np.arange(c, dtype=np.int16), n),
            "logit": logits.reshape(n_members, n * c).astype(np.float32),
        })
    # (rows per member,) templates shared by every member
    template = {k: np.concatenate([b[k] for b in part_blocks])
                for k in ("partition", "example", "label", "class")}
    logit = np.concatenate([b["logit"] for b in part_blocks], axis=1).reshape(-1)
    n_rows = n_members * per_member_rows
    cols = {
        "label_noise": np.full(n_rows, label_noise, dtype=np.float32),
        "width": np.full(n_rows, width, dtype=np.int32),
        "member": np.repeat(members.astype(np.int32), per_member_rows),
        "draw": np.repeat(np.asarray(draws, dtype=np.int32), per_member_rows),
        "seed": np.repeat(np.asarray(seeds, dtype=np.int32), per_member_rows),
        "partition": np.tile(template["partition"], n_members),
        "example": np.tile(template["example"], n_members),
        "label": np.tile(template["label"], n_members),
        "class": np.tile(template["class"], n_members),
        "logit": logit,
    }
    arrays = [pa.array(cols[f.name], type=f.type) for f in LOGITS.arrow]
    return pa.Table.from_arrays(arrays, schema=LOGITS.arrow)


def write_config(root: str | Path, label_noise: float, width: int, table: pa.Table,
                 params: dict[str, Any]) -> Path:
    """Write one config's table (validated) into the dataset directory."""
    path = config_file(root, label_noise, width)
    write_table(path, table, LOGITS, params)
    return path


def collect(members_root: str | Path, out_dir: str | Path, label_noise: list[float],
            widths: list[int], blocks: list[int], block_members) -> dict[str, Any]:
    """Merge the blocks that params list into the logits dataset plus member tables.

    ``block_members(block)`` gives the member ids a block must hold. Only the
    listed blocks are read (not whatever lies on disk); a block whose members
    or producing params disagree with the others is named. Writes, under
    ``out_dir``: ``logits/`` (one Parquet file per config), ``members.csv``
    (final metrics per member) and ``curves.csv`` (training curves).
    Returns a small summary for logging.
    """
    import pandas as pd

    from biasvar.core.io import atomic_dir
    from biasvar.ensemble.blocks import block_dir, load_block

    out_dir = Path(out_dir)
    member_rows, curve_frames = [], []
    reference_params: tuple[Path, Any] | None = None
    with atomic_dir(out_dir) as tmp:
        for p in label_noise:
            for w in widths:
                parts = []
                for b in sorted(blocks):
                    d = block_dir(members_root, p, w, b)
                    blk = load_block(d)
                    want = np.asarray(block_members(b))
                    if not np.array_equal(blk.members, want):
                        raise InputError(f"{d}: holds members {blk.members.tolist()}, params "
                                         f"say block {b} is {want.tolist()} (retrain it)")
                    prm = blk.info.get("params")
                    if reference_params is None:
                        reference_params = (d, prm)
                    elif prm != reference_params[1]:
                        raise InputError(f"{d}: trained with params {prm}, but "
                                         f"{reference_params[0]} with {reference_params[1]}")
                    parts.append(blk)
                    for row in blk.info["members"]:
                        member_rows.append({"label_noise": p, "width": w, "block": b, **row})
                    c = pd.read_csv(d / "curves.csv")
                    c.insert(0, "width", w)
                    c.insert(0, "label_noise", p)
                    curve_frames.append(c)
                cat = {k: np.concatenate([getattr(x, k) for x in parts])
                       for k in ("members", "draws", "seeds", "test", "train")}
                table = logits_table(p, w, cat["members"], cat["draws"], cat["seeds"], {
                    "test": (cat["test"], parts[0].test_labels),
                    "train": (cat["train"], parts[0].train_labels)})
                write_config(tmp / "logits", p, w, table,
                             {"label_noise": p, "width": w, **(reference_params[1] or {})})
        pd.DataFrame(member_rows).to_csv(tmp / "members.csv", index=False, float_format="%.6g")
        pd.concat(curve_frames).to_csv(tmp / "curves.csv", index=False, float_format="%.6g")
    return {"configs": len(label_noise) * len(widths), "members": len(member_rows)}


@dataclass(frozen=True)
class ConfigLogits:
    """One config, one partition, dense."""

    logits: np.ndarray  # (members, examples, classes) float32
    labels: np.ndarray  # (examples,) int64
    members: np.ndarray  # (members,)
    draws: np.ndarray  # (members,)
    seeds: np.ndarray  # (members,)
    label_noise: float
    width: int
    partition: str


def read_config(root: str | Path, label_noise: float, width: int,
                partition: str = "test") -> ConfigLogits:
    """Read one config's ``partition`` as a dense ``(members, examples, classes)`` array."""
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    path = config_file(root, label_noise, width)
    table = read_table(path, LOGITS)
    return dense(table, partition, path)


def dense(table: pa.Table, partition: str, path: str | Path = "<table>") -> ConfigLogits:
    """Turn a (validated, sorted) one-config table into dense arrays, checking the grid."""
    import pyarrow.compute as pc

    for col in ("label_noise", "width"):
        if len(table.column(col).unique()) != 1:
            raise InputError(f"{path}: column {col!r} holds more than one config")
    t = table.filter(pc.equal(table.column("partition"), partition))
    if t.num_rows == 0:
        raise InputError(f"{path}: no rows for partition {partition!r}")
    member = t.column("member").to_numpy()
    example = t.column("example").to_numpy()
    klass = t.column("class").to_numpy()
    members = np.unique(member)
    n_classes = int(klass.max()) + 1
    n_examples = int(example.max()) + 1
    m = len(members)
    if t.num_rows != m * n_examples * n_classes:
        raise InputError(f"{path}: {t.num_rows} {partition} rows do not form a "
                         f"{m} x {n_examples} x {n_classes} grid")
    # The sorted layout must be exactly member-major, then example, then class.
    shape = (m, n_examples, n_classes)
    if not (np.array_equal(member.reshape(shape), np.broadcast_to(members[:, None, None], shape))
            and np.array_equal(example.reshape(shape),
                               np.broadcast_to(np.arange(n_examples)[None, :, None], shape))
            and np.array_equal(klass.reshape(shape),
                               np.broadcast_to(np.arange(n_classes)[None, None, :], shape))):
        raise InputError(f"{path}: member/example/class columns are not a complete grid")
    logits = t.column("logit").to_numpy().reshape(shape)
    label = t.column("label").to_numpy().reshape(shape)
    if not np.all(label == label[:1, :, :1]):
        raise InputError(f"{path}: column 'label' differs between members or classes")
    first = np.arange(m) * n_examples * n_classes  # first row of each member
    return ConfigLogits(
        logits=logits, labels=label[0, :, 0].astype(np.int64), members=members,
        draws=t.column("draw").to_numpy()[first], seeds=t.column("seed").to_numpy()[first],
        label_noise=float(t.column("label_noise")[0].as_py()),
        width=int(t.column("width")[0].as_py()), partition=partition)
