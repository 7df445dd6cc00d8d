"""Words for numbers: what a caption may say about a curve or a fit, decided by the data.

Every caption of the report is assembled from these functions, so a sentence
changes when the numbers do (``tests/test_wording.py`` feeds contrary tables
and checks that it does). The thresholds are fixed here and documented in the
README ("How captions are worded"):

- fit quality from R²: >= 0.9 strong, >= 0.7 good, >= 0.4 moderate,
  >= 0.1 weak, below that no linear relation;
- a curve over a sweep is "flat" when its range is below ``FLAT_REL`` (5 %) of
  its largest absolute value; otherwise it is rising / falling when no step
  goes the other way by more than that tolerance, it has a peak (valley) when
  it rises to an interior maximum and falls after it (falls to an interior
  minimum and rises after it), each by more than the tolerance, and it is
  "non-monotone" otherwise;
- an ordering "A > B" holds "at every x", "at x ...", or "nowhere".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FLAT_REL = 0.05  # relative range below which a curve is called flat
R2_WORDS = ((0.9, "strong"), (0.7, "good"), (0.4, "moderate"), (0.1, "weak"))


def fit_quality(r2: float) -> str:
    """A word for the quality of a linear fit with coefficient of determination ``r2``."""
    if not np.isfinite(r2):
        return "undefined"
    for threshold, word in R2_WORDS:
        if r2 >= threshold:
            return word
    return "no linear relation"


def _fmt(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.3g}"


def shape(x: Sequence[float], y: Sequence[float]) -> dict:
    """Classify the curve ``y(x)`` (x ascending): kind, where its extremes are, and tolerance.

    ``kind`` is one of ``flat``, ``rising``, ``falling``, ``peak`` (interior
    maximum), ``valley`` (interior minimum, no interior maximum), ``non-monotone``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    out = {"kind": "flat", "x_max": None, "y_max": None, "x_min": None, "y_min": None}
    if len(y) == 0:
        out["kind"] = "empty"
        return out
    i_max, i_min = int(np.argmax(y)), int(np.argmin(y))
    out.update(x_max=x[i_max], y_max=y[i_max], x_min=x[i_min], y_min=y[i_min])
    tol = FLAT_REL * max(np.abs(y).max(), 1e-300)
    if len(y) < 2 or y.max() - y.min() < tol:
        return out
    steps = np.diff(y)

    def up(s):  # no step down larger than the tolerance
        return bool(np.all(s > -tol))

    def down(s):
        return bool(np.all(s < tol))

    if up(steps):
        out["kind"] = "rising"
    elif down(steps):
        out["kind"] = "falling"
    elif (0 < i_max < len(y) - 1 and y[i_max] - max(y[0], y[-1]) >= tol
          and up(steps[:i_max]) and down(steps[i_max:])):
        out["kind"] = "peak"
    elif (0 < i_min < len(y) - 1 and min(y[0], y[-1]) - y[i_min] >= tol
          and down(steps[:i_min]) and up(steps[i_min:])):
        out["kind"] = "valley"
    else:
        out["kind"] = "non-monotone"
    return out


def describe(x: Sequence[float], y: Sequence[float], what: str, xname: str = "width",
             digits: int = 3) -> str:
    """One clause on the shape of ``y`` against ``x``, e.g. "the variance peaks at 0.21
    at width 32"."""
    s = shape(x, y)
    f = f"{{:.{digits}g}}"
    k = s["kind"]
    if k == "empty":
        return f"{what} is not available"
    if k == "flat":
        return f"{what} is flat ({f.format(s['y_min'])} to {f.format(s['y_max'])})"
    if k == "rising":
        return (f"{what} rises with {xname} ({f.format(s['y_min'])} to "
                f"{f.format(s['y_max'])})")
    if k == "falling":
        return (f"{what} falls with {xname} ({f.format(s['y_max'])} to "
                f"{f.format(s['y_min'])})")
    if k == "peak":
        return (f"{what} peaks at {f.format(s['y_max'])} at {xname} {_fmt(s['x_max'])}")
    if k == "valley":
        return (f"{what} is lowest, {f.format(s['y_min'])}, at {xname} {_fmt(s['x_min'])}")
    return (f"{what} is non-monotone (highest {f.format(s['y_max'])} at {xname} "
            f"{_fmt(s['x_max'])}, lowest {f.format(s['y_min'])} at {xname} "
            f"{_fmt(s['x_min'])})")


def ordering(x: Sequence[float], a: Sequence[float], b: Sequence[float], a_name: str,
             b_name: str, xname: str = "width") -> str:
    """Where ``a > b`` holds over the sweep ``x``, in words."""
    x, a, b = (np.asarray(v, dtype=float) for v in (x, a, b))
    ok = np.isfinite(a) & np.isfinite(b)
    x, a, b = x[ok], a[ok], b[ok]
    if len(x) == 0:
        return f"{a_name} and {b_name} cannot be compared"
    above = a > b
    if above.all():
        return f"{a_name} is above {b_name} at every {xname}"
    if not above.any():
        return f"{a_name} is nowhere above {b_name}"
    where = ", ".join(_fmt(v) for v in x[above])
    return f"{a_name} is above {b_name} only at {xname} {where}"


def nearest(x: Sequence[float], value: float) -> float:
    """The grid point of ``x`` closest to ``value`` on a log scale."""
    x = np.asarray(x, dtype=float)
    return float(x[np.argmin(np.abs(np.log(x) - np.log(value)))])
