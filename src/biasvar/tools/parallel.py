"""Run the pipeline with its blocks trained in parallel: ``python -m biasvar.tools.parallel -j N``.

DVC runs the stages of one ``dvc repro`` one after the other. The train
blocks (and the companion studies) do not depend on each other, so this
runner gives them to a pool of N jobs, each ``dvc --wait-for-lock repro -s
<stage>``. DVC releases its repository lock while a stage's command runs
(it holds it only to read and write ``dvc.lock`` and the cache), so the jobs
run side by side; ``--wait-for-lock`` makes them queue for those short
critical sections instead of failing.

Steps:

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
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
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


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run a serial step with its output streamed; exit with its status on failure."""
    print("+ " + " ".join(cmd[2:] if cmd[:3] == _dvc()[:3] else cmd), flush=True)
    r = subprocess.run(cmd, cwd=cwd, env=env)
    if r.returncode != 0:
        raise SystemExit(r.returncode)


def out_of_date(cwd: Path, targets: Sequence[str] = ()) -> list[str]:
    """Stages ``dvc status`` reports as changed (for ``targets`` and their upstream, if given)."""
    import json

    cmd = _dvc("status", "--json", *(["--with-deps", *targets] if targets else []))
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(r.returncode)
    return list(json.loads(r.stdout or "{}"))


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
                 job: int = 0) -> StageRun:
    """``dvc --wait-for-lock repro -s STAGE`` with its wall time and peak memory.

    ``os.wait4`` returns the rusage of the dvc process including the children it
    waited for (the stage command), and Linux's ``ru_maxrss`` of that is the
    largest resident set among them: the stage's peak memory (dvc itself takes
    about 0.1 GiB, a floor for a tiny stage).
    """
    t0 = time.perf_counter()
    p = subprocess.Popen(_dvc("--wait-for-lock", "repro", "-s", stage), cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.stdout is not None
    output = p.stdout.read()  # to EOF; stderr is merged, so no pipe can fill up and block
    p.stdout.close()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return StageRun(stage, p.returncode, output, time.perf_counter() - t0,
                    usage.ru_maxrss / 1024, job)  # ru_maxrss: KiB on Linux


def run_pool(stages: Sequence[str], slots: Sequence[Slot], cwd: Path,
             record: list[StageRun] | None = None) -> list[str]:
    """Run ``stages`` on ``slots`` (one stage per slot at a time); returns the failed stages.

    Each finished stage's output is printed whole, so jobs do not interleave.
    After a failure no new stage starts; running ones finish. ``record``
    receives a ``StageRun`` per finished stage.
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

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in slots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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
    r = subprocess.run(_dvc("dag", "--dot"), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(r.returncode)
    stale = set(out_of_date(cwd, targets))
    return [s for s in topological(r.stdout) if s in stale]


def run_serial(stages: Sequence[str], cwd: Path, record: list[StageRun]) -> None:
    """Run ``stages`` one at a time, measured; exit with the first failure's status."""
    for stage in stages:
        r = run_measured(stage, cwd)
        record.append(r)
        print(f"+ dvc repro -s {stage}: {'ok' if r.returncode == 0 else 'FAILED'} in "
              f"{r.wall_s:.1f}s, peak {r.max_rss_mib / 1024:.2f} GiB", flush=True)
        out = clean_output(r.output)
        if out:
            print("    " + out.replace("\n", "\n    "), flush=True)
        if r.returncode != 0:
            raise SystemExit(r.returncode)


def _runtime_threads(params_path: Path) -> int:
    from biasvar.core.config import load_runtime

    return load_runtime(params_path).threads


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m biasvar.tools.parallel",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help="dvc repro targets (default: the whole pipeline)")
    ap.add_argument("-j", "--jobs", type=int, default=None,
                    help="parallel jobs (default: one per GPU, else one per CPU core)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per job (default: cores // jobs, at least 1)")
    ap.add_argument("--gpus", default="auto",
                    help="'auto' (CUDA_VISIBLE_DEVICES or nvidia-smi), 'none', or ids like 0,1")
    ap.add_argument("--config", help="a configs/*.yaml of overrides to write into params.yaml")
    ap.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                    help="one override (YAML value), like dvc exp run -S; repeatable")
    ap.add_argument("--exp", metavar="NAME", help="afterwards, `dvc exp save -n NAME`")
    ap.add_argument("--provenance", metavar="DIR",
                    help="measure every stage and write params, lock, machine and timings to DIR")
    ap.add_argument("--dry-run", action="store_true",
                    help="apply nothing, run nothing: print the plan")
    args = ap.parse_args(argv)

    from biasvar.core.errors import BiasvarError
    from biasvar.tools.overrides import apply_file, check, read_config

    cwd = Path.cwd()
    params_path = cwd / "params.yaml"
    cores = os.cpu_count() or 1
    gpus = detect_gpus() if args.gpus == "auto" else (
        [] if args.gpus == "none" else [g for g in args.gpus.split(",") if g])
    jobs = args.jobs or (len(gpus) or cores)
    threads = args.threads or max(1, cores // jobs)

    try:
        import yaml

        cfg = read_config(args.config) if args.config else {}
        for item in args.set_param:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"error: -S {item!r}: expected KEY=VALUE")
            node = cfg
            *parents, last = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = yaml.safe_load(value)
        check(params_path, cfg)  # every section, overrides included, before any work
        runtime_threads = _runtime_threads(params_path)
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    slots = make_slots(jobs, threads, gpus)
    print(f"parallel: {jobs} job(s), {threads} CPU thread(s) each"
          + (f", GPUs {','.join(gpus)}" if gpus else ", no GPU"), flush=True)
    if runtime_threads:
        print(f"parallel: warning: params.yaml sets runtime.threads = {runtime_threads}; every job "
              f"uses that many threads (set it to 0 to let this runner split the cores)",
              flush=True)
    if args.dry_run:
        if cfg:
            from biasvar.tools.overrides import flatten

            for key, value in flatten(cfg):
                print(f"  would set {key} = {value!r}")
        for slot in slots:
            print(f"  job {slot.index}: " + " ".join(f"{k}={v}" for k, v in slot.env.items()))
        print("  then: dvc repro " + " ".join(UPSTREAM) + "; the pool: every out-of-date stage "
              f"of {', '.join(POOL_GROUPS)}; then: dvc repro " + " ".join(args.targets))
        return 0

    t_start = time.perf_counter()
    if cfg:
        apply_file(params_path, cfg)
        print(f"parallel: wrote {len(cfg)} overridden section(s) into params.yaml", flush=True)
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

        command = "python -m biasvar.tools.parallel " + " ".join(argv if argv is not None
                                                                  else sys.argv[1:])
        out = write_provenance(Path(args.provenance), cwd, command, t_end - t_start,
                               jobs, threads, gpus, record)
        print(f"parallel: provenance -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
