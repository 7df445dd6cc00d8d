"""Validate a whole params file: every section of every stage, before any work.

``python -m biasvar.validate [params.yaml]`` exits 0, or prints one line
(``error: params.yaml: <key> = <value> is invalid: <what is allowed>``) and
exits 2. ``make pipeline`` runs it before ``dvc repro``; each stage also
validates the keys it reads when it starts. No stage depends on this module,
so registering a new section here reruns nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from biasvar import params as core
from biasvar.errors import ParamError
from biasvar.params_analysis import DecomposeParams, RegressParams
from biasvar.probes import ProbeParams
from biasvar.ridgeless import RidgelessParams
from biasvar.spectral import SpectralParams
from biasvar.toy import TradeoffParams

# section name -> dataclass with ``from_dict``; the core sections come first
SECTIONS: dict[str, Any] = {
    **core.SECTIONS,
    "decompose": DecomposeParams,
    "regress": RegressParams,
    # companion studies: each dataclass lives in its study module
    "tradeoff": TradeoffParams,
    "ridgeless": RidgelessParams,
    "spectral": SpectralParams,
    "probe": ProbeParams,
}


def validate_all(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every registered section plus the core cross-section rules; returns the dataclasses."""
    out = core.validate_all(raw)
    for name, cls in SECTIONS.items():
        if name in out:
            continue
        if name not in raw:
            raise ParamError(name, None, "missing section; it must be set")
        out[name] = cls.from_dict(raw[name])
    return out


def main(argv: list[str] | None = None) -> int:
    from biasvar.errors import BiasvarError

    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "params.yaml"
    try:
        validate_all(core.read_yaml(path))
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
