"""What checkpoint logits and shifted test sets cost the default run: ``dvc repro`` from an
empty cache at ``BASELINE`` (the last commit without ``train.checkpoints`` and the
``dynamics`` and ``shift`` stages) and at HEAD, on the default configuration.

Each run gets its own fresh ``git clone`` (no ``.dvc/cache``, no ``data/``: everything
is trained), runs with this interpreter's environment and its clone's own ``src/``, and
is measured end to end: wall clock, the peak resident set of any process of the run
(``os.wait4``'s ``ru_maxrss``: the largest process it waited for, a stage's Python) and
the bytes under ``data/`` and ``.dvc/cache`` afterwards. The two runs go one after the
other, never side by side. The issue's budget: HEAD ÷ baseline at most 1.5 for time and
memory. Not a test: a run takes about eleven minutes on 2 cores.

Usage: python bench/bench_cost.py [--json bench/results/cost.json]
       python bench/bench_cost.py --render bench/results/cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "97e4ce2"  # the last commit before train.checkpoints, dynamics and shift


def _clone(dest: Path, commit: str = "HEAD") -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    subprocess.run(["git", "checkout", "-q", "--detach", commit], cwd=dest, check=True)
    return dest


def _run(proj: Path, log: Path) -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(proj / "src")}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=proj, stdout=f,
                             stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: dvc repro in {proj} failed; see {log}")
    size = sum(f.stat().st_size for d in (proj / "data", proj / ".dvc" / "cache")
               for f in d.rglob("*") if f.is_file() and not f.is_symlink())
    stages = sum(1 for line in log.read_text().splitlines() if line.startswith("Running stage"))
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "disk_mib": round(size / 2**20, 1), "stages": stages}


def render(rec: dict) -> str:
    """The Markdown of a record (docs/dynamics-shift.md includes it)."""
    b, h = rec["baseline"], rec["head"]
    return (
        f"The default configuration from an empty cache, `dvc repro` in fresh clones, one "
        f"after the other, on {rec['cores']} CPU cores ({rec['machine']}): without "
        f"checkpoints and the `dynamics` and `shift` stages (`{rec['baseline_commit'][:8]}`) "
        f"**{b['wall_s'] / 60:.1f} min**, peak resident set {b['peak_rss_mib'] / 1024:.2f} GiB, "
        f"{b['disk_mib'] / 1024:.2f} GiB on disk ({b['stages']} stages run); with them "
        f"(`{rec['commit'][:8]}`) **{h['wall_s'] / 60:.1f} min**, "
        f"{h['peak_rss_mib'] / 1024:.2f} GiB, {h['disk_mib'] / 1024:.2f} GiB ({h['stages']} "
        f"stages). Ratios: time **{h['wall_s'] / b['wall_s']:.2f}**, memory "
        f"**{h['peak_rss_mib'] / b['peak_rss_mib']:.2f}**, disk "
        f"{h['disk_mib'] / b['disk_mib']:.2f}.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--render", type=Path, help="rewrite the Markdown of this JSON and stop")
    args = ap.parse_args()
    if args.render:
        rec = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render(rec))
        return
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        tmp = Path(tmp)
        base = _run(_clone(tmp / "baseline", BASELINE), tmp / "baseline.log")
        head = _run(_clone(tmp / "head"), tmp / "head.log")

    def rev(c: str) -> str:
        return subprocess.run(["git", "rev-parse", c], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    rec = {"baseline": base, "head": head, "cores": os.cpu_count(),
           "machine": platform.processor() or platform.machine(),
           "python": platform.python_version(), "baseline_commit": rev(BASELINE),
           "commit": rev("HEAD")}
    print(json.dumps(rec, indent=2))
    print(render(rec), end="")
    if args.json:
        args.json.write_text(json.dumps(rec, indent=2) + "\n")
        args.json.with_suffix(".md").write_text(render(rec))


if __name__ == "__main__":
    main()
