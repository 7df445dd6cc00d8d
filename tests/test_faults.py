"""The fault catalogue: bad inputs, each refused with one line naming what is wrong.

One test per fault case (a bad file, a bad value, an inconsistent block, ...),
each asserting that the failure is a ``BiasvarError`` (a stage prints it as one
``error: ...`` line and exits 2, never a traceback) whose single-line message
names the file, key or member at fault, and, where a stage writes, that
nothing was written.

The catalogue is this module and its topic modules ``test_faults_params.py``
(the strict params loader and bounds), ``test_faults_cli.py`` (the tools' arguments
and signals) and ``test_faults_reports.py`` (report and CSV safety). It only grows:
add a test for every new fault found, and never delete or weaken one (a fault that
becomes handled gets its test changed to assert the handling). Inputs are tiny
synthetic blocks and tables, so the whole catalogue runs in seconds; faults that need
real training train a few steps.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biasvar.core.errors import BiasvarError, InputError
from biasvar.core.schema import LOGITS, read_table, write_table
from biasvar.data.dataset import Dataset, add_label_noise
from biasvar.data.splits import load_split, make_split, save_split
from biasvar.ensemble.blocks import CURVE_COLUMNS, block_dir, block_info, load_block, save_block
from biasvar.ensemble.logits import collect, config_file, dense, logits_table, read_config
from biasvar.ensemble.train import BlockResult, BlockSpec

NOISE = [0.0, 0.2]
WIDTHS = [4, 8]
BLOCKS = [0, 1]
BLOCK_SIZE = 2
N_TRAIN, N_TEST, N_CLASSES = 12, 8, 10
PARAMS = {"model": {"arch": "mlp", "depth": 2, "residual": False},
          "train": {"optimizer": "adam", "lr": 0.01, "steps": 2, "seed": 0},
          "split_method": "bootstrap"}


# ------------------------------------------------------------------ tiny synthetic blocks
def _dataset(label_noise: float, data_seed: int = 0, noise_seed: int = 0) -> Dataset:
    rng = np.random.default_rng(data_seed)
    y_clean = rng.integers(0, N_CLASSES, N_TRAIN)
    y, noisy = add_label_noise(y_clean, label_noise, noise_seed)
    return Dataset(x_train=rng.normal(size=(N_TRAIN, 40)), y_train=y, y_train_clean=y_clean,
                   noisy=noisy, x_test=rng.normal(size=(N_TEST, 40)),
                   y_test=rng.integers(0, N_CLASSES, N_TEST), label_noise=label_noise)


def _members(block: int) -> list[int]:
    return list(range(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE))


def make_block(root: Path, p: float, w: int, b: int, *, spd: int = 1, data_seed: int = 0,
               noise_seed: int = 0, split_seed: int = 0, params: dict | None = None,
               recorded_split_seed: int | None = None) -> Path:
    """Write one synthetic block (random finite logits) exactly as the train stage does."""
    members = _members(b)
    draws = [m // spd for m in members]
    ds = _dataset(p, data_seed, noise_seed)
    split_file = root / "splits" / f"block-{b}-seed-{split_seed}.npz"
    split = make_split("bootstrap", N_TRAIN, draws, split_seed)
    if recorded_split_seed is not None:  # a split file whose recorded seed lies
        import dataclasses

        split = dataclasses.replace(split, seed=recorded_split_seed)
    save_split(split, split_file)
    spec = BlockSpec(tuple(members), tuple(draws), tuple(m % spd for m in members), w)
    rng = np.random.default_rng([int(p * 100), w, b])
    n_logs, metrics = 2, [{"member": m, "draw": d, "seed": m % spd, "test_accuracy": 0.5}
                          for m, d in zip(members, draws, strict=True)]
    curves = {"step": np.array([1, 2])}
    curves.update({k: rng.random((n_logs, len(members))) for k in CURVE_COLUMNS[2:]})
    result = BlockResult(
        spec=spec,
        test_logits=rng.normal(size=(len(members), N_TEST, N_CLASSES)).astype(np.float32),
        train_logits=rng.normal(size=(len(members), N_TRAIN, N_CLASSES)).astype(np.float32),
        curves=curves, metrics=metrics, states=[{} for _ in members], seconds=0.0,
        device="cpu",
        checkpoints={"step": np.array([1, 2]),
                     "test": rng.normal(size=(2, len(members), N_TEST, N_CLASSES)
                                        ).astype(np.float32),
                     **{k: rng.random((2, len(members))) for k in CURVE_COLUMNS[2:]}})
    info = block_info(p, w, b, params=params or PARAMS,
                      layout={"block_size": BLOCK_SIZE, "seeds_per_draw": spd},
                      dataset=ds, split=split, split_file=split_file)
    out = block_dir(root / "members", p, w, b)
    save_block(result, out, info, ds.y_test, ds.y_train)
    return out


def make_tree(root: Path, spd: int = 1) -> Path:
    for p in NOISE:
        for w in WIDTHS:
            for b in BLOCKS:
                make_block(root, p, w, b, spd=spd)
    return root / "members"


def _splits(root: Path, blocks: list[int], split_seed: int = 0) -> dict:
    return {b: load_split(root / "splits" / f"block-{b}-seed-{split_seed}.npz") for b in blocks}


def run_collect(root: Path, spd: int = 1, blocks: list[int] = BLOCKS,
                out: str = "collected") -> dict:
    return collect(root / "members", root / out, NOISE, WIDTHS, blocks, _members,
                   seeds_per_draw=spd, datasets={p: _dataset(p) for p in NOISE},
                   splits=_splits(root, blocks))


def refused(root: Path, match: str, spd: int = 1) -> str:
    """Collect must fail with one line matching ``match`` and write nothing."""
    with pytest.raises(BiasvarError, match=match) as e:
        run_collect(root, spd)
    message = str(e.value)
    assert "\n" not in message
    assert not (root / "collected").exists()
    assert not list(root.glob(".collected.tmp-*"))  # no temporary left behind
    return message


def _edit_npz(path: Path, **changes) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k, f in changes.items():
        arrays[k] = f(arrays[k].copy())
    path.unlink()
    np.savez(path, **arrays)


def _set(index, value):
    def f(a):
        a[index] = value
        return a
    return f


@pytest.fixture
def tree(tmp_path):
    make_tree(tmp_path)
    return tmp_path


def test_consistent_blocks_collect(tree):
    """The control case: the untouched synthetic tree collects, and reads back exactly."""
    summary = run_collect(tree)
    assert summary == {"configs": 4, "members": 16}
    got = read_config(tree / "collected" / "logits", 0.2, 8, "train")
    blk1 = load_block(block_dir(tree / "members", 0.2, 8, 1))
    np.testing.assert_array_equal(got.logits[2:], blk1.train)
    np.testing.assert_array_equal(got.labels, _dataset(0.2).y_train)
    import pandas as pd

    curves = pd.read_csv(tree / "collected" / "curves.csv")
    assert list(curves.columns) == ["label_noise", "width", *CURVE_COLUMNS]


# ------------------------------------------------------------------ non-finite logits
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("partition", ["test", "train"])
def test_nonfinite_logit_in_block_fails_collect(tree, value, partition):
    f = block_dir(tree / "members", 0.2, 8, 1) / "logits.npz"
    _edit_npz(f, **{partition: _set((1, 3, 2), value)})
    msg = refused(tree, rf"{f} \(label_noise 0.2, width 8, block 1\): member 3 has 1 "
                        rf"non-finite {partition} logits \(NaN or inf\)")
    assert "members affected" not in msg


def test_nonfinite_logits_name_every_affected_member(tree):
    f = block_dir(tree / "members", 0.0, 4, 0) / "logits.npz"
    _edit_npz(f, test=_set((slice(None), 0, 0), np.nan))
    refused(tree, r"member 0 has 1 non-finite test logits .*members affected: \[0, 1\]")


# ------------------------------------------------------------------ checkpoint logits
def test_checkpoints_collect_and_read_back(tree):
    from biasvar.ensemble.logits import read_checkpoints

    run_collect(tree)
    got = read_checkpoints(tree / "collected", 0.2, 8)
    assert list(got) == [1, 2]
    blk1 = np.load(block_dir(tree / "members", 0.2, 8, 1) / "dynamics.npz")
    np.testing.assert_array_equal(got[2].logits[2:], blk1["test"][1])


def test_nonfinite_checkpoint_logit_fails_collect_naming_step_and_member(tree):
    f = block_dir(tree / "members", 0.2, 8, 1) / "dynamics.npz"
    _edit_npz(f, test=_set((1, 0, 3, 2), np.nan))
    refused(tree, rf"{f} \(step 2\): member 2 has 1 non-finite test logits")


def test_block_without_checkpoint_file_is_named(tree):
    f = block_dir(tree / "members", 0.0, 4, 1) / "dynamics.npz"
    f.unlink()
    refused(tree, rf"{f}: not found \(trained by an older version\? retrain the block\)")


def test_blocks_with_other_checkpoint_steps_are_named(tree):
    f = block_dir(tree / "members", 0.0, 8, 1) / "dynamics.npz"
    _edit_npz(f, steps=lambda a: a * 10)
    refused(tree, rf"{f}: checkpoint steps \[10, 20\], but block 0 has \[1, 2\] "
                  r"\(train.checkpoints differs")


@pytest.mark.parametrize(("key", "edit", "match"), [
    ("steps", lambda a: a[::-1].copy(), "'steps' must be ascending positive integers"),
    ("test", lambda a: a[:, :1], r"test logits have shape \(2, 1, 8, 10\)"),
    ("in_bag_error", lambda a: a[:1], r"'in_bag_error' has shape \(1, 2\), expected \(2, 2\)"),
])
def test_malformed_checkpoint_file_is_named(tree, key, edit, match):
    f = block_dir(tree / "members", 0.2, 4, 0) / "dynamics.npz"
    _edit_npz(f, **{key: edit})
    refused(tree, rf"{re.escape(str(f))}: {match}")


def _nan_table():
    rng = np.random.default_rng(0)
    test = rng.normal(size=(3, 5, 10)).astype(np.float32)
    test[1, 2, 4] = np.nan
    train = rng.normal(size=(3, 4, 10)).astype(np.float32)
    return logits_table(0.15, 32, np.array([2, 3, 7]), np.array([1, 1, 3]), np.array([0, 1, 1]),
                        {"test": (test, rng.integers(0, 10, 5)),
                         "train": (train, rng.integers(0, 10, 4))})


def test_nonfinite_logit_refused_on_parquet_write(tmp_path):
    path = config_file(tmp_path, 0.15, 32)
    with pytest.raises(InputError, match=rf"{path}: column 'logit' has 1 non-finite values "
                       r"\(NaN or inf\), first at label_noise 0.15, width 32, member 3, "
                       r"partition test, example 2, class 4; members affected: \[3\]") as e:
        write_table(path, _nan_table(), LOGITS)
    assert "\n" not in str(e.value)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_nonfinite_logit_refused_on_parquet_read(tmp_path):
    path = config_file(tmp_path, 0.15, 32)
    meta = {b"biasvar.schema": b"logits", b"biasvar.schema_version": b"1"}
    pq.write_table(_nan_table().replace_schema_metadata(meta), path)  # bypasses the writer
    for read in (lambda: read_table(path, LOGITS), lambda: read_config(tmp_path, 0.15, 32)):
        with pytest.raises(InputError, match=rf"{path}: column 'logit' has 1 non-finite "
                           r"values .* member 3, partition test"):
            read()


def test_nonfinite_logit_refused_by_dense():
    with pytest.raises(InputError, match=r"<table> \(label_noise 0.15, width 32\): member 3 "
                       r"has 1 non-finite test logits \(NaN or inf\) of 50"):
        dense(_nan_table(), "test")
    assert np.isfinite(dense(_nan_table(), "train").logits).all()  # the other partition is fine


def test_nonfinite_logit_refused_by_decompose(tmp_path, monkeypatch):
    """decompose_all checks whatever read_config hands it (defence in depth)."""
    import biasvar.ensemble.logits as logits_mod
    from biasvar.analysis.tables import decompose_all

    def read_nan(root, p, w, part="test"):
        import dataclasses

        c = dense(_nan_table(), "train")
        logits = c.logits.copy()
        logits[2, 1, 0] = np.inf
        return dataclasses.replace(c, logits=logits)

    monkeypatch.setattr(logits_mod, "read_config", read_nan)
    with pytest.raises(InputError, match=rf"{config_file(tmp_path, 0.15, 32)} \(label_noise "
                       r"0.15, width 32\): member 7 has 1 non-finite test logits"):
        decompose_all(tmp_path, {}, [0.15], [32], intervals=True, ci=0.9, n_bins=5)


def test_member_diverging_on_last_step_fails_train(small_dataset, monkeypatch):
    """The last update is seen by no minibatch loss: final parameters and logits are checked."""
    import biasvar.ensemble.train as train_mod
    from biasvar.core.config import RuntimeParams
    from biasvar.ensemble.config import ModelParams, TrainParams

    steps, real = 6, train_mod.make_optimizer

    def poisoned(name, flat, *args):
        opt, calls = real(name, flat, *args), []
        step = opt.step

        def last_step_diverges():
            step()
            calls.append(1)
            if len(calls) == steps:  # the last parameter is member 3's last output bias
                flat.flat[-1] = float("nan")

        opt.step = last_step_diverges
        return opt

    monkeypatch.setattr(train_mod, "make_optimizer", poisoned)
    split = make_split("bootstrap", small_dataset.n_train, [0, 1], seed=0)
    cfg = TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0, steps=steps,
                      batch_size=50, seed=0, log_every=3)
    spec = BlockSpec((2, 3), (1, 1), (0, 1), 8)
    with pytest.raises(train_mod.NonFiniteOutputError) as e:
        train_mod.train_block(small_dataset, split, spec, ModelParams(arch="mlp", depth=1,
                                                                      residual=False),
                              cfg, RuntimeParams(device="cpu", threads=0, progress=False))
    n_params = 40 * 8 + 8 + 8 * 10 + 10
    assert str(e.value) == (
        f"member 3: non-finite values after the last training step: 1 of {n_params} "
        f"parameters, {small_dataset.n_test} of {small_dataset.n_test * 10} test logits, "
        f"{small_dataset.n_train} of {small_dataset.n_train * 10} train logits")


# ------------------------------------------------------------------ members.json
@pytest.mark.parametrize("content, match", [
    (b"\xff\xfe\x00garbage\x89PNG", r"not valid JSON \(not UTF-8 text: byte 0xff at position 0\)"),
    (b"[1, 2, 3]", r"expected a JSON object with keys .*; found a JSON list"),
    (b'"members"', r"expected a JSON object .*; found a JSON str"),
    (b"{\"label_noise\": 0.2", r"not valid JSON \(Expecting"),
], ids=["binary", "list", "string", "truncated"])
def test_malformed_members_json_is_named(tree, content, match):
    f = block_dir(tree / "members", 0.2, 4, 1) / "members.json"
    f.write_bytes(content)
    refused(tree, rf"{f}: {match}")


@pytest.mark.parametrize("key", ["members", "dataset", "split", "params"])
def test_members_json_without_a_key_is_named(tree, key):
    f = block_dir(tree / "members", 0.0, 8, 0) / "members.json"
    info = json.loads(f.read_text())
    del info[key]
    f.write_text(json.dumps(info))
    refused(tree, rf"{f}: lacks key '{key}'")


def test_members_json_listing_other_members_is_named(tree):
    f = block_dir(tree / "members", 0.0, 8, 1) / "members.json"
    info = json.loads(f.read_text())
    info["members"] = info["members"][:1]
    f.write_text(json.dumps(info))
    refused(tree, rf"{f}: lists members \[2\], but logits.npz holds \[2, 3\]")


def test_members_json_with_bad_member_rows_is_named(tree):
    f = block_dir(tree / "members", 0.0, 8, 1) / "members.json"
    info = json.loads(f.read_text())
    info["members"] = {"member": 2}
    f.write_text(json.dumps(info))
    refused(tree, rf"{f}: 'members' must be a list of objects with a 'member' key")


# ------------------------------------------------------------------ inconsistent blocks
@pytest.mark.parametrize("axis", ["width", "label_noise"])
def test_block_copied_from_another_config_is_named(tree, axis):
    src = block_dir(tree / "members", 0.0, 4, 1)
    dst = (block_dir(tree / "members", 0.0, 8, 1) if axis == "width"
           else block_dir(tree / "members", 0.2, 4, 1))
    shutil.rmtree(dst)
    shutil.copytree(src, dst)
    want = {"width": "width = 4, but lies in the directory of width 8",
            "label_noise": "label_noise = 0.0, but lies in the directory of label_noise 0.2"}
    refused(tree, rf"{dst / 'members.json'}: records {want[axis]}")


def test_block_trained_with_other_train_params_is_named(tree):
    make_block(tree, 0.2, 8, 1, params={**PARAMS, "train": {**PARAMS["train"], "lr": 0.02}})
    msg = refused(tree, r"noise-0.2/width-8/block-1/members.json: params.train.lr = 0.02, but "
                        r".*noise-0.0/width-4/block-0/members.json: params.train.lr = 0.01")
    assert "must share data, split, model and train params" in msg


def test_block_trained_on_other_data_seed_is_named(tree):
    make_block(tree, 0.0, 8, 1, data_seed=1)
    refused(tree, r"noise-0.0/width-8/block-1/members.json: dataset.x_sha256 = .*, but "
                  r".*noise-0.0/width-4/block-0/members.json: dataset.x_sha256 = ")


def test_block_trained_on_other_noise_seed_is_named(tree):
    """Only the noisy training labels differ: the blocks of that noise level disagree."""
    for w in WIDTHS:
        make_block(tree, 0.2, w, 1, noise_seed=7)
    refused(tree, r"noise-0.2/width-4/block-1/members.json: dataset.y_train_sha256 = .*, but "
                  r".*noise-0.2/width-4/block-0/members.json: dataset.y_train_sha256 = .*; "
                  r"the blocks of label_noise 0.2 must share their training labels")


def test_training_labels_edited_in_block_are_named(tree):
    f = block_dir(tree / "members", 0.2, 8, 0) / "logits.npz"
    _edit_npz(f, train_labels=lambda y: (y + 1) % N_CLASSES)
    refused(tree, rf"{f}: train_labels are not those of the dataset recorded in "
                  rf".*members.json \(dataset.y_train_sha256\)")


def test_block_with_other_labels_and_matching_record_is_named(tree):
    """Labels edited in both files: the byte comparison between blocks still sees them."""
    d = block_dir(tree / "members", 0.0, 8, 0)
    _edit_npz(d / "logits.npz", test_labels=_set(0, 9))
    from biasvar.core.io import sha256_arrays as fingerprint

    info = json.loads((d / "members.json").read_text())
    with np.load(d / "logits.npz") as z:
        info["dataset"]["y_test_sha256"] = fingerprint(z["test_labels"])
    (d / "members.json").write_text(json.dumps(info))
    refused(tree, r"noise-0.0/width-8/block-0/members.json: dataset.y_test_sha256 = ")


def test_block_trained_on_another_split_is_named(tree):
    make_block(tree, 0.2, 8, 1, split_seed=5)
    refused(tree, r"noise-0.2/width-8/block-1/members.json: split.seed = 5, but "
                  r".*noise-0.0/width-4/block-0/members.json: split.seed = 0; all blocks must "
                  r"share data, split, model and train params")


def test_block_with_another_split_under_the_same_seed_is_named(tree):
    """The indices themselves are compared too, not only the recorded seed."""
    make_block(tree, 0.2, 8, 1, split_seed=5, recorded_split_seed=0)
    refused(tree, r"noise-0.2/width-8/block-1/members.json: split.sha256 = .*, but "
                  r".*noise-0.0/width-4/block-1/members.json: split.sha256 = .*; block 1 must "
                  r"use the same split everywhere")


def test_draw_with_other_indices_in_another_block_is_named(tmp_path):
    """Blocks 0 and 1 share draw 0 (seeds_per_draw 4): block 1 used another split seed."""
    make_tree(tmp_path, spd=4)
    for p in NOISE:
        for w in WIDTHS:
            make_block(tmp_path, p, w, 1, spd=4, split_seed=5, recorded_split_seed=0)
    refused(tmp_path, r"noise-0.0/width-4/block-1/members.json: split.draw_sha256.0 = .*, but "
                      r".*noise-0.0/width-4/block-0/members.json: split.draw_sha256.0 = .*; "
                      r"draw 0 must have the same training indices in every block", spd=4)


def test_block_with_another_member_layout_is_named(tree):
    make_block(tree, 0.0, 8, 1, spd=2)  # the others: seeds_per_draw 1
    refused(tree, r"noise-0.0/width-8/block-1/logits.npz: draws \[1, 1\] of members \[2, 3\], "
                  r"expected \[2, 3\] \(ensemble.seeds_per_draw = 1\)")


# ------------------------------------------------------------------ curves.csv
@pytest.mark.parametrize("content, match", [
    ("garbage\n1\n2\n", r"columns are \['garbage'\], expected \['member', 'step'"),
    (",".join(CURVE_COLUMNS) + "\n0,1,a,b,c,d,e,f,g,h\n", r"column 'train_loss' is not numeric"),
    ("", r"not a readable CSV \(EmptyDataError"),
], ids=["garbage", "text", "empty"])
def test_bad_curves_csv_is_named(tree, content, match):
    f = block_dir(tree / "members", 0.2, 8, 0) / "curves.csv"
    f.write_text(content)
    refused(tree, rf"{f}: {match}")


def test_curves_csv_of_other_members_is_named(tree):
    import pandas as pd

    f = block_dir(tree / "members", 0.2, 8, 0) / "curves.csv"
    c = pd.read_csv(f)
    c["member"] += 10
    c.to_csv(f, index=False)
    refused(tree, rf"{f}: holds members \[10, 11\], logits.npz holds \[0, 1\]")


# ------------------------------------------------------------------ Parquet reads
def test_parquet_file_of_another_config_is_named(tmp_path):
    """A file renamed (or copied) to another config's name is not read as that config."""
    table = logits_table(0.2, 8, np.array([0, 1]), np.array([0, 0]), np.array([0, 1]),
                         {"test": (np.zeros((2, 3, 10), np.float32), np.zeros(3, int))})
    write_table(config_file(tmp_path, 0.2, 4), table, LOGITS)
    with pytest.raises(InputError, match=r"noise-0.2_width-4.parquet: holds width 8, but was "
                       r"read as width 4"):
        read_config(tmp_path, 0.2, 4)
    write_table(config_file(tmp_path, 0.0, 8), table, LOGITS)
    with pytest.raises(InputError, match=r"noise-0.0_width-8.parquet: holds label_noise 0.2, "
                       r"but was read as label_noise 0.0"):
        read_config(tmp_path, 0.0, 8)


@pytest.mark.parametrize("col", ["draw", "seed"])
def test_draw_or_seed_varying_within_a_member_is_named(tmp_path, col):
    table = logits_table(0.2, 8, np.array([0, 1]), np.array([0, 0]), np.array([0, 1]),
                         {"test": (np.zeros((2, 3, 10), np.float32), np.zeros(3, int))})
    values = table.column(col).to_numpy().copy()
    values[35] += 1  # member 1, example 0, class 5
    table = table.set_column(table.schema.get_field_index(col), col,
                             pa.array(values, type=pa.int32()))
    path = config_file(tmp_path, 0.2, 8)
    write_table(path, table, LOGITS)
    with pytest.raises(InputError, match=rf"{path}: column '{col}' is not constant within "
                       r"member 1 \(test rows\)"):
        read_config(tmp_path, 0.2, 8)


# ---------------------------------------------------------------- params, processes, files
ROOT = Path(__file__).resolve().parents[1]


def _validate_cli(tmp_path, edit):
    import subprocess
    import sys

    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return subprocess.run([sys.executable, "-m", "biasvar.tools.validate", str(path)],
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})


def test_validate_reports_every_bad_value_one_line_each(tmp_path):
    """A bad decompose.* or regress.* value must not wait for its stage: `make pipeline`
    validates every section first and lists every problem, not only the first."""
    def edit(raw):
        raw["decompose"]["ci"] = 1.5
        raw["regress"]["estimator"] = "jackknife"
        raw["train"]["lr"] = -1
    r = _validate_cli(tmp_path, edit)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(lines) == 3, lines
    assert any("train.lr = -1" in x for x in lines)
    assert any("decompose.ci = 1.5" in x for x in lines)
    assert any("regress.estimator = 'jackknife'" in x for x in lines)


def test_validate_names_a_non_list_sweep_axis(tmp_path):
    """`ensemble.widths: abc` makes DVC's template fail ('Value' object is not iterable)
    with no key named; the validator that `make pipeline` runs first names it."""
    r = _validate_cli(tmp_path, lambda raw: raw["ensemble"].update(widths="abc"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: params.yaml: ensemble.widths = 'abc' is invalid: a non-empty list of "
        "distinct integers >= 1 and <= 4096"]


def test_unwritable_output_folder_is_one_line(tmp_path):
    """A stage script run by hand into a folder it cannot create (here a file is in the
    way; a read-only folder fails the same way, as an OSError): one line naming the path."""
    import subprocess
    import sys

    blocker = tmp_path / "ro"
    blocker.write_text("a file, not a folder")
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "tradeoff.py"),
                        "--out", str(blocker / "sub" / "t.csv"),
                        "--metrics", str(tmp_path / "m.json")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(blocker) in lines[0]


def test_os_error_in_a_stage_is_one_line(tmp_path, capsys):
    """The stages' runner turns an OSError (read-only folder, full disk) into one line."""
    import sys

    sys.path.insert(0, str(ROOT / "stages"))
    try:
        from _common import run
    finally:
        sys.path.pop(0)

    def main():
        raise PermissionError(13, "Permission denied", str(tmp_path / "out.csv"))
    with pytest.raises(SystemExit) as e:
        run(main)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'out.csv'}: Permission denied\n"


def test_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """A kill -9 during collect leaves data/.collected.tmp-<pid>; the next run removes it
    (a live writer's temporary is left alone)."""
    import os
    import subprocess

    from biasvar.core.io import atomic_dir

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".collected.tmp-{dead.pid}"
    (stale / "logits").mkdir(parents=True)
    live = tmp_path / f".collected.tmp-{os.getppid()}"
    live.mkdir()
    with atomic_dir(tmp_path / "collected") as tmp:
        (tmp / "x").write_text("1")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "collected" / "x").read_text() == "1"


def test_sigterm_during_a_stage_leaves_no_temporary(tmp_path):
    """`kill` (SIGTERM) of a stage unwinds its atomic writer: no temporary stays."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'stages')!r})\n"
        "from _common import run\n"
        "from biasvar.core.io import atomic_dir\n"
        "def main():\n"
        f"    with atomic_dir({str(tmp_path / 'out')!r}) as tmp:\n"
        "        (tmp / 'started').write_text('1')\n"
        "        time.sleep(60)\n"
        "run(main)\n")
    p = subprocess.Popen([sys.executable, str(script)], env={"PYTHONPATH": str(ROOT / "src")})
    for _ in range(200):  # `out` did not exist: it is built in place (atomic_dir)
        if (tmp_path / "out" / "started").exists():
            break
        time.sleep(0.05)
    assert (tmp_path / "out" / "started").exists(), "the writer never started"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    assert p.returncode != 0
    assert not list(tmp_path.glob(".out.tmp-*")) and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ identity checks
def _save_inputs(root: Path, blocks: list[int], split_seed: int = 0) -> dict[str, Path]:
    """The files decompose pairs with the collected logits: datasets and split files, named
    as the pipeline names them (``noise-<p>.npz``, ``block-<b>.npz``)."""
    from biasvar.data.dataset import save_dataset

    ds_dir, sp_dir = root / "generated", root / "split-files"
    for p in NOISE:
        save_dataset(_dataset(p), ds_dir / f"noise-{p}.npz")
    sp_dir.mkdir(exist_ok=True)
    for b in blocks:
        shutil.copy(root / "splits" / f"block-{b}-seed-{split_seed}.npz", sp_dir / f"block-{b}.npz")
    return {"datasets": ds_dir, "splits": sp_dir}


def test_dataset_recording_another_label_noise_is_refused(tmp_path):
    """A ``noise-0.2.npz`` that holds the clean dataset (copied, renamed) is not read as
    the 0.2 dataset."""
    from biasvar.data.dataset import load_dataset, save_dataset

    path = tmp_path / "noise-0.2.npz"
    save_dataset(_dataset(0.0), path)
    with pytest.raises(InputError, match=rf"^{path}: records label_noise 0, but is read as "
                       r"the dataset of label_noise 0.2") as e:
        load_dataset(path, label_noise=0.2)
    assert "\n" not in str(e.value)
    assert load_dataset(path, label_noise=0.0).label_noise == 0.0


def test_collected_logits_paired_with_another_dataset_are_refused(tree):
    """decompose reads the ``noisy`` flags from the dataset file: a dataset of another
    ``data.noise_seed`` (or ``data.seed``) than the members trained on is refused, naming
    the collected file and the recorded field."""
    from biasvar.ensemble.logits import check_identity

    run_collect(tree)
    logits = tree / "collected" / "logits"
    check_identity(logits, 0.2, 8, dataset=_dataset(0.2))  # the control: its own dataset
    with pytest.raises(InputError, match=rf"^{config_file(logits, 0.2, 8)}: records "
                       r"dataset.y_train_sha256 = .*, but the dataset read with it has") as e:
        check_identity(logits, 0.2, 8, dataset=_dataset(0.2, noise_seed=1))
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match=r"records dataset.x_sha256"):
        check_identity(logits, 0.2, 8, dataset=_dataset(0.2, data_seed=3))


def test_collected_logits_paired_with_another_split_are_refused(tree):
    """The split file decompose and calibration_intervention read the in-bag indices from
    must hold the indices the members trained on."""
    from biasvar.data.splits import load_split
    from biasvar.ensemble.logits import check_identity

    run_collect(tree)
    logits = tree / "collected" / "logits"
    own = {b: load_split(tree / "splits" / f"block-{b}-seed-0.npz") for b in BLOCKS}
    check_identity(logits, 0.0, 4, splits=own)
    other = make_split("bootstrap", N_TRAIN, _members(1), 7)  # another split.seed
    with pytest.raises(InputError, match=rf"^{config_file(logits, 0.0, 4)}: records "
                       r"split.draw_sha256.2 = .*, but the split file of block 1 has") as e:
        check_identity(logits, 0.0, 4, splits={0: own[0], 1: other})
    assert "\n" not in str(e.value)
    extra = make_split("bootstrap", N_TRAIN, [9], 0)  # a draw no member trained on
    with pytest.raises(InputError, match=r"records no draw 9, but the split file of block 4"):
        check_identity(logits, 0.0, 4, splits={4: extra})


def test_collected_logits_of_other_blocks_are_refused(tree):
    """A collected dataset left by a variant with other blocks is not read as this one."""
    from biasvar.ensemble.logits import check_identity

    run_collect(tree)
    logits = tree / "collected" / "logits"
    check_identity(logits, 0.2, 4, blocks=[1, 0])
    with pytest.raises(InputError, match=rf"^{config_file(logits, 0.2, 4)}: records blocks "
                       r"\[0, 1\], but params list ensemble.blocks = \[0\]"):
        check_identity(logits, 0.2, 4, blocks=[0])


def _one_member_table() -> pa.Table:
    zeros, labels = np.zeros((1, 2, 10), np.float32), np.array([0, 1])
    return logits_table(0.15, 32, np.array([0]), np.array([0]), np.array([0]),
                        {"test": (zeros, labels), "train": (zeros, labels)})


def test_collected_logits_without_a_recorded_identity_are_refused(tmp_path):
    from biasvar.ensemble.logits import check_identity

    path = config_file(tmp_path, 0.15, 32)
    write_table(path, _one_member_table(), LOGITS, {})
    with pytest.raises(InputError, match=rf"^{path}: records no 'blocks'"):
        check_identity(tmp_path, 0.15, 32, blocks=[0])


def _decompose_project(root: Path, blocks: list[int]) -> Path:
    """A folder where the stages run on the synthetic tree: params.yaml, datasets and
    split files as the pipeline names them (collect's inputs), and the train source folder
    ``source`` collected from ``blocks`` (the input of decompose and the stages after)."""
    import yaml

    run_collect(root, blocks=blocks, out="source")
    _save_inputs(root, blocks)
    (root / "params.yaml").write_text(yaml.safe_dump({
        "data": {"label_noise": NOISE},
        "ensemble": {"widths": WIDTHS, "blocks": blocks, "block_size": BLOCK_SIZE,
                     "seeds_per_draw": 1},
        "decompose": {"intervals": True, "ci": 0.95, "ece_bins": 5},
        "calibration_intervention": {"ece_bins": 5, "bootstrap": 20, "ci": 0.95, "seed": 0}}))
    return root


def _run_stage(cwd: Path, script: str, *args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(ROOT / "stages" / script), *args], cwd=cwd,
                          capture_output=True, text=True)


def _decompose(root: Path, out: str, source: str = "source"):
    return _run_stage(root, "decompose.py", "--source", source, "--out", out)


def _collect(root: Path, out: str):
    return _run_stage(root, "collect.py", "--members", "members", "--datasets", "generated",
                      "--splits", "split-files", "--out", out)


def test_collect_reads_only_the_split_files_params_list(tree):
    """A ``block-1.npz`` left in the splits folder by an earlier variant (here: another
    split seed, holding a draw of block 0) changes nothing: collect reads the blocks
    params list, not a glob of the folder (which would change the in-bag indices the
    source folder carries, and with them decompose's out-of-bag columns)."""
    root = _decompose_project(tree, [0])
    r = _collect(root, "clean")
    assert r.returncode == 0, r.stderr
    save_split(make_split("bootstrap", N_TRAIN, [0, 1], 5), root / "split-files" / "block-1.npz")
    r = _collect(root, "stale")
    assert r.returncode == 0, r.stderr
    for name in ("clean", "stale"):
        r = _decompose(root, f"{name}-decomposition", source=name)
        assert r.returncode == 0, r.stderr
    import pandas as pd

    for name in ("examples", "summary", "reliability"):
        a = pq.read_table(root / "clean-decomposition" / f"{name}.parquet").to_pandas()
        b = pq.read_table(root / "stale-decomposition" / f"{name}.parquet").to_pandas()
        pd.testing.assert_frame_equal(a, b)  # NaN (one-draw terms) equal NaN here


def test_collect_with_a_missing_declared_split_file_is_one_line(tree):
    root = _decompose_project(tree, [0])
    (root / "split-files" / "block-0.npz").unlink()
    r = _collect(root, "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr == f"error: {Path('split-files') / 'block-0.npz'}: split not found\n"
    assert not (root / "out").exists()


def test_collect_refuses_a_split_file_other_than_the_members_trained_on(tree):
    """The split file collect takes the in-bag indices from must hold the draws' indices
    the members trained on (here: block 0's file replaced by another split seed's)."""
    root = _decompose_project(tree, [0])
    save_split(make_split("bootstrap", N_TRAIN, [0, 1], 5), root / "split-files" / "block-0.npz")
    r = _collect(root, "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "records split.draw_sha256.0 = " in r.stderr
    assert not (root / "out").exists()


@pytest.mark.parametrize("fault, match", [
    ("missing", r"source/source.json: missing; source is not a source folder"),
    ("not-json", r"source/source.json: "),
    ("field", r"source/source.json: no field 'widths'"),
    ("type", r"source/source.json: field 'widths' is '8'; expected list"),
    ("kind", r"source/source.json: field 'source' is 'mine'; expected one of"),
    ("version", r"source/source.json: source version 0; this biasvar reads version 1"),
    ("examples", r"source/examples.npz: not readable"),
    ("flags", r"source/examples.npz: no array 'noisy__0.2'"),
])
def test_decompose_refuses_a_malformed_source_folder(tree, fault, match):
    """decompose reads only the source folder: each malformed part of it is one line
    naming the file and the field, and nothing is written."""
    root = _decompose_project(tree, [0])
    meta = root / "source" / "source.json"
    obj = json.loads(meta.read_text())
    if fault == "missing":
        meta.unlink()
    elif fault == "not-json":
        meta.write_text("{not json")
    elif fault in ("field", "type", "kind", "version"):
        if fault == "field":
            del obj["widths"]
        else:
            key, value = {"type": ("widths", "8"), "kind": ("source", "mine"),
                          "version": ("version", 0)}[fault]
            obj[key] = value
        meta.write_text(json.dumps(obj))
    elif fault == "examples":
        (root / "source" / "examples.npz").write_bytes(b"cut short")
    else:
        with np.load(root / "source" / "examples.npz") as z:
            arrays = {k: z[k] for k in z.files if k != "noisy__0.2"}
        np.savez(root / "source" / "examples.npz", **arrays)
    r = _decompose(root, "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert re.search(match, r.stderr), r.stderr
    assert not (root / "out").exists()


def test_collect_refuses_a_dataset_file_of_another_level(tree):
    """The file named for 0.2 holds the clean dataset: refused before anything is computed."""
    from biasvar.data.dataset import save_dataset

    root = _decompose_project(tree, [0])
    f = root / "generated" / "noise-0.2.npz"
    f.unlink()
    save_dataset(_dataset(0.0), f)
    r = _collect(root, "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {Path('generated') / 'noise-0.2.npz'}: records "
                               "label_noise 0, but is read as the dataset of label_noise 0.2")
    assert r.stderr.count("\n") == 1 and not (root / "out").exists()


def test_collect_refuses_a_dataset_file_of_another_noise_seed(tree):
    """decompose takes the ``noisy`` flags from the source folder, which collect fills
    from the dataset file: a dataset of another ``data.noise_seed`` than the members
    trained on is refused there, naming the collected file and the recorded field."""
    from biasvar.data.dataset import save_dataset

    root = _decompose_project(tree, [0])
    f = root / "generated" / "noise-0.2.npz"
    f.unlink()
    save_dataset(_dataset(0.2, noise_seed=1), f)
    r = _collect(root, "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "records dataset.y_train_sha256 = " in r.stderr and not (root / "out").exists()


def test_probe_refuses_a_block_copied_from_another_config(tree):
    """probe reads members.json: a block directory holding another config's block is
    refused before any checkpoint is loaded."""
    from biasvar.studies.effective_rank import probe_block

    d = block_dir(tree / "members", 0.2, 8, 1)
    x = np.zeros((3, 40))
    with pytest.raises(InputError, match=rf"{d / 'members.json'}: records width = 8, but is "
                       r"read as width 4"):
        probe_block(d, x, True, {"label_noise": 0.2, "width": 4, "block": 1})
    with pytest.raises(InputError, match=r"records label_noise = 0.2, but is read as "
                       r"label_noise 0.0"):
        probe_block(d, x, True, {"label_noise": 0.0, "width": 8, "block": 1})
    with pytest.raises(InputError, match=r"records dataset.x_sha256 = '[0-9a-f]+', but is "
                       r"read as dataset.x_sha256 'other'"):
        probe_block(d, x, True, {"x_sha256": "other"})


def test_train_refuses_a_split_file_of_another_block(tmp_path):
    """The train stage's split file must hold the draws of its block's members (otherwise:
    a KeyError traceback from inside training)."""
    import yaml

    from biasvar.data.dataset import save_dataset
    from biasvar.data.splits import save_split

    save_dataset(_dataset(0.0), tmp_path / "noise-0.0.npz")
    save_split(make_split("bootstrap", N_TRAIN, [0, 1], 0), tmp_path / "block-0.npz")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ensemble"].update(block_size=2, seeds_per_draw=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = _run_stage(tmp_path, "train.py", "--label-noise", "0.0", "--width", "4", "--block", "1",
                   "--dataset", "noise-0.0.npz", "--split", "block-0.npz", "--out", "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr == ("error: block-0.npz: holds draws [0, 1], but block 1 needs draws "
                        "[2, 3] (missing [2, 3]; rerun split)\n")
    assert not (tmp_path / "out").exists()
    r = _run_stage(tmp_path, "train.py", "--label-noise", "0.2", "--width", "4", "--block", "0",
                   "--dataset", "noise-0.0.npz", "--split", "block-0.npz", "--out", "out")
    assert r.returncode == 2 and "records label_noise 0, but is read as the dataset of " \
        "label_noise 0.2" in r.stderr


# ------------------------------------------------------------------ I/O failures
def test_a_write_failure_without_a_file_name_names_the_output(tmp_path, monkeypatch):
    """pyarrow's "Error writing bytes to file ... No space left on device" names no file:
    the writer names the output it was writing, in one line (not "error: a file: ...")."""
    import pyarrow.parquet as pq_mod

    from biasvar.core.errors import OutputError

    def full_disk(*args, **kwargs):
        raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq_mod, "write_table", full_disk)
    path = tmp_path / "regress" / "fits.parquet"
    table = _one_member_table()
    with pytest.raises(OutputError, match=rf"^{path}: cannot be written \(Error writing bytes "
                       r"to file. Detail: \[errno 28\] No space left on device\)$"):
        write_table(path, table, LOGITS)
    assert list((tmp_path / "regress").iterdir()) == []


def test_a_permission_error_on_a_temporary_names_the_output(tmp_path):
    from biasvar.core.errors import OutputError
    from biasvar.core.io import atomic_path

    path = tmp_path / "out.json"
    with pytest.raises(OutputError, match=rf"^{path}: cannot be written \(Permission denied\)"):
        with atomic_path(path) as tmp:
            raise PermissionError(13, "Permission denied", str(tmp))
    assert not path.exists()


def test_a_killed_file_writer_leaves_nothing(tmp_path):
    """SIGKILL while a file is being written: no file and no temporary remain, even if no
    later writer of that file runs to sweep it (DVC restoring the output from its
    run-cache runs no stage code)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, time\n"
        "from biasvar.core.io import atomic_path\n"
        f"with atomic_path({str(tmp_path / 'out' / 'f.csv')!r}) as tmp:\n"
        "    tmp.write_text('half')\n"
        f"    open({str(tmp_path / 'started')!r}, 'w').close()\n"
        "    time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, str(script)], env={**os.environ,
                                                             "PYTHONPATH": str(ROOT / "src")})
    for _ in range(400):
        if (tmp_path / "started").exists():
            break
        time.sleep(0.05)
    assert (tmp_path / "started").exists(), "the writer never started"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert list((tmp_path / "out").iterdir()) == []


def _kill_writer_in(tmp_path: Path, target: Path, body: str):
    """Start a process that opens ``atomic_dir(target)``, runs ``body`` (which may use
    ``tmp``), touches ``started`` and sleeps; SIGKILL it once started."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, time\n"
        "from biasvar.core.io import atomic_dir\n"
        f"with atomic_dir({str(target)!r}) as tmp:\n"
        f"{body}"
        f"    open({str(tmp_path / 'started')!r}, 'w').close()\n"
        "    time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, str(script)], env={**os.environ,
                                                             "PYTHONPATH": str(ROOT / "src")})
    for _ in range(400):
        if (tmp_path / "started").exists():
            break
        time.sleep(0.05)
    assert (tmp_path / "started").exists(), "the writer never started"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)


def test_a_killed_directory_writer_leaves_no_temporary_beside_the_output(tmp_path):
    """SIGKILL of collect mid-write: a named temporary beside the output (a 12 MB
    ``data/.collected.tmp-<pid>``) would stay even after DVC restored ``data/collected``
    from its run-cache. The folder is built in place, marked incomplete: readers refuse
    it, DVC deletes it (it is the declared output) before a rerun or restore, and the
    next writer replaces it."""
    from biasvar.core.io import atomic_dir, read_json

    data = tmp_path / "data"
    data.mkdir()
    target = data / "collected"
    _kill_writer_in(tmp_path, target, "    (tmp / 'm.json').write_text('{}')\n")
    assert sorted(p.name for p in data.iterdir()) == ["collected"]  # nothing beside it
    with pytest.raises(InputError, match=rf"^{target / 'm.json'}: {target} is incomplete "
                       r"\(its writer was interrupted\)"):
        read_json(target / "m.json")
    with atomic_dir(target) as tmp:
        (tmp / "m.json").write_text('{"ok": 1}')
    assert read_json(target / "m.json") == {"ok": 1}
    assert sorted(p.name for p in target.iterdir()) == ["m.json"]


def test_a_folder_killed_mid_replacement_keeps_the_old_copy(tmp_path):
    """Replacing an existing folder (a persisted report): a SIGKILL while the new one is
    built leaves the old one untouched; the next writer removes the leftover."""
    from biasvar.core.io import atomic_dir

    target = tmp_path / "reports" / "default"
    target.mkdir(parents=True)
    (target / "README.md").write_text("old\n")
    _kill_writer_in(tmp_path, target, "    (tmp / 'README.md').write_text('new, half')\n")
    assert (target / "README.md").read_text() == "old\n"
    with atomic_dir(target) as tmp:
        (tmp / "README.md").write_text("new\n")
    assert (target / "README.md").read_text() == "new\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["default"]


def test_a_kill_between_the_two_renames_is_undone_by_the_next_writer(tmp_path):
    """The one instant the folder is missing (old renamed aside, new not yet in): the
    next writer puts the old copy back before it starts, so nothing is lost."""
    import subprocess

    from biasvar.core.io import atomic_dir

    dead = subprocess.Popen(["true"])
    dead.wait()
    target = tmp_path / "default"
    old = tmp_path / f".default.old-{dead.pid}"
    old.mkdir()
    (old / "README.md").write_text("old\n")
    (tmp_path / f".default.tmp-{dead.pid}").mkdir()
    with pytest.raises(RuntimeError), atomic_dir(target):
        raise RuntimeError("the new report fails")
    assert (target / "README.md").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default"]


def test_calibration_intervention_reads_the_in_bag_indices_of_the_source_folder(tree):
    """The out-of-bag examples come from the source folder's ``examples.npz`` (collect
    wrote it from the listed blocks' split files): a stray split file elsewhere is never
    opened, and a folder without a draw's indices is one line naming the draw."""
    root = _decompose_project(tree, [0])
    (root / "split-files" / "block-1.npz").write_bytes(b"left by an earlier variant")
    args = ("--source", "source", "--out", "ci.csv", "--bins", "bins.csv", "--metrics", "ci.json")
    r = _run_stage(root, "calibration_intervention.py", *args)
    assert r.returncode == 0, r.stderr
    with np.load(root / "source" / "examples.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "in_bag__1"}
    np.savez(root / "source" / "examples.npz", **arrays)
    r = _run_stage(root, "calibration_intervention.py", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "draw 1" in r.stderr, r.stderr
