"""Params of the analysis stages (``decompose.*``, ``regress.*``).

They live outside ``biasvar.params`` on purpose: every training stage depends
on ``params.py``, so adding or changing an analysis section there would
retrain every member. Here it reruns only the stages that declare this file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from biasvar.params import _check_keys, _choice, _float, _int


@dataclass(frozen=True)
class DecomposeParams:
    """Per-config summaries (``decompose.*``): bootstrap over draws and calibration bins."""

    bootstrap: int  # replicates; 0 disables CIs
    ci: float  # confidence level of the percentile intervals
    ece_bins: int  # equal-width confidence bins
    seed: int

    KEYS = ("bootstrap", "ci", "ece_bins", "seed")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecomposeParams:
        _check_keys("decompose", d, cls.KEYS)
        return cls(_int("decompose.bootstrap", d["bootstrap"], min_value=0),
                   _float("decompose.ci", d["ci"], low=0.0, high=1.0, low_open=True,
                          high_open=True, what="a level in (0, 1)"),
                   _int("decompose.ece_bins", d["ece_bins"], min_value=1),
                   _int("decompose.seed", d["seed"], min_value=0))


@dataclass(frozen=True)
class RegressParams:
    """Alignment regression (``regress.*``): which MSE terms, bootstrap over examples."""

    estimator: str  # plugin | unbiased
    bootstrap: int
    ci: float
    seed: int

    KEYS = ("estimator", "bootstrap", "ci", "seed")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RegressParams:
        _check_keys("regress", d, cls.KEYS)
        return cls(_choice("regress.estimator", d["estimator"], ("plugin", "unbiased")),
                   _int("regress.bootstrap", d["bootstrap"], min_value=0),
                   _float("regress.ci", d["ci"], low=0.0, high=1.0, low_open=True,
                          high_open=True, what="a level in (0, 1)"),
                   _int("regress.seed", d["seed"], min_value=0))


