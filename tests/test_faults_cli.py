"""The command lines refuse a bad argument in one line, before any work, and end in one
line on SIGTERM / SIGINT.

Each case runs the command as a user would, in a subprocess, and checks: exit code 2 (or
128 + the signal), exactly one ``error:`` line on stderr naming the argument and what is
allowed, no traceback, and nothing written (the folder it ran in is byte for byte as
before). The project copies here have no ``stages/`` and a bare ``.dvc/``, so a run
that got past its checks could not train anything: it would fail in DVC instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROOTLESS = pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only file")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # the checkout's own library, and this interpreter's dvc and python first on PATH
    env["PYTHONPATH"] = str(ROOT / "src")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def cli(cwd: Path, module: str, *args: str, **kw) -> subprocess.CompletedProcess:
    """``python -m biasvar.tools.MODULE ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", f"biasvar.tools.{module}", *args], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=120, **kw)


def launch_cli(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """``biasvar launch ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "biasvar.cli.main", "launch", *args],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120,
                          **kw)


def project(tmp_path: Path) -> Path:
    """A folder that looks like the project root to ``biasvar launch``: a git repository
    whose params.yaml, dvc.yaml, configs/ (DVC's Hydra composition) and .dvc/ are
    committed."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(ROOT / name, proj / name)
    shutil.copytree(ROOT / "configs", proj / "configs", symlinks=True)
    shutil.copytree(ROOT / "examples", proj / "examples")  # import.path must exist
    (proj / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy2(ROOT / ".dvc" / name, proj / ".dvc" / name)
    for cmd in (["init", "-q"], ["add", "-A"],
                ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "p"]):
        subprocess.run(["git", *cmd], cwd=proj, check=True, capture_output=True)
    return proj


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder), but git's own files
    and DVC's scratch folder (``.dvc/tmp``, which every DVC command may touch)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))
            if not p.relative_to(folder).parts[0] == ".git"
            and p.relative_to(folder).parts[:2] != (".dvc", "tmp")}


def one_error(r: subprocess.CompletedProcess, *needles: str, rc: int = 2) -> str:
    """The single ``error:`` line of ``r``, checked: exit code, no traceback, every needle."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert r.returncode == rc, (r.returncode, r.stderr)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def refused(tmp_path: Path, *args: str, needles: tuple[str, ...] = (),
            proj: Path | None = None, **kw) -> str:
    """Run ``biasvar launch`` with ``args``; it must refuse them in one line and leave
    ``proj`` as it was."""
    proj = proj or project(tmp_path)
    before = snapshot(proj)
    r = launch_cli(proj, *args, **kw)
    line = one_error(r, *needles)
    assert snapshot(proj) == before, "launch wrote something"
    return line


# ---------------------------------------------------------------- biasvar launch: counts
@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_launch_jobs_must_be_a_count(tmp_path, value):
    """(tools.parallel's `-j -1` ended in a ValueError traceback.)"""
    refused(tmp_path, "-j", value, needles=("-j/--jobs", repr(value), "an integer from 0"))


def test_make_launch_with_negative_jobs(tmp_path):
    """`make launch JOBS=-1` passes `-j -1` on: our one line, then make's own."""
    proj = project(tmp_path)
    shutil.copy2(ROOT / "Makefile", proj / "Makefile")
    before = snapshot(proj)
    # -o install: the project's install step is taken as done (it is: this interpreter)
    r = subprocess.run(["make", "-s", "-o", "install", "launch", "JOBS=-1"], cwd=proj,
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    ours = [x for x in r.stderr.splitlines() if not x.startswith("make")]
    assert len(ours) == 1 and ours[0].startswith("error: ") and "-j/--jobs" in ours[0], r.stderr
    assert r.returncode != 0 and snapshot(proj) == before


@pytest.mark.parametrize("option", ["--cpus-per-task", "--gpus-per-task", "--retries",
                                    "--max-parallel", "--time"])
@pytest.mark.parametrize("value", ["-2", "x"])
def test_launch_counts_must_be_counts(tmp_path, option, value):
    """(tools.parallel's `--threads -2` was passed on as OMP_NUM_THREADS=-2.)"""
    refused(tmp_path, option, value, needles=(option, repr(value), "an integer from"))


def test_launch_executor_must_be_known(tmp_path):
    refused(tmp_path, "--executor", "kubernetes", needles=("--executor", "local", "slurm"))


# ---------------------------------------------------------------- biasvar launch: -S
@pytest.mark.parametrize("item, needle", [
    ("train.lr=[1,", "no viable alternative"),
    ("noequals", "missing EQUAL"),
    ("train..lr=1", "LexerNoViableAltException"),
    ("train.lrr=0.1", "'lrr' is not in struct"),
    ("+experiment=nope", "Available options in 'experiment': biases cifar10 cnn digits"),
    ("train.lr=-1", "train.lr = -1 is invalid"),
    ("train=3", "train = 3 is invalid"),
    ("+trian.lr=1", "unknown section 'trian'"),
])
def test_launch_set_param_refused_by_composition_or_validation(tmp_path, item, needle):
    """A bad override (DVC's Hydra composition, then biasvar's validation of every
    section) is one line naming the override, before params.yaml changes."""
    refused(tmp_path, "-S", item, needles=(f"-S {item}", needle))


def test_launch_set_param_deleting_a_required_key(tmp_path):
    """Hydra's `~key` deletes a key; validation then names it."""
    refused(tmp_path, "-S", "~train.lr", needles=("-S ~train.lr", "train", "lr"))


def test_launch_set_param_without_the_config_directory(tmp_path):
    """DVC's Hydra composition is enabled, but configs/ is gone."""
    proj = project(tmp_path)
    shutil.rmtree(proj / "configs")
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit",
                    "-qam", "no configs"], cwd=proj, check=True, capture_output=True)
    refused(tmp_path, "-S", "+experiment=digits", proj=proj,
            needles=("-S +experiment=digits", "configs"))


def test_launch_gpus_per_task_without_a_gpu(tmp_path):
    """(tools.parallel: `--gpus foo` silently ran on the CPU.) No visible GPU: refused."""
    proj = project(tmp_path)
    before = snapshot(proj)
    env = {**_env(), "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run([sys.executable, "-m", "biasvar.cli.main", "launch",
                        "--gpus-per-task", "1"], cwd=proj, env=env, capture_output=True,
                       text=True, timeout=120)
    one_error(r, "--gpus-per-task 1", "no GPU")
    assert snapshot(proj) == before


def test_launch_work_dir_under_a_file(tmp_path):
    """`--work-dir` under a file ended in a FileExistsError traceback."""
    (tmp_path / "afile").write_text("x")
    refused(tmp_path, "--work-dir", str(tmp_path / "afile" / "w"),
            needles=("--work-dir", "not a writable folder"))


def test_launch_set_key_then_used_as_a_section(tmp_path):
    refused(tmp_path, "-S", "train.lr=0.1", "-S", "train.lr.x=1",
            needles=("-S train.lr.x=1", "'x' is not in struct"))


def test_launch_set_same_key_twice(tmp_path):
    """Hydra silently keeps the second value; launch refuses it."""
    refused(tmp_path, "-S", "train.lr=0.1", "-S", "train.lr=0.2",
            needles=("-S train.lr=0.2", "twice"))


@ROOTLESS
def test_launch_read_only_params(tmp_path):
    """A read-only params.yaml would be replaced anyway (os.replace needs the folder only)."""
    proj = project(tmp_path)
    (proj / "params.yaml").chmod(0o444)
    refused(tmp_path, "-S", "train.lr=0.02", proj=proj, needles=("params.yaml", "read-only"))


def test_launch_params_write_failure_leaves_params_and_no_temporary(tmp_path):
    """A write of the composed params that fails part way (here: a file-size limit, as a
    full disk would): one line, params.yaml unchanged, no temporary left."""
    import resource

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # params: ~4 KiB composed

    refused(tmp_path, "-S", "train.lr=0.02", preexec_fn=small_files,
            needles=("params.yaml", "unchanged"))


def test_launch_set_param_with_a_bad_target_leaves_params(tmp_path):
    """Targets are checked against the composed params (stage names depend on them); a
    bad one puts params.yaml back as it was."""
    refused(tmp_path, "-S", "+experiment=digits", "train@0.0-128-0",
            needles=("train@0.0-128-0", "not a stage"))


# ---------------------------------------------------------------- biasvar launch: outputs
def test_launch_provenance_under_a_file(tmp_path):
    """The folder could not be created, found out only after the whole pipeline ran."""
    blocker = tmp_path / "afile"
    blocker.write_text("in the way")
    refused(tmp_path, "--provenance", str(blocker / "prov"),
            needles=("--provenance", str(blocker), "not a folder"))


@ROOTLESS
def test_launch_provenance_under_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    refused(tmp_path, "--provenance", str(ro / "prov"), needles=("--provenance", "writable"))


@pytest.mark.parametrize("where", [".", "metrics", "data/prov", "reports/default"])
def test_launch_provenance_inside_what_the_pipeline_owns(tmp_path, where):
    """`--provenance .` would copy params.yaml onto itself; `--provenance metrics` would
    copy metrics/width_curves onto itself after deleting it; a folder in the report is
    deleted by DVC before the next plot."""
    refused(tmp_path, "--provenance", where, needles=("--provenance",))


def test_launch_provenance_in_the_composed_report(tmp_path):
    """The report folder is the composed params' (digits: reports/digits), not the old."""
    refused(tmp_path, "-S", "+experiment=digits", "--provenance", "reports/digits/prov",
            needles=("--provenance", "reports/digits/"))


def _read_only(monkeypatch, *paths: Path) -> None:
    """``paths`` read-only as ``os.access`` sees them, also for root (who may write anyway)."""
    real = os.access
    locked = {str(p) for p in paths}
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **kw: (
        False if str(path) in locked and mode & os.W_OK else real(path, mode, *a, **kw)))


def in_process(monkeypatch, capsys, proj: Path, *args: str) -> str:
    """``biasvar launch ARGS`` in this process, in ``proj``: the single error line it
    printed (exit code 2), with ``proj`` left as it was."""
    from biasvar.cli.main import main

    before = snapshot(proj)
    monkeypatch.chdir(proj)
    rc = main(["launch", *args])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert snapshot(proj) == before, "launch wrote something"
    return err.strip()


def test_launch_read_only_params_any_user(tmp_path, monkeypatch, capsys):
    """The same refusal as test_launch_read_only_params, seen through ``os.access``."""
    proj = project(tmp_path)
    _read_only(monkeypatch, proj / "params.yaml")
    line = in_process(monkeypatch, capsys, proj, "-S", "train.lr=0.02")
    assert "params.yaml" in line and "read-only" in line


def test_launch_provenance_under_a_read_only_folder_any_user(tmp_path, monkeypatch, capsys):
    proj = project(tmp_path)
    (tmp_path / "ro").mkdir()
    _read_only(monkeypatch, tmp_path / "ro")
    line = in_process(monkeypatch, capsys, proj, "--provenance", str(tmp_path / "ro" / "prov"))
    assert "--provenance" in line and "not writable" in line


@pytest.mark.parametrize("name", ["a/b", "..", "bad name", "-x", "x.lock"])
def test_launch_exp_name_checked_first(tmp_path, name):
    """`dvc exp save` would refuse these only after the whole pipeline had run."""
    refused(tmp_path, f"--name={name}", needles=("--name", repr(name)))


def test_launch_needs_git(tmp_path):
    """Every task clones the commit; outside git there is none."""
    proj = project(tmp_path)
    shutil.rmtree(proj / ".git")
    refused(tmp_path, "--name", "fine", proj=proj, needles=("git", "not a git repository"))


def test_launch_unknown_target(tmp_path):
    """A mistyped stage would fail in DVC after `dvc repro generate split` had run."""
    refused(tmp_path, "plott", needles=("plott", "not a stage", "plot"))


def test_launch_unknown_target_key(tmp_path):
    refused(tmp_path, "train@0.0-5-0", needles=("train@0.0-5-0", "not a stage"))


def test_launch_outside_the_project(tmp_path):
    """Run where there is a params.yaml but no DVC project."""
    (tmp_path / "p").mkdir()
    shutil.copy2(ROOT / "params.yaml", tmp_path / "p" / "params.yaml")
    refused(tmp_path, "-S", "train.lr=0.02", proj=tmp_path / "p", needles=("dvc.yaml",))


def test_launch_remote_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    refused(tmp_path, "--remote", str(tmp_path / "afile"),
            needles=("--remote", "not a directory nor a remote's name"))


def test_launch_uncommitted_pipeline_code(tmp_path):
    """A task checks out the commit: an uncommitted dvc.yaml would not be what it runs."""
    proj = project(tmp_path)
    with open(proj / "dvc.yaml", "a") as f:
        f.write("\n# edited\n")
    refused(tmp_path, proj=proj, needles=("dvc.yaml", "not committed"))


@pytest.mark.parametrize("args", [(), ("reports/provenance/x",)])
def test_provenance_has_no_command_line(tmp_path, args):
    """`python -m biasvar.tools.provenance` did nothing and exited 0."""
    one_error(cli(tmp_path, "provenance", *args), "--provenance")


# ---------------------------------------------------------------- signals
def _writer(tmp_path: Path) -> Path:
    """A stage-like script: ``run(main)`` of stages/_common.py, an atomic output being
    written when the signal comes, a ``finally`` that records that unwinding ran."""
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(ROOT / 'stages')!r})\n"
        "from _common import run\n"
        "from biasvar.core.io import atomic_path\n"
        "def main():\n"
        "    try:\n"
        "        with atomic_path('out.csv') as tmp:\n"
        "            tmp.write_text('half')\n"
        "            print('started', flush=True)\n"
        "            time.sleep(60)\n"
        "    finally:\n"
        "        Path('unwound').write_text('1')\n"
        "run(main)\n")
    return script


def _as_from_a_terminal() -> None:
    """Start a child with the default signal actions, as a terminal does: a pytest run in
    the background (`make test &`, `nohup`) ignores SIGINT or SIGHUP, a child inherits
    that, and the stages and the runner rightly keep an inherited SIG_IGN."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_a_stage_is_one_line(tmp_path, sig):
    """SIGTERM printed a KeyboardInterrupt traceback (so did Ctrl-C) and exited 1; SIGHUP
    (a closed terminal) killed the stage without its cleanup."""
    p = subprocess.Popen([sys.executable, str(_writer(tmp_path))], cwd=tmp_path, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_as_from_a_terminal)
    try:
        assert p.stdout.readline().strip() == "started", p.stderr.read()
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    name = signal.Signals(sig).name
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: interrupted ({name})"), err
    assert p.returncode == 128 + sig
    assert (tmp_path / "unwound").exists()  # the finally blocks ran
    assert sorted(x.name for x in tmp_path.iterdir()) == ["unwound", "writer.py"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_launch_stops_its_stages(tmp_path, sig):
    """(tools.parallel: SIGTERM killed the runner alone, the stage it had started ran on,
    orphaned.) The stage of ``biasvar launch`` runs in its own session: the signal sent
    to launch alone must reach it, and it unwinds."""
    proj = project(tmp_path)
    (proj / "writer.py").write_text(
        _writer(tmp_path).read_text().replace("print('started', flush=True)",
                                              "Path('started').write_text(str(os.getpid()))")
        .replace("import sys, time", "import os, sys, time"))
    (proj / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "generate": {"cmd": "python writer.py"}, "split": {"cmd": "python -c pass"}}}))
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit",
                    "-qam", "stages"], cwd=proj, check=True, capture_output=True)
    p = subprocess.Popen([sys.executable, "-m", "biasvar.cli.main", "launch", "-j", "1"],
                         cwd=proj, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_as_from_a_terminal)
    pid = None
    try:
        for _ in range(600):
            if (proj / "started").exists() and (proj / "started").read_text():
                pid = int((proj / "started").read_text())
                break
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        assert pid is not None, "the stage never started"
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    name = signal.Signals(sig).name
    assert len(lines) == 1 and lines[0].startswith(f"error: interrupted ({name})"), err
    assert p.returncode == 128 + sig
    for _ in range(100):  # the stage is stopped, and it unwound
        if not _alive(pid):
            break
        time.sleep(0.05)
    assert not _alive(pid), "the stage runs on"
    assert (proj / "unwound").exists()
    assert not (proj / "out.csv").exists() and not list(proj.glob(".out.csv*"))


def test_run_cli_turns_a_signal_into_one_line(capsys):
    """The tools' entry point (``tools.cli.run_cli``) ends a signal in one line, 128 + signum,
    and puts the previous handlers back."""
    from biasvar.tools.cli import run_cli

    before = signal.getsignal(signal.SIGTERM)

    def main() -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        return 0

    assert run_cli(main) == 143
    assert capsys.readouterr().err == "error: interrupted (SIGTERM); nothing was written\n"
    assert signal.getsignal(signal.SIGTERM) is before
