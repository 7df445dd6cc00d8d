"""The run's headline numbers: a dozen values that `dvc exp show` can print in one screen.

Every per-config number stays in the tables, ``metrics/*.json`` and the report;
the headline picks, per label-noise level, what a reader compares between
two experiments:

- ``slope`` / ``r2``: the alignment fit (``regress``; plug-in or unbiased as
  ``regress.estimator`` says) at the widest width;
- ``err``: the lowest mean-member test error over widths;
- ``var_w``: the width where the plug-in MSE variance peaks;
- ``dd_w`` / ``dd_rise`` / ``dd_fall``: the highest *interior* local maximum
  of the mean-member test error against width (the double-descent peak), how
  far it rises above the lowest error at smaller widths, and how far the
  error at the widest width lies below it; 0 / 0 / 0 when the curve has no
  interior local maximum (not ``null``: DVC drops null metrics).

Keys are short on purpose (``n0.slope``, ``n15.dd_w``: level, then number):
`dvc exp show` makes one column per key.

The per-width detail behind these numbers goes to ``width_curves``: one small
table per level (``metrics/width_curves/<level>.csv``), declared as DVC plots,
so that ``dvc plots diff <exp>`` overlays two experiments' curves against width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _level(key: str) -> str:
    """``noise-0.15`` -> ``n15`` (label noise in percent; ``n12_5`` for 0.125).

    No dots: DVC reads a dot in a metrics key as nesting (``n0.15`` would
    become ``n0`` -> ``15`` and collide with ``n0``)."""
    pct = float(key.split("-", 1)[1]) * 100
    return "n" + f"{round(pct, 6):g}".replace(".", "_")


def interior_peak(widths: list[int], errors: list[float]) -> tuple[int | None, float, float]:
    """``(width, rise, fall)`` of the highest interior local maximum of ``errors`` over
    ``widths`` (sorted): rise = peak − lowest error before it, fall = peak − error at
    the widest width; ``(None, 0.0, 0.0)`` if there is none."""
    best: tuple[int | None, float, float] = (None, 0.0, 0.0)
    best_err = -float("inf")
    for i in range(1, len(errors) - 1):
        if errors[i] > errors[i - 1] and errors[i] >= errors[i + 1] and errors[i] > best_err:
            best_err = errors[i]
            best = (widths[i], errors[i] - min(errors[:i]), errors[i] - errors[-1])
    return best


def headline(alignment: Mapping[str, Any]) -> dict[str, Any]:
    """Headline metrics from ``metrics/alignment.json`` (``noise-<p>`` -> ``width-<w>`` -> fit)."""
    out: dict[str, Any] = {}
    for level, per_width in sorted(alignment.items()):
        widths = sorted(int(k.split("-")[1]) for k in per_width)
        rows = [per_width[f"width-{w}"] for w in widths]
        errors = [float(r["member_test_error"]) for r in rows]
        var = [float(r["var"]) for r in rows]
        widest = rows[-1]
        i_best = min(range(len(errors)), key=errors.__getitem__)
        dd_w, dd_rise, dd_fall = interior_peak(widths, errors)
        out[_level(level)] = {
            "slope": round(float(widest["slope"]), 3),
            "r2": round(float(widest["r2"]), 3),
            "err": round(errors[i_best], 4),
            "var_w": widths[max(range(len(var)), key=var.__getitem__)],
            "dd_w": dd_w if dd_w is not None else 0,
            "dd_rise": round(dd_rise, 4),
            "dd_fall": round(dd_fall, 4),
        }
    return out


# Columns of metrics/width_curves/<level>.csv (one row per width, sorted).
WIDTH_CURVE_COLUMNS = ("width", "member_test_error", "ensemble_test_error", "bias2", "variance",
                       "slope", "r2")


def width_curves(alignment: Mapping[str, Any]) -> dict[str, list[dict[str, float]]]:
    """Per level (``n0``, ``n15``, as in ``headline``), the per-width rows of
    ``WIDTH_CURVE_COLUMNS``: mean-member and ensemble test error, mean plug-in
    MSE bias² and variance, and the alignment fit (slope, R²) at that width."""
    out: dict[str, list[dict[str, float]]] = {}
    for level, per_width in sorted(alignment.items()):
        rows = []
        for w in sorted(int(k.split("-")[1]) for k in per_width):
            r = per_width[f"width-{w}"]
            rows.append({"width": w, "member_test_error": float(r["member_test_error"]),
                         "ensemble_test_error": float(r["test_error"]),
                         "bias2": float(r["bias2"]), "variance": float(r["var"]),
                         "slope": float(r["slope"]), "r2": float(r["r2"])})
        out[_level(level)] = rows
    return out


def width_curve_tables(curves: Mapping[str, list[dict[str, float]]]) -> dict:
    """Per level, the table of ``WIDTH_CURVE_COLUMNS`` (a DataFrame) that
    ``write_width_tables`` writes; ``ValueError`` naming the level if a value is missing
    or NaN or the widths are unsorted."""
    import pandas as pd

    tables = {}
    for level, rows in curves.items():
        table = pd.DataFrame(rows, columns=list(WIDTH_CURVE_COLUMNS))
        if table.isna().any().any() or not table.width.is_monotonic_increasing:
            raise ValueError(f"width curves of {level}: missing values or unsorted widths")
        tables[level] = table
    return tables


def write_width_tables(tables: Mapping[str, Any], out_dir) -> list:
    """Write one CSV per level into ``out_dir``, replaced whole (``atomic_dir``): a level
    dropped from the params leaves no stale file, and a failure or a kill at any point
    leaves the previous folder as it was; returns the paths."""
    from pathlib import Path

    from biasvar.core.io import atomic_dir

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for level, table in tables.items():
            table.to_csv(tmp / f"{level}.csv", index=False, float_format="%.6g")
    return [out_dir / f"{level}.csv" for level in tables]


def write_width_curves(curves: Mapping[str, list[dict[str, float]]], out_dir) -> list:
    """``write_width_tables`` of ``width_curve_tables(curves)``: every level is checked
    before anything is written."""
    return write_width_tables(width_curve_tables(curves), out_dir)
