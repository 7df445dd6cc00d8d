"""``biasvar launch``: the out-of-date train stages (and the companion studies) as a job
array through submitit, then the rest of the pipeline with every one of them restored
from DVC's run-cache.

    biasvar launch [--executor local|slurm] [-j N] [--remote DIR_OR_NAME] [targets ...]

1. Checks before any work: a git repository whose ``dvc.yaml``, ``params.yaml``,
   ``stages/`` and ``src/`` are committed (every task checks out that commit), the
   arguments, and with ``--remote`` a DVC remote every task can reach (a configured
   remote's name, or a directory, added as the remote ``launch`` in ``.dvc/config.local``).
2. Here, serially: ``dvc repro generate split`` (cheap; what every block reads).
3. The pool: every stage of ``POOL_GROUPS`` that ``dvc status`` lists as out of date is
   one task, longest first. A task clones the repository at the commit
   (``git clone --shared``: objects shared, no copy), takes this repository's
   ``dvc.lock``, restores ``generate``/``split``'s outputs and runs
   ``dvc repro -s <stage>``. Where the outputs go:

   - without ``--remote``, into this repository's cache (DVC's shared cache: the clone's
     ``cache.dir``), which a task sees because it sees the repository it clones;
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
   (``collect`` …) run.

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
from dataclasses import dataclass
from pathlib import Path

# Which stages the pool runs, in which order, and the GPUs it sees are the thread pool's
# (biasvar.tools.parallel, which launch replaces; they move here when it goes).
from biasvar.tools.parallel import UPSTREAM, detect_gpus, group, pool_order

# What a task checks out must be what this clone runs: these paths must be committed.
COMMITTED = ("dvc.yaml", "params.yaml", "stages", "src")
REMOTE_NAME = "launch"


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


def _step(cmd: list[str], cwd: Path, log, env: dict[str, str]) -> None:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.write(f"  ({time.perf_counter() - t0:.1f} s, exit {r.returncode})\n")
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:] if cmd[1:2] == ['-m'] else cmd)} exited "
                           f"{r.returncode}")


def run_task(task: Task) -> str:
    """The body of one array task (submitit pickles a reference to this function): clone
    at the commit, restore ``generate``/``split``, ``dvc repro -s <stage>`` (and
    ``dvc push --run-cache`` with a remote); the clone is removed on success. Returns the
    stage name."""
    work = Path(task.workdir)
    env = dict(os.environ)
    threads = task.threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if task.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = task.gpu
    with open(task.log, "a") as log:
        log.write(f"--- {task.stage} on {os.uname().nodename}, pid {os.getpid()}, "
                  f"{threads or 'default'} threads\n")
        shutil.rmtree(work, ignore_errors=True)  # a killed earlier attempt's clone
        _step(["git", "clone", "-q", "--shared", "--no-checkout", task.repo, str(work)],
              Path(task.repo), log, env)
        _step(["git", "checkout", "-q", "--detach", task.commit], work, log, env)
        # The repository's lock: generate/split as the launcher just ran them (their
        # entries need not be committed); the rest of it is what the task's stage replaces.
        lock = Path(task.repo) / "dvc.lock"
        if lock.exists():
            shutil.copyfile(lock, work / "dvc.lock")
        # What `dvc cache dir --local` / `dvc remote add --local -d` write, without
        # starting DVC once more.
        (work / ".dvc" / "config.local").write_text(
            f"[cache]\n    dir = {task.cache_dir}\n" if task.cache_dir else
            f'[core]\n    remote = {REMOTE_NAME}\n[\'remote "{REMOTE_NAME}"\']\n'
            f"    url = {task.remote_url}\n")
        _step(dvc("checkout" if task.cache_dir else "pull", *UPSTREAM), work, log, env)
        # -s: this stage only (its upstream is restored, not re-checked); a run-cache hit
        # (an earlier attempt that got as far as saving) is restored instead of rerun.
        _step(dvc("repro", "-s", task.stage), work, log, env)
        if not task.cache_dir:
            _step(dvc("push", "--run-cache"), work, log, env)
        log.write(f"--- {task.stage} done\n")
    shutil.rmtree(work, ignore_errors=True)
    return task.stage


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


def _git(*args: str, cwd: Path) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        from biasvar.core.errors import InputError

        raise InputError(f"git {' '.join(args)}: {r.stderr.strip() or r.returncode}")
    return r.stdout


def _quiet(cmd: list[str], cwd: Path, log: Path | None = None) -> str:
    """Run ``cmd``; on failure one ``InputError`` line with the command and its last line."""
    from biasvar.core.errors import InputError

    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if log is not None:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    if r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[-1]
        shown = " ".join(cmd[2:]) if cmd[1:2] == ["-m"] else " ".join(cmd)
        raise InputError(f"{shown} failed: {last}" + (f" (log: {log})" if log else ""))
    return r.stdout


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
             progress=print, poll_s: float = 0.5) -> None:
    """Run ``tasks`` on the executor: SLURM as one job array per round (the failed ones
    resubmitted as the next round), local processes ``jobs`` at a time. Raises one
    ``InputError`` line naming a task that failed ``retries + 1`` times and its log."""

    ex = _executor(opts, folder, tasks[0].threads if tasks else 0)
    attempts = {t.stage: 0 for t in tasks}
    pending = list(tasks)
    running: dict = {}  # job -> task
    done: list[str] = []
    try:
        _loop(ex, opts, jobs, attempts, pending, running, done, len(tasks), progress, poll_s)
    except BaseException:  # a failed task, Ctrl-C, SIGTERM: no task outlives the launcher
        for job in running:
            job.cancel(check=False)
        raise


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
                done.append(t.stage)
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


def launch(opts: Options, root: Path, progress=print) -> dict:
    """The whole run (module docstring); returns what ran: ``{"pool": [...], "assembly":
    [stages run by the assembly]}``."""
    from biasvar.core.errors import InputError

    root = root.resolve()
    commit = check_committed(root)
    url = remote_url(root, opts.remote) if opts.remote else ""
    shared = "" if url else cache_dir(root)
    work = Path(opts.work_dir or root / ".dvc" / "tmp" / "launch" /
                time.strftime("%Y%m%d-%H%M%S")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    upstream_log = work / "upstream.log"
    progress("launch: dvc repro " + " ".join(UPSTREAM))
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
                  cache_dir=shared)
             for i, s in enumerate(stages)]
    progress(f"launch: {len(tasks)} tasks on {opts.executor}"
             + (f", {jobs} at a time, {threads} threads each" if opts.executor == "local"
                else "") + f"; logs in {work}")
    if tasks:
        run_pool(tasks, opts, work / "submitit", jobs, progress)
    assemble_log = work / "assemble.log"
    pull = ["--pull"] if url else []
    progress("launch: " + " ".join(["dvc", "repro", *pull, *opts.targets]))
    out = _quiet(dvc("repro", *pull, *opts.targets), root, assemble_log)
    ran = re.findall(r"Running stage '([^']+)'", out)
    again = [s for s in ran if s in stages or group(s) in UPSTREAM]
    if again:
        raise InputError(f"assembly reran {', '.join(again)} (not restored from the "
                         f"run-cache); see {assemble_log}")
    return {"pool": stages, "assembly": ran, "work_dir": str(work)}
