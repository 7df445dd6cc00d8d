"""The logits Parquet dataset: build it from blocks, read configs back densely.

The dataset is a directory with one file per config,
``noise-<label_noise>_width-<width>.parquet``, each in the ``schema.LOGITS``
long layout (one row per member, partition, example, class), sorted. Dense
reads reshape the ``logit`` column straight into ``(members, examples,
classes)`` after checking, vectorized, that the key columns form exactly that
grid: no Python loop over rows.

Nothing inconsistent is merged or read silently. ``collect`` requires every
block of the collection to agree on the producing params (``params``: model,
train, split method), the member layout (``layout``), the dataset (inputs, test
and clean training labels: ``dataset.*``) and the split method and size; the
blocks of one label-noise level to share byte-identical training labels; a
block id to use the same split at every config and a draw the same indices in
every block. Errors name the two blocks and the differing key. Non-finite
logits are refused at every layer (block, Parquet write and read, dense read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from biasvar.core.checks import require_finite_logits
from biasvar.core.errors import InputError
from biasvar.core.schema import (
    CHECKPOINT_LOGITS,
    LOGITS,
    PARTITIONS,
    read_table,
    write_table,
)


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


def checkpoint_file(root: str | Path, label_noise: float, width: int) -> Path:
    return Path(root) / "checkpoints" / f"noise-{label_noise}_width-{width}.parquet"


def checkpoint_table(label_noise: float, width: int, members: np.ndarray, draws: np.ndarray,
                     seeds: np.ndarray, steps: np.ndarray, test: np.ndarray,
                     labels: np.ndarray) -> pa.Table:
    """The long ``CHECKPOINT_LOGITS`` table of one config: ``test`` (S, M, N, C) at the
    ascending ``steps`` (S,), sorted by step, member, example, class."""
    parts = []
    for step, logits in zip(np.asarray(steps).tolist(), test, strict=True):
        t = logits_table(label_noise, width, members, draws, seeds, {"test": (logits, labels)})
        parts.append(t.add_column(5, "step", pa.array(np.full(t.num_rows, step, np.int32))))
    if not parts:
        return CHECKPOINT_LOGITS.arrow.empty_table()
    return pa.concat_tables(parts).cast(CHECKPOINT_LOGITS.arrow)


def read_checkpoints(root: str | Path, label_noise: float, width: int
                     ) -> dict[int, ConfigLogits]:
    """One config's checkpoint logits, ``{step: ConfigLogits}`` in step order (dense test
    logits per step, checked as ``dense`` checks the final ones)."""
    import pyarrow.compute as pc

    path = checkpoint_file(root, label_noise, width)
    table = read_table(path, CHECKPOINT_LOGITS)
    out = {}
    for step in np.unique(table.column("step").to_numpy()).tolist():
        t = table.filter(pc.equal(table.column("step"), step)).drop_columns(["step"])
        out[int(step)] = dense(t, "test", f"{path} (step {step})", label_noise=label_noise,
                               width=width)
    return out


def collect(members_root: str | Path, out_dir: str | Path, label_noise: list[float],
            widths: list[int], blocks: list[int], block_members,
            seeds_per_draw: int | None = None, *, datasets: dict, splits: dict
            ) -> dict[str, Any]:
    """Merge the blocks that params list into the train source folder
    (``biasvar.ensemble.source``): the logits dataset, member tables and what the
    stages after it need of the data.

    ``block_members(block)`` gives the member ids a block must hold; with
    ``seeds_per_draw``, member m must have draw ``m // seeds_per_draw`` and seed
    ``m % seeds_per_draw``. Only the listed blocks are read (not whatever lies
    on disk); a block whose members, config, producing params, data, split or
    labels disagree with the others is named, with the block it disagrees with
    and the key (see the module docstring). ``datasets[level]`` (``Dataset``) and
    ``splits[block]`` (``Split``) are the files the blocks were trained from: every
    collected file must record exactly them (``check_identity``), and they give the
    label-noise flags and in-bag indices the folder carries. Writes, under ``out_dir``
    atomically (nothing on failure): ``logits/`` (one Parquet file per config),
    ``members.csv`` (final metrics per member), ``curves.csv`` (training curves,
    ``blocks.CURVE_COLUMNS`` after label_noise and width), ``checkpoints/`` (one
    ``CHECKPOINT_LOGITS`` file per config: test logits at the checkpoint steps, which
    every block must share) with ``checkpoint_members.csv`` (each member's scores at
    each checkpoint step), ``examples.npz`` and ``source.json``. Returns a small summary
    for logging.
    """
    import pandas as pd

    from biasvar.core.io import atomic_dir
    from biasvar.data.splits import in_bag_indices
    from biasvar.ensemble.blocks import (
        METRICS,
        block_dir,
        load_block,
        load_curves,
        load_dynamics,
    )
    from biasvar.ensemble.source import write_source

    out_dir = Path(out_dir)
    member_rows, curve_frames, ckpt_frames = [], [], []
    check = _Consistency()
    with atomic_dir(out_dir) as tmp:
        for p in label_noise:
            for w in widths:
                parts, dyn = [], []
                for b in sorted(blocks):
                    d = block_dir(members_root, p, w, b)
                    blk = load_block(d)
                    want = np.asarray(block_members(b))
                    if not np.array_equal(blk.members, want):
                        raise InputError(f"{d}: holds members {blk.members.tolist()}, params "
                                         f"say block {b} is {want.tolist()} (retrain it)")
                    if seeds_per_draw is not None:
                        for key, expect in (("draws", want // seeds_per_draw),
                                            ("seeds", want % seeds_per_draw)):
                            if not np.array_equal(getattr(blk, key), expect):
                                raise InputError(
                                    f"{d / 'logits.npz'}: {key} {getattr(blk, key).tolist()}"
                                    f" of members {want.tolist()}, expected {expect.tolist()}"
                                    f" (ensemble.seeds_per_draw = {seeds_per_draw})")
                    check.block(d, blk, p, w, b)
                    parts.append(blk)
                    dyn.append(load_dynamics(d, blk.members, blk.test.shape[1],
                                             blk.test.shape[2]))
                    if not np.array_equal(dyn[-1].steps, dyn[0].steps):
                        raise InputError(
                            f"{d / 'dynamics.npz'}: checkpoint steps {dyn[-1].steps.tolist()}, "
                            f"but block {sorted(blocks)[0]} has {dyn[0].steps.tolist()} "
                            "(train.checkpoints differs: retrain one of them)")
                    for row in blk.info["members"]:
                        member_rows.append({"label_noise": p, "width": w, "block": b,
                                            "split_method": blk.info["split"]["method"],
                                            **row})
                    c = load_curves(d, blk.members)
                    c.insert(0, "width", w)
                    c.insert(0, "label_noise", p)
                    curve_frames.append(c)
                cat = {k: np.concatenate([getattr(x, k) for x in parts])
                       for k in ("members", "draws", "seeds", "test", "train")}
                table = logits_table(p, w, cat["members"], cat["draws"], cat["seeds"], {
                    "test": (cat["test"], parts[0].test_labels),
                    "train": (cat["train"], parts[0].train_labels)})
                write_config(tmp / "logits", p, w, table, _identity(p, w, parts, blocks))
                steps = dyn[0].steps
                ctable = checkpoint_table(p, w, cat["members"], cat["draws"], cat["seeds"],
                                          steps, np.concatenate([x.test for x in dyn], axis=1),
                                          parts[0].test_labels)
                write_table(checkpoint_file(tmp, p, w), ctable, CHECKPOINT_LOGITS,
                            {**_identity(p, w, parts, blocks), "steps": steps.tolist()})
                n_ckpt = len(cat["members"])
                ckpt_frames.append(pd.DataFrame({
                    "label_noise": p, "width": w,
                    "step": np.repeat(steps, n_ckpt),  # row-major (steps, members)
                    "member": np.tile(cat["members"], len(steps)),
                    "draw": np.tile(cat["draws"], len(steps)),
                    "seed": np.tile(cat["seeds"], len(steps)),
                    **{k: np.concatenate([x.scores[k] for x in dyn], axis=1).reshape(-1)
                       for k in METRICS}}))
                # the dataset and split files the stages after collect get their noisy
                # flags and in-bag indices from are the ones these members trained on
                check_identity(tmp / "logits", p, w, blocks=blocks, dataset=datasets[p],
                               splits=splits)
        write_source(tmp, "train", label_noise, widths, PARTITIONS,
                     datasets[label_noise[0]].metadata(), blocks=blocks,
                     noisy={p: datasets[p].noisy for p in label_noise},
                     in_bag=in_bag_indices(splits.values()))
        pd.DataFrame(member_rows).to_csv(tmp / "members.csv", index=False, float_format="%.6g")
        pd.concat(curve_frames).to_csv(tmp / "curves.csv", index=False, float_format="%.6g")
        pd.concat(ckpt_frames).to_csv(tmp / "checkpoint_members.csv", index=False,
                                      float_format="%.6g")
    return {"configs": len(label_noise) * len(widths), "members": len(member_rows)}


def _identity(p: float, w: int, parts: list, blocks: list[int]) -> dict[str, Any]:
    """What a collected logits file records about itself (its Parquet metadata): the
    config, the producing params and member layout, the blocks it merges, and the
    fingerprints of its dataset and of every draw's training indices, so that a reader
    can check the dataset and split files it pairs it with (``check_identity``)."""
    info = parts[0].info
    split = {k: v for k, v in info["split"].items() if k not in ("draws", "sha256",
                                                                 "draw_sha256")}
    draw_sha: dict[str, str] = {}
    for blk in parts:
        draw_sha.update(blk.info["split"]["draw_sha256"])
    return {"label_noise": p, "width": w, **info["params"], "layout": info["layout"],
            "blocks": sorted(int(b) for b in blocks), "dataset": info["dataset"],
            "split": {**split, "draw_sha256": dict(sorted(draw_sha.items(),
                                                          key=lambda kv: int(kv[0])))}}


def check_identity(root: str | Path, label_noise: float, width: int, *,
                   blocks: list[int] | None = None, dataset=None,
                   splits: dict | None = None) -> None:
    """Refuse a collected logits file that is not what the reading stage expects.

    The file's recorded identity (see ``collect``) is compared with: ``blocks``, the
    blocks params list now; ``dataset``, the dataset file the stage pairs it with
    (its fingerprints, e.g. the noisy labels behind the ``noisy`` flags); ``splits``,
    ``{block: Split}``, the split files it reads in-bag indices from (each draw's
    indices must be those the members trained on). The error names the file and the
    recorded field.
    """
    from biasvar.core.schema import read_params
    from biasvar.ensemble.blocks import dataset_identity, draw_fingerprints

    path = config_file(root, label_noise, width)
    rec = read_params(path)
    hint = "(rerun collect, or the stage that wrote the other file)"

    def need(key: str) -> Any:
        if key not in rec:
            raise InputError(f"{path}: records no {key!r} (collected by an older version; "
                             "rerun collect)")
        return rec[key]

    if blocks is not None and need("blocks") != sorted(int(b) for b in blocks):
        raise InputError(f"{path}: records blocks {rec['blocks']}, but params list "
                         f"ensemble.blocks = {sorted(int(b) for b in blocks)} {hint}")
    if dataset is not None:
        recorded = need("dataset")
        for key, value in dataset_identity(dataset).items():
            if recorded.get(key) != value:
                raise InputError(f"{path}: records dataset.{key} = {_short(recorded.get(key))}"
                                 f", but the dataset read with it has {_short(value)} {hint}")
    if splits is not None:
        recorded = need("split").get("draw_sha256", {})
        for block, split in sorted(splits.items()):
            for draw, sha in draw_fingerprints(split).items():
                if draw not in recorded:
                    raise InputError(f"{path}: records no draw {draw}, but the split file of "
                                     f"block {block} holds it {hint}")
                if recorded[draw] != sha:
                    raise InputError(f"{path}: records split.draw_sha256.{draw} = "
                                     f"{_short(recorded[draw])}, but the split file of block "
                                     f"{block} has {_short(sha)} {hint}")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": value}``."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _short(v: Any) -> str:
    """A value for a one-line message: a fingerprint by its first 12 hex digits."""
    if isinstance(v, str) and len(v) > 16:
        return repr(v[:12] + "...")
    r = repr(v)
    return r if len(r) <= 60 else r[:56] + " ..."


_MISSING = "<missing>"


class _Consistency:
    """The reference each kind of key is compared against, and the comparisons."""

    def __init__(self) -> None:
        self.shared: tuple[Path, dict] | None = None  # every block of the collection
        self.test_labels: tuple[Path, np.ndarray] | None = None
        self.by_noise: dict[float, tuple[Path, dict, np.ndarray]] = {}  # noisy train labels
        self.by_block: dict[int, tuple[Path, dict]] = {}  # the split of a block id
        self.by_draw: dict[str, tuple[Path, str]] = {}  # a draw's indices

    @staticmethod
    def _differ(ref: Path, ref_vals: dict, here: Path, vals: dict, what: str) -> None:
        for key in list(ref_vals) + [k for k in vals if k not in ref_vals]:
            a, b = ref_vals.get(key, _MISSING), vals.get(key, _MISSING)
            if a != b:
                raise InputError(f"{here}: {key} = {_short(b)}, but {ref}: {key} = "
                                 f"{_short(a)}; {what} (retrain one of them)")

    def block(self, d: Path, blk, p: float, w: int, b: int) -> None:
        info, mj = blk.info, d / "members.json"
        # The block must be the config its directory says (not a copy of another).
        for key, want, same in (("label_noise", p, _same_float), ("width", w, _same_int),
                                ("block", b, _same_int)):
            if not same(info[key], want):
                raise InputError(f"{mj}: records {key} = {info[key]!r}, but lies in the "
                                 f"directory of {key} {want} (copied from another config? "
                                 "retrain it)")
        # Labels the logits were scored against: those of the dataset it recorded.
        npz = d / "logits.npz"
        from biasvar.core.io import sha256_arrays

        for part, key in (("test", "y_test_sha256"), ("train", "y_train_sha256")):
            labels = getattr(blk, f"{part}_labels")
            if sha256_arrays(np.asarray(labels, np.int64)) != info["dataset"].get(key):
                raise InputError(f"{npz}: {part}_labels are not those of the dataset recorded "
                                 f"in {mj} (dataset.{key}); retrain the block")
        dataset = {k: v for k, v in info["dataset"].items() if k != "y_train_sha256"}
        split = {k: v for k, v in info["split"].items()
                 if k not in ("draws", "sha256", "draw_sha256")}
        shared = _flatten({"params": info["params"], "layout": info["layout"],
                           "dataset": dataset, "split": split})
        if self.shared is None:
            self.shared = (mj, shared)
            self.test_labels = (npz, blk.test_labels)
        self._differ(self.shared[0], self.shared[1], mj, shared,
                     "all blocks must share data, split, model and train params")
        _same_labels(self.test_labels[0], self.test_labels[1], npz, blk.test_labels, "test")
        # One label-noise level: the same noisy training labels in every block.
        key = float(p)
        noisy = {"dataset.y_train_sha256": info["dataset"].get("y_train_sha256")}
        ref = self.by_noise.setdefault(key, (mj, noisy, blk.train_labels))
        self._differ(ref[0], ref[1], mj, noisy,
                     f"the blocks of label_noise {p} must share their training labels")
        _same_labels(ref[0].with_name("logits.npz"), ref[2], npz, blk.train_labels, "train")
        # One block id: the same split file at every config; one draw: the same indices.
        sp = {f"split.{k}": info["split"].get(k) for k in ("draws", "sha256")}
        ref_b = self.by_block.setdefault(int(b), (mj, sp))
        self._differ(ref_b[0], ref_b[1], mj, sp, f"block {b} must use the same split everywhere")
        draw_sha = info["split"].get("draw_sha256")
        if not isinstance(draw_sha, dict):
            raise InputError(f"{mj}: split.draw_sha256 must be a JSON object")
        for draw in np.unique(blk.draws).tolist():
            h = draw_sha.get(str(draw))
            if h is None:
                raise InputError(f"{mj}: split.draw_sha256 lacks draw {draw} of its members")
            ref_d = self.by_draw.setdefault(str(draw), (mj, h))
            self._differ(ref_d[0], {f"split.draw_sha256.{draw}": ref_d[1]}, mj,
                         {f"split.draw_sha256.{draw}": h},
                         f"draw {draw} must have the same training indices in every block")


def _same_float(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _same_int(a: Any, b: Any) -> bool:
    return isinstance(a, int) and not isinstance(a, bool) and a == int(b)


def _same_labels(ref: Path, ref_labels: np.ndarray, here: Path, labels: np.ndarray,
                 part: str) -> None:
    """Byte-identical label arrays, or an error naming both files and the count."""
    if ref_labels.dtype == labels.dtype and np.array_equal(ref_labels, labels):
        return
    if ref_labels.shape != labels.shape:
        detail = f"{len(labels)} examples against {len(ref_labels)}"
    else:
        detail = f"at {int((ref_labels != labels).sum())} of {len(labels)} examples"
    raise InputError(f"{here}: {part}_labels differ from {ref}: {part}_labels {detail}; "
                     "blocks must be trained on the same dataset (data.*) (retrain one of them)")


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
    return dense(table, partition, path, label_noise=label_noise, width=width)


def dense(table: pa.Table, partition: str, path: str | Path = "<table>",
          label_noise: float | None = None, width: int | None = None) -> ConfigLogits:
    """Turn a (validated, sorted) one-config table into dense arrays, checking the grid.

    Also checks that the table is the requested config (``label_noise``,
    ``width``, when given), that each member has one draw and one seed, and
    that every logit is finite; errors name ``path``, the config and the member.
    """
    import pyarrow.compute as pc

    for col in ("label_noise", "width"):
        if len(table.column(col).unique()) != 1:
            raise InputError(f"{path}: column {col!r} holds more than one config")
    got_noise = table.column("label_noise")[0].as_py() if table.num_rows else None
    got_width = table.column("width")[0].as_py() if table.num_rows else None
    if label_noise is not None and got_noise is not None and (
            np.float32(got_noise) != np.float32(label_noise)):
        raise InputError(f"{path}: holds label_noise {_f32(got_noise)}, but was read "
                         f"as label_noise {label_noise}")
    if width is not None and got_width is not None and got_width != width:
        raise InputError(f"{path}: holds width {got_width}, but was read as width {width}")
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
    per_member = {}
    for col in ("draw", "seed"):
        v = t.column(col).to_numpy().reshape(m, -1)  # (M, examples * classes)
        varies = np.flatnonzero(np.any(v != v[:, :1], axis=1))
        if len(varies):
            raise InputError(f"{path}: column {col!r} is not constant within member "
                             f"{int(members[varies[0]])} ({partition} rows)")
        per_member[col] = v[:, 0]
    require_finite_logits(logits, members, f"{path} (label_noise {_f32(got_noise)}, width "
                          f"{got_width})", partition)
    return ConfigLogits(
        logits=logits, labels=label[0, :, 0].astype(np.int64), members=members,
        draws=per_member["draw"], seeds=per_member["seed"],
        label_noise=float(got_noise), width=int(got_width), partition=partition)


def _f32(v: float) -> str:
    """A float32 column value as its shortest decimal (0.15, not 0.15000000596046448)."""
    return f"{v:.7g}"
