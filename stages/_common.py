"""Shared by the stage scripts: import the project's own ``src/`` and report errors as one line.

Stages put this checkout's ``src`` first on ``sys.path`` so that a copy of the
project (an experiment's temp dir, a test repo) runs its own library code,
whatever ``biasvar`` may be installed in the environment.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP. A ``KeyboardInterrupt``, so that SIGTERM (a killed
    ``dvc repro``, a cluster scheduler) and SIGHUP (a closed terminal) unwind like
    Ctrl-C: the atomic writers' ``finally`` blocks run and no temporary output is left
    behind."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum, frame) -> None:
    # Later signals are ignored: a second Ctrl-C must not cut short the cleanup the
    # first one started (kill -9 still ends a cleanup that hangs).
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def run(main) -> None:
    """Call ``main()``; a ``BiasvarError`` becomes ``error: <one line>`` and exit code 2.

    An operating-system error on a file (a read-only output folder, a full disk)
    is reported the same way, naming the file, instead of as a traceback. SIGINT,
    SIGTERM and SIGHUP end in ``error: interrupted (SIGTERM); ...`` and exit code 128 +
    the signal's number (130, 143, 129), after the cleanup has run.
    """
    from biasvar.core.errors import BiasvarError
    # a signal ignored by whoever started the stage (`cmd &` in a script) stays ignored
    old = {s: signal.signal(s, _interrupt)
           for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
           if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        main()
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:
        where = e.filename if e.filename is not None else "a file"
        print(f"error: {where}: {e.strerror or e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as e:  # Interrupted, or a plain KeyboardInterrupt (SIGINT)
        signum = getattr(e, "signum", signal.SIGINT)
        try:
            print(f"error: interrupted ({signal.Signals(signum).name}); the stage stopped "
                  "and left no partly written output", file=sys.stderr)
        except OSError:  # after SIGHUP the terminal may be gone
            pass
        raise SystemExit(128 + signum) from None
    finally:
        # put the previous handlers back (a test calls run() in its own process)
        for s, handler in old.items():
            signal.signal(s, handler)
