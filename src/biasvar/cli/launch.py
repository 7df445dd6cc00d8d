"""``biasvar launch``: the out-of-date train stages (and the companion studies) as a job
array through submitit, then the rest of the pipeline with every one of them restored
from DVC's run-cache.

    biasvar launch [--executor local|slurm] [-j N] [-S OVERRIDE ...] [--name EXP]
                   [--provenance DIR] [--remote DIR_OR_NAME] [targets ...]

1. Checks before any work: a git repository whose ``dvc.yaml``, ``stages/`` and ``src/``
   are committed (every task checks out that commit; ``params.yaml`` travels from this
   workspace), the arguments, and with ``--remote`` a DVC remote every
   task can reach (a configured remote's name, or a directory, added as the remote
   ``launch`` in ``.dvc/config.local``). ``-S`` overrides are composed into
   ``params.yaml`` exactly as ``dvc exp run -S`` does (DVC's Hydra composition, so
   ``-S +experiment=paper`` takes ``configs/experiment/paper.yaml``) and validated
   before the file is replaced.
2. Here, serially: ``dvc repro generate split`` (cheap; what every block reads).
3. The pool: every stage of ``POOL_GROUPS`` that ``dvc status`` lists as out of date is
   one task, longest first. A task clones the repository at the commit
   (``git clone --shared``: objects shared, no copy), takes this workspace's
   ``params.yaml`` and the ``generate``/``split`` entries of its ``dvc.lock``, restores
   their outputs and runs ``dvc repro -s <stage>``. Where the outputs go:

   - without ``--remote``, into this repository's cache (DVC's shared cache: the clone's
     ``cache.dir``), which a task sees because it sees the repository it clones; the
     outputs of ``generate``/``split`` are hard-linked (else copied) from the workspace;
   - with ``--remote``, into the clone's own cache, pulled from and pushed to the remote
     (``dvc pull generate split``, then ``dvc push --run-cache``): for tasks that must
     not write into this repository's cache, or results that collaborators pull.

   ``--executor slurm`` submits the tasks as one SLURM job array (``--max-parallel``
   tasks at a time); ``local`` runs them as processes of this machine, ``-j`` at a time,
   each with ``cores // j`` threads (its allocation: ``OMP_NUM_THREADS``, which torch
   takes its thread count from). A failed task is resubmitted up to ``--retries`` times;
   a task that fails for good is one line naming it and its log.
4. Here: ``dvc repro [targets]`` (``--pull`` with a remote): every task's stage is
   restored from the run-cache, nothing of the pool runs again, and the stages after it
   (``collect`` …) run. ``--name`` saves the result as a DVC experiment
   (``dvc exp save``); ``--provenance DIR`` runs the stages here one by one, measures
   every stage (wall time, peak memory; the pool's in its tasks) and writes the run's
   provenance into DIR (``biasvar.tools.provenance``).

What runs where never changes a stage's command, dependencies or params: results are
byte-identical to a serial ``dvc repro`` (tests/test_pipeline.py checks it, with SLURM).
Logs: ``<work-dir>/<stage>.log`` per task (every attempt appended, each step timed),
submitit's own files under ``<work-dir>/submitit/``, the assembly's in
``<work-dir>/assemble.log``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# What a task checks out must be what this clone runs: these paths must be committed
# (params.yaml and dvc.lock are copied from the workspace into every task's clone).
COMMITTED = ("dvc.yaml", "stages", "src")
REMOTE_NAME = "launch"

# Stage groups whose stages read nothing but the outputs of UPSTREAM (or no stage output
# at all), so any number of them run at once once UPSTREAM is done: one task each.
# tests/test_launch.py checks this against dvc.yaml.
POOL_GROUPS = ("train", "spectral", "pc_bias", "spectral_cls", "erank_depth", "tradeoff",
               "ridgeless")
UPSTREAM = ("generate", "split")

_TRAIN = re.compile(r"^train@(?P<noise>[^-]+)-(?P<width>\d+)-(?P<block>\d+)$")


def group(stage: str) -> str:
    """``train@0.0-4-0`` -> ``train``; a stage without ``@`` is its own group."""
    return stage.split("@", 1)[0]


def pool_order(stages: Sequence[str]) -> list[str]:
    """The pool's stages, longest first so that no long task starts last: studies (one
    process each, minutes at the default size) first, then train blocks by decreasing
    width (a block's cost grows with width), ties in name order."""
    def key(stage: str):
        m = _TRAIN.match(stage)
        return (0, 0, stage) if m is None else (1, -int(m["width"]), stage)

    return sorted((s for s in stages if group(s) in POOL_GROUPS), key=key)


def detect_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def dvc(*args: str) -> list[str]:
    """A DVC command run with this interpreter (the project's environment)."""
    return [sys.executable, "-m", "dvc", *args]


@dataclass(frozen=True)
class Task:
    """One pool stage to run in a clone of ``repo`` at ``commit``."""

    stage: str
    repo: str
    commit: str
    remote_url: str  # "": the repository's cache is shared (cache_dir)
    workdir: str  # the task's clone (removed after success)
    log: str
    threads: int  # 0: the allocation's (SLURM_CPUS_PER_TASK) or torch's default
    gpu: str | None = None  # local executor: the one GPU this task sees
    cache_dir: str = ""  # the repository's cache, when shared
    index: int = 0  # 1, 2, ...: the task's number (the provenance's job column)


@dataclass(frozen=True)
class StageRun:
    """One measured ``dvc repro -s``: what it cost (a row of the provenance's table)."""

    stage: str
    wall_s: float
    max_rss_mib: float  # peak resident memory of the largest process in its tree
    job: int = 0  # the pool task's index; 0 for stages run by the launcher itself


STOP_GRACE_S = 30.0  # how long a stopped stage gets to unwind before it is killed


def _stop(p: subprocess.Popen) -> None:
    """Stop ``p`` and everything it started (its own session: a stage under dvc): SIGTERM,
    which a stage turns into its cleanup (stages/_common.py), then SIGKILL."""
    import signal

    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _start(cmd: list[str], cwd: Path, **kw) -> subprocess.Popen:
    # its own session: a signal to this process (Ctrl-C, SIGTERM, a SLURM cancel) is
    # passed on to the whole tree by _stop, never left to reach part of it
    return subprocess.Popen(cmd, cwd=cwd, start_new_session=True, **kw)


def measured(cmd: list[str], cwd: Path, log, env: dict[str, str] | None = None
             ) -> tuple[int, float, float]:
    """Run ``cmd`` with its output appended to ``log`` (a file); (exit code, wall seconds,
    peak MiB). ``os.wait4`` returns the rusage of the process including the children it
    waited for (a stage's command), and Linux's ``ru_maxrss`` of that is the largest
    resident set among them: the stage's peak memory (dvc itself takes ~0.1 GiB)."""
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    t0 = time.perf_counter()
    p = _start(cmd, cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _, status, usage = os.wait4(p.pid, 0)
    except BaseException:  # Ctrl-C or SIGTERM here: the command must not outlive us
        _stop(p)
        raise
    p.returncode = rc = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
    wall = time.perf_counter() - t0
    log.write(f"  ({wall:.1f} s, exit {rc})\n")
    log.flush()
    return rc, wall, usage.ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def _shown(cmd: list[str]) -> str:
    return " ".join(cmd[2:] if cmd[1:2] == ["-m"] else cmd)


def _step(cmd: list[str], cwd: Path, log, env: dict[str, str] | None = None
          ) -> tuple[float, float]:
    rc, wall, peak = measured(cmd, cwd, log, env)
    if rc != 0:
        raise RuntimeError(f"{_shown(cmd)} exited {rc}")
    return wall, peak


def write_upstream_lock(src: Path, dst: Path) -> None:
    """``dst``: the lock ``src`` with the entries of the ``UPSTREAM`` stages only."""
    import yaml

    lock = yaml.safe_load(src.read_text()) if src.exists() else {}
    stages = {k: v for k, v in (lock.get("stages") or {}).items() if group(k) in UPSTREAM}
    dst.write_text(yaml.safe_dump({**lock, "stages": stages}, sort_keys=False))


def upstream_outs(repo: Path) -> list[str]:
    """The outputs of the ``UPSTREAM`` stages as ``repo``'s ``dvc.lock`` records them."""
    import yaml

    stages = yaml.safe_load((repo / "dvc.lock").read_text()).get("stages", {})
    return sorted({o["path"] for name, st in stages.items() if group(name) in UPSTREAM
                   for o in st.get("outs", [])})


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same file system: no bytes copied; read-only use by the stage
    except OSError:
        shutil.copy2(src, dst)


def link_outputs(src_root: Path, dst_root: Path, paths: Sequence[str]) -> int:
    """Hard-link (else copy) each of ``paths`` (files or folders) from ``src_root`` into
    ``dst_root``; returns the number of files. What ``dvc checkout`` of those outputs
    would give, without starting DVC (which costs a task ~2 s)."""
    n = 0
    for rel in paths:
        src, dst = src_root / rel, dst_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, copy_function=_link_or_copy, dirs_exist_ok=True)
            n += sum(1 for f in src.rglob("*") if f.is_file())
        elif src.exists():
            _link_or_copy(str(src), str(dst))
            n += 1
    return n


def run_task(task: Task) -> StageRun:
    """The body of one array task (submitit pickles a reference to this function): clone
    at the commit, restore ``generate``/``split``, ``dvc repro -s <stage>`` (and
    ``dvc push --run-cache`` with a remote); the clone is removed on success. Returns the
    stage's cost (``dvc repro -s`` alone)."""
    work = Path(task.workdir)
    env = dict(os.environ)
    threads = task.threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if task.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = task.gpu
    with open(task.log, "a") as log:
        log.write(f"--- {task.stage} at {time.strftime('%H:%M:%S')} on "
                  f"{os.uname().nodename}, pid {os.getpid()}, {threads or 'default'} threads\n")
        shutil.rmtree(work, ignore_errors=True)  # a killed earlier attempt's clone
        _step(["git", "clone", "-q", "--shared", "--no-checkout", task.repo, str(work)],
              Path(task.repo), log, env)
        _step(["git", "checkout", "-q", "--detach", task.commit], work, log, env)
        # The workspace's params (-S overrides need not be committed) and, of its lock,
        # the entries of generate/split as the launcher just ran them: DVC rereads and
        # rewrites the whole lock for every stage it runs (~2-5 s for the full one).
        shutil.copyfile(Path(task.repo) / "params.yaml", work / "params.yaml")
        write_upstream_lock(Path(task.repo) / "dvc.lock", work / "dvc.lock")
        # What `dvc cache dir --local` / `dvc remote add --local -d` write, without
        # starting DVC once more.
        (work / ".dvc" / "config.local").write_text(
            f"[cache]\n    dir = {task.cache_dir}\n" if task.cache_dir else
            f'[core]\n    remote = {REMOTE_NAME}\n[\'remote "{REMOTE_NAME}"\']\n'
            f"    url = {task.remote_url}\n")
        if task.cache_dir:  # the launcher's generate/split outputs, linked (no DVC start)
            t0 = time.perf_counter()
            n = link_outputs(Path(task.repo), work, upstream_outs(Path(task.repo)))
            log.write(f"$ link {n} upstream output files\n  ({time.perf_counter() - t0:.1f} s)\n")
        else:
            _step(dvc("pull", *UPSTREAM), work, log, env)
        # -s: this stage only (its upstream is restored, not re-checked); a run-cache hit
        # (an earlier attempt that got as far as saving) is restored instead of rerun.
        wall, peak = _step(dvc("repro", "-s", task.stage), work, log, env)
        if not task.cache_dir:
            _step(dvc("push", "--run-cache"), work, log, env)
        log.write(f"--- {task.stage} done at {time.strftime('%H:%M:%S')}\n")
    shutil.rmtree(work, ignore_errors=True)
    return StageRun(task.stage, wall, peak, task.index)


# ---------------------------------------------------------------- the launcher
@dataclass
class Options:
    """``biasvar launch``'s arguments, checked (see ``add_parser``)."""

    executor: str = "local"
    jobs: int = 0  # local: tasks at a time (0: one per core, or one per GPU)
    max_parallel: int = 0  # slurm: array tasks at a time (0: no limit)
    remote: str | None = None
    partition: str | None = None
    cpus_per_task: int = 0
    gpus_per_task: int = 0
    mem: str | None = None
    time: int = 60  # minutes per task
    retries: int = 1
    work_dir: str | None = None
    targets: tuple[str, ...] = ()
    set_params: tuple[str, ...] = ()  # -S: Hydra overrides of params.yaml
    name: str | None = None  # dvc exp save -n NAME at the end
    provenance: str | None = None  # a folder for the run's provenance


def add_parser(sub) -> None:
    """The ``launch`` subcommand of the ``biasvar`` console script."""
    from biasvar.tools.cli import int_in

    p = sub.add_parser("launch", help="train the out-of-date blocks as a job array "
                       "(local processes or SLURM), then the rest of the pipeline",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("targets", nargs="*", help="dvc repro targets of the assembly (default: all)")
    p.add_argument("--executor", choices=("local", "slurm"), default="local")
    p.add_argument("-j", "--jobs", type=int_in(0, 1024), default=0,
                   help="local: tasks at a time (default: one per GPU, else one per core)")
    p.add_argument("--max-parallel", type=int_in(0, 100_000), default=0,
                   help="slurm: array tasks at a time (default: no limit)")
    p.add_argument("--remote", help="a DVC remote the tasks push to and the assembly pulls "
                   "from: a remote's name or a directory every task can reach (default: "
                   "none; the tasks write into this repository's cache)")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--cpus-per-task", type=int_in(0, 4096), default=0,
                   help="threads of a task (local default: cores // jobs)")
    p.add_argument("--gpus-per-task", type=int_in(0, 64), default=0)
    p.add_argument("--mem", help="slurm memory per task, e.g. 8G")
    p.add_argument("--time", type=int_in(1, 100_000), default=60,
                   help="slurm time limit per task, minutes (default 60)")
    p.add_argument("--retries", type=int_in(0, 100), default=1,
                   help="resubmissions of a failed task (default 1)")
    p.add_argument("--work-dir", help="clones and logs (default .dvc/tmp/launch/<time>)")
    p.add_argument("-S", "--set-param", action="append", default=[], metavar="OVERRIDE",
                   help="a Hydra override of params.yaml, as for dvc exp run -S (e.g. "
                   "+experiment=paper or train.lr=0.003); repeatable")
    p.add_argument("--name", type=exp_name, help="save the result as this DVC experiment "
                   "(dvc exp save -n)")
    p.add_argument("--provenance", metavar="DIR", help="run the stages here one by one, "
                   "measure each, and write the run's provenance into DIR")


_EXP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def exp_name(text: str) -> str:
    """``--name`` (an argparse ``type=``): what ``dvc exp save -n`` accepts as a git ref
    component."""
    import argparse

    if not _EXP_NAME.match(text) or ".." in text or text.endswith((".", ".lock")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: an experiment name of letters, digits, '.', '_' "
            "and '-', starting with a letter or digit")
    return text


def compose_params(root: Path, overrides: Sequence[str], out: Path | None = None) -> Path:
    """``params.yaml`` with the ``-S`` overrides, composed as ``dvc exp run -S`` does
    (DVC's Hydra composition from ``hydra.config_dir`` when ``hydra.enabled``, else DVC's
    overrides of the file), written to ``out`` (default: a temporary file in ``.dvc/``)
    and validated (every section, ``biasvar.tools.validate``). Returns ``out``; raises a
    one-line ``InputError`` naming the override and what is wrong (``out`` removed).

    One check is added to DVC's: a key set twice is refused (Hydra keeps the last value
    without a word)."""
    import tempfile

    from dvc.config import Config
    from dvc.utils.hydra import apply_overrides, compose_and_dump

    from biasvar.core.config import read_yaml
    from biasvar.core.errors import BiasvarError, InputError
    from biasvar.tools.validate import validate_all

    seen: set[str] = set()
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~").strip()
        if "=" in o and key in seen:
            raise InputError(f"-S {o}: sets {key} twice; give each key once")
        seen.add(key)
    params = root / "params.yaml"
    if params.exists() and not os.access(params, os.W_OK):
        raise InputError(f"{params}: read-only, and -S would rewrite it; make it writable "
                         "or drop -S")
    hydra = dict(Config(dvc_dir=str(root / ".dvc")).get("hydra", {}))
    if out is None:  # next to params.yaml's folder, so that os.replace is atomic
        fd, name = tempfile.mkstemp(prefix="params.launch.", suffix=".yaml",
                                    dir=root / ".dvc")
        os.close(fd)
        out = Path(name)
    shown = " ".join(f"-S {o}" for o in overrides)
    try:
        if hydra.get("enabled"):
            compose_and_dump(out, str(root / hydra.get("config_dir", "conf")), None,
                             hydra.get("config_name", "config"),
                             str(root / hydra.get("plugins_path", "")), list(overrides))
        else:
            shutil.copyfile(params, out)
            apply_overrides(out, list(overrides))
    except Exception as e:  # Hydra's and OmegaConf's errors have no common base
        from hydra.errors import HydraException

        out.unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, HydraException):  # a full disk
            raise InputError(f"{shown}: the composed params could not be written "
                             f"({e.strerror or e}); params.yaml unchanged") from None
        # one line: Hydra's messages span several ("Available options in 'experiment': ...")
        why = " ".join(x.strip() for x in str(e.__cause__ or e).splitlines() if x.strip())
        why = why.split(" Config search path:")[0]  # Hydra's internals, not the user's
        raise InputError(f"{shown}: {why or type(e).__name__}") from None
    try:
        validate_all(read_yaml(out), root)
    except BiasvarError as e:
        out.unlink(missing_ok=True)
        raise InputError(f"{shown}: {str(e).replace(str(out), 'params.yaml')}") from None
    return out


def check_targets(root: Path, targets: Sequence[str]) -> None:
    """Every target names a stage (or a ``foreach`` group) of ``dvc.yaml``, as DVC reads
    it: checked before any work, not after ``generate`` and ``split`` have run."""
    from dvc.repo import Repo

    from biasvar.core.errors import InputError

    if not targets:
        return
    with Repo(str(root)) as repo:
        names = [st.addressing for st in repo.index.stages]
        for t in targets:
            try:
                repo.stage.collect(t)
            except Exception:  # StageNotFound, a bad path: DVC's own errors
                import difflib

                near = difflib.get_close_matches(t, names, n=3)
                raise InputError(f"{t}: not a stage of dvc.yaml"
                                 + (f" (did you mean {', '.join(near)}?)" if near else "")
                                 ) from None


def _git(*args: str, cwd: Path) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        from biasvar.core.errors import InputError

        raise InputError(f"git {' '.join(args)}: {r.stderr.strip() or r.returncode}")
    return r.stdout


def _quiet(cmd: list[str], cwd: Path, log: Path | None = None) -> str:
    """Run ``cmd``; on failure one ``InputError`` line with the command and its last line."""
    from biasvar.core.errors import InputError

    p = _start(cmd, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = p.communicate()
    except BaseException:  # Ctrl-C or SIGTERM here: the command must not outlive us
        _stop(p)
        raise
    if log is not None:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n{stdout}{stderr}")
    if p.returncode != 0:
        lines = [x.strip() for x in (stderr + stdout).splitlines() if x.strip()]
        # DVC ends its errors with a support banner: the ERROR line is the news
        errors = [x for x in lines if x.startswith("ERROR")]
        last = (errors or lines or ["no output"])[-1]
        raise InputError(f"{_shown(cmd)} failed: {last}" + (f" (log: {log})" if log else ""))
    return stdout


def remote_url(root: Path, remote: str) -> str:
    """The URL of ``--remote`` (a configured remote's name, or a directory, added as the
    remote ``launch``), made the default remote of this clone so that ``dvc repro --pull``
    uses it."""
    from biasvar.core.errors import InputError

    names = dict(line.split(None, 1) for line in
                 _quiet(dvc("remote", "list"), root).splitlines() if line.strip())
    if remote in names:
        url = names[remote].strip()
        name = remote
    else:
        path = Path(remote).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise InputError(f"--remote {remote}: not a directory nor a remote's name "
                             f"(remotes: {', '.join(names) or 'none'})")
        path.mkdir(parents=True, exist_ok=True)
        url, name = str(path), REMOTE_NAME
        _quiet(dvc("remote", "add", "--local", "-f", name, url), root)
    _quiet(dvc("remote", "default", "--local", name), root)
    return url


def cache_dir(root: Path) -> str:
    """This repository's DVC cache directory (``cache.dir`` if set, else ``.dvc/cache``),
    absolute: the tasks' ``cache.dir`` when no remote is given."""
    r = subprocess.run(dvc("cache", "dir"), cwd=root, capture_output=True, text=True)
    found = r.stdout.strip() if r.returncode == 0 else ""
    return str(Path(found).resolve() if found else root / ".dvc" / "cache")


def check_committed(root: Path) -> str:
    """The commit every task checks out; refuses uncommitted pipeline files."""
    from biasvar.core.errors import InputError

    commit = _git("rev-parse", "HEAD", cwd=root).strip()
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", *COMMITTED, cwd=root)
    if dirty:
        first = dirty.splitlines()[0][3:]  # porcelain: two status letters, a space
        raise InputError(f"{first}: not committed; every task checks out the commit "
                         f"{commit[:8]}, so commit {', '.join(COMMITTED)} first")
    return commit


def local_slots(jobs: int, cpus_per_task: int, gpus_per_task: int) -> tuple[int, int, list]:
    """(tasks at a time, threads per task, GPU ids) of the local executor: one task per
    GPU when there are GPUs, else one per core; threads split the cores evenly so that the
    tasks never oversubscribe them."""
    cores = os.cpu_count() or 1
    gpus = detect_gpus() if gpus_per_task else []
    jobs = jobs or (len(gpus) if gpus else cores)
    return jobs, cpus_per_task or max(1, cores // jobs), gpus


def _executor(opts: Options, folder: Path, threads: int):
    import submitit

    if opts.executor == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = {"timeout_min": opts.time, "slurm_array_parallelism": opts.max_parallel or 1000,
                  "name": "biasvar"}
        if opts.cpus_per_task:
            params["cpus_per_task"] = opts.cpus_per_task
        if opts.gpus_per_task:
            params["slurm_gpus_per_task"] = opts.gpus_per_task
        if opts.partition:
            params["slurm_partition"] = opts.partition
        if opts.mem:
            params["slurm_mem"] = opts.mem
        ex.update_parameters(**params)
        return ex
    ex = submitit.AutoExecutor(folder=folder, cluster="local")
    ex.update_parameters(timeout_min=opts.time)
    return ex


def _failed(job) -> str | None:
    """None when ``job`` (done) succeeded, else why it did not."""
    try:
        job.result()
        return None
    except Exception as e:  # a failing command, a killed process, a SLURM cancel
        text = str(e).strip().splitlines()
        return (text[-1] if text else type(e).__name__)[:300]


def run_pool(tasks: list[Task], opts: Options, folder: Path, jobs: int,
             progress=print, poll_s: float = 0.5) -> list[StageRun]:
    """Run ``tasks`` on the executor: SLURM as one job array per round (the failed ones
    resubmitted as the next round), local processes ``jobs`` at a time. Raises one
    ``InputError`` line naming a task that failed ``retries + 1`` times and its log."""

    ex = _executor(opts, folder, tasks[0].threads if tasks else 0)
    attempts = {t.stage: 0 for t in tasks}
    pending = list(tasks)
    running: dict = {}  # job -> task
    done: list[StageRun] = []
    try:
        _loop(ex, opts, jobs, attempts, pending, running, done, len(tasks), progress, poll_s)
    except BaseException:  # a failed task, Ctrl-C, SIGTERM: no task outlives the launcher
        for job in running:
            job.cancel(check=False)
        raise
    return done


def _loop(ex, opts: Options, jobs: int, attempts: dict, pending: list, running: dict,
          done: list, total: int, progress, poll_s: float) -> None:
    from biasvar.core.errors import InputError

    shown = None
    while pending or running:
        if opts.executor == "slurm":
            if pending and not running:  # one array per round
                jobs_ = ex.map_array(run_task, pending)
                for t, j in zip(pending, jobs_, strict=True):
                    attempts[t.stage] += 1
                    running[j] = t
                pending = []
        else:
            while pending and len(running) < jobs:
                t = pending.pop(0)
                attempts[t.stage] += 1
                running[ex.submit(run_task, t)] = t
        for j in [j for j in running if j.done()]:
            t = running.pop(j)
            why = _failed(j)
            if why is None:
                done.append(j.result())  # the task's StageRun
            elif attempts[t.stage] <= opts.retries:
                progress(f"launch: {t.stage} failed ({why}); retrying "
                         f"({attempts[t.stage]}/{opts.retries + 1} attempts)")
                pending.append(t)
            else:  # the rest is cancelled by run_pool: the run cannot complete
                raise InputError(f"task {t.stage} failed {attempts[t.stage]} times "
                                 f"({why}); its log: {t.log}")
        line = (f"launch: {len(done)}/{total} done, {len(running)} running, "
                f"{len(pending)} waiting")
        if line != shown:
            progress(line)
            shown = line
        if pending or running:
            time.sleep(poll_s)


def stale_in_order(root: Path, targets: Sequence[str] = ()) -> list[str]:
    """The out-of-date stages (of ``targets`` and their upstream, if given), each after
    the stages it reads from: ``dvc status`` for which, DVC's own plan of a
    ``dvc repro`` (``dvc.repo.reproduce.plan_repro``) for the order."""
    from dvc.repo import Repo
    from dvc.repo.reproduce import plan_repro

    scope = ["--with-deps", *targets] if targets else []
    stale = set(json.loads(_quiet(dvc("status", "--json", *scope), root) or "{}"))
    with Repo(str(root)) as repo:
        chosen = [st for t in targets for st in repo.stage.collect(t)] or None
        order = [st.addressing for st in plan_repro(repo.index.graph, chosen)]
    return [s for s in order if s in stale]


def _serial(stages: Sequence[str], root: Path, log_path: Path, record: list[StageRun],
            progress) -> str:
    """``dvc repro -s`` of each of ``stages`` here, one at a time, measured; returns what
    they printed (for the assembly's check)."""
    from biasvar.core.errors import InputError

    start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "a") as log:
        for stage in stages:
            rc, wall, peak = measured(dvc("repro", "-s", stage), root, log)
            if rc != 0:
                raise InputError(f"dvc repro -s {stage} failed (exit {rc}); see {log_path}")
            record.append(StageRun(stage, wall, peak, 0))
            progress(f"launch: {stage} in {wall:.1f} s, peak {peak / 1024:.2f} GiB")
    with open(log_path) as f:
        f.seek(start)
        return f.read()


def launch(opts: Options, root: Path, progress=print, command: str = "biasvar launch") -> dict:
    """The whole run (module docstring); returns what ran: ``{"pool": [...], "assembly":
    [stages run by the assembly], "work_dir": ...}``. ``command`` is what the provenance
    says was run."""
    from biasvar.core.config import read_yaml
    from biasvar.core.errors import InputError
    from biasvar.tools.provenance import check_destination, write_provenance

    root = root.resolve()
    if not (root / "dvc.yaml").is_file() or not (root / ".dvc").is_dir():
        raise InputError(f"{root}: not the project folder (no dvc.yaml and .dvc/ here); run "
                         "biasvar launch in the folder that holds dvc.yaml")
    commit = check_committed(root)  # also: a git repository with a commit (dvc exp save)
    if opts.executor == "local" and opts.gpus_per_task and not detect_gpus():
        raise InputError(f"--gpus-per-task {opts.gpus_per_task}: this machine shows no GPU "
                         "(CUDA_VISIBLE_DEVICES, nvidia-smi -L); the tasks would silently "
                         "train on the CPU. Drop the option, or use --executor slurm")
    if opts.work_dir:
        existing = Path(opts.work_dir).resolve()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise InputError(f"--work-dir {opts.work_dir}: {existing} is not a writable "
                             "folder, so the clones and logs cannot go there")
    composed = compose_params(root, opts.set_params) if opts.set_params else None
    params = root / "params.yaml"
    try:
        if opts.provenance:
            report = read_yaml(composed or params).get("plot", {}).get("report")
            try:
                check_destination(opts.provenance, root, report)
            except ValueError as e:
                raise InputError(f"--provenance {e}") from None
        if composed is None:
            check_targets(root, opts.targets)
    except BaseException:
        if composed is not None:
            composed.unlink(missing_ok=True)
        raise
    before = params.read_bytes() if composed is not None and params.exists() else None
    if composed is not None:
        if params.exists():  # mkstemp made it private; params.yaml keeps its mode
            os.chmod(composed, params.stat().st_mode & 0o7777)
        os.replace(composed, params)  # atomic: the old or the new file
    try:
        if composed is not None:  # the stage names depend on the params
            check_targets(root, opts.targets)
        url = remote_url(root, opts.remote) if opts.remote else ""
    except BaseException:
        if before is not None:  # refused before any work: params.yaml as it was
            params.write_bytes(before)
        raise
    if composed is not None:
        progress("launch: params.yaml composed with " +
                 " ".join(f"-S {o}" for o in opts.set_params))
    shared = "" if url else cache_dir(root)
    work = Path(opts.work_dir or root / ".dvc" / "tmp" / "launch" /
                time.strftime("%Y%m%d-%H%M%S")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    record: list[StageRun] = []
    upstream_log = work / "upstream.log"
    progress("launch: dvc repro " + " ".join(UPSTREAM))
    if opts.provenance:
        _serial(stale_in_order(root, UPSTREAM), root, upstream_log, record, progress)
    else:
        _quiet(dvc("repro", *UPSTREAM), root, upstream_log)
    if url:
        _quiet(dvc("push", *UPSTREAM), root, upstream_log)
    # the pool stages the targets need (all of them without targets), out of date
    scope = ["--with-deps", *opts.targets] if opts.targets else []
    stages = pool_order(json.loads(_quiet(dvc("status", "--json", *scope), root) or "{}"))
    if opts.executor == "local":
        jobs, threads, gpus = local_slots(opts.jobs, opts.cpus_per_task, opts.gpus_per_task)
    else:
        jobs, threads, gpus = 0, 0, []
    tasks = [Task(stage=s, repo=str(root), commit=commit, remote_url=url,
                  workdir=str(work / "clones" / s), log=str(work / f"{s}.log"),
                  threads=threads, gpu=gpus[i % len(gpus)] if gpus else None,
                  cache_dir=shared, index=i + 1)
             for i, s in enumerate(stages)]
    progress(f"launch: {len(tasks)} tasks on {opts.executor}"
             + (f", {jobs} at a time, {threads} threads each" if opts.executor == "local"
                else "") + f"; logs in {work}")
    if tasks:
        record += run_pool(tasks, opts, work / "submitit", jobs, progress)
    assemble_log = work / "assemble.log"
    pull = ["--pull"] if url else []
    progress("launch: " + " ".join(["dvc", "repro", *pull, *opts.targets]))
    if opts.provenance:  # the stages one by one (the pool's are restored: not measured)
        rest = [s for s in stale_in_order(root, opts.targets) if s not in stages]
        for s in stages:  # restored from the run-cache first: the rest reads their outputs
            _quiet(dvc("repro", *pull, "-s", s), root, assemble_log)
        out = _serial(rest, root, assemble_log, record, progress)
    else:
        out = _quiet(dvc("repro", *pull, *opts.targets), root, assemble_log)
    # with --provenance the pool's restores went to the log only: look for a rerun there
    ran = re.findall(r"Running stage '([^']+)'",
                     assemble_log.read_text() if opts.provenance else out)
    again = [s for s in ran if s in stages or group(s) in UPSTREAM]
    if again:
        raise InputError(f"assembly reran {', '.join(again)} (not restored from the "
                         f"run-cache); see {assemble_log}")
    if opts.name:
        _quiet(dvc("exp", "save", "-f", "-n", opts.name), root, assemble_log)
        progress(f"launch: saved as experiment {opts.name}")
    wall = time.perf_counter() - t_start
    if opts.provenance:
        order = {s: i for i, s in enumerate([*UPSTREAM, *stages])}
        record.sort(key=lambda r: order.get(r.stage, len(order)))
        out_dir = write_provenance(Path(opts.provenance), root, command, wall,
                                   jobs if opts.executor == "local" else len(tasks), threads,
                                   gpus, record)
        progress(f"launch: provenance -> {out_dir}")
    return {"pool": stages, "assembly": ran, "work_dir": str(work), "wall_s": wall}
