"""The DVC pipeline end to end on tiny params, in a temporary git repo copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ["dvc.yaml", "params.yaml", "pyproject.toml", "stages", "src", ".dvc/config",
        ".dvcignore", ".gitignore"]

TINY = {
    "data": {"label_noise": [0.0, 0.2], "num_samples": 400, "train_split": 0.5},
    "ensemble": {"widths": [4, 8], "blocks": [0, 1], "block_size": 2, "seeds_per_draw": 2},
    "train": {"steps": 30, "log_every": 10, "batch_size": 50},
    "runtime": {"progress": False, "threads": 1},
}


def _env():
    env = dict(os.environ)
    # dvc and the stage scripts run with this interpreter's environment.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def sh(cwd, *args, check=True):
    r = subprocess.run(list(args), cwd=cwd, env=_env(), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def make_project(dest: Path, overrides: dict) -> Path:
    """Copy the project (code, dvc.yaml, params) into ``dest`` as a fresh git+dvc repo."""
    for item in COPY:
        src = ROOT / item
        if not src.exists():
            continue
        target = dest / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "config", "user.email", "test@example.com")
    sh(dest, "git", "config", "user.name", "test")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-qm", "project copy")
    return dest


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("proj"), TINY)


@pytest.mark.pipeline
def test_repro_to_collect(tiny_project):
    from biasvar.core.schema import LOGITS, read_params
    from biasvar.ensemble.logits import read_config

    r = sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    assert "train@0.2-8-1" in r.stdout
    root = tiny_project / "data" / "collected"
    files = sorted(p.name for p in (root / "logits").iterdir())
    assert files == ["noise-0.0_width-4.parquet", "noise-0.0_width-8.parquet",
                     "noise-0.2_width-4.parquet", "noise-0.2_width-8.parquet"]
    got = read_config(root / "logits", 0.2, 8, "test")
    assert got.logits.shape == (4, 200, 10)
    np.testing.assert_array_equal(got.members, [0, 1, 2, 3])
    np.testing.assert_array_equal(got.draws, [0, 0, 1, 1])
    train = read_config(root / "logits", 0.2, 8, "train")
    assert train.logits.shape == (4, 200, 10)
    # train labels are the noisy ones the members trained on
    from biasvar.data.dataset import load_dataset

    ds = load_dataset(tiny_project / "data" / "generated" / "noise-0.2.npz")
    np.testing.assert_array_equal(train.labels, ds.y_train)
    np.testing.assert_array_equal(got.labels, ds.y_test)
    meta = read_params(root / "logits" / "noise-0.2_width-8.parquet")
    assert meta["model"]["arch"] == "mlp" and meta["train"]["steps"] == 30
    assert LOGITS.name == "logits"
    members = (root / "members.csv").read_text().splitlines()
    assert len(members) == 1 + 2 * 2 * 4  # header + noise x width x members
    # second repro: nothing to do
    r = sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    assert "didn't change" in r.stdout or "up to date" in r.stdout
    assert "Running stage" not in r.stdout


@pytest.mark.pipeline
def test_bad_param_fails_before_training(tmp_path):
    proj = make_project(tmp_path / "bad", {**TINY, "ensemble": {**TINY["ensemble"],
                                                                "widths": [4, 0]}})
    r = sh(proj, sys.executable, "-m", "dvc", "repro", "collect", check=False)
    assert r.returncode != 0
    assert "error: params.yaml: ensemble.widths[1] = 0 is invalid: an integer >= 1" in (
        r.stdout + r.stderr)
    assert not (proj / "data" / "members").exists()  # nothing trained
