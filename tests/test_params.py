"""Params validation: bad values fail with one line naming key, value and what is allowed."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from biasvar.core.config import DeclaredParams, load_declared, read_yaml
from biasvar.core.errors import ParamError
from biasvar.tools.validate import validate_all

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def raw():
    return read_yaml(ROOT / "params.yaml")


def test_default_params_are_valid(raw):
    out = validate_all(raw)
    assert out["ensemble"].members == tuple(range(32))
    assert out["ensemble"].n_draws == 8


BAD = [
    # (section.key, value, words the message must contain)
    ("model.arch", "transformer", "one of mlp, cnn1d, cnn, logistic, cnn2d, resnet, module"),
    ("ensemble.widths", [8, 0], ">= 1"),
    ("ensemble.widths", [8, -16], ">= 1"),
    ("ensemble.widths", [8, 8], "distinct"),
    ("ensemble.blocks", [], "non-empty list"),
    ("ensemble.blocks", [0, 0], "distinct block ids"),
    ("ensemble.blocks", [0, -1], ">= 0"),
    ("data.label_noise", [0.0, 1.0], "[0, 1)"),
    ("data.label_noise", [-0.1], "[0, 1)"),
    ("data.train_split", 1.5, "(0, 1)"),
    ("ensemble.seeds_per_draw", 3, "divisor of block_size x len(blocks) = 32"),
    ("ensemble.block_size", 0, ">= 1"),
    ("train.optimizer", "lbfgs", "one of adam, sgd"),
    ("train.lr", 0, "positive"),
    ("train.lr", "fast", "positive"),
    ("train.steps", 10.5, "integer"),
    ("train.batch_size", 5000, "at most the 2000 examples"),
    ("train.momentum", 1.0, "[0, 1)"),
    ("model.residual", "yes", "true or false"),
    ("split.method", "jackknife", "one of bootstrap, disjoint, full, half"),
    ("runtime.device", "tpu", "one of auto, cpu, cuda"),
    ("model.depht", 3, "unknown key"),
    ("decompose.intervals", 1, "true or false"),
    ("decompose.ci", 1.0, "(0, 1)"),
    ("regress.estimator", "jackknife", "one of plugin, unbiased"),
    ("tradeoff.noise_std", -0.3, ">= 0"),
    ("tradeoff.n_datasets", 1, ">= 2"),
    ("tradeoff.hidden_units", [1, 0], ">= 1"),
    ("ridgeless.n_features", [3, 3], "distinct"),
    ("spectral.frequencies", [5, 100], "below n_points / 2 = 100 (Nyquist)"),
    ("spectral.log_every", 0, ">= 1"),
    ("probe.partition", "validation", "one of test, train"),
    ("collapse.classes", [3, 3], "two distinct MNIST-1D classes"),
    ("collapse.classes", [8, 10], "two distinct MNIST-1D classes"),
    ("collapse.draws", 1, ">= 2"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_value_names_key_value_and_allowed(raw, key, value, allowed):
    bad = copy.deepcopy(raw)
    section, name = key.split(".")
    bad[section][name] = value
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    msg = str(e.value)
    assert "\n" not in msg
    assert key in msg
    # the whole value, or for a list the offending element with its index
    shown = [repr(value)] + ([f"[{i}] = {v!r}" for i, v in enumerate(value)]
                             if isinstance(value, list) else [])
    assert any(s in msg for s in shown), msg
    assert allowed in msg


def test_blocks_must_hold_whole_draws(raw):
    bad = copy.deepcopy(raw)
    bad["ensemble"].update(block_size=2, seeds_per_draw=4, blocks=[0, 2])
    with pytest.raises(ParamError, match=r"ensemble\.blocks.*whole draws"):
        validate_all(bad)


def test_disjoint_needs_enough_parts(raw):
    bad = copy.deepcopy(raw)
    bad["split"].update(method="disjoint", parts=4)  # 8 draws need >= 8 parts
    with pytest.raises(ParamError, match=r"split\.parts = 4"):
        validate_all(bad)


def test_cli_prints_one_line_and_fails(raw, tmp_path):
    bad = copy.deepcopy(raw)
    bad["model"]["arch"] = "transformer"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    r = subprocess.run([sys.executable, "-m", "biasvar.tools.validate", str(path)],
                       capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == ["error: params.yaml: model.arch = 'transformer' is invalid: "
                     "one of mlp, cnn1d, cnn, logistic, cnn2d, resnet, module"]


def test_stage_reads_only_declared_keys(tmp_path):
    p = DeclaredParams({"train": {"lr": 0.1}, "model": {"arch": "mlp"}}, ["train"], "x")
    assert p.get("train.lr") == 0.1
    with pytest.raises(KeyError, match="not declared"):
        p.get("model.arch")


def _dvc_stage_params() -> dict[str, list[str]]:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    out = {}
    for name, st in dvc["stages"].items():
        body = st.get("do", st)
        out[name] = body.get("params", [])
    return out


STAGES = sorted(_dvc_stage_params())  # every stage of dvc.yaml, new ones included


@pytest.mark.parametrize("stage", STAGES)
def test_stage_scripts_declare_what_dvc_yaml_declares(stage):
    """A script's PARAMS (the only keys it may read) equal its dvc.yaml params list."""
    text = (ROOT / "stages" / f"{stage}.py").read_text()
    m = re.search(r"^PARAMS = \((.*?)\)$", text, re.M | re.S)
    declared = [s.strip().strip('"') for s in m.group(1).split(",") if s.strip()]
    assert sorted(declared) == sorted(_dvc_stage_params()[stage])


def test_no_stage_declares_runtime():
    for name, keys in _dvc_stage_params().items():
        assert not any(k.startswith("runtime") for k in keys), name


def test_load_declared_reads_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lr: 0.5\n")
    assert load_declared(["train.lr"], path).get("train.lr") == 0.5
