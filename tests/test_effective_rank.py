"""Effective rank (Roy & Vetterli) and the probe of trained blocks' checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from biasvar.core.config import RuntimeParams
from biasvar.core.errors import InputError, ParamError
from biasvar.core.rng import numpy_generator
from biasvar.data.splits import make_split
from biasvar.ensemble.blocks import block_dir, checkpoint_name, save_block
from biasvar.ensemble.config import ModelParams, TrainParams
from biasvar.ensemble.models import reference_model
from biasvar.ensemble.train import BlockSpec, train_block
from biasvar.studies.effective_rank import (
    ERANK_MEMBER_COLUMNS,
    ERANK_SUMMARY_COLUMNS,
    ProbeParams,
    effective_rank,
    embeddings,
    probe_block,
    run_probe,
)


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_identity_has_effective_rank_n(n):
    assert effective_rank(np.eye(n)) == pytest.approx(n, rel=1e-12)
    assert effective_rank(3.5 * np.eye(n)) == pytest.approx(n, rel=1e-12)  # scale-free


def test_rank_one_has_effective_rank_one():
    rng = numpy_generator(0, "erank")
    u, v = rng.standard_normal(50), rng.standard_normal(8)
    assert effective_rank(np.outer(u, v)) == pytest.approx(1.0, abs=1e-9)


def test_effective_rank_is_exp_entropy_of_normalized_singular_values():
    # singular values 3, 1 -> p = (3/4, 1/4)
    a = np.diag([3.0, 1.0, 0.0])
    p = np.array([0.75, 0.25])
    assert effective_rank(a) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-12)
    # rotations leave it unchanged; it lies between 1 and the rank
    q, _ = np.linalg.qr(numpy_generator(1, "erank").standard_normal((3, 3)))
    assert effective_rank(q @ a @ q.T) == pytest.approx(effective_rank(a), rel=1e-10)
    assert 1 < effective_rank(a) < 2


def test_centering_removes_the_mean_direction():
    rng = numpy_generator(2, "erank")
    x = rng.standard_normal((500, 5)) + 100.0  # huge shared mean: one dominant direction
    assert effective_rank(x) < 1.2
    assert effective_rank(x, center=True) > 4.5
    assert effective_rank(np.zeros((4, 3))) == 0.0


RUNTIME = RuntimeParams(device="cpu", threads=0, progress=False)


@pytest.fixture(scope="module")
def trained_blocks(tmp_path_factory, clean_dataset):
    """Two tiny trained blocks (width 6 and 12, two members each) written as train does."""
    root = tmp_path_factory.mktemp("members")
    split = make_split("bootstrap", clean_dataset.n_train, [0], seed=0)
    model, cfg = ModelParams(arch="mlp", depth=2, residual=False), TrainParams(
        optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0, steps=20, batch_size=50, seed=0,
        log_every=10)
    for width in (6, 12):
        spec = BlockSpec((0, 1), (0, 0), (0, 1), width)
        result = train_block(clean_dataset, split, spec, model, cfg, RUNTIME)
        info = {"label_noise": 0.0, "width": width, "block": 0,
                "params": {"model": {"arch": "mlp", "depth": 2, "residual": False},
                           "train": {}, "split_method": "bootstrap"}}
        save_block(result, block_dir(root, 0.0, width, 0), info, clean_dataset.y_test,
                   clean_dataset.y_train)
    return root


def test_probe_block_matches_the_checkpointed_models(trained_blocks, clean_dataset):
    x = clean_dataset.x_test
    rows = probe_block(block_dir(trained_blocks, 0.0, 12, 0), x, center=False)
    assert [r["member"] for r in rows] == [0, 1]
    for r in rows:
        model = reference_model("mlp", 12, 2, False)
        path = block_dir(trained_blocks, 0.0, 12, 0) / "checkpoints" / checkpoint_name(r["member"])
        model.load_state_dict(torch.load(path, weights_only=True))
        emb = embeddings(model, x)
        assert emb.shape == (len(x), 12)
        assert r["erank"] == pytest.approx(effective_rank(emb), rel=1e-12)
        assert r["n_examples"] == len(x) and r["feature_dim"] == 12
        assert 1 <= r["erank"] <= r["rank"] <= 12 - r["dead_units"]


def test_run_probe_tables(trained_blocks, clean_dataset):
    res, members = run_probe(trained_blocks, {0.0: clean_dataset.x_test}, [6, 12], [0],
                             center=False)
    assert list(members.columns) == list(ERANK_MEMBER_COLUMNS)
    assert list(members["width"]) == [6, 6, 12, 12]
    s = res.table
    assert list(s.columns) == list(ERANK_SUMMARY_COLUMNS)
    assert list(s["n_members"]) == [2, 2]
    w12 = members[members["width"] == 12]["erank"]
    assert s.loc[s["width"] == 12, "erank_mean"].item() == pytest.approx(w12.mean())
    assert s.loc[s["width"] == 12, "erank_sd"].item() == pytest.approx(w12.std(ddof=1))
    assert set(res.metrics["erank_mean"]["noise-0.0"]) == {"6", "12"}
    json.dumps(res.metrics)  # JSON-ready


def test_missing_block_or_wrong_checkpoint_is_named(trained_blocks, clean_dataset, tmp_path):
    with pytest.raises(InputError, match="width-24/block-0/members.json"):
        run_probe(trained_blocks, {0.0: clean_dataset.x_test}, [24], [0], center=False)
    # a members.json that records the wrong width for its checkpoints
    src = block_dir(trained_blocks, 0.0, 6, 0)
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(src, bad)
    info = json.loads((bad / "members.json").read_text())
    info["width"] = 7
    (bad / "members.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="member-000000.pt: does not fit the mlp of width 7"):
        probe_block(bad, clean_dataset.x_test, center=False)


def test_params_validate():
    assert ProbeParams.from_dict({"partition": "train", "center": True}) == ProbeParams(
        partition="train", center=True)
    with pytest.raises(ParamError, match="probe.center = 'no' is invalid: true or false"):
        ProbeParams.from_dict({"partition": "test", "center": "no"})
