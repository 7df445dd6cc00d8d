"""Shared by the companion studies: what a study returns, writing it, and param checks.

Each study module (``toy``, ``ridgeless``, ``spectral``, ``probes``) holds its
own params dataclass next to its logic, so a change to one study's code or
params reruns only that study's stage. ``biasvar.validate`` registers them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biasvar.errors import ParamError
from biasvar.io import atomic_path, write_json
from biasvar.params import _float, _int, _list


@dataclass(frozen=True)
class StudyResult:
    """A study's tidy table (a ``pandas.DataFrame``, one observation per row) and its metrics."""

    table: Any
    metrics: dict[str, Any]


def write_csv(table: Any, path: str | Path) -> None:
    """Write a DataFrame as CSV atomically (no index; floats with 8 significant digits)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.8g")


def write_result(result: StudyResult, table_path: str | Path, metrics_path: str | Path) -> None:
    """Write the table (CSV) and the metrics (JSON), each atomically."""
    write_csv(result.table, table_path)
    write_json(metrics_path, result.metrics)


# ---------------------------------------------------------------- param checks
def check_positive(key: str, value: Any) -> float:
    """A finite number > 0."""
    return _float(key, value, low=0.0, high=math.inf, low_open=True, high_open=True,
                  what="a positive number")


def check_non_negative(key: str, value: Any) -> float:
    """A finite number >= 0."""
    return _float(key, value, low=0.0, high=math.inf, low_open=False, high_open=True,
                  what="a number >= 0")


def check_int_list(key: str, value: Any, min_value: int) -> tuple[int, ...]:
    """A non-empty list of distinct integers >= ``min_value``."""
    out = tuple(_int(f"{key}[{i}]", v, min_value=min_value)
                for i, v in enumerate(_list(key, value)))
    if len(set(out)) != len(out):
        raise ParamError(key, value, "distinct values")
    return out
