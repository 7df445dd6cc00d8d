"""The DVC pipeline end to end on tiny params, in a temporary git repo copy of the project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from tiny import BIAS_STUDIES

ROOT = Path(__file__).resolve().parents[1]
COPY = ["dvc.yaml", "params.yaml", "pyproject.toml", "stages", "src", "examples", ".dvc/config",
        ".dvcignore", ".gitignore", "configs"]

TINY = {
    **BIAS_STUDIES,
    "data": {"label_noise": [0.0, 0.2], "num_samples": 400, "train_split": 0.5},
    "ensemble": {"widths": [4, 8], "blocks": [0, 1], "block_size": 2, "seeds_per_draw": 2},
    "train": {"steps": 30, "log_every": 10, "batch_size": 50},
    "collapse": {"num_samples": 1000, "widths": [4, 8], "draws": 2, "seeds_per_draw": 2,
                 "steps": 20, "batch_size": 25},
    "pc_bias": {"num_samples": 200, "log_every": 5,
                "base": {"activation": "linear", "depth": 2, "width": 4, "members": 2,
                         "optimizer": "sgd", "lr": 0.05, "steps": 10, "init_scale": 1.0,
                         "data": "pca"},
                "configs": {"linear": {}, "relu": {"activation": "relu"}}},
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
            # symlinks kept: configs/config.yaml is a link to params.yaml (DVC's Hydra base)
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"),
                            symlinks=True)
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
    root = tiny_project / "data" / "sources" / "train"
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
    path = root / "logits" / "noise-0.2_width-8.parquet"
    meta = read_params(path)
    assert meta["model"]["arch"] == "mlp" and meta["train"]["steps"] == 30
    assert meta["layout"] == {"block_size": 2, "seeds_per_draw": 2}
    assert pq.read_schema(path).metadata[b"biasvar.schema"] == LOGITS.name.encode()
    import pandas as pd

    members = pd.read_csv(root / "members.csv")
    assert len(members) == 2 * 2 * 4  # noise x width x members
    # in-bag / out-of-bag per member, against an independent count from the split files
    from biasvar.data.splits import load_split

    for row in members.itertuples():
        split = load_split(tiny_project / "data" / "splits" / f"block-{row.block}.npz")
        n_in_bag = len(np.unique(split.for_draw(row.draw)))
        assert row.n_in_bag == n_in_bag and row.n_oob == 200 - n_in_bag
        assert 0 <= row.in_bag_error <= 1 and 0 <= row.oob_error <= 1
    assert members.in_bag_error.mean() < members.oob_error.mean()  # 30 steps: barely apart
    curves = pd.read_csv(root / "curves.csv")
    assert list(curves.columns) == [
        "label_noise", "width", "member", "step", "train_loss", "train_accuracy", "test_loss",
        "test_accuracy", "in_bag_loss", "in_bag_error", "oob_loss", "oob_error"]
    assert len(curves) == 2 * 2 * 4 * 3  # configs x members x log steps
    # the block records what collect compares
    info = json.loads((tiny_project / "data" / "members" / "noise-0.2" / "width-8" / "block-1"
                       / "members.json").read_text())
    assert info["split"]["draws"] == [1] and info["layout"]["seeds_per_draw"] == 2
    assert info["dataset"]["n_train"] == 200 and len(info["dataset"]["x_sha256"]) == 64
    # second repro: nothing to do
    r = sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    assert "didn't change" in r.stdout or "up to date" in r.stdout
    assert "Running stage" not in r.stdout


def _changed_stages(proj: Path) -> set[str]:
    """The stages up to collect that ``dvc status`` reports changed (no stage runs)."""
    r = sh(proj, sys.executable, "-m", "dvc", "status", "--json", "--with-deps", "collect")
    return set(json.loads(r.stdout))


@pytest.mark.pipeline
@pytest.mark.parametrize("module,changed", [
    # collect's own code: collect is stale, no ensemble retrains
    ("src/biasvar/ensemble/logits.py", {"collect"}),
    # training code: every train stage is stale (collect only through their outputs,
    # which dvc status cannot know before they rerun)
    ("src/biasvar/ensemble/optim.py", "train"),
    # the report's code: nothing up to collect
    ("src/biasvar/report/wording.py", set()),
])
def test_a_code_edit_stales_only_the_stages_that_import_it(tiny_project, module, changed):
    """A docstring added to one library module makes ``dvc status`` report exactly the
    stages (up to collect) whose scripts import that module: the code dependencies are
    files, not whole subpackages."""
    sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    assert _changed_stages(tiny_project) == set()
    path = tiny_project / module
    text = path.read_text()
    try:
        path.write_text(text + '\n\n"""An edit that changes no behaviour."""\n')
        got = _changed_stages(tiny_project)
    finally:  # leave the module's project as it was
        path.write_text(text)
    if changed == "train":
        assert got and all(s.startswith("train@") for s in got), got
        assert len(got) == 2 * 2 * 2  # noise x width x block
    else:
        assert got == changed


@pytest.mark.pipeline
def test_nan_in_a_block_fails_collect_and_nothing_downstream(tiny_project):
    """NaN injected into one member's logits in a block's logits.npz
    (and committed, as if a train stage had written it) fails ``dvc repro`` at collect
    with one line naming the file and the member; collect leaves no output nor temporary,
    and no stage after it runs."""
    sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    block = Path("data/members/noise-0.2/width-8/block-1")
    f = tiny_project / block / "logits.npz"
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["test"][1, 7, 3] = np.nan  # member 3 (block 1 holds members 2 and 3)
    f.unlink()  # never write through a link into the DVC cache
    np.savez(f, **arrays)
    lock = (tiny_project / "dvc.lock").read_text()
    try:
        sh(tiny_project, sys.executable, "-m", "dvc", "commit", "-f", "train@0.2-8-1")
        r = sh(tiny_project, sys.executable, "-m", "dvc", "repro", "decompose", check=False)
        assert r.returncode != 0
        errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
        assert errors[0] == (
            f"error: {block / 'logits.npz'} (label_noise 0.2, width 8, block 1): member 3 has 1 "
            "non-finite test logits (NaN or inf) of 2000"), r.stderr
        assert "Traceback" not in r.stderr
        assert "Running stage 'decompose'" not in r.stdout
        data = tiny_project / "data"
        train = data / "sources" / "train"
        assert not train.exists() and not (data / "decomposition").exists()
        assert not list(train.parent.glob(".train.tmp-*"))
    finally:  # leave the module's project as it was
        (tiny_project / "dvc.lock").write_text(lock)
        sh(tiny_project, sys.executable, "-m", "dvc", "checkout", "-f", "train@0.2-8-1",
           "collect")


@pytest.mark.pipeline
def test_collect_killed_mid_write_leaves_nothing_after_a_restore(tiny_project):
    """SIGKILL of collect while it writes, then `dvc repro`: DVC restores
    ``data/sources/train`` from its run-cache (no stage code runs) and nothing the killed
    writer made is left anywhere under ``data/`` (no ``data/sources/.train.tmp-<pid>``)."""
    import signal
    import time

    sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    data = tiny_project / "data"
    before = {p.relative_to(data) for p in data.rglob("*")}
    out = data / "sources" / "train"
    shutil.rmtree(out)  # as DVC does before it runs the stage
    proc = subprocess.Popen([sys.executable, "stages/collect.py", "--members", "data/members",
                             "--datasets", "data/generated", "--splits", "data/splits",
                             "--out", str(out)], cwd=tiny_project, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(2000):  # until the writer has started the output
        if (out / ".incomplete").exists() or proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / ".incomplete").exists(), "collect ended before the kill"
    r = sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    assert "Running stage 'collect'" not in r.stdout  # restored, not rerun
    assert {p.relative_to(data) for p in data.rglob("*")} == before
    st = sh(tiny_project, sys.executable, "-m", "dvc", "status", "collect").stdout
    assert "changed" not in st


@pytest.mark.pipeline
def test_bad_param_fails_before_training(tmp_path):
    proj = make_project(tmp_path / "bad", {**TINY, "ensemble": {**TINY["ensemble"],
                                                                "widths": [4, 0]}})
    r = sh(proj, sys.executable, "-m", "dvc", "repro", "collect", check=False)
    assert r.returncode != 0
    # one line naming the key, the value and what is allowed (the wording of what is
    # allowed belongs to core.config)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert errors and errors[0].startswith(
        "error: params.yaml: ensemble.widths[1] = 0 is invalid: ") and ">= 1" in errors[0], (
        r.stderr)
    assert not (proj / "data" / "members").exists()  # nothing trained


# ---------------------------------------------------------------- biasvar launch
# Loaded by every Python process of a launched run (PYTHONPATH): the first time the train
# stage of one block starts, it is killed (SIGKILL), as a node failure would; the marker
# file makes the retry run normally.
KILL_ONCE = """
import os, signal, sys
_marker = os.environ.get("BIASVAR_TEST_KILL_ONCE")
if (_marker and sys.argv and sys.argv[0].endswith("train.py")
        and "--block" in sys.argv and sys.argv[sys.argv.index("--block") + 1] == "1"
        and sys.argv[sys.argv.index("--width") + 1] == "8" and not os.path.exists(_marker)):
    open(_marker, "w").close()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _slurm_up() -> bool:
    r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True) \
        if shutil.which("sinfo") else None
    return r is not None and r.returncode == 0 and any(
        s in r.stdout for s in ("idle", "mixed", "allocated"))


def _digests(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.parquet"))}


@pytest.mark.pipeline
@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_launch_matches_a_serial_repro_after_a_killed_task(tiny_project, tmp_path, executor):
    """``biasvar launch`` on a fresh copy (empty cache) — local: the tasks write into the
    copy's cache; slurm: through a local-directory remote (``--remote``) — one
    train task is SIGKILLed on its first attempt and retried; the assembly restores every
    block from the run-cache (no train stage runs in it: launch refuses otherwise and
    the log shows none); the collected logits are byte-identical to the module's serial
    ``dvc repro``. The copy keeps one label-noise level (4 tasks, half the time): the
    files of that level do not depend on the others, so they are compared."""
    if executor == "slurm" and not _slurm_up():
        pytest.skip("no SLURM cluster here (scripts/slurm-up.sh starts one)")
    sh(tiny_project, sys.executable, "-m", "dvc", "repro", "collect")
    proj = make_project(tmp_path / "proj", {**TINY, "data": {**TINY["data"],
                                                             "label_noise": [0.0]}})
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_ONCE)
    env = {**_env(), "PYTHONPATH": str(hook), "BIASVAR_TEST_KILL_ONCE": str(tmp_path / "killed")}
    width = (["-j", "2"] if executor == "local" else
             ["--max-parallel", "4", "--remote", str(tmp_path / "remote")])
    r = subprocess.run([sys.executable, "-m", "biasvar.cli.main", "launch", "--executor",
                        executor, *width, "--cpus-per-task", "1", "--retries", "1",
                        "--work-dir", str(tmp_path / "work"), "collect"],
                       cwd=proj, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "killed").exists(), "the kill never happened"
    assert "train@0.0-8-1 failed" in r.stdout, r.stdout
    assert "retrying" in r.stdout
    log = (tmp_path / "work" / "assemble.log").read_text()
    assert "Running stage 'train@" not in log and "Running stage 'collect'" in log
    assert not list((tmp_path / "work").glob("clones/*"))  # every clone removed
    # where the blocks went: the remote, or (no remote) the copy's own cache only
    assert (tmp_path / "remote").is_dir() == (executor == "slurm")
    got = _digests(proj / "data" / "sources" / "train" / "logits")
    want = _digests(tiny_project / "data" / "sources" / "train" / "logits")
    assert sorted(got) == ["noise-0.0_width-4.parquet", "noise-0.0_width-8.parquet"]
    assert got == {name: want[name] for name in got}


@pytest.mark.pipeline
def test_dynamics_and_shift_hold_every_identity_at_each_step_and_severity(tiny_project):
    """The dynamics and shift stages on the tiny ensemble: at every checkpoint step and
    every severity bias² + variance = loss (MSE and CE) and Neal's split adds up; the last
    checkpoint is the final decomposition (decompose's summary) and the clean severity is
    the final test logits' decomposition up to float reassociation; the checkpoint files
    hold the steps params ask for."""
    import pandas as pd

    from biasvar.ensemble.config import checkpoint_steps

    sh(tiny_project, sys.executable, "-m", "dvc", "repro", "dynamics", "shift", "decompose")
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    want = list(checkpoint_steps(params["train"]["steps"], params["train"]["checkpoints"]))
    final = pq.read_table(tiny_project / "data" / "decomposition" / "summary.parquet"
                          ).to_pandas()
    final = final[final.partition == "test"]
    final = final.assign(label_noise=final.label_noise.astype(float).round(6))  # float32
    for name, key in (("dynamics", "step"), ("shift", "severity")):
        s = pd.read_csv(tiny_project / "data" / name / "summary.csv")
        wide = s.pivot_table(index=["label_noise", "width", key], columns="quantity",
                             values="value")
        assert len(wide) > 0
        np.testing.assert_allclose(wide.mse_bias2 + wide.mse_var, wide.mse_loss, rtol=1e-6)
        np.testing.assert_allclose(wide.ce_bias + wide.ce_var, wide.ce_loss, rtol=1e-6)
        np.testing.assert_allclose(wide.var_optimization + wide.var_sampling, wide.mse_var,
                                   rtol=1e-6)
        last = s[s[key] == (want[-1] if name == "dynamics" else 0)]
        last = last.assign(label_noise=last.label_noise.round(6))
        last = last[~last.quantity.isin(["in_bag_error", "oob_error"])]  # members' own
        m = last.merge(final, on=["label_noise", "width", "quantity"], suffixes=("", "_f"))
        assert len(m) == len(last) and len(m) > 0
        # the CSVs keep 8 significant digits; shift: the reference models sum in another order
        tol = 1e-7 if name == "dynamics" else 1e-4
        np.testing.assert_allclose(m.value, m.value_f, rtol=tol, atol=tol, equal_nan=True)
        if name == "dynamics":
            assert sorted(s.step.unique()) == want
        else:
            assert sorted(s.severity.unique()) == [0, *params["shift"]["severities"]]
