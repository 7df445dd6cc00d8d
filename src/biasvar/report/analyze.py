"""``biasvar analyze``: tables, figures and a generated README for an ensemble you bring.

No training and no DVC: each config of ``biasvar.analysis.imported.load_ensemble``
goes through the pipeline's own functions (the per-example decomposition and the
summary with jackknife intervals of ``biasvar.analysis.summary``, the alignment fits
of ``biasvar.analysis.alignment``, alignment against ensemble size of
``biasvar.analysis.ensemble_size``). The output folder (replaced whole, atomically:
``biasvar.core.io.atomic_dir``) holds

- ``examples.parquet``: every per-example term, one row per (config, example);
- ``summary.csv``: per config and quantity the value, the population estimate and its
  interval (and members, draws, seeds);
- ``alignment.csv``: the alignment fit per config, estimator (plug-in, unbiased) and
  subset (correct, all);
- ``alignment_size.csv`` and ``alignment_size_inf.csv``: the slope against ensemble
  size and its 1/K extrapolation (configs with 2 draws or more);
- ``alignment.png``: log variance against log bias² per config;
- ``metrics.json`` and ``README.md``: the numbers, and the sentences made from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

# Summary quantities of the README's table, with their names there.
README_QUANTITIES = {
    "mse_loss": "member loss (MSE)", "mse_bias2": "bias²", "mse_var": "variance",
    "var_optimization": "optimization variance", "var_sampling": "sampling variance",
    "mse_ensemble_loss": "ensemble loss, one draw's seeds (MSE)",
    "mse_diversity": "diversity (MSE)",
    "ce_loss": "member loss (CE)", "ce_bias": "bias (CE)", "ce_var": "variance (CE)",
    "ce_ensemble_loss": "ensemble loss, one draw's seeds (CE)", "ce_diversity": "diversity (CE)",
    "member_error": "member error", "ensemble_error": "ensemble error (all members)",
    "member_ece": "member ECE", "ensemble_ece": "ensemble ECE",
}


def _r(x: Any) -> Any:
    """A JSON-safe number: None for None or NaN, 6 significant digits."""
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else float(f"{x:.6g}")


def analyze_config(cfg, n_boot: int, ci: float) -> dict[str, Any]:
    """Every table of one config (``EnsembleConfig``) as pandas objects and numbers."""
    import pandas as pd

    from biasvar.analysis import api
    from biasvar.analysis.ensemble_size import alignment_by_ensemble_size

    kw = {"labels": cfg.labels, "draw": cfg.draw, "seed": cfg.seed}
    examples = api.decompose(cfg.logits, **kw)
    examples.insert(0, "config", cfg.name)
    k = cfg.logits.shape[0]
    summary = api.summarize(cfg.logits, **kw, ci=ci) if k >= 2 else None
    fits = []
    for est in api.ESTIMATORS:
        for subset in ("correct", "all"):
            f = api.fit_table(examples, est, subset, n_boot, ci)
            fits.append({"config": cfg.name, **{key: v for key, v in f.items()
                                                if not key.endswith("_ci")},
                         **{f"{key}_low": f[key][0] for key in f if key.endswith("_ci")},
                         **{f"{key}_high": f[key][1] for key in f if key.endswith("_ci")}})
    size = None
    n_draws = len(np.unique(cfg.draw))
    if n_draws >= 2:
        res = alignment_by_ensemble_size(cfg.logits, cfg.labels, cfg.draw, losses=("mse",),
                                         n_boot=n_boot, ci=ci)
        size = (res.table.assign(config=cfg.name), res.extrapolation.assign(config=cfg.name),
                res.headline)
    if summary is not None:
        summary.insert(0, "config", cfg.name)
    return {"examples": examples, "summary": summary, "fits": pd.DataFrame(fits),
            "size": size, "shape": tuple(int(v) for v in cfg.logits.shape),
            "draws": n_draws, "seeds": int(k // n_draws), "source": cfg.source}


def config_numbers(name: str, r: dict[str, Any]) -> dict[str, Any]:
    """The ``metrics.json`` entry of one config."""
    k, n, c = r["shape"]
    out: dict[str, Any] = {"members": k, "examples": n, "classes": c, "draws": r["draws"],
                           "seeds": r["seeds"], "source": r["source"]}
    if r["summary"] is not None:
        s = r["summary"].set_index("quantity")
        out["summary"] = {q: {"value": _r(s.value[q]), "estimate": _r(s.estimate[q]),
                              "ci_low": _r(s.ci_low[q]), "ci_high": _r(s.ci_high[q])}
                          for q in README_QUANTITIES}
    fits = r["fits"]
    out["alignment"] = {
        f"{row.estimator}-{row.subset}": {"slope": _r(row.slope), "r2": _r(row.r2),
                                          "n": int(row.n), "slope_ci": [_r(row.slope_ci_low),
                                                                        _r(row.slope_ci_high)]}
        for row in fits.itertuples()}
    if r["size"] is not None:
        h = r["size"][2]["mse"]
        out["alignment_size"] = {est: {"slope": _r(v["slope"]), "slope_inf": _r(v["slope_inf"])}
                                 for est, v in h.items()}
    return out


def _fmt(x: Any, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}g}"


def readme(numbers: dict[str, Any], ci: float) -> str:
    """The generated README of an analysis, from its ``metrics.json`` numbers alone."""
    lines = ["# biasvar analysis", "",
             "Generated by `biasvar analyze` from the ensemble's outputs; do not edit by hand. "
             "Definitions and estimators: the biasvar documentation (concepts).", ""]
    for name, m in numbers["configs"].items():
        lines += [f"## {name}", "",
                  f"{m['members']} members ({m['draws']} draws × {m['seeds']} seeds), "
                  f"{m['examples']} examples, {m['classes']} classes, from `{m['source']}`.", ""]
        if "summary" in m:
            lines += [f"| quantity | mean over examples | estimate ({100 * ci:g} % interval) |",
                      "|---|---|---|"]
            for q, label in README_QUANTITIES.items():
                v = m["summary"][q]
                interval = ("" if v["ci_low"] is None else
                            f" ({_fmt(v['ci_low'])} – {_fmt(v['ci_high'])})")
                lines.append(f"| {label} | {_fmt(v['value'])} | {_fmt(v['estimate'])}{interval} |")
            lines.append("")
        a = m["alignment"]
        text = [f"{est} terms: slope {_fmt(a[f'{est}-correct']['slope'])} (R² "
                f"{_fmt(a[f'{est}-correct']['r2'])}, {a[f'{est}-correct']['n']} examples)"
                for est in ("plugin", "unbiased")]
        lines.append("Alignment (OLS of log variance on log bias², examples the ensemble "
                     "classifies correctly): " + "; ".join(text) + ".")
        if "alignment_size" in m:
            s = m["alignment_size"]
            lines.append(" ".join(
                ["The slope against ensemble size, at all", str(m["members"]), "members and",
                 "extrapolated to K → ∞:"]
                + [", ".join(f"{est} {_fmt(v['slope'])} → {_fmt(v['slope_inf'])}"
                             for est, v in s.items())]) + ".")
        else:
            lines.append("One draw: no interval and no slope against ensemble size (both "
                         "need two training-set draws or more).")
        lines.append("")
    lines += ["![Alignment](alignment.png)", ""]
    return "\n".join(lines)


def alignment_figure(results: dict[str, dict[str, Any]]):
    """log variance against log bias² (plug-in, correctly classified examples), per config."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        t = r["examples"]
        t = t[t.correct & (t.mse_bias2 > 0) & (t.mse_var > 0)]
        x, y = np.log10(t.mse_bias2), np.log10(t.mse_var)
        ax.scatter(x, y, s=3, alpha=0.3, color="C0", rasterized=True)
        fit = r["fits"].set_index(["estimator", "subset"]).loc[("plugin", "correct")]
        if np.isfinite(fit.slope) and len(x):
            xs = np.linspace(x.min(), x.max(), 2)
            # the fit is in natural logs; the slope is the same in log10, the intercept scales
            ax.plot(xs, fit.slope * xs + fit.intercept / np.log(10), color="C1",
                    label=f"OLS slope {fit.slope:.2f}")
        lo = float(min(x.min(), y.min())) if len(x) else -3.0
        hi = float(max(x.max(), y.max())) if len(x) else 0.0
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
        ax.set(title=name, xlabel="log10 bias²", ylabel="log10 variance")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def analyze(configs: list, out_dir: str | Path, n_boot: int = 200, ci: float = 0.95,
            dpi: int = 120) -> dict[str, Any]:
    """Analyze ``configs`` and write every output into ``out_dir`` (replaced whole, only
    once complete). Returns the ``metrics.json`` numbers."""
    import pandas as pd

    from biasvar.core.io import atomic_dir

    results = {c.name: analyze_config(c, n_boot, ci) for c in configs}
    numbers = {"ci": ci, "bootstrap": n_boot,
               "configs": {name: config_numbers(name, r) for name, r in results.items()}}
    fig = alignment_figure(results)
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        pd.concat([r["examples"] for r in results.values()]).to_parquet(
            tmp / "examples.parquet", index=False)
        summaries = [r["summary"] for r in results.values() if r["summary"] is not None]
        if summaries:
            pd.concat(summaries).to_csv(tmp / "summary.csv", index=False)
        pd.concat([r["fits"] for r in results.values()]).to_csv(tmp / "alignment.csv",
                                                                 index=False)
        sizes = [r["size"] for r in results.values() if r["size"] is not None]
        if sizes:
            pd.concat([s[0] for s in sizes]).to_csv(tmp / "alignment_size.csv", index=False)
            pd.concat([s[1] for s in sizes]).to_csv(tmp / "alignment_size_inf.csv",
                                                    index=False)
        fig.savefig(tmp / "alignment.png", dpi=dpi)
        (tmp / "metrics.json").write_text(json.dumps(numbers, indent=1) + "\n")
        (tmp / "README.md").write_text(readme(numbers, ci))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return numbers
