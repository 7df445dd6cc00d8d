"""Named configurations (``configs/*.yaml``): overrides of ``params.yaml``, checked before use.

A configuration file mirrors the sections of ``params.yaml`` but holds only the
keys it changes, e.g. ``configs/paper.yaml``. Overrides merge key by key (a
nested mapping updates the mapping it overrides; a list or scalar replaces the
value), exactly like ``dvc exp run -S section.key=value``, and may not
introduce a key that ``params.yaml`` lacks (a typo must not silently add an
unread key).

Two ways to use one:

- ``apply_file`` writes the overrides into ``params.yaml`` in place, keeping
  its comments and its flow-style lists (``dvc exp run -S`` rewrites every list
  in block style); ``python -m biasvar.tools.parallel --config FILE`` uses it;
- ``python -m biasvar.tools.overrides FILE`` validates the merged parameters and
  prints the equivalent ``dvc exp run -S ...`` command line.

No stage depends on this module: editing it reruns nothing.
"""

from __future__ import annotations

import copy
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biasvar.core.errors import ParamError

# strings written bare in a Hydra override; anything else is quoted
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_RESERVED = {"true", "false", "null", "none", "nan", "inf"}


def read_config(path: str | Path) -> dict[str, Any]:
    """The overrides in ``path``: a mapping of ``params.yaml`` sections."""
    from biasvar.core.config import read_yaml

    cfg = read_yaml(path)
    if not isinstance(cfg, Mapping):
        raise ParamError(str(path), cfg, "a mapping of params.yaml sections")
    return dict(cfg)


# Mappings replaced whole rather than merged key by key: a study's ``configs`` names its
# DVC stages (``foreach``), so a config file sets the whole list of configs.
WHOLE = ("configs",)


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` for every leaf; mappings recurse (except a ``configs``
    mapping, which is one leaf), lists are leaves."""
    out: list[tuple[str, Any]] = []
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and key not in WHOLE:
            out.extend(flatten(value, dotted + "."))
        else:
            out.append((dotted, value))
    return out


def merge(params: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with the overrides applied; an unknown key is a ``ParamError``."""
    merged = copy.deepcopy(dict(params))
    for dotted, value in flatten(cfg):
        node = merged
        *parents, last = dotted.split(".")
        for i, part in enumerate(parents):
            if not isinstance(node.get(part), Mapping):
                raise ParamError(".".join(parents[: i + 1]), node.get(part),
                                 "a section of params.yaml to override")
            node = node[part]
        if last not in node:
            raise ParamError(dotted, value, "a key that params.yaml already has "
                             "(overrides change values, they add no keys)")
        node[last] = copy.deepcopy(value)
    return merged


def check(params_path: str | Path, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``cfg`` into the params file and validate every section; returns the merged dict."""
    from biasvar.core.config import read_yaml
    from biasvar.tools.validate import validate_all

    merged = merge(read_yaml(params_path), cfg)
    validate_all(merged)
    return merged


def hydra_value(value: Any) -> str:
    """``value`` in the Hydra override grammar that ``dvc exp run -S`` parses."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if _BARE.match(value) and value.lower() not in _RESERVED:
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as a Hydra override")


def set_params(cfg: Mapping[str, Any]) -> list[str]:
    """The ``key=value`` arguments of ``dvc exp run -S`` for these overrides.

    Hydra merges a mapping into the existing one and refuses new keys, so a ``configs``
    mapping is deleted (``~key``) and added back whole (``+key=value``)."""
    out = []
    for key, value in flatten(cfg):
        if key.rsplit(".", 1)[-1] in WHOLE:
            out += [f"~{key}", f"+{key}={hydra_value(value)}"]
        else:
            out.append(f"{key}={hydra_value(value)}")
    return out


def apply_file(params_path: str | Path, cfg: Mapping[str, Any]) -> None:
    """Validate, then write the overrides into ``params_path`` keeping comments and layout.

    Lists are written in flow style (``[4, 8, 16]``) like the rest of
    ``params.yaml``. Nothing is written if validation fails.
    """
    from ruamel.yaml import YAML  # a dependency of dvc; round-trips comments
    from ruamel.yaml.comments import CommentedSeq

    check(params_path, cfg)
    yaml = YAML()  # round-trip mode
    yaml.width = 100
    path = Path(params_path)
    doc = yaml.load(path.read_text())
    for dotted, value in flatten(cfg):
        node = doc
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        if isinstance(value, list):
            seq = CommentedSeq(value)
            seq.fa.set_flow_style()
            value = seq
        node[last] = value
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        yaml.dump(doc, f)
    tmp.replace(path)  # atomic: an interrupted write leaves the old params intact


def main(argv: list[str] | None = None) -> int:
    """``python -m biasvar.tools.overrides FILE [params.yaml]``: validate; print the
    equivalent ``dvc exp run`` line."""
    from biasvar.core.errors import BiasvarError

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(main.__doc__)
        return 0 if args else 2
    params_path = args[1] if len(args) > 1 else "params.yaml"
    try:
        cfg = read_config(args[0])
        check(params_path, cfg)
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    name = Path(args[0]).stem
    words = ["dvc", "exp", "run", "-n", name]
    for item in set_params(cfg):
        words += ["-S", item]
    print(" ".join(shlex.quote(w) for w in words))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
