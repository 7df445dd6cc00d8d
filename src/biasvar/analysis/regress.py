"""The regress stage's work: alignment fits per config and the DVC metrics.

``regress_all`` fits log variance on log bias^2 per config on the test
partition (``alignment.fit_alignment``) and returns the fits table and the
headline metrics dict.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from biasvar.core.schema import FITS, table_from_columns


def regress_all(examples: pa.Table, summary: pa.Table, estimator: str, n_boot: int, seed: int,
                ci: float):
    """Alignment fits per config on the test partition; returns ``(fits table, metrics)``.

    ``metrics`` is nested ``{"noise-<p>": {"width-<w>": {...}}}`` with the fit on
    correctly classified examples (slope, R^2, n, excluded) and the test errors.
    """
    import pyarrow.compute as pc

    from biasvar.analysis.alignment import fit_alignment

    suffix = "" if estimator == "plugin" else "_unbiased"
    test = examples.filter(pc.equal(examples.column("partition"), "test"))
    df = test.select(["label_noise", "width", "correct", f"mse_bias2{suffix}",
                      f"mse_var{suffix}"]).to_pandas()
    sdf = summary.filter(pc.equal(summary.column("partition"), "test")).to_pandas()
    cols = {f.name: [] for f in FITS.arrow}
    metrics: dict = {}
    for (p, w), g in df.groupby(["label_noise", "width"], sort=True):
        b2, v = g[f"mse_bias2{suffix}"].to_numpy(), g[f"mse_var{suffix}"].to_numpy()
        correct = g["correct"].to_numpy()
        fits = {sub: fit_alignment(b2, v, mask, sub, n_boot, seed, ci)
                for sub, mask in (("all", None), ("correct", correct))}
        for sub, f in fits.items():
            row = {"label_noise": p, "width": w, "partition": "test", "subset": sub,
                   "estimator": estimator, "n": f.n, "n_subset": f.n_subset,
                   "excluded_zero": f.excluded_zero, "excluded_negative": f.excluded_negative,
                   "excluded_nonfinite": f.excluded_nonfinite, "slope": f.slope,
                   "slope_ci_low": f.slope_ci[0], "slope_ci_high": f.slope_ci[1],
                   "intercept": f.intercept, "intercept_ci_low": f.intercept_ci[0],
                   "intercept_ci_high": f.intercept_ci[1], "r2": f.r2,
                   "r2_ci_low": f.r2_ci[0], "r2_ci_high": f.r2_ci[1], "pearson": f.pearson,
                   "spearman": f.spearman, "mean_log_ratio": f.mean_log_ratio,
                   "median_ratio": f.median_ratio}
            for k, val in row.items():
                cols[k].append(np.asarray([val], dtype=object if isinstance(val, str) else None))
        s = sdf[(sdf.label_noise == p) & (sdf.width == w)].set_index("quantity")["value"]
        fc = fits["correct"]
        key_p = f"noise-{float(p):g}"
        metrics.setdefault(key_p, {})[f"width-{int(w)}"] = {
            "slope": _r(fc.slope), "r2": _r(fc.r2), "n": fc.n,
            "excluded": fc.excluded_zero + fc.excluded_negative + fc.excluded_nonfinite,
            "slope_all": _r(fits["all"].slope), "r2_all": _r(fits["all"].r2),
            "test_error": _r(s["ensemble_error"]), "member_test_error": _r(s["member_error"]),
            "bias2": _r(s["mse_bias2"]), "var": _r(s["mse_var"]),
        }
    return table_from_columns(FITS, cols), metrics


def _r(x: float) -> float | None:
    """Round for the metrics file; NaN becomes null (JSON has no NaN)."""
    x = float(x)
    return None if not np.isfinite(x) else round(x, 6)
