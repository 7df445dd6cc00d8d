"""Named configurations and variants through DVC: Hydra composition and the queue.

``configs/experiment/NAME.yaml`` holds the keys a configuration changes;
``dvc exp run -S +experiment=NAME`` (and ``biasvar launch -S +experiment=NAME``) compose
``params.yaml`` from it with DVC's Hydra support (``.dvc/config``: ``hydra.enabled``,
``hydra.config_dir: configs``; ``configs/config.yaml`` is a link to ``params.yaml``).
The unit tests compose with ``biasvar.cli.launch.compose_params`` (DVC's own
``compose_and_dump``, then biasvar's validation) into temporary files; the pipeline
test runs a real ``dvc exp run --queue`` grid and ``dvc queue start -j 2`` on a tiny
copy of the project.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml

from biasvar.cli.launch import compose_params
from biasvar.core.config import read_yaml

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("paper", "biases", "digits", "cnn")  # cifar10 needs its files: test_pipeline_cifar


def _compose(tmp_path: Path, *overrides: str) -> dict:
    return read_yaml(compose_params(ROOT, list(overrides), tmp_path / "params.yaml"))


def _experiment(name: str) -> dict:
    """The file as written (its Hydra ``defaults`` list included)."""
    return yaml.safe_load((ROOT / "configs" / "experiment" / f"{name}.yaml").read_text())


def _leaves(d: dict, prefix: str = "") -> dict:
    """``{dotted key: value}``; a study's ``configs`` mapping is one leaf (its order kept)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "configs":
            out |= _leaves(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = list(v.items()) if isinstance(v, dict) else v
    return out


def test_dvc_composes_params_from_configs():
    from dvc.config import Config

    hydra = Config(dvc_dir=str(ROOT / ".dvc"))["hydra"]
    assert hydra["enabled"] is True and hydra["config_dir"] == "configs"
    base = ROOT / "configs" / "config.yaml"  # the base is params.yaml as it is
    assert base.is_symlink() and base.resolve() == (ROOT / "params.yaml").resolve()


@pytest.mark.parametrize("name", NAMES)
def test_every_named_config_composes_to_valid_params(tmp_path, name):
    """Each file's keys (and nothing else) change params.yaml; the result validates."""
    config = _leaves({k: v for k, v in _experiment(name).items() if k != "defaults"})
    base = _leaves(read_yaml(ROOT / "params.yaml"))
    got = _leaves(_compose(tmp_path, f"+experiment={name}"))
    assert set(got) == set(base)
    for key, value in got.items():
        assert value == config.get(key, base[key]), key


@pytest.mark.parametrize("name", ["digits", "paper", "biases"])
def test_composition_gives_the_params_of_the_committed_run(tmp_path, name):
    """``+experiment=NAME`` on today's params.yaml is the run that made reports/NAME
    (its provenance's params.yaml), key for key; keys the run predates are today's
    defaults."""
    run = _leaves(read_yaml(ROOT / "reports" / "provenance" / name / "params.yaml"))
    got = _leaves(_compose(tmp_path, f"+experiment={name}"))
    assert {k: got[k] for k in run} == run


def test_a_study_configs_mapping_is_replaced_not_merged(tmp_path):
    """Hydra merges mappings key by key: without configs/replace/ the base's pc_bias
    configs would stay first (linear, relu, linear-whitened, then the grid's others);
    the grid's own order is its DVC stages' order."""
    grid = _experiment("biases")
    got = _compose(tmp_path, "+experiment=biases")
    for study in ("pc_bias", "spectral_cls", "erank_depth"):
        assert list(got[study]["configs"].items()) == list(grid[study]["configs"].items())
    base = read_yaml(ROOT / "params.yaml")
    assert got["spectral"]["configs"] == base["spectral"]["configs"]  # not in the grid
    assert list(base["pc_bias"]["configs"]) != list(grid["pc_bias"]["configs"])[:3]


def test_set_params_apply_after_the_named_config(tmp_path):
    got = _compose(tmp_path, "+experiment=digits", "train.steps=200", "ensemble.widths=[2,4]")
    assert (got["data"]["name"], got["train"]["steps"], got["ensemble"]["widths"]) == (
        "digits", 200, [2, 4])


# ---------------------------------------------------------------- a real queue
@pytest.mark.pipeline
def test_a_queued_grid_runs_as_experiments(tmp_path):
    """``dvc exp run --queue -S +experiment=variant -S 'train.lr=0.005,0.02'`` queues two
    experiments (Hydra's sweep syntax); ``dvc queue start -j 2`` runs them side by side;
    each has the variant's key and its own learning rate, and the workspace is untouched."""
    from test_pipeline import TINY, make_project, sh

    tiny = {**TINY, "data": {**TINY["data"], "label_noise": [0.0]}}
    proj = make_project(tmp_path / "proj", tiny)
    (proj / "configs" / "experiment" / "variant.yaml").write_text(
        "# @package _global_\ntrain: {batch_size: 25}\n")
    sh(proj, "git", "add", "-A")
    sh(proj, "git", "commit", "-qm", "a variant")
    dvc = [sys.executable, "-m", "dvc"]
    sh(proj, *dvc, "exp", "run", "--queue", "-S", "+experiment=variant",
       "-S", "train.lr=0.005,0.02", "collect")
    queued = sh(proj, *dvc, "queue", "status").stdout
    assert queued.count("Queued") == 2, queued
    sh(proj, *dvc, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = sh(proj, *dvc, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    sh(proj, *dvc, "queue", "stop", "--kill", check=False)
    assert status.count("Success") == 2, status + sh(proj, *dvc, "queue", "logs",
                                                      "--fail", check=False).stdout
    rows = json.loads(sh(proj, *dvc, "exp", "show", "--json").stdout)
    exps = [e["revs"][0]["data"] for row in rows for e in row.get("experiments") or []]
    params = [e["params"]["params.yaml"]["data"] for e in exps]
    assert sorted(p["train"]["lr"] for p in params) == [0.005, 0.02]
    assert {p["train"]["batch_size"] for p in params} == {25}
    assert {p["ensemble"]["widths"] == tiny["ensemble"]["widths"] for p in params} == {True}
    # the workspace is untouched: the queue ran in temporary copies
    assert yaml.safe_load((proj / "params.yaml").read_text())["train"]["lr"] == \
        read_yaml(ROOT / "params.yaml")["train"]["lr"]
    assert not (proj / "data" / "sources").exists()


def test_paper_config_covers_the_interpolation_threshold(tmp_path):
    """The paper grid (composed as `make paper` composes it) brackets the interpolation
    threshold of its half-sample draws with steps of at most 4, and its widest members
    lie well past it."""
    import numpy as np

    from biasvar.ensemble.models import n_parameters
    from biasvar.report.document import threshold_width

    merged = _compose(tmp_path, "+experiment=paper")
    n_train = int(merged["data"]["num_samples"] * merged["data"]["train_split"])
    assert n_train == 8000 and merged["split"]["method"] == "half"
    n_fit = n_train // 2  # a half-sample holds n/2 distinct examples, each once
    m = merged["model"]
    widths = merged["ensemble"]["widths"]
    thr = threshold_width(m["arch"], m["depth"], m["residual"], n_fit, widths)
    assert thr == pytest.approx(42.3, abs=0.1)  # log-interpolated between 42 and 43
    assert n_parameters(m["arch"], 42, m["depth"], m["residual"]) < n_fit \
        < n_parameters(m["arch"], 43, m["depth"], m["residual"])
    near = [w for w in widths if w < thr][-3:] + [w for w in widths if w > thr][:2]
    assert len(near) == 5 and max(np.diff(near)) <= 4
    assert len(merged["ensemble"]["blocks"]) * merged["ensemble"]["block_size"] >= 64
    assert max(widths) >= 3 * thr
