"""Share the cores between stages that run side by side, without a scheduler.

PyTorch's OpenMP threads spin while they wait for work. Two stages started by
hand at once (``dvc --wait-for-lock repro -s train@...`` twice), each with one
thread per core, spin against each other: measured 10x slower each on 2 cores
(a width-128 block: 5.5 s alone, 58 s each as a pair). The parallel runner
avoids it by setting ``OMP_NUM_THREADS``; this module makes a hand-started pair
safe too.

Every stage registers its pid in a per-user folder (``register``). With
``runtime.threads: 0`` a stage uses ``cores // live stages`` threads
(``fair_threads``), re-checked at every log step of training, so the first
stage drops to one thread when a second one starts; a stage that starts
while another runs also sets ``OMP_WAIT_POLICY=PASSIVE`` (before torch is
imported) so its idle threads sleep instead of spinning. Results do not
depend on the thread count (the block invariance tests run with other counts).
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path


def _registry() -> Path:
    return Path(tempfile.gettempdir()) / f"biasvar-jobs-{os.getuid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_jobs() -> int:
    """Registered stages that are still running (this one included if registered)."""
    d = _registry()
    if not d.is_dir():
        return 0
    n = 0
    for f in d.iterdir():
        if f.name.isdigit() and _alive(int(f.name)):
            n += 1
        elif f.name.isdigit():
            f.unlink(missing_ok=True)  # a stage that was killed
    return n


def register() -> int:
    """Register this process as a running stage; returns how many others run now.

    Call before importing torch: when others run, OpenMP threads are told to
    sleep rather than spin while waiting (``OMP_WAIT_POLICY=PASSIVE``), unless
    the user set a policy.
    """
    others = live_jobs()
    d = _registry()
    d.mkdir(parents=True, exist_ok=True)
    me = d / str(os.getpid())
    me.touch()
    atexit.register(me.unlink, missing_ok=True)
    if others:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return others


def fair_threads(requested: int) -> int:
    """``requested`` if set (> 0); else this machine's cores divided by the live stages.

    ``OMP_NUM_THREADS`` (set by the parallel runner) counts as a request.
    """
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, live_jobs()))
