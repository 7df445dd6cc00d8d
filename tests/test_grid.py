"""A config stage of the simplicity-bias grid reads only what it declares."""

from __future__ import annotations

import pytest
import yaml

from biasvar.core.errors import ParamError
from biasvar.studies.grid import overrides, read_config

DECLARED = ("pc_bias.num_samples", "pc_bias.seed", "pc_bias.base", "pc_bias.configs.${key}")


def _params(tmp_path, section: dict) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"pc_bias": section, "tradeoff": {"x": 1}}))
    return str(path)


def test_read_config_keeps_only_the_named_config(tmp_path):
    path = _params(tmp_path, {"num_samples": 40, "seed": 3, "base": {"width": 8},
                              "configs": {"a": {"width": 16}, "b": None}, "unused": 7})
    raw = read_config(DECLARED, "a", path)
    assert raw == {"num_samples": 40, "seed": 3, "base": {"width": 8},
                   "configs": {"a": {"width": 16}}}
    assert overrides(raw, "a") == {"width": 16}
    # a config without overrides is the base itself
    assert overrides(read_config(DECLARED, "b", path), "b") == {}


def test_read_config_names_a_missing_declared_key(tmp_path):
    path = _params(tmp_path, {"num_samples": 40, "base": {}, "configs": {"a": {}}})
    with pytest.raises(ParamError, match="pc_bias.seed"):
        read_config(DECLARED, "a", path)
