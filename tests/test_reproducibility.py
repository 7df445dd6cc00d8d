"""The reproducibility guarantees, proved by reading what DVC ran.

One temporary git repo copy of the project with tiny params is shared by the
scenarios 1-9 (a module fixture runs the whole pipeline once through ``biasvar launch``,
the blocks as 2 parallel tasks, and commits the result). The scenario tests run in file
order; each starts from a clean git state, and an up-to-date pipeline as far as
the earlier scenarios ran it. To stay fast (the `plot` stage alone takes ~15 s
here), scenarios run `dvc repro` only to the smallest target that shows their
claim: 2 and 3 the whole pipeline, 8 and 9 up to `regress`, 4 and 5 up to
`collect`. Scenario 10 uses a fresh copy of its own and compares its logits with
the shared copy's first run. The cluster path (tasks in their own clones pushing to a
shared remote, an assembly that trains nothing) is `biasvar launch`'s pipeline test in
tests/test_pipeline.py, on the local executor and on SLURM.

What a `dvc repro` ran is read from its output: "Running stage 'X'" means the
command ran, "Stage 'X' is cached - skipping run" means DVC restored X's
outputs from the run-cache without running it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_pipeline import make_project, sh
from tiny import BIAS_STUDIES

pytestmark = pytest.mark.pipeline

NOISE = [0.0]
WIDTHS = [4]
BLOCKS = [0, 1]
TINY = {
    **BIAS_STUDIES,
    "data": {"label_noise": NOISE, "num_samples": 200, "train_split": 0.5},
    "ensemble": {"widths": WIDTHS, "blocks": BLOCKS, "block_size": 2, "seeds_per_draw": 2},
    "train": {"steps": 20, "log_every": 10, "batch_size": 50},
    "regress": {"bootstrap": 10},
    "tradeoff": {"hidden_units": [1, 2, 3], "n_datasets": 4, "n_grid": 20, "test_draws": 1},
    "ridgeless": {"n_features": [1, 3, 5, 8], "n_train": 5, "n_test": 50, "repeats": 3},
    "spectral": {"frequencies": [2, 4], "n_points": 16, "log_every": 5,
                 "base": {"amplitudes": "equal", "activation": "relu", "depth": 1, "width": 8,
                          "optimizer": "adam", "lr": 0.01, "momentum": 0.9, "steps": 10},
                 "configs": {"relu-equal": {"activation": "relu"}}},
    "collapse": {"num_samples": 1000, "widths": [4, 8], "draws": 2, "seeds_per_draw": 2,
                 "steps": 20, "batch_size": 25},
    "pc_bias": {"num_samples": 200, "log_every": 5,
                "base": {"activation": "linear", "depth": 2, "width": 4, "members": 2,
                         "optimizer": "sgd", "lr": 0.05, "steps": 10, "init_scale": 1.0,
                         "data": "pca"},
                "configs": {"linear": {}, "relu": {"activation": "relu"}}},
    "runtime": {"progress": False, "threads": 1},
}
# the stages downstream of the train blocks
DOWNSTREAM = {"collect", "decompose", "regress", "alignment_size", "calibration_intervention",
              "probe", "dynamics", "shift", "headline", "plot"}
# stages with only cache: false outputs (reports/, metrics/headline.json), never restored
# from the run-cache by a `dvc repro` of other targets
UNCACHED = {"plot", "headline"}

RAN = re.compile(r"^Running stage '([^']+)'", re.M)
CACHED = re.compile(r"^Stage '([^']+)' is cached - skipping run", re.M)


def trains(noise=NOISE, widths=WIDTHS, blocks=BLOCKS) -> set[str]:
    return {f"train@{n}-{w}-{b}" for n in noise for w in widths for b in blocks}


def dvc(proj: Path, *args: str, check: bool = True):
    return sh(proj, sys.executable, "-m", "dvc", *args, check=check)


@dataclass
class Repro:
    """What one `dvc repro` did: stages run, stages restored from the run-cache, stdout."""

    ran: set[str]
    cached: set[str]
    stdout: str


def repro(proj: Path, *args: str) -> Repro:
    out = dvc(proj, "repro", *args).stdout
    return Repro(set(RAN.findall(out)), set(CACHED.findall(out)), out)


def out_of_date(proj: Path) -> set[str]:
    return set(json.loads(dvc(proj, "status", "--json").stdout or "{}"))


def edit_params(proj: Path, edit) -> None:
    path = proj / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def commit(proj: Path, message: str) -> None:
    sh(proj, "git", "add", "-A")
    sh(proj, "git", "commit", "-qm", message, check=False)  # nothing to commit is fine


def assert_clean(proj: Path, stale: set[str] = frozenset()) -> None:
    """The starting state of a scenario: nothing uncommitted, only ``stale`` out of date."""
    assert sh(proj, "git", "status", "--porcelain").stdout == ""
    assert out_of_date(proj) == stale


def assert_committed(proj: Path) -> None:
    """A cheaper start check where the previous scenario's `dvc repro` left its targets
    up to date (DVC guarantees that, and the previous test asserted what it ran)."""
    assert sh(proj, "git", "status", "--porcelain").stdout == ""


def logits_hashes(proj: Path) -> dict[str, str]:
    files = sorted((proj / "data" / "sources" / "train" / "logits").glob("*.parquet"))
    assert files, "no collected logits"
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def declaring_stages(proj: Path, sources: list[str]) -> set[str]:
    """Every stage whose dvc.yaml entry lists one of ``sources`` as a dependency."""
    spec = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]
    names = dvc(proj, "stage", "list", "--name-only").stdout.split()
    def declares(deps: list[str], src: str) -> bool:  # a folder dependency covers its files
        return any(src == d or src.startswith(d.rstrip("/") + "/") for d in deps)

    groups = {g for g, s in spec.items()
              if any(declares(s.get("do", s).get("deps", []), src) for src in sources)}
    return {n for n in names if n.split("@")[0] in groups}


@dataclass
class Shared:
    path: Path
    first_run: str  # biasvar launch's output
    provenance: Path  # its --provenance folder (outside the project)
    logits: dict[str, str]  # sha256 of each collected Parquet after the first run
    metrics: dict | None = None  # data/metrics/alignment.json after scenario 3


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    proj = make_project(tmp_path_factory.mktemp("repro"), TINY)
    prov = tmp_path_factory.mktemp("provenance")
    # the whole pipeline, up to the plot stage, with the blocks and studies as 2 tasks
    # at a time, measured, saved as an experiment as `make paper` does
    r = sh(proj, sys.executable, "-m", "biasvar.cli.main", "launch", "-j", "2",
           "--name", "first-run", "--provenance", str(prov))
    commit(proj, "first run")
    return Shared(proj, r.stdout, prov, logits_hashes(proj))


def test_01_second_repro_runs_nothing(shared):
    proj = shared.path
    info = json.loads((shared.provenance / "run.json").read_text())
    task = {r["stage"]: r["job"] for r in info["stages"]}
    for stage in trains():
        assert task[stage] >= 1  # trained by a task of the pool (0: by launch itself)
    assert task["collect"] == 0 and "launch: plot in" in shared.first_run
    assert_clean(proj)
    r = repro(proj)
    assert r.ran == set() and r.cached == set()
    assert "Data and pipelines are up to date." in r.stdout


def test_01b_provenance_names_every_stage_with_its_cost(shared):
    """``--provenance``: the run's lock and params, and one measured row per stage."""
    proj, prov = shared.path, shared.provenance
    assert (prov / "dvc.lock").read_text() == (proj / "dvc.lock").read_text()
    assert (prov / "params.yaml").read_text() == (proj / "params.yaml").read_text()
    info = json.loads((prov / "run.json").read_text())
    locked = set(yaml.safe_load((proj / "dvc.lock").read_text())["stages"])
    ran = [r["stage"] for r in info["stages"]]
    assert sorted(ran) == sorted(locked)  # every stage once, each measured on its own
    assert ran.index("collect") < ran.index("decompose") < ran.index("plot")  # dag order
    for r in info["stages"]:
        # dvc alone is ~100 MiB resident; a stage that imports torch is more
        assert 50 < r["max_rss_mib"] < 4096 and r["wall_s"] > 0, r
    trains = [r for r in info["stages"] if r["stage"].startswith("train@")]
    assert max(r["max_rss_mib"] for r in trains) > 150  # torch is in the measured tree
    assert info["commit"] == sh(proj, "git", "rev-parse", "HEAD~1").stdout.strip()
    assert info["machine"]["cores"] == os.cpu_count()
    assert "| collect |" in (prov / "RUN.md").read_text()


def test_06_runtime_settings_rerun_nothing(shared):
    proj = shared.path
    assert_clean(proj)
    edit_params(proj, lambda p: p["runtime"].update(device="cpu", threads=2, progress=True))
    assert out_of_date(proj) == set()
    assert repro(proj).ran == set()
    sh(proj, "git", "checkout", "--", "params.yaml")


def test_02_plot_param_reruns_only_plot(shared):
    proj = shared.path
    assert_committed(proj)
    edit_params(proj, lambda p: p["plot"].update(dpi=72, theme="ticks"))
    assert repro(proj).ran == {"plot"}
    commit(proj, "plot style")


def test_07_library_source_reruns_exactly_the_stages_declaring_it(shared):
    proj = shared.path
    assert_committed(proj)
    sources = ["src/biasvar/analysis/alignment.py", "src/biasvar/studies/tradeoff.py"]
    declaring = declaring_stages(proj, sources)
    # dependencies are files: the stages that fit alignment import alignment.py (dynamics
    # and shift fit it at every step and severity), decompose does not
    assert declaring == {"regress", "alignment_size", "calibration_intervention", "dynamics",
                         "shift", "tradeoff"}
    for s in sources:
        with open(proj / s, "a") as f:
            f.write("# an edit that changes no result\n")
    assert out_of_date(proj) == declaring
    r = repro(proj)
    # All rerun and write byte-identical outputs, so `plot`, which reads them,
    # finds its dependencies unchanged and does not rerun.
    assert r.ran == declaring
    assert "Stage 'plot' didn't change, skipping" in r.stdout
    commit(proj, "edit sources")
    assert out_of_date(proj) == set()


def test_07b_editing_one_study_module_makes_only_that_study_stale(shared):
    proj = shared.path
    assert_committed(proj)
    spec = {"spectral_cls@mlp-clean", "spectral_cls@mlp-noisy"}
    erank = {"erank_depth@relu", "erank_depth@linear"}
    for module, stages in (("spectral", {"spectral@relu-equal"}), ("ridgeless", {"ridgeless"}),
                           ("effective_rank", {"probe"} | erank), ("tradeoff", {"tradeoff"}),
                           ("collapse", {"collapse"}),
                           ("pc_bias", {"pc_bias@linear", "pc_bias@relu"}),
                           ("spectral_cls", spec), ("erank_depth", erank),
                           ("nets", spec | erank),
                           ("grid", spec | erank | {"pc_bias@linear", "pc_bias@relu"})):
        path = proj / "src" / "biasvar" / "studies" / f"{module}.py"
        with open(path, "a") as f:
            f.write("# an edit\n")
        assert out_of_date(proj) == stages, module
        sh(proj, "git", "checkout", "--", str(path.relative_to(proj)))
    assert out_of_date(proj) == set()


LR = 0.02  # scenarios 3, 8 and 9; the fixture's lr is the default 0.01


def test_03_train_hyperparameter_reruns_train_and_downstream_only(shared):
    proj = shared.path
    assert_clean(proj)
    edit_params(proj, lambda p: p["train"].update(lr=LR))
    r = repro(proj)
    assert r.ran == trains() | DOWNSTREAM  # not generate, split or the studies
    assert logits_hashes(proj) != shared.logits
    shared.metrics = json.loads((proj / "data" / "metrics" / "alignment.json").read_text())
    commit(proj, f"lr {LR}")


def test_08_reverting_a_param_restores_from_the_run_cache(shared):
    proj = shared.path
    assert_committed(proj)
    edit_params(proj, lambda p: p["train"].update(lr=0.01))
    r = repro(proj, "regress", "alignment_size", "calibration_intervention", "probe",
              "dynamics", "shift")
    assert r.ran == set()  # no training, no analysis: all restored
    assert r.cached == trains() | DOWNSTREAM - UNCACHED
    assert logits_hashes(proj) == shared.logits
    # `plot` (not asked for here) is left to rerun. It would rerun anyway: DVC
    # keeps no run-cache entry for a stage with a `cache: false` output that is
    # not a metric or plot, and reports/<name>/ is such an output (committed to
    # git), so a revert re-renders the report from the restored tables.
    commit(proj, "lr back to 0.01")
    assert out_of_date(proj) == UNCACHED


def test_09_exp_run_metrics_appear_in_exp_show(shared):
    proj = shared.path
    assert_committed(proj)
    from biasvar.report.headline import headline

    r = dvc(proj, "exp", "run", "-n", "lr-002", "-S", f"train.lr={LR}", "headline")
    # scenario 3 ran these params already: the experiment comes from the run-cache, and
    # only `headline` (a cache: false metric, never run-cached) runs
    assert set(RAN.findall(r.stdout)) <= {"headline"}
    fits = json.loads((proj / "data" / "metrics" / "alignment.json").read_text())
    assert fits == shared.metrics
    expected = headline(fits)
    rows = json.loads(dvc(proj, "exp", "show", "--json", "--all-commits").stdout)
    exps = {e["name"]: e for row in rows for exp in row.get("experiments") or []
            for e in exp["revs"]}
    assert {"lr-002", "first-run"} <= set(exps)  # first-run: `biasvar launch --name`
    data = exps["lr-002"]["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["lr"] == LR
    assert data["metrics"]["metrics/headline.json"]["data"] == expected
    # back to the committed state (the experiment stays in .git/refs/exps)
    sh(proj, "git", "reset", "-q", "--hard")
    dvc(proj, "checkout")


def test_04_adding_a_block_trains_only_that_block(shared):
    proj = shared.path
    assert_clean(proj, stale=UNCACHED)
    edit_params(proj, lambda p: p["ensemble"].update(blocks=BLOCKS + [2]))
    r = repro(proj, "collect")
    splits = {f"split@{b}" for b in BLOCKS + [2]}  # split declares the sweep axes on purpose
    assert r.ran == trains(blocks=[2]) | splits | {"collect"}
    # the stages reading the members are now out of date (and `plot`, from scenario 8)
    assert out_of_date(proj) == {"decompose", "alignment_size", "calibration_intervention",
                                 "probe", "dynamics", "shift", "headline", "plot"}
    commit(proj, "block 2")


def test_05_adding_a_width_trains_only_that_widths_blocks(shared):
    proj = shared.path
    assert_committed(proj)
    edit_params(proj, lambda p: p["ensemble"].update(widths=WIDTHS + [16]))
    r = repro(proj, "collect")
    # split@* rerun in a second with byte-identical outputs (they validate the
    # sweep axes), so no existing block retrains
    splits = {f"split@{b}" for b in BLOCKS + [2]}
    assert r.ran == trains(widths=[16], blocks=BLOCKS + [2]) | splits | {"collect"}
    commit(proj, "width 16")


def test_10_runs_from_scratch_give_byte_identical_logits(shared, tmp_path):
    """A second run from an empty cache (a plain serial `dvc repro`) equals the first
    (blocks as 2 parallel tasks), byte for byte."""
    proj = make_project(tmp_path / "scratch", TINY)
    r = repro(proj, "collect")
    assert r.ran >= trains() | {"collect"} and not r.cached
    assert logits_hashes(proj) == shared.logits
