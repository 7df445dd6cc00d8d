"""Run the pipeline with its blocks trained in parallel: ``python -m biasvar.tools.parallel -j N``.

DVC runs the stages of one ``dvc repro`` one after the other. The train
blocks (and the companion studies) do not depend on each other, so this
runner gives them to a pool of N jobs, each ``dvc --wait-for-lock repro -s
<stage>``. DVC releases its repository lock while a stage's command runs
(it holds it only to read and write ``dvc.lock`` and the cache), so the jobs
run side by side; ``--wait-for-lock`` makes them queue for those short
critical sections instead of failing.

Steps:

0. every argument is checked against the project before any work (nothing is
   written, no DVC command runs): counts, GPU ids, the ``--config`` file, each
   ``-S``, the merged params, the targets (against the stages dvc.yaml defines
   with those params), the ``--provenance`` folder, the ``--exp`` name; a bad
   one is one line ``error: <argument>: <what is allowed>`` and exit code 2;
1. optional overrides (``--config FILE``, ``-S key=value``) are validated and
   written into ``params.yaml``, as ``dvc exp run -S`` would;
2. ``dvc repro generate split``: the cheap stages every block reads, serially;
3. every out-of-date stage of the groups in ``POOL_GROUPS`` runs in the pool,
   longest first (studies, then blocks by decreasing width);
4. ``dvc repro [targets]`` runs what is left (collect and what follows); it
   finds every block up to date and trains nothing;
5. optional ``dvc exp save -n NAME`` records the result as an experiment;
6. optional ``--provenance DIR``: step 4 runs its stages one at a time, every
   stage's wall time and peak memory is measured (``os.wait4`` on its ``dvc
   repro -s`` process tree), and DIR receives ``params.yaml``, ``dvc.lock``
   and ``run.json`` / ``RUN.md`` (commit, command, machine, wall time, the
   per-stage table): what a committed report needs to say how it was made.

Threads and devices: each job gets ``OMP_NUM_THREADS = cores // N`` (``torch``
takes its default thread count from it), so N jobs do not oversubscribe the
cores. That works because ``runtime.threads: 0`` (the default) means "torch's
default"; a non-zero ``runtime.threads`` in ``params.yaml`` wins and is used
by every job (a warning says so). On a machine with GPUs, job i sees only GPU
``i mod #GPUs`` (``CUDA_VISIBLE_DEVICES``), so ``-j #GPUs`` is one job per GPU.
None of this changes a stage's command, dependencies or params, so it never
causes a rerun, and results do not depend on N (tested: byte-identical logits).

Stopping: Ctrl-C (SIGINT), SIGTERM or SIGHUP stops every running ``dvc`` and the stage it
runs (each in a process group of its own, sent SIGINT: the stage unwinds and its
atomic writers leave no temporary; killed if it has not ended after
``STOP_GRACE_S``), starts nothing more, and ends in one line, exit code 128 +
signal. Stages that finished keep their outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Stage groups whose stages read nothing but the outputs of UPSTREAM (or no
# stage output at all), so any number of them can run at once once UPSTREAM is
# done. tests/test_parallel.py checks this against dvc.yaml.
POOL_GROUPS = ("train", "spectral", "pc_bias", "spectral_cls", "erank_depth", "tradeoff",
               "ridgeless")
UPSTREAM = ("generate", "split")

_TRAIN = re.compile(r"^train@(?P<noise>[^-]+)-(?P<width>\d+)-(?P<block>\d+)$")


def group(stage: str) -> str:
    """``train@0.0-4-0`` -> ``train``; a stage without ``@`` is its own group."""
    return stage.split("@", 1)[0]


def pool_order(stages: Sequence[str]) -> list[str]:
    """The pool's stages, longest first so that no long job starts last.

    Studies (a single process each, minutes at the default size) come first,
    then train blocks by decreasing width (a block's cost grows with width),
    ties in name order.
    """
    def key(stage: str):
        m = _TRAIN.match(stage)
        if m is None:
            return (0, 0, stage)
        return (1, -int(m["width"]), stage)

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


@dataclass(frozen=True)
class Slot:
    """One job of the pool: its number and the environment its stages run with."""

    index: int
    env: dict[str, str]


def make_slots(jobs: int, threads: int, gpus: Sequence[str]) -> list[Slot]:
    """``jobs`` slots with ``threads`` CPU threads each; slot i gets GPU ``gpus[i % len]``."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    slots = []
    for i in range(jobs):
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        slots.append(Slot(i, env))
    return slots


def clean_output(text: str) -> str:
    """Drop progress-bar redraws (``\\r``) from captured output; keep each line's last state."""
    # split("\n"), not splitlines(), which would also split at the "\r" redraws
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _dvc(*args: str) -> list[str]:
    """A dvc command line using this interpreter's dvc (the one installed with biasvar)."""
    return [sys.executable, "-m", "dvc", *args]


# ---------------------------------------------------------------- child processes
# Every dvc process the runner starts gets a process group of its own, so that a stop
# reaches the stage command it runs (dvc ignores SIGINT while its stage runs, and the
# stage's own handler ends it cleanly); a terminal's Ctrl-C reaches the runner alone,
# which passes it on. Each process is reaped by the thread that started it.
_children: dict[subprocess.Popen, bool] = {}  # process -> started by the main thread
_children_lock = threading.Lock()
_stopping = threading.Event()
STOP_GRACE_S = 30.0  # how long stopped stages get to clean up before they are killed


def _spawn(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
           **kw) -> subprocess.Popen | None:
    """Start ``cmd`` in a process group of its own; None once the runner is stopping."""
    with _children_lock:
        if _stopping.is_set():
            return None
        p = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True, **kw)
        _children[p] = threading.current_thread() is threading.main_thread()
    return p


def _forget(p: subprocess.Popen) -> None:
    with _children_lock:
        _children.pop(p, None)


def _signal_children(sig: int) -> list[subprocess.Popen]:
    with _children_lock:
        procs = list(_children)
    for p in procs:
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):  # it has ended already
            pass
    return procs


def stop_children(grace: float = STOP_GRACE_S) -> None:
    """Stop every dvc process the runner started, and the stage each one runs.

    SIGINT goes to each process group: a stage ends as on Ctrl-C (its atomic writers
    leave no temporary) and dvc records nothing for it. The main thread's processes
    are reaped here, the pool's by their threads; what still runs after ``grace``
    seconds is killed. No stage starts afterwards.
    """
    with _children_lock:
        _stopping.set()
    _signal_children(signal.SIGINT)
    deadline = time.monotonic() + grace
    with _children_lock:
        own = [p for p, by_main in _children.items() if by_main]
    for p in own:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        _forget(p)
    while _children and time.monotonic() < deadline:
        time.sleep(0.05)
    if _signal_children(signal.SIGKILL):
        end = time.monotonic() + 5
        while _children and time.monotonic() < end:  # their threads reap them
            time.sleep(0.05)


def _forward(src, dst) -> None:
    """Copy a child's output to ``dst`` as it comes, until the child closes it; muted
    once the runner is stopping (a stopped stage's failure is not news to the user)."""
    binary = getattr(dst, "buffer", None)
    while chunk := os.read(src.fileno(), 65536):
        if _stopping.is_set():
            continue
        if binary is not None:
            binary.write(chunk)
            binary.flush()
        else:  # a text-only stream (a test's capture)
            dst.write(chunk.decode(errors="replace"))
            dst.flush()


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run a serial step with its output streamed; exit with its status on failure."""
    print("+ " + " ".join(cmd[2:] if cmd[:3] == _dvc()[:3] else cmd), flush=True)
    p = _spawn(cmd, cwd, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p is None:
        return
    copies = [threading.Thread(target=_forward, args=(src, dst), daemon=True)
              for src, dst in ((p.stdout, sys.stdout), (p.stderr, sys.stderr))]
    for t in copies:
        t.start()
    returncode = p.wait()
    for t in copies:
        t.join()
    _forget(p)
    p.stdout.close()
    p.stderr.close()
    if returncode != 0:
        raise SystemExit(returncode)


def _capture(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run a short dvc query; its exit status and stdout (stderr is passed on on failure)."""
    p = _spawn(cmd, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p is None:
        return 0, ""
    out, err = p.communicate()
    _forget(p)
    if p.returncode != 0:
        sys.stderr.write(out + err)
    return p.returncode, out


def out_of_date(cwd: Path, targets: Sequence[str] = ()) -> list[str]:
    """Stages ``dvc status`` reports as changed (for ``targets`` and their upstream, if given)."""
    import json

    rc, out = _capture(_dvc("status", "--json", *(["--with-deps", *targets] if targets else [])),
                       cwd)
    if rc != 0:
        raise SystemExit(rc)
    return list(json.loads(out or "{}"))


@dataclass(frozen=True)
class StageRun:
    """One ``dvc repro -s`` call: what it printed and what it cost."""

    stage: str
    returncode: int
    output: str
    wall_s: float
    max_rss_mib: float  # peak resident memory of the largest process in its tree
    job: int = 0


def run_measured(stage: str, cwd: Path, env: dict[str, str] | None = None,
                 job: int = 0) -> StageRun | None:
    """``dvc --wait-for-lock repro -s STAGE`` with its wall time and peak memory; None
    if the runner is stopping.

    ``os.wait4`` returns the rusage of the dvc process including the children it
    waited for (the stage command), and Linux's ``ru_maxrss`` of that is the
    largest resident set among them: the stage's peak memory (dvc itself takes
    about 0.1 GiB, a floor for a tiny stage).
    """
    t0 = time.perf_counter()
    p = _spawn(_dvc("--wait-for-lock", "repro", "-s", stage), cwd, env,
               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p is None:
        return None
    assert p.stdout is not None
    output = p.stdout.read()  # to EOF; stderr is merged, so no pipe can fill up and block
    p.stdout.close()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    _forget(p)
    return StageRun(stage, p.returncode, output, time.perf_counter() - t0,
                    usage.ru_maxrss / 1024, job)  # ru_maxrss: KiB on Linux


def run_pool(stages: Sequence[str], slots: Sequence[Slot], cwd: Path,
             record: list[StageRun] | None = None) -> list[str]:
    """Run ``stages`` on ``slots`` (one stage per slot at a time); returns the failed stages.

    Each finished stage's output is printed whole, so jobs do not interleave.
    After a failure no new stage starts; running ones finish. ``record``
    receives a ``StageRun`` per finished stage. On a stop (``stop_children``) the
    jobs print nothing more and start nothing.
    """
    todo: queue.Queue[str] = queue.Queue()
    for s in stages:
        todo.put(s)
    failed: list[str] = []
    lock = threading.Lock()

    def worker(slot: Slot) -> None:
        env = {**os.environ, **slot.env}
        while True:
            with lock:
                if failed:
                    return
            try:
                stage = todo.get_nowait()
            except queue.Empty:
                return
            r = run_measured(stage, cwd, env, slot.index)
            if r is None or _stopping.is_set():
                return
            with lock:
                if record is not None:
                    record.append(r)
                status = "ok" if r.returncode == 0 else f"FAILED ({r.returncode})"
                gpu = slot.env.get("CUDA_VISIBLE_DEVICES")
                where = f"job {slot.index}" + (f", GPU {gpu}" if gpu is not None else "")
                print(f"[{where}] {stage}: {status} in {r.wall_s:.1f}s, "
                      f"peak {r.max_rss_mib / 1024:.2f} GiB", flush=True)
                out = clean_output(r.output)
                if out:
                    print("    " + out.replace("\n", "\n    "), flush=True)
                if r.returncode != 0:
                    failed.append(stage)

    # no more threads than stages: a large -j costs nothing when there is little to run
    threads = [threading.Thread(target=worker, args=(slot,))
               for slot in slots[: max(1, len(stages))]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # interruptible: a signal raises here, and main stops the jobs
    return failed


_NODE = re.compile(r'^"([^"]+)";$')
_EDGE = re.compile(r'^"([^"]+)" -> "([^"]+)";$')


def topological(dot: str) -> list[str]:
    """The stages of ``dvc dag --dot`` output, every stage after those it reads from.

    Kahn's algorithm, taking ready stages in the order DVC lists them (dvc.yaml order).
    """
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    for line in dot.splitlines():
        line = line.strip()
        if m := _EDGE.match(line):
            edges.append((m[1], m[2]))
        elif m := _NODE.match(line):
            nodes.append(m[1])
    for a, b in edges:  # an edge may name a node the list left out
        for n in (a, b):
            if n not in nodes:
                nodes.append(n)
    indeg = {n: 0 for n in nodes}
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    order: list[str] = []
    ready = [n for n in nodes if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for b in succ[n]:
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    if len(order) != len(nodes):
        raise ValueError("dvc dag has a cycle")
    return order



def downstream_order(cwd: Path, targets: Sequence[str] = ()) -> list[str]:
    """The out-of-date stages (of ``targets`` and their upstream, if given), each after
    the stages it depends on. (``dvc repro --dry`` cannot tell: it fails on an
    output that an earlier stage has not written yet.)"""
    rc, dot = _capture(_dvc("dag", "--dot"), cwd)
    if rc != 0:
        raise SystemExit(rc)
    stale = set(out_of_date(cwd, targets))
    return [s for s in topological(dot) if s in stale]


def run_serial(stages: Sequence[str], cwd: Path, record: list[StageRun]) -> None:
    """Run ``stages`` one at a time, measured; exit with the first failure's status."""
    for stage in stages:
        r = run_measured(stage, cwd)
        if r is None:
            return
        record.append(r)
        print(f"+ dvc repro -s {stage}: {'ok' if r.returncode == 0 else 'FAILED'} in "
              f"{r.wall_s:.1f}s, peak {r.max_rss_mib / 1024:.2f} GiB", flush=True)
        out = clean_output(r.output)
        if out:
            print("    " + out.replace("\n", "\n    "), flush=True)
        if r.returncode != 0:
            raise SystemExit(r.returncode)


# ---------------------------------------------------------------- arguments
MAX_JOBS = 1024  # bounds on -j and --threads: a typo must not start a million threads
_GPU_ID = re.compile(r"^(\d+|(GPU|MIG)-[A-Za-z0-9-]+)$")  # an index or a UUID (nvidia-smi -L)
# what `dvc exp save -n` takes (a git ref name), kept to a safe subset
_EXP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _gpus_arg(text: str) -> str:
    """argparse ``type=`` of ``--gpus``: 'auto', 'none' or distinct GPU ids."""
    ids = text.split(",")
    if text not in ("auto", "none") and (
            not all(_GPU_ID.match(g) for g in ids) or len(set(ids)) != len(ids)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: 'auto', 'none', or distinct GPU ids like 0,1")
    return text


def _exp_arg(text: str) -> str:
    """argparse ``type=`` of ``--exp``: a name ``dvc exp save -n`` accepts."""
    if not _EXP_NAME.match(text) or ".." in text or text.endswith((".", ".lock")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: a name of letters, digits, '.', '_' and '-' (at most "
            "100, starting with a letter or digit, no '..', not ending in '.' or '.lock')")
    return text


def build_parser():
    """The runner's command line; every value is checked as it is parsed, or in ``prepare``."""
    from biasvar.tools.cli import CliParser, int_in

    ap = CliParser(prog="python -m biasvar.tools.parallel",
                   description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help="dvc repro targets (default: the whole pipeline)")
    ap.add_argument("-j", "--jobs", type=int_in(1, MAX_JOBS), default=None,
                    help="parallel jobs (default: one per GPU, else one per CPU core)")
    ap.add_argument("--threads", type=int_in(1, MAX_JOBS), default=None,
                    help="CPU threads per job (default: cores // jobs, at least 1)")
    ap.add_argument("--gpus", default="auto", type=_gpus_arg,
                    help="'auto' (CUDA_VISIBLE_DEVICES or nvidia-smi), 'none', or ids like 0,1")
    ap.add_argument("--config", help="a configs/*.yaml of overrides to write into params.yaml")
    ap.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                    help="one override (YAML value), like dvc exp run -S; repeatable")
    ap.add_argument("--exp", metavar="NAME", type=_exp_arg,
                    help="afterwards, `dvc exp save -n NAME`")
    ap.add_argument("--provenance", metavar="DIR",
                    help="measure every stage and write params, lock, machine and timings to DIR")
    ap.add_argument("--dry-run", action="store_true",
                    help="apply nothing, run nothing: print the plan")
    return ap


@dataclass
class Plan:
    """What the checked arguments amount to."""

    cfg: dict
    jobs: int
    threads: int
    gpus: list[str]
    runtime_threads: int


def stage_names(cwd: Path, params: dict) -> list[str] | None:
    """Every stage name of ``dvc.yaml`` under ``params`` (foreach and matrix expanded).

    DVC resolves a copy of dvc.yaml and the params in a scratch folder: the project
    is not touched (its params.yaml does not have the overrides yet) and no DVC
    command runs there. None if the scratch folder cannot be written (a full or
    read-only temporary folder): the check is then left to DVC.
    """
    import tempfile

    import yaml
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    from biasvar.tools.cli import ArgumentValueError

    with tempfile.TemporaryDirectory() as scratch:
        try:
            shutil.copyfile(cwd / "dvc.yaml", Path(scratch) / "dvc.yaml")
            (Path(scratch) / "params.yaml").write_text(yaml.safe_dump(params))
        except OSError:
            return None
        try:
            repo = Repo(scratch, uninitialized=True)
            try:
                return [stage.name for stage in repo.index.stages]
            finally:
                repo.close()
        except DvcException as e:
            why = " ".join(f"{e} {e.__cause__ or ''}".split())  # DVC's own is many lines
            # the scratch copy's path means nothing to the user
            why = re.sub(r"'?\S*" + re.escape(Path(scratch).name) + r"/([^'\s]*)'?", r"\1",
                         why)
            raise ArgumentValueError(f"{cwd / 'dvc.yaml'}: its stages cannot be listed "
                                     f"with these params ({why})") from None


def check_targets(targets: Sequence[str], names: Sequence[str]) -> None:
    """Each target must be a stage (``train@0.0-4-0``), a group of them (``train``), or
    ``dvc.yaml[:NAME]``, as ``dvc repro`` takes them."""
    from biasvar.tools.cli import ArgumentValueError

    groups = list(dict.fromkeys(group(n) for n in names))
    for target in targets:
        file, sep, name = target.rpartition(":")
        if sep and file in ("dvc.yaml", "./dvc.yaml"):
            target_name = name
        elif target in ("dvc.yaml", "./dvc.yaml"):
            continue
        else:
            target_name = target
        if target_name in names or target_name in groups:
            continue
        example = next((n for n in names if "@" in n), "")
        raise ArgumentValueError(
            f"target {target!r}: not a stage of dvc.yaml with these params; allowed: "
            f"{', '.join(groups)}, or NAME@KEY for one stage of a group"
            + (f" (like {example})" if example else ""))


def _origin(key: str, cfg_keys: Sequence[str], items: Sequence[str],
            config: str | None) -> str | None:
    """The argument that set params key ``key`` (or its section, or a key in it)."""
    def related(k: str) -> bool:
        return (key == k or key.startswith((k + ".", k + "[")) or k.startswith(key + "."))
    for item in reversed(items):  # the last -S wins over --config
        if related(item.partition("=")[0]):
            return f"-S {item}"
    if config is not None and any(related(k) for k in cfg_keys):
        return f"--config {config}"
    return None


def prepare(args: argparse.Namespace, cwd: Path) -> Plan:
    """Check every argument against the project in ``cwd``, before any work: nothing is
    written and no DVC command runs. Raises a ``BiasvarError`` naming the argument."""
    from biasvar.core.config import RuntimeParams
    from biasvar.core.errors import BiasvarError, ParamError
    from biasvar.tools.cli import ArgumentValueError
    from biasvar.tools.overrides import (
        add_set_params,
        check,
        check_writable,
        flatten,
        read_config,
    )
    from biasvar.tools.provenance import check_destination

    if not (cwd / "dvc.yaml").is_file() or not (cwd / ".dvc").is_dir():
        raise ArgumentValueError(f"{cwd}: not the project folder (no dvc.yaml and .dvc/ "
                                 "here); run the runner in the folder that holds dvc.yaml")
    params_path = cwd / "params.yaml"
    from_file: dict = {}
    if args.config is not None:
        try:
            from_file = read_config(args.config)
        except BiasvarError as e:
            raise ArgumentValueError(f"--config {e}") from None
    cfg = add_set_params(from_file, args.set_param)
    try:
        merged = check(params_path, cfg)  # every section, overrides included
    except ParamError as e:  # named with the argument that set the key
        file_keys = [k for k, _ in flatten(from_file)]
        where = _origin(e.key, file_keys, args.set_param, args.config)
        if where is None:
            raise
        raise ArgumentValueError(f"{where}: {e}") from None
    # always: a dvc.yaml that does not resolve with these params would fail in DVC only
    # after params.yaml had been rewritten
    names = stage_names(cwd, merged)
    if args.targets and names is not None:
        check_targets(args.targets, names)
    if args.provenance is not None:
        try:
            check_destination(args.provenance, cwd, merged.get("plot", {}).get("report"))
        except ValueError as e:
            raise ArgumentValueError(f"--provenance {e}") from None
    if args.exp is not None:
        try:
            head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"],
                                  cwd=cwd, capture_output=True).returncode == 0
        except OSError:  # no git
            head = False
        if not head:
            raise ArgumentValueError(f"--exp {args.exp}: `dvc exp save` records experiments "
                                     f"in git, and {cwd} is not a git repository with a "
                                     "commit")
    if args.gpus == "auto":
        gpus = detect_gpus()
    elif args.gpus == "none":
        gpus = []
    else:
        gpus = args.gpus.split(",")
        listed = detect_gpus()
        for g in gpus:
            if g.isdigit() and g not in listed:
                raise ArgumentValueError(
                    f"--gpus {args.gpus!r}: GPU {g} is not one of this machine's ("
                    + (", ".join(listed) if listed else "it lists none")
                    + "); allowed: 'auto', 'none', or ids that nvidia-smi -L lists")
    if cfg and not args.dry_run:
        check_writable(params_path)
    cores = os.cpu_count() or 1
    jobs = args.jobs if args.jobs is not None else (len(gpus) or cores)
    threads = args.threads if args.threads is not None else max(1, cores // jobs)
    runtime_threads = RuntimeParams.from_dict(merged.get("runtime", {})).threads
    return Plan(cfg, min(jobs, MAX_JOBS), threads, gpus, runtime_threads)


def main(argv: list[str] | None = None) -> int:
    """The runner: check every argument, then run the pipeline (module docstring)."""
    from biasvar.core.errors import BiasvarError
    from biasvar.tools.cli import interrupted_line

    args = build_parser().parse_args(argv)
    cwd = Path.cwd()
    _stopping.clear()
    started = written = False  # what an interrupt leaves: for its one line
    try:
        plan = prepare(args, cwd)
        cfg, jobs, threads, gpus = plan.cfg, plan.jobs, plan.threads, plan.gpus
        slots = make_slots(jobs, threads, gpus)
        print(f"parallel: {jobs} job(s), {threads} CPU thread(s) each"
              + (f", GPUs {','.join(gpus)}" if gpus else ", no GPU"), flush=True)
        if plan.runtime_threads:
            print(f"parallel: warning: params.yaml sets runtime.threads = {plan.runtime_threads}"
                  "; every job uses that many threads (set it to 0 to let this runner split "
                  "the cores)", flush=True)
        if args.dry_run:
            if cfg:
                from biasvar.tools.overrides import flatten

                for key, value in flatten(cfg):
                    print(f"  would set {key} = {value!r}")
            for slot in slots:
                print(f"  job {slot.index}: "
                      + " ".join(f"{k}={v}" for k, v in slot.env.items()))
            print("  then: dvc repro " + " ".join(UPSTREAM) + "; the pool: every out-of-date "
                  f"stage of {', '.join(POOL_GROUPS)}; then: dvc repro " + " ".join(args.targets))
            return 0

        t_start = time.perf_counter()
        if cfg:
            from biasvar.tools.overrides import apply_file

            apply_file(cwd / "params.yaml", cfg)
            written = True
            print(f"parallel: wrote {len(cfg)} overridden section(s) into params.yaml",
                  flush=True)
        started = True
        record: list[StageRun] = []
        if args.provenance:
            run_serial(downstream_order(cwd, UPSTREAM), cwd, record)
        else:
            _run(_dvc("repro", *UPSTREAM), cwd)
        t_pool = time.perf_counter()
        stages = pool_order(out_of_date(cwd, args.targets))
        print(f"parallel: {len(stages)} stage(s) in the pool", flush=True)
        failed = run_pool(stages, slots, cwd, record)
        if failed:
            print(f"parallel: failed: {', '.join(failed)}", file=sys.stderr)
            return 1
        t_rest = time.perf_counter()
        if args.provenance:
            run_serial(downstream_order(cwd, args.targets), cwd, record)
        _run(_dvc("repro", *args.targets), cwd)  # with --provenance: finds everything up to date
        if args.exp:
            _run(_dvc("exp", "save", "-f", "-n", args.exp), cwd)
        t_end = time.perf_counter()
        print(f"parallel: upstream {t_pool - t_start:.1f}s, pool {t_rest - t_pool:.1f}s "
              f"({jobs} jobs), downstream {t_end - t_rest:.1f}s, total {t_end - t_start:.1f}s",
              flush=True)
        if args.provenance:
            from biasvar.tools.provenance import write_provenance

            command = "python -m biasvar.tools.parallel " + " ".join(
                argv if argv is not None else sys.argv[1:])
            out = write_provenance(Path(args.provenance), cwd, command, t_end - t_start,
                                   jobs, threads, gpus, record)
            print(f"parallel: provenance -> {out}", flush=True)
        return 0
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # SIGINT, or SIGTERM / SIGHUP under run_cli
        stop_children()
        if not started:
            done = ("params.yaml has the overrides; no stage ran" if written
                    else "nothing was written")
        else:
            done = ("the running stages were stopped and wrote nothing; finished stages keep "
                    "their outputs" + ("; params.yaml keeps the overrides" if written else ""))
        line, code = interrupted_line(e, done)
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(line, file=sys.stderr)
        return code


if __name__ == "__main__":
    from biasvar.tools.cli import run_cli

    raise SystemExit(run_cli(main))
