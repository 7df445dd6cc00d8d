"""Shared by the companion studies: what a study returns, writing it, and param checks.

Each study module (``tradeoff``, ``ridgeless``, ``spectral``, ``effective_rank``)
holds its own params model next to its logic, so a change to one study's code
or params reruns only that study's stage. ``biasvar.tools.validate`` registers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biasvar.core.io import atomic_path, write_json


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
