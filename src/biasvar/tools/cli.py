"""Command-line plumbing the tools share (``biasvar.tools.*``).

A bad argument is one line ``error: <argument>: <what is allowed>`` and exit code 2
(``CliParser``, ``int_in``); SIGINT / SIGTERM / SIGHUP end in one line ``error:
interrupted (SIGINT); ...`` and exit code 128 + signal (``run_cli``), with the
``finally`` blocks of the atomic writers still run. No stage depends on this module.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from biasvar.core.errors import BiasvarError


class ArgumentValueError(BiasvarError):
    """A command-line argument that is not allowed; the message names it and what is."""


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``error: <what>``, exit code 2.

    argparse's own format is two lines (usage, then ``prog: error: ...``); the tools
    report every other refusal as one ``error:`` line, so argparse's do the same.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit with code 2."""
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type=``: an integer from ``lo`` to ``hi``, else one line saying so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed: an integer from {lo} to {hi}")
        return value
    return parse


# a closed terminal (SIGHUP) stops a tool like Ctrl-C: the runner's stages run in sessions
# of their own, which the terminal's SIGHUP would not reach
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised in the main thread.

    A ``KeyboardInterrupt`` so that SIGTERM unwinds like Ctrl-C: every ``finally``
    block (the atomic writers' cleanup, the runner's stop of its stages) runs.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: Any) -> None:
    # Later signals are ignored: a second Ctrl-C must not cut short the cleanup that
    # the first one started (kill -9 still ends a cleanup that hangs).
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def _ignore(signum: int, frame: Any) -> None:
    pass


def _catch_signals() -> dict[int, Any]:
    """Make ``SIGNALS`` raise ``Interrupted``; returns the previous handlers.

    A signal ignored by whoever started the tool (``cmd &`` in a script) stays ignored,
    by a handler that does nothing rather than by ``SIG_IGN``: the processes the tool
    starts then get the default action back (exec resets handlers, not ``SIG_IGN``), so
    the parallel runner can still stop its stages with SIGINT.
    """
    old = {}
    for s in SIGNALS:
        old[s] = signal.getsignal(s)
        signal.signal(s, _ignore if old[s] is signal.SIG_IGN else _interrupt)
    return old


def interrupted_line(e: BaseException, done: str) -> tuple[str, int]:
    """The one line and exit code (128 + signal) of an interrupt; ``done`` says what is left."""
    signum = getattr(e, "signum", signal.SIGINT)  # a plain KeyboardInterrupt is SIGINT
    return f"error: interrupted ({signal.Signals(signum).name}); {done}", 128 + signum


def run_cli(main: Callable[[], int], interrupted: str = "nothing was written") -> int:
    """Run a tool's ``main()`` and return its exit code, every failure in one line.

    SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` and end in ``error: interrupted (SIGTERM);
    <interrupted>`` with exit code 128 + signal; a ``BiasvarError`` or an ``OSError``
    (naming its file) ends in one ``error:`` line and exit code 2. The previous signal
    handlers are put back afterwards.
    """
    old = _catch_signals()
    try:
        return main()
    except KeyboardInterrupt as e:
        line, code = interrupted_line(e, interrupted)
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(line, file=sys.stderr)
        return code
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = e.filename if e.filename is not None else "a file"
        print(f"error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------- reading
