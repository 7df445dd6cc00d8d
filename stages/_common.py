"""Shared by the stage scripts: import the project's own ``src/`` and report errors as one line.

Stages put this checkout's ``src`` first on ``sys.path`` so that a copy of the
project (an experiment's temp dir, a test repo) runs its own library code,
whatever ``biasvar`` may be installed in the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def _terminate(signum, frame) -> None:
    # SIGTERM (a killed `dvc repro`, a cluster scheduler) unwinds like Ctrl-C, so the
    # atomic writers' cleanup runs and no temporary output is left behind.
    raise KeyboardInterrupt


def run(main) -> None:
    """Call ``main()``; a ``BiasvarError`` becomes ``error: <one line>`` and exit code 2.

    An operating-system error on a file (a read-only output folder, a full disk)
    is reported the same way, naming the file, instead of as a traceback.
    """
    import signal

    from biasvar.core.errors import BiasvarError
    from biasvar.core.jobs import register

    register()  # before torch is imported: see biasvar.core.jobs
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:
        where = e.filename if e.filename is not None else "a file"
        print(f"error: {where}: {e.strerror or e}", file=sys.stderr)
        raise SystemExit(2) from None
