"""``configs/experiment/cifar10.yaml`` through the pipeline on tiny synthetic CIFAR-10 files.

The configuration is applied to a temporary git repo copy of the project
(``test_pipeline.make_project``) the way ``dvc exp run -S +experiment=cifar10 -S
key=value ...`` and ``biasvar launch -S ...`` apply it: DVC's Hydra composition of
``params.yaml`` (``biasvar.cli.launch.compose_params``), validated. The ``-S`` items
shrink sizes only (widths, blocks, members, steps, batch, depth, bootstrap replicates,
threads, and one of the two label-noise levels: each level adds a generate and a train
stage per width, ~11 s of the ~32 s on 2 cores) and point ``data.root`` at synthetic
files in the CIFAR-10 python-pickle layout (``test_providers.write_cifar``). The data's
name, the family and its stages, the optimizer and its learning rate, and the report's
name are the configuration's. ``dvc repro`` runs up to every stage the main report
reads, then the ``plot`` stage's script runs outside the tree, as in
``test_pipeline_datasets.py``.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from test_pipeline import make_project, sh
from test_pipeline_datasets import plot_main_report
from test_providers import write_cifar

pytestmark = pytest.mark.pipeline

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "experiment" / "cifar10.yaml"
N_TRAIN, N_TEST = 60, 200  # synthetic images: 12 per training batch file; at chance, ~20
# test examples are classified correctly, enough for the alignment fits the report reads
SHRINK = [  # -S items: sizes only
    "data.label_noise=[0.15]", "ensemble.widths=[2, 4]", "ensemble.blocks=[0]",
    "ensemble.block_size=4", "ensemble.seeds_per_draw=2", "model.depth=1",
    "train.steps=4", "train.log_every=2", "train.batch_size=20",
    "regress.bootstrap=10", "alignment_size.bootstrap=10",
    "calibration_intervention.bootstrap=10", "runtime.threads=1", "runtime.progress=false",
]


def test_cifar10_config_validates_with_the_files_where_the_docs_put_them(tmp_path, monkeypatch):
    """The configuration as it is (its sizes, its relative ``data.root``) merged onto
    ``params.yaml`` passes validation once the files are in ``data/cifar-10-batches-py``
    (docs/gpu.md), and names that folder when they are not."""
    import shutil

    from biasvar.cli.launch import compose_params
    from biasvar.core.config import read_yaml
    from biasvar.core.errors import InputError

    shutil.copy2(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "configs", tmp_path / "configs", symlinks=True)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")  # import.path must exist
    (tmp_path / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", tmp_path / ".dvc" / "config")
    monkeypatch.chdir(tmp_path)  # data.root is relative to the project folder
    out = tmp_path / "composed.yaml"
    with pytest.raises(InputError, match="data/cifar-10-batches-py: cifar10 directory not found"):
        compose_params(tmp_path, ["+experiment=cifar10"], out)
    # batch 128 needs draws of at least 128 images: 200 synthetic training images
    write_cifar(tmp_path / "data" / "cifar-10-batches-py", "cifar10", 200, 50)
    merged = read_yaml(compose_params(tmp_path, ["+experiment=cifar10"], out))
    assert merged["data"]["root"] == "data/cifar-10-batches-py"
    ens = merged["ensemble"]
    members = len(ens["blocks"]) * ens["block_size"]
    assert members >= 20 and members % ens["seeds_per_draw"] == 0
    assert members // ens["seeds_per_draw"] >= 2 and ens["seeds_per_draw"] >= 2  # Neal's split
    assert (merged["model"]["arch"], merged["model"]["depth"], merged["model"]["stages"]) == (
        "resnet", 2, 4)  # ResNet18's layout


def test_cifar10_config_to_the_report(tmp_path):
    import os

    import yaml

    from biasvar.cli.launch import compose_params
    from biasvar.core.config import read_yaml
    from biasvar.core.schema import read_params
    from biasvar.ensemble.logits import config_file, read_config

    config = yaml.safe_load(CONFIG.read_text())
    cifar = write_cifar(tmp_path / "cifar-10-batches-py", "cifar10", N_TRAIN, N_TEST)
    proj = make_project(tmp_path / "proj", {})
    composed = compose_params(proj, ["+experiment=cifar10", *SHRINK, f"data.root={cifar}"],
                              tmp_path / "composed.yaml")
    os.replace(composed, proj / "params.yaml")  # what biasvar launch -S does
    sh(proj, "git", "commit", "-qam", "configs/experiment/cifar10.yaml, shrunk")

    params = read_yaml(proj / "params.yaml")
    for section, key in (("data", "name"), ("data", "num_samples"),
                         ("model", "arch"), ("model", "stages"), ("train", "optimizer"),
                         ("train", "lr"), ("plot", "report")):
        assert params[section][key] == config[section][key], (section, key)
    assert params["data"]["root"] == str(cifar)
    assert params["data"]["label_noise"] == [0.15] and 0.15 in config["data"]["label_noise"]
    assert params["ensemble"]["widths"] == [2, 4]

    r = sh(proj, sys.executable, "-m", "dvc", "repro", "regress", "alignment_size",
           "calibration_intervention")
    assert "train@0.15-4-0" in r.stdout
    logits = proj / "data" / "sources" / "train" / "logits"
    got = read_config(logits, 0.15, 4, "test")
    assert got.logits.shape == (4, N_TEST, 10)
    np.testing.assert_array_equal(got.draws, [0, 0, 1, 1])
    assert np.isfinite(got.logits).all() and got.logits.std() > 0
    # the test labels are the files' own (the synthetic test_batch), untouched by noise
    with open(cifar / "test_batch", "rb") as f:
        np.testing.assert_array_equal(got.labels, pickle.load(f, encoding="bytes")[b"labels"])
    assert read_config(logits, 0.15, 4, "train").logits.shape == (4, N_TRAIN, 10)
    meta = read_params(config_file(logits, 0.15, 4))
    assert meta["model"]["arch"] == "resnet"
    assert {k: meta["dataset"][k] for k in ("name", "input_shape", "n_classes", "source")} \
        == {"name": "cifar10", "input_shape": [3, 32, 32], "n_classes": 10,
            "source": str(cifar)}
    assert read_params(proj / "data" / "decomposition" / "summary.parquet")["data"]["name"] \
        == "cifar10"
    # member 0's checkpoint is a plain GroupNorm ResNet that gives its collected logits on
    # the test_batch bytes / 255, channel-major
    import torch

    from biasvar.ensemble.models import reference_model

    net = reference_model("resnet", 4, depth=1, input_shape=(3, 32, 32), n_classes=10,
                          stages=4)
    ckpt = proj / "data" / "members" / "noise-0.15" / "width-4" / "block-0" / "checkpoints"
    state = torch.load(ckpt / "member-000000.pt")
    assert "blocks.0.norm1.weight" in state and not any("running" in k for k in state)
    net.load_state_dict(state)
    with open(cifar / "test_batch", "rb") as f:
        x = pickle.load(f, encoding="bytes")[b"data"].reshape(-1, 3, 32, 32)
    with torch.no_grad():
        mine = net.eval()(torch.as_tensor(x, dtype=torch.float32) / 255).numpy()
    np.testing.assert_allclose(mine, got.logits[0], rtol=1e-4, atol=1e-4)

    plot_main_report(proj, tmp_path / "reports", "cifar10",
                     "resnet ensembles on CIFAR-10 (inputs 3×32×32, 10 classes)")
