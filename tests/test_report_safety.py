"""A failing, crashing or killed `plot` or `headline` never loses the committed
report; a complete new report replaces it whole.

One temporary git repo copy of the project on tiny params (one level, one width, two
blocks, one config per study: the first `dvc repro` is 50 of the ~70 s on 2 cores), run
once and committed; no scenario leaves a tracked file changed. DVC deletes a ``cache:
false`` output before it runs the stage, so ``reports/<name>/`` and
``metrics/{headline.json,width_curves}`` are ``persist`` outputs that the stages replace
themselves, only once complete (``biasvar.core.io.atomic_dir``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_pipeline import TINY, _env, make_project, sh

pytestmark = pytest.mark.pipeline

STUDIES = {  # the companion studies at their smallest (seconds each)
    "tradeoff": {"hidden_units": [1, 2, 3], "n_datasets": 4, "n_grid": 20, "test_draws": 1},
    "ridgeless": {"n_features": [1, 3, 5, 8], "n_train": 5, "n_test": 50, "repeats": 3},
    "spectral": {"frequencies": [2, 4], "n_points": 16, "log_every": 5,
                 "base": {"amplitudes": "equal", "activation": "relu", "depth": 1, "width": 8,
                          "optimizer": "adam", "lr": 0.01, "momentum": 0.9, "steps": 10},
                 "configs": {"relu-equal": {"activation": "relu"}}},
}
SMALL = {
    **TINY, **STUDIES,
    "data": {"label_noise": [0.0], "num_samples": 200, "train_split": 0.5},
    "ensemble": {**TINY["ensemble"], "widths": [4]},
    "train": {"steps": 20, "log_every": 10, "batch_size": 50},
    "regress": {"bootstrap": 10},
    "pc_bias": {**TINY["pc_bias"], "configs": {"linear": {}}},
    "spectral_cls": {**TINY["spectral_cls"], "configs": {"mlp-clean": {}}},
    "erank_depth": {**TINY["erank_depth"], "configs": {"relu": {}}},
}
REPORT = Path("reports") / "default"


def dvc(proj: Path, *args: str, check: bool = True):
    return sh(proj, sys.executable, "-m", "dvc", *args, check=check)


def git_changes(proj: Path, *paths: str) -> str:
    """Tracked files changed or deleted under ``paths`` (``git status --porcelain``)."""
    return sh(proj, "git", "status", "--porcelain", "--untracked-files=no", *paths).stdout


def out_of_date(proj: Path) -> set[str]:
    return set(json.loads(dvc(proj, "status", "--json").stdout or "{}"))


def errors(stderr: str) -> list[str]:
    """The stage's own lines (DVC adds its WARNING / ERROR lines around them)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture(scope="module")
def proj(tmp_path_factory) -> Path:
    p = make_project(tmp_path_factory.mktemp("safety"), SMALL)
    dvc(p, "repro")
    sh(p, "git", "add", "-A")
    sh(p, "git", "commit", "-qm", "first run")
    return p


def _replace(path: Path, text: str) -> bytes:
    """Write ``text`` as a new file at ``path`` (never through a link into DVC's cache);
    return the old bytes."""
    old = path.read_bytes()
    path.unlink()
    path.write_text(text)
    return old


def _restore(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def test_every_csv_plot_reads_holds_its_declared_columns(proj):
    """The writers (collect, alignment_size, calibration_intervention, the studies) and
    the reader (``schema.read_csv`` in plot) agree on every file of a real run."""
    from biasvar.core import schema

    files = {
        "data/sources/train/curves.csv": schema.CURVES_CSV,
        "data/sources/train/members.csv": schema.MEMBERS_CSV,
        "data/regress/alignment_size.csv": schema.ALIGNMENT_SIZE_CSV,
        "data/regress/alignment_size_inf.csv": schema.ALIGNMENT_SIZE_INF_CSV,
        "data/regress/calibration_intervention.csv": schema.CALIBRATION_INTERVENTION_CSV,
        "data/studies/tradeoff.csv": schema.TRADEOFF_CSV,
        "data/studies/ridgeless.csv": schema.RIDGELESS_CSV,
        "data/studies/spectral/relu-equal.csv": schema.SPECTRAL_CSV,
        "data/studies/erank.csv": schema.ERANK_CSV,
        "data/studies/collapse.csv": schema.COLLAPSE_CSV,
        "data/studies/collapse_examples.csv": schema.COLLAPSE_EXAMPLES_CSV,
        "data/studies/collapse_model.csv": schema.COLLAPSE_MODEL_CSV,
        "data/studies/pc_bias/linear.csv": schema.PC_BIAS_CSV,
        "data/studies/spectral_cls/mlp-clean.csv": schema.SPECTRAL_CLS_CSV,
        "data/studies/erank_depth/relu.csv": schema.ERANK_DEPTH_CSV,
        "data/sources/train/checkpoint_members.csv": schema.CHECKPOINT_MEMBERS_CSV,
        "data/dynamics/summary.csv": schema.DYNAMICS_SUMMARY_CSV,
        "data/dynamics/fits.csv": schema.DYNAMICS_FITS_CSV,
        "data/shift/summary.csv": schema.SHIFT_SUMMARY_CSV,
        "data/shift/fits.csv": schema.SHIFT_FITS_CSV,
        "data/shift/examples.csv": schema.SHIFT_EXAMPLES_CSV,
    }
    for name, fmt in files.items():
        assert len(schema.read_csv(proj / name, fmt)), name


def test_plot_on_an_empty_csv_fails_in_one_line_and_the_report_stays(proj):
    """`dvc repro -s plot` (plot alone: DVC does not restore its inputs first) on an
    emptied ``curves.csv``. Before: pandas' EmptyDataError traceback, and
    ``reports/default/`` deleted by DVC before plot ran."""
    curves = proj / "data" / "sources" / "train" / "curves.csv"
    old = _replace(curves, "")
    try:
        r = dvc(proj, "repro", "-s", "plot", check=False)
    finally:
        _restore(curves, old)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert errors(r.stderr) == ["error: data/sources/train/curves.csv: empty (not even a header "
                                "line: a half-written file?)"]
    assert git_changes(proj, "reports", "metrics") == ""
    assert out_of_date(proj) == set()


def test_headline_on_a_bad_alignment_file_fails_in_one_line_and_metrics_stay(proj):
    """Before: DVC deleted metrics/headline.json and metrics/width_curves/ (both committed)
    before the stage refused the file."""
    alignment = proj / "data" / "metrics" / "alignment.json"
    old = _replace(alignment, '{"noise-0.0": {"width-4": {}}}\n')
    try:
        r = dvc(proj, "repro", "-s", "headline", check=False)
    finally:
        _restore(alignment, old)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert errors(r.stderr) == ["error: data/metrics/alignment.json: not an alignment "
                                "metrics file (KeyError: 'member_test_error')"]
    assert git_changes(proj, "reports", "metrics") == ""
    assert out_of_date(proj) == set()


def test_plot_killed_mid_write_leaves_the_report_as_it_was(proj):
    """SIGKILL of plot while it saves the new figures (no ``finally`` runs): the committed
    report is untouched; the half-built one lies beside it, for the next writer to sweep."""
    p = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", "-f", "plot"], cwd=proj,
                         env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim = None
    try:
        while victim is None and p.poll() is None:  # until plot has written a figure
            for e in os.scandir(proj / "reports"):
                if e.name.startswith(".default.tmp-") and any(os.scandir(e.path)):
                    victim = int(e.name.rsplit("-", 1)[1])
                    break
            time.sleep(0.002)
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
    finally:
        p.wait(timeout=120)
    assert git_changes(proj, "reports", "metrics") == ""
    assert victim is not None, "plot ended before it could be killed"
    assert p.returncode != 0
    assert (proj / "reports" / f".default.tmp-{victim}").is_dir()


def test_a_plot_only_change_replaces_the_report_whole(proj):
    """A new theme reruns plot alone; the new report replaces the old folder whole: a
    file of the old report that the new one does not have is gone, the leftover of the
    killed writer above is swept, and DVC is up to date. A spectral table that params no
    longer list (left by another variant) is not read (a glob of the folder would add its
    config to the report)."""
    stale = proj / REPORT / "stale.png"
    stale.write_bytes(b"a figure an older report had")
    spectral = proj / "data" / "studies" / "spectral"
    shutil.copy(spectral / "relu-equal.csv", spectral / "old-config.csv")
    sh(proj, "git", "add", str(stale.relative_to(proj)))  # not the killed writer's leftover
    sh(proj, "git", "commit", "-qm", "an older report")
    before = (proj / REPORT / "alignment.png").read_bytes()
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["plot"]["theme"] = "ticks"
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    r = dvc(proj, "repro")
    assert "Running stage 'plot'" in r.stdout and r.stdout.count("Running stage") == 1
    assert not stale.exists()
    assert (proj / REPORT / "alignment.png").read_bytes() != before
    assert sorted(e.name for e in os.scandir(proj / "reports")) == ["default"]
    metrics = json.loads((proj / REPORT / "metrics.json").read_text())
    assert "spectral-relu-equal" in metrics and "spectral-old-config" not in metrics
    assert out_of_date(proj) == set()
