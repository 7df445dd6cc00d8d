"""Benchmark of ``biasvar launch --executor local -j N`` against the pool it replaced,
``python -m biasvar.tools.parallel -j N`` (``make parallel JOBS=N``, removed after
commit ``BASELINE``, which the baseline runs from), on the default configuration from an
empty cache.

Each run gets its own fresh ``git clone`` of the committed project (no ``.dvc/cache``,
no ``data/``: everything is trained; the baseline's clone is checked out at
``BASELINE``), runs with this interpreter's environment and its clone's own ``src/``,
and is timed end to end (wall clock, the whole ``dvc repro`` included). The two are run
one after the other, never side by side; ``launch`` runs without a remote (its tasks
share the clone's cache). Both must end with byte-identical collected logits (checked).
Not a test: a full run takes about fifteen minutes on 2 cores.

Usage: python bench/bench_launch.py [-j 2] [--json bench/results/launch.json]
       python bench/bench_launch.py --render bench/results/launch.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "833fdb1a9dc8491d9cacc3e6da38f0833d69ddaf"  # the last commit with biasvar.tools.parallel


def _clone(dest: Path, commit: str = "HEAD") -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "checkout", "-q", "--detach", commit], cwd=dest, check=True)
    return dest


def _timed(cmd: list[str], cwd: Path, log: Path) -> float:
    # the clone's own library first (the environment's biasvar may be another checkout)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(cwd / "src")}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        r = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed ({r.returncode}); see {log}")
    return wall


def _digest(proj: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((proj / "data" / "sources" / "train" / "logits").glob("*.parquet")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def render(rec: dict) -> str:
    """The Markdown of a record (docs/scaling.md includes it)."""
    p, launch = rec["parallel_s"], rec["launch_s"]
    return (f"The default configuration from an empty cache, in fresh clones, on "
            f"{rec['cores']} CPU cores ({rec['machine']}), `-j {rec['jobs']}`: "
            f"`make parallel` (the thread pool of `biasvar.tools.parallel`, at "
            f"`{rec.get('baseline', '?')[:8]}`) "
            f"**{p / 60:.1f} min**, `biasvar launch --executor local` **{launch / 60:.1f} min** "
            f"(launch ÷ parallel = **{launch / p:.2f}**), collected logits byte-identical "
            f"({'yes' if rec['identical'] else 'NO'}).\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--render", type=Path, help="rewrite the Markdown of this JSON and stop")
    args = ap.parse_args()
    if args.render:
        rec = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render(rec))
        return
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        tmp = Path(tmp)
        a, b = _clone(tmp / "parallel", BASELINE), _clone(tmp / "launch")
        t_par = _timed([sys.executable, "-m", "biasvar.tools.parallel", "-j", str(args.jobs)],
                       a, tmp / "parallel.log")
        t_launch = _timed([sys.executable, "-m", "biasvar.cli.main", "launch", "-j",
                           str(args.jobs)], b,
                          tmp / "launch.log")
        rec = {"jobs": args.jobs, "parallel_s": round(t_par, 1), "launch_s": round(t_launch, 1),
               "identical": _digest(a) == _digest(b), "cores": os.cpu_count(),
               "machine": platform.processor() or platform.machine(),
               "python": platform.python_version(),
               "baseline": subprocess.run(["git", "rev-parse", BASELINE], cwd=ROOT,
                                          capture_output=True, text=True).stdout.strip(),
               "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT,
                                        capture_output=True, text=True).stdout.strip()}
    print(json.dumps(rec, indent=2))
    print(render(rec), end="")
    if args.json:
        args.json.write_text(json.dumps(rec, indent=2) + "\n")
        args.json.with_suffix(".md").write_text(render(rec))


if __name__ == "__main__":
    main()
