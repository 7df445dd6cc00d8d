"""The companion-study stages under DVC on tiny params: outputs, and per-study reruns."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
import yaml
from test_pipeline import make_project, sh
from tiny import BIAS_STUDIES

from biasvar.studies.ridgeless import RIDGELESS_COLUMNS
from biasvar.studies.spectral import SPECTRAL_COLUMNS
from biasvar.studies.tradeoff import TRADEOFF_COLUMNS

TINY = {
    **BIAS_STUDIES,
    "data": {"label_noise": [0.0], "num_samples": 200, "train_split": 0.5},
    "ensemble": {"widths": [4], "blocks": [0], "block_size": 2, "seeds_per_draw": 1},
    "train": {"steps": 10, "log_every": 5, "batch_size": 50},
    "collapse": {"num_samples": 1000, "widths": [4, 8], "draws": 2, "seeds_per_draw": 2,
                 "steps": 20, "batch_size": 25},
    "pc_bias": {"num_samples": 200, "log_every": 5,
                "base": {"activation": "linear", "depth": 2, "width": 4, "members": 2,
                         "optimizer": "sgd", "lr": 0.05, "steps": 10, "init_scale": 1.0,
                         "data": "pca"},
                "configs": {"linear": {}, "relu": {"activation": "relu"}}},
    "runtime": {"progress": False, "threads": 1},
    "tradeoff": {"hidden_units": [1, 2, 3], "n_datasets": 4, "n_grid": 20, "test_draws": 1},
    "ridgeless": {"n_features": [1, 3, 5, 8], "n_train": 5, "n_test": 50, "repeats": 3},
    "spectral": {"frequencies": [2, 4], "n_points": 16, "log_every": 5,
                 "base": {"amplitudes": "equal", "activation": "relu", "depth": 1, "width": 8,
                          "optimizer": "adam", "lr": 0.01, "momentum": 0.9, "steps": 10},
                 "configs": {"relu-equal": {"activation": "relu"},
                             "tanh-equal": {"activation": "tanh"}}},
}
STUDIES = ("tradeoff", "ridgeless", "spectral@relu-equal", "spectral@tanh-equal")


def _status(proj) -> set[str]:
    r = sh(proj, sys.executable, "-m", "dvc", "status", "--json")
    return set(json.loads(r.stdout or "{}"))


def _set_params(proj, edit) -> None:
    path = proj / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.pipeline
def test_study_stages_run_and_rerun_only_on_their_own_inputs(tmp_path):
    proj = make_project(tmp_path / "proj", TINY)
    r = sh(proj, sys.executable, "-m", "dvc", "repro", *STUDIES)
    for stage in STUDIES:
        assert f"Running stage '{stage}'" in r.stdout
    studies = proj / "data" / "studies"
    assert list(pd.read_csv(studies / "tradeoff.csv").columns) == list(TRADEOFF_COLUMNS)
    assert list(pd.read_csv(studies / "ridgeless.csv").columns) == list(RIDGELESS_COLUMNS)
    for name in ("relu-equal", "tanh-equal"):
        t = pd.read_csv(studies / "spectral" / f"{name}.csv")
        assert list(t.columns) == list(SPECTRAL_COLUMNS) and len(t) == 3 * 2
        m = json.loads((proj / "data" / "metrics" / f"spectral-{name}.json").read_text())
        assert m["steps"] == 10
    for m in ("tradeoff", "ridgeless"):
        assert (proj / "data" / "metrics" / f"{m}.json").exists()
    # stages never run here (training, analysis) are out of date from the start
    baseline = _status(proj)
    assert not baseline & set(STUDIES)

    # A study's params or sources rerun that study only: not the other studies,
    # not the other spectral configs, not the training stages.
    params_text = (proj / "params.yaml").read_text()
    source = proj / "src" / "biasvar" / "studies" / "ridgeless.py"
    source_text = source.read_text()

    def edit(p):
        p["tradeoff"]["seed"] = 1
        p["spectral"]["configs"]["tanh-equal"]["lr"] = 0.02
        p["probe"]["center"] = True  # probe never ran: already in the baseline

    _set_params(proj, edit)
    source.write_text(source_text + "# touched\n")
    assert _status(proj) - baseline == {"tradeoff", "spectral@tanh-equal", "ridgeless"}
    # a shared spectral key reruns every spectral config, and nothing else
    (proj / "params.yaml").write_text(params_text)
    source.write_text(source_text)
    _set_params(proj, lambda p: p["spectral"]["base"].update(steps=15))
    assert _status(proj) - baseline == {"spectral@relu-equal", "spectral@tanh-equal"}


@pytest.mark.pipeline
def test_bad_study_param_fails_with_one_line(tmp_path):
    bad = {**TINY, "spectral": {**TINY["spectral"],
                                "configs": {"relu-equal": {"activation": "gelu"}}}}
    proj = make_project(tmp_path / "bad", bad)
    r = sh(proj, sys.executable, "-m", "dvc", "repro", "spectral@relu-equal", check=False)
    assert r.returncode != 0
    assert ("error: params.yaml: spectral.configs.relu-equal.activation = 'gelu' is invalid: "
            "one of relu, tanh") in r.stdout + r.stderr
