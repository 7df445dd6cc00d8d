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


def run(main) -> None:
    """Call ``main()``; a ``BiasvarError`` becomes ``error: <one line>`` and exit code 2."""
    from biasvar.core.errors import BiasvarError

    try:
        main()
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
