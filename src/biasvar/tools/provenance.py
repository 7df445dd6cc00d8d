"""What a committed report needs to say how it was made: ``write_provenance``.

``biasvar launch --provenance DIR`` calls it after a run (``biasvar.cli.launch``).
DIR receives:

- ``params.yaml``, ``dvc.lock``, ``headline.json`` and ``width_curves/`` of the run (copied:
  the lock pins every input, output and parameter by hash; the headline is
  the run's one DVC metric, ``metrics/headline.json``);
- ``run.json``: commit, command, wall time, jobs and threads, the machine
  (CPU model, cores, memory, OS, Python, torch, GPU) and one row per stage
  (wall seconds, peak memory in MiB, the pool task that ran it: 0 for
  the stages run by the launcher itself);
- ``RUN.md``: the same in words and a table, for readers of the report.

``check_destination`` refuses, before the run, a DIR that could not be written or
that lies in what the pipeline reads or DVC manages. This module has no command
line of its own: ``python -m biasvar.tools.provenance`` says so in one line.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def _git(cwd: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    # only trailing newlines: porcelain lines start with a status column that may be a space
    return r.stdout.rstrip("\n") if r.returncode == 0 else ""


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, torch and GPU of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)  # kB -> GiB
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib,
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "python": platform.python_version(), "torch": torch.__version__, "gpu": gpu}


# what write_provenance writes into the folder (a folder in the way of a file fails it)
FILES = ("params.yaml", "dvc.lock", "headline.json", "run.json", "RUN.md")
# Project folders the provenance may not go into: the pipeline's code and data, what DVC
# and git manage, and metrics/ (the headline and width_curves are copied from there, so
# a DIR there would copy a folder onto itself after deleting it).
PROTECTED = (".git", ".dvc", "data", "metrics", "src", "stages")


def check_destination(out: str | Path, cwd: Path, report: str | None = None) -> None:
    """Refuse, before any work, a provenance folder ``write_provenance`` could not fill.

    ``out`` must be creatable and writable (no file in its way, no read-only parent),
    and outside the project folder's ``PROTECTED`` folders and the report folder
    ``reports/<report>`` (DVC deletes it before each ``plot`` run); it may not be the
    project folder itself (``params.yaml`` would be copied onto itself). Raises
    ``ValueError`` with what is wrong, in words.
    """
    target = Path(out).resolve()
    root = cwd.resolve()
    if target == root or target in root.parents:
        raise ValueError(f"{out}: is the project folder or contains it; use a folder of its "
                         "own, like reports/provenance/NAME")
    owned = [(root / name, f"{name}/, which the pipeline reads or DVC and git manage")
             for name in PROTECTED]
    if report:
        owned.append((root / "reports" / report,
                      f"reports/{report}/, the report DVC deletes before each plot run"))
    for folder, what in owned:
        if target == folder or folder in target.parents:
            raise ValueError(f"{out}: is inside {what}; use a folder of its own, like "
                             "reports/provenance/NAME")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{out}: {existing} is not a folder, so the folder cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{out}: {existing} is not writable")
    if existing == target:
        for name in FILES:
            if (target / name).is_dir():
                raise ValueError(f"{out}: {target / name} is a folder, in the way of a file "
                                 "the provenance writes")
        if (target / "width_curves").exists() and not (target / "width_curves").is_dir():
            raise ValueError(f"{out}: {target / 'width_curves'} is a file, in the way of "
                             "the folder the provenance writes")


def write_provenance(out: Path, cwd: Path, command: str, wall_s: float, jobs: int,
                     threads: int, gpus: Sequence[str], stages: Sequence[Any]) -> Path:
    """Write ``params.yaml``, ``dvc.lock``, ``run.json`` and ``RUN.md`` into ``out``.

    ``stages``: ``biasvar.cli.launch.StageRun`` records (``stage, wall_s, max_rss_mib,
    job``); ``jobs``: tasks at a time (local) or in the array (SLURM).
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.lock"):
        shutil.copyfile(cwd / name, out / name)
    if (cwd / "metrics" / "headline.json").exists():
        shutil.copyfile(cwd / "metrics" / "headline.json", out / "headline.json")
    if (cwd / "metrics" / "width_curves").is_dir():  # the per-width curves behind the headline
        shutil.rmtree(out / "width_curves", ignore_errors=True)
        shutil.copytree(cwd / "metrics" / "width_curves", out / "width_curves")
    rows = [{"stage": r.stage, "wall_s": round(r.wall_s, 1),
             "max_rss_mib": round(r.max_rss_mib, 1), "job": r.job} for r in stages]
    info = {
        "commit": _git(cwd, "rev-parse", "HEAD"),
        # tracked files changed against the commit, other than what the run itself
        # writes (params.yaml gets the overrides; lock, metrics and reports the results)
        "dirty_files": [f[3:] for f in _git(cwd, "status", "--porcelain",
                                           "--untracked-files=no").splitlines()
                        if f[3:] not in ("params.yaml", "dvc.lock")
                        and not f[3:].startswith(("metrics/", "reports/"))],
        "command": command,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 1),
        "jobs": jobs, "threads_per_job": threads, "gpus": list(gpus),
        "machine": machine(),
        "stages": rows,
    }
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "RUN.md").write_text(run_markdown(info))
    return out


def run_markdown(info: dict[str, Any]) -> str:
    """``RUN.md``: how the run was made, and the per-stage cost table."""
    m = info["machine"]
    mins, secs = divmod(round(info["wall_s"]), 60)
    peak = max(info["stages"], key=lambda r: r["max_rss_mib"]) if info["stages"] else None
    lines = [
        "# How this report was produced", "",
        f"- Commit: `{info['commit'][:7]}`"
        + (f" with local changes to {', '.join(info['dirty_files'])}" if info["dirty_files"]
           else "") + ".",
        f"- Command (in a fresh clone with an empty DVC cache): `{info['command']}`.",
        f"- Wall time, end to end: {mins} min {secs} s ({info['jobs']} parallel task(s), "
        + (f"{info['threads_per_job']} CPU thread(s) each" if info["threads_per_job"]
           else "each with the CPUs of its SLURM allocation")
        + (f", GPUs {','.join(info['gpus'])}" if info["gpus"] else "") + ").",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}, torch {m['torch']}, "
        + (f"GPU {m['gpu']}." if m["gpu"] else "no GPU."),
        f"- Finished: {info['finished']}.",
        "- `params.yaml`, `dvc.lock`, `headline.json` and `width_curves/` in this folder are "
        "the run's; `run.json` has all of this in machine-readable form.",
    ]
    if peak is not None:
        lines.append(f"- Peak memory of any stage: {peak['max_rss_mib'] / 1024:.2f} GiB "
                     f"(`{peak['stage']}`), measured as the largest resident set in the "
                     "stage's `dvc repro -s` process tree (dvc itself takes ~0.1 GiB).")
    lines += ["", "| stage | wall (s) | peak memory (GiB) | task |", "|---|---:|---:|---:|"]
    lines += [f"| {r['stage']} | {r['wall_s']:.1f} | {r['max_rss_mib'] / 1024:.2f} | {r['job']} |"
              for r in info["stages"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """No command line: one line pointing to ``biasvar launch --provenance DIR``, exit code 2."""
    print("error: biasvar.tools.provenance has no command line; a run records its provenance "
          "with `biasvar launch --provenance DIR`", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
