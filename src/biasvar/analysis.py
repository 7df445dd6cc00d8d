"""The decompose and regress stages' work: from the logits dataset to tables and metrics.

``decompose_all`` reads each config of the logits dataset (both partitions),
runs ``summary.per_example`` and ``summary.summarize`` and returns three
Arrow tables (per example, per config summary, reliability bins).
``regress_all`` fits the alignment regression per config on the test
partition and returns the fits table and the DVC metrics dict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from biasvar.schema import DECOMPOSITION, EXAMPLE_TERMS, FITS, PARTITIONS, RELIABILITY, SUMMARY


def _table(schema, cols: dict[str, list[np.ndarray]]) -> pa.Table:
    arrays = [pa.array(np.concatenate(cols[f.name]), type=f.type) for f in schema.arrow]
    return pa.Table.from_arrays(arrays, schema=schema.arrow)


def decompose_all(logits_dir: str | Path, noisy_flags: dict, label_noise: list, widths: list,
                  n_boot: int, seed: int, ci: float, n_bins: int):
    """Decompose every config; returns ``(examples, summary, reliability)`` Arrow tables.

    ``noisy_flags[p]`` is the training set's label-noise flag array at level ``p``
    (``None``: no flags). Configs are processed in sorted order so the tables
    come out sorted as their schemas require.
    """
    from biasvar.logits import read_config
    from biasvar.summary import per_example, summarize

    ex = {f.name: [] for f in DECOMPOSITION.arrow}
    sm = {f.name: [] for f in SUMMARY.arrow}
    rl = {f.name: [] for f in RELIABILITY.arrow}
    for p in sorted(label_noise, key=float):
        for w in sorted(widths):
            for part in PARTITIONS:
                c = read_config(logits_dir, p, w, part)
                noisy = noisy_flags.get(p) if part == "train" else None
                cols = per_example(c.logits, c.labels, c.draws, noisy)
                n = len(c.labels)
                config = {"label_noise": np.full(n, float(p)), "width": np.full(n, w),
                          "partition": np.full(n, part, dtype=object)}
                for k, v in config.items():
                    ex[k].append(v)
                for k in ("example", "label", "noisy", "ensemble_prediction", "correct",
                          *EXAMPLE_TERMS):
                    ex[k].append(cols[k])
                s = summarize(c.logits, c.labels, c.draws, n_boot=n_boot, seed=seed, ci=ci,
                              n_bins=n_bins)
                order = np.argsort(s.quantities)  # schema sorts by quantity name
                q = len(order)
                sm["label_noise"].append(np.full(q, float(p)))
                sm["width"].append(np.full(q, w))
                sm["partition"].append(np.full(q, part, dtype=object))
                sm["quantity"].append(np.asarray(s.quantities, dtype=object)[order])
                sm["value"].append(s.value[order])
                sm["ci_low"].append(s.ci_low[order])
                sm["ci_high"].append(s.ci_high[order])
                for k, v in (("members", s.n_members), ("draws", s.n_draws),
                             ("seeds", s.n_seeds)):
                    sm[k].append(np.full(q, v))
                for name, rel in (("ensemble", s.reliability_ensemble),
                                  ("members", s.reliability_members)):
                    b = len(rel.count)
                    rl["label_noise"].append(np.full(b, float(p)))
                    rl["width"].append(np.full(b, w))
                    rl["partition"].append(np.full(b, part, dtype=object))
                    rl["predictor"].append(np.full(b, name, dtype=object))
                    rl["bin"].append(np.arange(b))
                    for k in ("lower", "upper", "count", "confidence", "accuracy"):
                        rl[k].append(getattr(rel, k))
    # 'ensemble' < 'members': the loop order above already sorts predictors
    return _table(DECOMPOSITION, ex), _table(SUMMARY, sm), _table(RELIABILITY, rl)


def regress_all(examples: pa.Table, summary: pa.Table, estimator: str, n_boot: int, seed: int,
                ci: float):
    """Alignment fits per config on the test partition; returns ``(fits table, metrics)``.

    ``metrics`` is nested ``{"noise-<p>": {"width-<w>": {...}}}`` with the fit on
    correctly classified examples (slope, R^2, n, excluded) and the test errors.
    """
    import pyarrow.compute as pc

    from biasvar.alignment import fit_alignment

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
    return _table(FITS, cols), metrics


def _r(x: float) -> float | None:
    """Round for the metrics file; NaN becomes null (JSON has no NaN)."""
    x = float(x)
    return None if not np.isfinite(x) else round(x, 6)
