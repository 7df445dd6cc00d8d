"""The factor grid of the simplicity-bias studies (``pc_bias``, ``spectral_cls``,
``erank_depth``): each config is the section's ``base`` settings updated by a few
overrides, so a config names the factors it changes (activation, depth, width,
optimizer, init scale, data) and the report can say, per factor level, whether a
bias holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from biasvar.core.schema import check_config_name  # a config names a stage and files


def expand_configs(section: str, base: Any, configs: Any, settings: type) -> list[tuple[str, Any]]:
    """``[(name, settings)]``: ``<section>.base`` updated by each ``<section>.configs.<name>``.

    ``settings`` is the ``Section`` model of one config; a bad value raises one
    ``ParamError`` naming ``<section>.configs.<name>.<key>`` (or ``.base.<key>``).
    """
    from biasvar.core.errors import ParamError

    settings.from_dict(base, where=f"{section}.base")
    out = []
    for name, over in configs.items():
        where = f"{section}.configs.{name}"
        check_config_name(section, name)
        if not isinstance(over, Mapping):
            raise ParamError(where, over, f"a mapping of {section}.base keys to override")
        out.append((str(name), settings.from_dict({**base, **over}, where=where)))
    return out


def read_config(declared: tuple[str, ...], name: str,
                path: str = "params.yaml") -> dict[str, Any]:
    """One config stage's section, as its ``Params.from_dict`` expects it.

    ``declared`` is the stage's ``PARAMS`` (its dvc.yaml ``params``:
    ``<section>.<key>`` entries and ``<section>.configs.${key}``); only those keys
    are read, and ``configs`` holds the one config ``name``.
    """
    from biasvar.core.config import load_declared

    keys = [k.replace("${key}", name) for k in declared]
    prm = load_declared(keys, path)
    raw: dict[str, Any] = {}
    for k in keys:
        field = k.split(".")[1]
        if field == "configs":
            raw["configs"] = {name: prm.get(k)}
        else:
            raw[field] = prm.get(k)
    return raw


def overrides(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The config's overrides of the base settings: the factor levels the report's
    simplicity-bias summary names (kept in each study's metrics)."""
    return dict(raw["configs"][name] or {})
