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


def project(tmp_path: Path) -> Path:
    """A folder that looks like the project root to the runner (params, dvc.yaml, .dvc/)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(ROOT / name, proj / name)
    (proj / ".dvc").mkdir()
    return proj


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


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
    """Run the parallel runner with ``args``; it must refuse them and leave ``proj`` as it was."""
    proj = proj or project(tmp_path)
    before = snapshot(proj)
    r = cli(proj, "parallel", *args, **kw)
    line = one_error(r, *needles)
    assert snapshot(proj) == before, "the runner wrote something"
    return line


# ---------------------------------------------------------------- tools.parallel: counts
@pytest.mark.parametrize("value", ["-1", "0"])
def test_parallel_jobs_must_be_positive(tmp_path, value):
    """`-j -1` ended in a ValueError traceback; `-j 0` silently meant "the default"."""
    refused(tmp_path, "-j", value, needles=("-j/--jobs", repr(value), "an integer from 1"))


def test_parallel_jobs_not_a_number(tmp_path):
    """argparse's own error was two lines (usage, then the error)."""
    refused(tmp_path, "-j", "two", needles=("-j/--jobs", "'two'", "an integer from 1"))


def test_make_parallel_with_negative_jobs(tmp_path):
    """`make parallel JOBS=-1` passes `-j -1` on: our one line, then make's own."""
    proj = project(tmp_path)
    shutil.copy2(ROOT / "Makefile", proj / "Makefile")
    before = snapshot(proj)
    # -o install: the project's install step is taken as done (it is: this interpreter)
    r = subprocess.run(["make", "-s", "-o", "install", "parallel", "JOBS=-1"], cwd=proj,
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    ours = [x for x in r.stderr.splitlines() if not x.startswith("make")]
    assert len(ours) == 1 and ours[0].startswith("error: ") and "-j/--jobs" in ours[0], r.stderr
    assert r.returncode != 0 and snapshot(proj) == before


@pytest.mark.parametrize("value", ["0", "-2", "x"])
def test_parallel_threads_must_be_positive(tmp_path, value):
    """`--threads -2` was passed on as OMP_NUM_THREADS=-2; `--threads 0` meant the default."""
    refused(tmp_path, "--threads", value, needles=("--threads", "an integer from 1"))


@pytest.mark.parametrize("value", ["foo", ",", "0,0", "99"])
def test_parallel_gpus_must_name_gpus_of_this_machine(tmp_path, value):
    """`--gpus foo` was passed on as CUDA_VISIBLE_DEVICES=foo: the jobs silently ran on the
    CPU. An id this machine does not list (here 99) does the same."""
    refused(tmp_path, "--gpus", value, needles=("--gpus", repr(value)))


# ---------------------------------------------------------------- tools.parallel: -S
def test_parallel_set_value_not_yaml(tmp_path):
    refused(tmp_path, "-S", "train.lr=[1,", needles=("-S train.lr=[1,", "not valid YAML"))


def test_parallel_set_key_then_used_as_a_section(tmp_path):
    line = refused(tmp_path, "-S", "train.lr=0.1", "-S", "train.lr.x=1",
                   needles=("-S train.lr.x=1", "train.lr"))
    assert "section" in line


def test_parallel_set_section_as_a_value_then_as_a_section(tmp_path):
    refused(tmp_path, "-S", "train=3", "-S", "train.lr=1", needles=("-S train.lr=1", "train"))


def test_parallel_set_same_key_twice(tmp_path):
    """The second value silently won."""
    refused(tmp_path, "-S", "train.lr=0.1", "-S", "train.lr=0.2",
            needles=("-S train.lr=0.2", "twice"))


@pytest.mark.parametrize("item", ["noequals", "=3", "train..lr=1", "train.lr =1"])
def test_parallel_set_needs_a_dotted_key(tmp_path, item):
    """`-S noequals` exited 1; `-S =3` reported `params.yaml:  = 3`."""
    refused(tmp_path, "-S", item, needles=(f"-S {item}", "KEY=VALUE"))


def test_parallel_set_unknown_key_is_named_with_its_option(tmp_path):
    refused(tmp_path, "-S", "train.lrr=0.1", needles=("-S", "train.lrr"))


# ---------------------------------------------------------------- tools.parallel: --config
def test_parallel_config_missing(tmp_path):
    refused(tmp_path, "--config", str(tmp_path / "nope.yaml"),
            needles=("--config", "nope.yaml", "not found"))


def test_parallel_config_is_a_directory(tmp_path):
    refused(tmp_path, "--config", str(tmp_path), needles=("--config", "directory"))


def test_parallel_config_is_binary(tmp_path):
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(bytes(range(256)) * 4)
    line = refused(tmp_path, "--config", str(blob), needles=("--config", "blob.yaml"))
    assert "binary" in line or "UTF-8" in line


@pytest.mark.parametrize("text", ["train: {lr: [1,\n", "- 1\n- 2\n", ""])
def test_parallel_config_not_a_yaml_mapping(tmp_path, text):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    refused(tmp_path, "--config", str(cfg), needles=("--config", "bad.yaml"))


# ---------------------------------------------------------------- tools.parallel: outputs
def test_parallel_provenance_under_a_file(tmp_path):
    """The folder could not be created, found out only after the whole pipeline ran."""
    blocker = tmp_path / "afile"
    blocker.write_text("in the way")
    refused(tmp_path, "--provenance", str(blocker / "prov"),
            needles=("--provenance", str(blocker), "not a folder"))


@ROOTLESS
def test_parallel_provenance_under_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    refused(tmp_path, "--provenance", str(ro / "prov"), needles=("--provenance", "writable"))


@pytest.mark.parametrize("where", [".", "metrics", "data/prov", "reports/default"])
def test_parallel_provenance_inside_what_the_pipeline_owns(tmp_path, where):
    """`--provenance .` ended in SameFileError after the run; `--provenance metrics` copied
    metrics/width_curves onto itself after deleting it; a folder in the report is deleted
    by DVC before the next plot."""
    refused(tmp_path, "--provenance", where, needles=("--provenance",))


@ROOTLESS
def test_parallel_read_only_params(tmp_path):
    """A read-only params.yaml was replaced anyway (or left params.yaml.tmp behind)."""
    proj = project(tmp_path)
    (proj / "params.yaml").chmod(0o444)
    refused(tmp_path, "-S", "train.lr=0.02", proj=proj, needles=("params.yaml", "read-only"))


def _read_only(monkeypatch, *paths: Path) -> None:
    """``paths`` read-only as ``os.access`` sees them, also for root (who may write anyway)."""
    real = os.access
    locked = {str(p) for p in paths}
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **kw: (
        False if str(path) in locked and mode & os.W_OK else real(path, mode, *a, **kw)))


def in_process(monkeypatch, capsys, proj: Path, *args: str) -> str:
    """``parallel.main(args)`` in ``proj``: the single error line it printed (exit code 2),
    with ``proj`` left as it was."""
    from biasvar.tools import parallel

    before = snapshot(proj)
    monkeypatch.chdir(proj)
    try:
        rc = parallel.main(list(args))
    except SystemExit as e:  # what today's code did once DVC failed
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert snapshot(proj) == before, "the runner wrote something"
    return err.strip()


def test_parallel_read_only_params_any_user(tmp_path, monkeypatch, capsys):
    """The same refusal as test_parallel_read_only_params, seen through ``os.access``."""
    proj = project(tmp_path)
    _read_only(monkeypatch, proj / "params.yaml")
    line = in_process(monkeypatch, capsys, proj, "-S", "train.lr=0.02")
    assert "params.yaml" in line and "read-only" in line


def test_parallel_provenance_under_a_read_only_folder_any_user(tmp_path, monkeypatch, capsys):
    proj = project(tmp_path)
    (tmp_path / "ro").mkdir()
    _read_only(monkeypatch, tmp_path / "ro")
    line = in_process(monkeypatch, capsys, proj, "--provenance", str(tmp_path / "ro" / "prov"))
    assert "--provenance" in line and "not writable" in line


def test_parallel_params_write_failure_leaves_params_and_no_temporary(tmp_path):
    """A write of params.yaml that fails part way (here: a file-size limit, as a full disk
    would) ended in a traceback and left params.yaml.tmp behind."""
    import resource

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    refused(tmp_path, "-S", "train.lr=0.02", preexec_fn=small_files,
            needles=("params.yaml", "unchanged"))


@pytest.mark.parametrize("name", ["a/b", "..", "bad name", "-x", "x.lock"])
def test_parallel_exp_name_checked_first(tmp_path, name):
    """`dvc exp save` refused these only after the whole pipeline had run."""
    refused(tmp_path, f"--exp={name}", needles=("--exp", repr(name)))


def test_parallel_exp_needs_git(tmp_path):
    refused(tmp_path, "--exp", "fine", needles=("--exp", "git"))


def test_parallel_unknown_target(tmp_path):
    """A mistyped stage failed in DVC after `dvc repro generate split` had run."""
    refused(tmp_path, "plott", needles=("plott", "not a stage", "plot"))


def test_parallel_unknown_target_key(tmp_path):
    refused(tmp_path, "train@0.0-5-0", needles=("train@0.0-5-0", "not a stage"))


def test_parallel_outside_the_project(tmp_path):
    """Run where there is a params.yaml but no DVC project: it wrote the overrides into
    params.yaml, then DVC failed."""
    (tmp_path / "p").mkdir()
    shutil.copy2(ROOT / "params.yaml", tmp_path / "p" / "params.yaml")
    refused(tmp_path, "-S", "train.lr=0.02", proj=tmp_path / "p", needles=("dvc.yaml",))


# ---------------------------------------------------------------- tools.overrides, provenance
def test_overrides_on_a_directory(tmp_path):
    one_error(cli(tmp_path, "overrides", str(tmp_path)), str(tmp_path), "directory")


def test_overrides_on_a_missing_file(tmp_path):
    one_error(cli(tmp_path, "overrides", "nope.yaml"), "nope.yaml", "not found", "overrides")


def test_overrides_on_a_binary_file(tmp_path):
    blob = tmp_path / "blob.yaml"
    blob.write_bytes(b"\x00\xff\xfe" * 100)
    line = one_error(cli(tmp_path, "overrides", str(blob)), "blob.yaml")
    assert "binary" in line or "UTF-8" in line


def test_overrides_params_is_a_directory(tmp_path):
    r = cli(tmp_path, "overrides", str(ROOT / "configs" / "paper.yaml"), str(tmp_path))
    one_error(r, str(tmp_path), "directory")


def test_overrides_extra_argument(tmp_path):
    """A third argument was silently ignored."""
    r = cli(ROOT, "overrides", "configs/paper.yaml", "params.yaml", "configs/biases.yaml")
    one_error(r, "configs/biases.yaml")


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
def test_signal_to_the_parallel_runner_stops_its_stages(tmp_path, sig):
    """SIGTERM killed the runner alone: the stage it had started ran on, orphaned. (A
    terminal's Ctrl-C reached every process of the group at once: the same signal as
    here, sent to the runner alone, must reach its stages too.)"""
    proj = project(tmp_path)
    (proj / "writer.py").write_text(
        _writer(tmp_path).read_text().replace("print('started', flush=True)",
                                              "Path('started').write_text(str(os.getpid()))")
        .replace("import sys, time", "import os, sys, time"))
    (proj / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "generate": {"cmd": "python writer.py"}, "split": {"cmd": "python -c pass"}}}))
    shutil.rmtree(proj / ".dvc")
    r = subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], cwd=proj,
                       env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    p = subprocess.Popen([sys.executable, "-m", "biasvar.tools.parallel", "-j", "1",
                          "--gpus", "none"], cwd=proj, env=_env(),
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
    """The tools' entry point (``overrides.run_cli``) ends a signal in one line, 128 + signum,
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
