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
- ``python -m biasvar.tools.overrides FILE [PARAMS]`` validates the merged parameters and
  prints the equivalent ``dvc exp run -S ...`` command line.

No stage depends on this module: editing it reruns nothing.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biasvar.core.errors import BiasvarError, InputError, ParamError
from biasvar.tools.cli import ArgumentValueError, CliParser, run_cli

# strings written bare in a Hydra override; anything else is quoted
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_RESERVED = {"true", "false", "null", "none", "nan", "inf"}

CONFIG_FILE = "a YAML file of params.yaml overrides (like configs/paper.yaml)"
PARAMS_FILE = "the project's params.yaml"


# ---------------------------------------------------------------- command-line plumbing
def read_yaml_file(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping in the YAML file ``path``; anything else is an ``InputError`` naming
    ``path`` and ``what`` it should be (missing, a directory, not UTF-8, not YAML)."""
    from biasvar.core.config import read_yaml

    path = Path(path)
    # checked here too, so that the message says what the file is for
    if not path.exists():
        raise InputError(f"{path}: not found; expected {what}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected {what}")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; expected {what}")
    try:
        return read_yaml(path)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (a binary file?); expected {what}") from e
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e}); expected {what}") from e


def read_config(path: str | Path) -> dict[str, Any]:
    """The overrides in ``path``: a mapping of ``params.yaml`` sections."""
    return dict(read_yaml_file(path, CONFIG_FILE))


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
    from biasvar.tools.validate import validate_all

    merged = merge(read_yaml_file(params_path, PARAMS_FILE), cfg)
    validate_all(merged)
    return merged


# one part of a dotted key: a params.yaml key (``label_noise``) or a study config name
# (``relu-equal``)
_KEY_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


def _merge_into(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, Mapping) and isinstance(dst.get(key), Mapping) \
                and key not in WHOLE:
            dst[key] = dict(dst[key])
            _merge_into(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def add_set_params(cfg: Mapping[str, Any], items: list[str],
                   option: str = "-S") -> dict[str, Any]:
    """``cfg`` (the ``--config`` overrides) with the ``KEY=VALUE`` items of ``-S`` added.

    VALUE is YAML. A key set twice, or set to a value and then used as a section
    (``-S train.lr=0.1 -S train.lr.x=1``), is refused rather than one silently winning;
    a ``-S`` may change a value the config file sets. Raises ``ArgumentValueError``
    naming the item.
    """
    import yaml

    out = copy.deepcopy(dict(cfg))
    seen: dict[str, str] = {}  # dotted key -> the -S item that set it
    for item in items:
        key, sep, text = item.partition("=")
        parts = key.split(".")
        if not sep or not all(_KEY_PART.match(part) for part in parts):
            raise ArgumentValueError(
                f"{option} {item}: expected KEY=VALUE with KEY a dotted params.yaml key "
                "(like train.lr=0.01)")
        for other, given in seen.items():
            if other == key:
                raise ArgumentValueError(f"{option} {item}: {key} is set twice "
                                         f"(first by {option} {given}); set it once")
            if key.startswith(other + "."):
                raise ArgumentValueError(f"{option} {item}: {other} is set to a value by "
                                         f"{option} {given}, so it cannot be a section")
            if other.startswith(key + "."):
                raise ArgumentValueError(f"{option} {item}: would replace {other}, set by "
                                         f"{option} {given}; set each key once")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            problem = " ".join(str(getattr(e, "problem", None) or e).split())
            raise ArgumentValueError(
                f"{option} {item}: the value {text!r} is not valid YAML ({problem}); "
                "write a YAML value such as 0.1, [4, 8] or adam") from None
        node = out
        for i, part in enumerate(parts[:-1]):
            here = ".".join(parts[: i + 1])
            if part in node and not isinstance(node[part], Mapping):
                raise ArgumentValueError(f"{option} {item}: {here} is set to {node[part]!r} "
                                         "by --config, so it cannot be a section")
            node[part] = dict(node.get(part, {}))
            node = node[part]
        _merge_into(node, {parts[-1]: value})
        seen[key] = item
    return out


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
        try:
            text = hydra_value(value)
        except TypeError:  # a YAML date, say: validation lets it through only in free text
            raise ParamError(key, value, "a value `dvc exp run -S` can set (a number, "
                             "string, boolean, null, list or mapping)") from None
        if key.rsplit(".", 1)[-1] in WHOLE:
            out += [f"~{key}", f"+{key}={text}"]
        else:
            out.append(f"{key}={text}")
    return out


def check_writable(params_path: str | Path) -> None:
    """Refuse, before any work, a params file the overrides could not be written into:
    a read-only file (its protection would be bypassed by the rename), or a folder in
    which the new file cannot be created."""
    path = Path(params_path)
    if not os.access(path, os.W_OK):
        raise InputError(f"{path}: read-only; the overrides (--config, -S) are written into "
                         "it: make it writable, or run without overrides")
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{folder}: read-only folder; {path.name} is rewritten as a new "
                         "file beside it: make the folder writable, or run without overrides")


def apply_file(params_path: str | Path, cfg: Mapping[str, Any]) -> None:
    """Validate, then write the overrides into ``params_path`` keeping comments and layout.

    Lists are written in flow style (``[4, 8, 16]``) like the rest of
    ``params.yaml``. Nothing is written if validation fails; a failed write (full
    disk) leaves the file as it was and no temporary, and is one line naming it.
    """
    from ruamel.yaml import YAML  # a dependency of dvc; round-trips comments
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.error import YAMLError

    from biasvar.core.io import atomic_path

    check(params_path, cfg)
    check_writable(params_path)
    yaml = YAML()  # round-trip mode
    yaml.width = 100
    path = Path(params_path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"))
    except YAMLError as e:  # what the strict loader accepts, ruamel should too
        raise InputError(f"{path}: cannot be rewritten ({e.__class__.__name__}); "
                         "it is unchanged") from None
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
    mode = path.stat().st_mode
    try:
        # atomic: an interrupted or failed write leaves the old params and no temporary
        with atomic_path(path) as tmp:
            with tmp.open("w", encoding="utf-8") as f:
                yaml.dump(doc, f)
            os.chmod(tmp, mode & 0o7777)  # the new file keeps the old one's permissions
    except (OSError, BiasvarError) as e:  # the writer may already have named the file
        cause = e if isinstance(e, OSError) else e.__cause__
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(e)
        raise BiasvarError(f"{path}: cannot write the overrides ({why}); "
                           "it is unchanged") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m biasvar.tools.overrides FILE [PARAMS]``: validate; print the
    equivalent ``dvc exp run`` line."""
    ap = CliParser(prog="python -m biasvar.tools.overrides",
                   description="Validate a configuration (overrides of params.yaml) and print "
                   "the equivalent `dvc exp run -n NAME -S ...` line.")
    ap.add_argument("file", metavar="FILE", help=CONFIG_FILE)
    ap.add_argument("params", metavar="PARAMS", nargs="?", default="params.yaml",
                    help="the params file it overrides (default: params.yaml)")
    args = ap.parse_args(argv)
    try:
        try:
            cfg = read_config(args.file)
        except InputError as e:
            raise ArgumentValueError(f"FILE {e}") from None
        try:
            read_yaml_file(args.params, PARAMS_FILE)
        except InputError as e:
            raise ArgumentValueError(f"PARAMS {e}") from None
        check(args.params, cfg)
        words = ["dvc", "exp", "run", "-n", Path(args.file).stem]
        for item in set_params(cfg):
            words += ["-S", item]
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(" ".join(shlex.quote(w) for w in words))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
