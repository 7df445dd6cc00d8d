"""Build a report folder: figures (PNG), metrics JSON and a generated README.md.

``build_report`` renders every figure of ``biasvar.report.figures`` from the tables,
writes them into the report directory with a one-sentence caption each, and
generates a README that embeds them next to a table of the key numbers per
config. Captions state what the figure shows; the numbers in the README come
from the same tables (and the metrics JSON that ``dvc metrics show`` reads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biasvar.report import figures as plots
from biasvar.report import wording
from biasvar.report.config import Style


@dataclass
class Figure:
    name: str  # file stem
    title: str
    caption: str  # one sentence: what the figure shows
    fig: object


@dataclass
class Report:
    title: str
    figures: list[Figure] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # extra Markdown blocks


def threshold_width(arch: str, depth: int, residual: bool, n_train: int,
                    widths: list[int]) -> float | None:
    """Width at which a member's parameter count equals ``n_train`` (log-interpolated).

    None when the sweep does not cross it or the architecture has no width.
    """
    from biasvar.ensemble.models import n_parameters

    if arch == "logistic":
        return None
    grid = np.unique(np.geomspace(1, max(widths) * 4, 400).astype(int))
    counts = np.array([n_parameters(arch, int(w), depth, residual) for w in grid])
    i = np.searchsorted(counts, n_train)
    if i == 0 or i == len(grid):
        return None
    # interpolate in log-width between the two grid points around n_train
    w0, w1, c0, c1 = grid[i - 1], grid[i], counts[i - 1], counts[i]
    t = (n_train - c0) / (c1 - c0)
    w = float(np.exp(np.log(w0) + t * (np.log(w1) - np.log(w0))))
    return w if min(widths) <= w <= max(widths) else None


# How the summary bands are computed (analysis.summary); stated in every caption that draws them.
def interval_text(summary: pd.DataFrame, level: float) -> str:
    """"with <level> % intervals ..." or, when the decomposition has none
    (``decompose.intervals: false``), "without intervals" saying why."""
    if summary["ci_low"].isna().all():
        return "without intervals (decompose.intervals = false)"
    return (f"with {100 * level:g} % intervals for the population values (delete-one-draw "
            "jackknife)")



def alignment_words(fits: pd.DataFrame, level: float) -> str:
    """The alignment fits at one noise level, in words: slope and R² per width, and
    where the fit is strong or weak (thresholds in ``wording.fit_quality``)."""
    f = fits[(fits.subset == "correct") & (fits.label_noise == level)].sort_values("width")
    if f.empty:
        return "no alignment fit is available."
    per = "; ".join(f"width {int(r.width)}: slope {r.slope:.2f}, R² {r.r2:.2f}"
                    for r in f.itertuples())
    groups: dict[str, list[str]] = {}
    for r in f.itertuples():
        groups.setdefault(wording.fit_quality(r.r2), []).append(str(int(r.width)))
    quality = ", ".join(f"{q} at width {', '.join(ws)}" for q, ws in groups.items())
    return (f"for correctly classified examples (green) the OLS fit of log variance on "
            f"log bias² (plug-in terms of all members) is {per} (slope 1 would be exact "
            f"alignment); the linear relation is {quality}. The plug-in slope moves with the "
            f"ensemble size and the estimator: see the next figure.")


def size_words(table: pd.DataFrame, extrap: pd.DataFrame, level: float) -> str:
    """At the widest width: each estimator's slope from the smallest to the largest K,
    its K -> infinity extrapolation and whether the 1/K model fits (chi² per dof <= 3).

    Without bootstrap standard errors (``alignment_size.bootstrap: 0``) the
    extrapolation is unweighted and has no chi²: the words say so and give no verdict
    (an unweighted residual sum read as a chi² made the model "fit")."""
    t = table[np.isclose(table.label_noise, level) & (table.subset == "correct")]
    w = int(t.width.max())
    t = t[t.width == w]
    e = extrap[np.isclose(extrap.label_noise, level) & (extrap.width == w)
               & (extrap.subset == "correct") & (extrap.quantity == "slope")]
    parts = []
    for loss, est, label, _ in plots.SIZE_SERIES:
        d = t[(t.loss == loss) & (t.estimator == est)].sort_values("n_members")
        if d.empty:
            continue
        first, last = d.iloc[0], d.iloc[-1]
        text = (f"{label} {first.slope:.2f} at K = {int(first.n_members)} to {last.slope:.2f} "
                f"at K = {int(last.n_members)}")
        x = e[(e.loss == loss) & (e.estimator == est)]
        if len(x) and np.isfinite(x.value_inf.iloc[0]):
            x = x.iloc[0]
            se = f" ± {x.value_inf_se:.3f}" if np.isfinite(x.value_inf_se) else ""
            if not np.isfinite(x.chi2):
                check = ", unweighted; 1/K model not checked"
            elif x.dof > 0:
                fits = x.chi2 / x.dof <= 3
                check = (f", 1/K model {'fits' if fits else 'does not fit'}: "
                         f"χ² {x.chi2:.1f} on {int(x.dof)} dof")
            else:
                check = ""  # two sizes: the line goes through both
            text += f" (K → ∞: {x.value_inf:.2f}{se}{check})"
        parts.append(text)
    drift = "; ".join(parts)
    return (f"At width {w} ({plots._noise_label(level)}) the slope moves with the estimator "
            f"and with K: {drift}. Split-half pairs bias² and variance from disjoint draws, so "
            f"their estimation errors are independent; plug-in bias² carries variance / K.")


def terms_words(summary: pd.DataFrame) -> str:
    """Shapes of variance and bias² against width per noise level, and how the noisy
    variance compares with the clean one."""
    test = summary[summary.partition == "test"]
    out = []
    series = {}
    for p, d in test.groupby("label_noise"):
        piv = d.pivot_table(index="width", columns="quantity", values="value").sort_index()
        series[p] = piv
        w = piv.index.to_numpy()
        out.append(f"{plots._noise_label(p)}: "
                   + wording.describe(w, piv.mse_var.to_numpy(), "the variance") + ", "
                   + wording.describe(w, piv.mse_bias2.to_numpy(), "bias²"))
    levels = sorted(series)
    if len(levels) > 1:
        a, b = series[levels[-1]], series[levels[0]]
        common = a.index.intersection(b.index)
        out.append(wording.ordering(common, a.mse_var[common], b.mse_var[common],
                                    f"the variance at {plots._noise_label(levels[-1])}",
                                    "the clean one"))
    text = "; ".join(out) + "."
    return text[0].upper() + text[1:]


def in_bag_words(members: pd.DataFrame, tol: float = 1e-9) -> str:
    """Per noise level: the narrowest width from which every member interpolates its draw
    (mean in-bag error 0 at it and at every wider width), or the lowest in-bag error."""
    out = []
    for p, d in members.groupby("label_noise"):
        err = d.groupby("width").in_bag_error.mean().sort_index()
        zero = err <= tol
        # the first width from which all wider widths are at 0 as well
        tail = zero[::-1].cummin()[::-1]
        if tail.any():
            out.append(f"{plots._noise_label(p)}: in-bag error 0 from width "
                       f"{int(tail.idxmax())}")
        else:
            out.append(f"{plots._noise_label(p)}: in-bag error never 0 (lowest "
                       f"{err.min():.3f} at width {int(err.idxmin())})")
    text = "; ".join(out) + "."
    return text[0].upper() + text[1:]


def _grid_steps_words(widths: list[int], i: int, threshold: float | None) -> str:
    """Where grid point ``i`` lies relative to the grid point nearest ``threshold``."""
    if threshold is None:
        return ""
    near = int(np.argmin([abs(np.log(x / threshold)) for x in widths]))
    steps = i - near
    if steps == 0:
        return " at the grid point nearest the threshold"
    return (f", {abs(steps)} grid step{'s' if abs(steps) > 1 else ''} "
            f"{'above' if steps > 0 else 'below'} the grid point nearest the threshold")


def variance_peak_words(summary: pd.DataFrame, threshold: float | None) -> str:
    """Per noise level: the width of the plug-in variance peak against the threshold width."""
    if threshold is None:
        return ""
    out = []
    s = summary[(summary.quantity == "mse_var") & (summary.partition == "test")]
    for p, d in s.groupby("label_noise"):
        d = d.sort_values("width")
        widths = [int(w) for w in d.width]
        i = int(np.argmax(d.value.to_numpy()))
        out.append(f"{plots._noise_label(p)} at width {widths[i]}"
                   + _grid_steps_words(widths, i, threshold))
    return (f" Against the interpolation threshold (width {threshold:.1f}, parameters = "
            f"distinct examples per draw), the variance peaks: " + "; ".join(out) + ".")


def double_descent_words(summary: pd.DataFrame, threshold: float | None) -> str:
    """Per noise level, the double-descent peak of the mean-member test error, in numbers.

    The peak is ``headline.interior_peak`` (the highest interior local maximum);
    its position is stated in grid steps from the threshold width (0: the grid
    point nearest to it), its rise above the lowest error at narrower widths and
    its fall to the widest width in percentage points.
    """
    from biasvar.report.headline import interior_peak

    out = []
    s = summary[(summary.quantity == "member_error") & (summary.partition == "test")]
    for p, d in s.groupby("label_noise"):
        d = d.sort_values("width")
        widths, err = [int(w) for w in d.width], [float(v) for v in d.value]
        w, rise, fall = interior_peak(widths, err)
        if w is None:
            out.append(f"{plots._noise_label(p)}: no interior peak (test error "
                       f"{err[0]:.3f} at width {widths[0]} to {err[-1]:.3f} at width "
                       f"{widths[-1]})")
            continue
        i = widths.index(w)
        lo = int(np.argmin(err[:i]))
        where = _grid_steps_words(widths, i, threshold)
        out.append(f"{plots._noise_label(p)}: peak {err[i]:.3f} at width {w}{where}, "
                   f"{100 * rise:.1f} points above the minimum {err[lo]:.3f} (width "
                   f"{widths[lo]}) before it and {100 * fall:.1f} points above the widest "
                   f"width's {err[-1]:.3f}")
    return "Double descent of the mean-member test error: " + "; ".join(out) + "."


def key_numbers(summary: pd.DataFrame, fits: pd.DataFrame,
                members: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per config: alignment fit (correct examples), mean terms and errors (test),
    and the mean member's in-bag training error."""
    s = summary[summary.partition == "test"].pivot_table(
        index=["label_noise", "width"], columns="quantity", values="value")
    f = fits[fits.subset == "correct"].set_index(["label_noise", "width"])
    out = pd.DataFrame({
        "slope": f.slope, "R²": f.r2, "n": f.n,
        "bias²": s.mse_bias2, "variance": s.mse_var,
        "opt. var": s.var_optimization, "sampling var": s.var_sampling,
        "member error": s.member_error, "ensemble error": s.ensemble_error,
    })
    if members is not None:
        out.insert(len(out.columns) - 2, "in-bag error",
                   members.groupby(["label_noise", "width"]).in_bag_error.mean())
    return out.reset_index()


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (no tabulate dependency)."""
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                return "—"
            return f"{v:.4g}"
        return str(v)

    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def write_report(report: Report, out_dir: str | Path, metrics: dict, dpi: int) -> None:
    """Save figures and README into ``out_dir`` (replaced atomically as a whole)."""
    import matplotlib.pyplot as plt

    from biasvar.core.io import atomic_dir

    with atomic_dir(out_dir) as tmp:
        lines = [f"# {report.title}", "",
                 "Generated by the `plot` stage of `dvc repro` from the decomposition and "
                 "regression tables; do not edit by hand.", ""]
        for fg in report.figures:
            # Agg PNGs carry a Software tag but no timestamp: same inputs, same bytes.
            fg.fig.savefig(tmp / f"{fg.name}.png", dpi=dpi, metadata={"Software": None})
            plt.close(fg.fig)
            lines += [f"## {fg.title}", "", f"![{fg.title}]({fg.name}.png)", "", fg.caption, ""]
        lines += report.sections
        (tmp / "README.md").write_text("\n".join(lines).rstrip() + "\n")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def main_report(examples: pd.DataFrame, summary: pd.DataFrame, reliability: pd.DataFrame,
                fits: pd.DataFrame, curves: pd.DataFrame, members: pd.DataFrame,
                metrics: dict, style: Style, arch: str, depth: int, residual: bool,
                ci: float = 0.95) -> Report:
    """The main study's figures and key-number table.

    ``ci``: the level of the decomposition's intervals (``decompose.ci``, recorded in
    the decomposition files), stated in the captions.

    ``members``: the per-member table of ``collect`` (in-bag / out-of-bag
    errors, ``n_in_bag`` distinct examples of the member's draw, split method).
    """
    style.apply()
    levels = sorted(summary.label_noise.unique())
    clean = 0.0 if 0.0 in levels else levels[0]
    widths = sorted(summary.width.unique())
    n_train = int((examples[(examples.partition == "train")
                            & (examples.label_noise == clean)
                            & (examples.width == widths[0])]).shape[0])
    # A member is fitted to the distinct examples of its draw (~63 % of n for a
    # bootstrap): that, not n_train, is what its parameters must match to interpolate.
    members = members.astype({"label_noise": summary.label_noise.dtype})  # float32 levels
    n_fit = float(members.n_in_bag.mean())
    methods = sorted(members.split_method.unique())
    thr = threshold_width(arch, depth, residual, n_fit, widths)
    rep = Report(title=f"biasvar report: {arch} ensembles on MNIST-1D")
    rep.figures.append(Figure(
        "alignment", "Bias-variance alignment",
        f"Per test example, variance against bias² on log-log axes for each width "
        f"({plots._noise_label(clean)}), with y = x dashed; " + alignment_words(fits, clean),
        plots.alignment_figure(examples, fits, clean, style)))
    rep.figures.append(Figure(
        "bias_variance_width", "Bias and variance vs width",
        "Mean bias², variance and its optimization (within draw) and sampling (across draws) "
        "parts, and ensemble and member test error against width, for clean and noisy labels, "
        f"{interval_text(summary, ci)}. " + terms_words(summary)
        + variance_peak_words(summary, thr),
        plots.terms_vs_width_figure(summary, style)))
    fit_text = (f"the {n_fit:.0f} distinct examples a member is fitted to (mean over draws "
                f"of the {', '.join(methods)} split of the {n_train} training examples)")
    thr_text = (f"the dashed line marks width {thr:.1f}, where a member's parameters equal "
                f"{fit_text}" if thr else
                f"the sweep does not cross parameters = {fit_text}")
    train = examples[(examples.partition == "train") & (examples.oob_members > 0)]
    oob = (train.assign(oob_error=train.oob_prediction != train.label)
           .groupby(["label_noise", "width"], as_index=False).oob_error.mean())
    rep.figures.append(Figure(
        "error_width", "Test and train error vs width",
        f"Left: mean-member 0-1 error on the test set (solid), on the distinct examples of "
        f"its own draw (in-bag, dotted) and on the other training examples (out-of-bag, "
        f"dash-dot); right: ensemble error on the test set, on all training examples "
        f"(dotted), and out-of-bag (dash-dot: each training example predicted by the "
        f"members whose draw does not hold it); "
        f"train errors are against the training labels, noisy ones included. "
        f"{in_bag_words(members)} {thr_text[0].upper() + thr_text[1:]}. "
        + double_descent_words(summary, thr),
        plots.error_vs_width_figure(summary, members, thr, style, oob)))
    rep.figures.append(Figure(
        "calibration", "Calibration and the alignment gap",
        "Reliability diagram of the ensemble per width (left), ECE of the ensemble and of the "
        "average member vs width (middle), and the alignment gap mean log(variance / bias²) "
        "over correctly classified test examples (right; 0 = on y = x).",
        plots.calibration_figure(reliability, summary, fits, clean, style)))
    rep.figures.append(Figure(
        "training_curves", "Training curves",
        "Median over members (band: interquartile range) of the minibatch training loss (log "
        "scale) and of test accuracy against optimization step, per width and label-noise "
        "level.",
        plots.curves_figure(curves, style)))
    table = key_numbers(summary, fits, members)
    rep.sections += ["## Key numbers (test set)", "",
                     "Alignment fit of log variance on log bias² over correctly classified "
                     "test examples (slope, R², n), and mean MSE-decomposition terms and 0-1 "
                     "errors per config (plug-in estimates). Metrics: `metrics.json` "
                     "(the same as `dvc metrics show`).", "", markdown_table(table), ""]
    rep.sections += ["## Population estimates (test set)", "",
                     f"Estimates of the infinite-ensemble values {interval_text(summary, ci)}; the "
                     "method is in the project README, section Intervals. The plug-in "
                     "values above differ from these by the finite-ensemble bias: plug-in "
                     "bias² is high by about variance / K, "
                     "plug-in optimization variance low by a factor (S - 1) / S.", "",
                     markdown_table(population_table(summary)), ""]
    return rep


def population_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per config: estimate and interval of bias², variance and Neal's parts."""
    test = summary[summary.partition == "test"]
    cols = {"mse_bias2": "bias²", "mse_var": "variance", "var_optimization": "opt. var",
            "var_sampling": "sampling var"}
    out = []
    for (p, w), d in test.groupby(["label_noise", "width"], sort=True):
        d = d.set_index("quantity")
        row = {"label_noise": float(p), "width": int(w)}
        for q, name in cols.items():
            r = d.loc[q]
            row[name] = (f"{r.estimate:.4g} ({r.ci_low:.4g}–{r.ci_high:.4g})"
                         if np.isfinite(r.ci_low) else f"{r.estimate:.4g}")
        out.append(row)
    return pd.DataFrame(out)


def add_alignment_size(rep: Report, table: pd.DataFrame, extrap: pd.DataFrame,
                       style: Style) -> None:
    """The alignment-vs-ensemble-size figure, after the alignment figure.

    With ``alignment_size.bootstrap: 0`` (no replicate anywhere) the caption says there
    are no intervals and that the 1/K model cannot be checked, instead of giving a
    verdict."""
    levels = sorted(table.label_noise.unique())
    clean = 0.0 if 0.0 in levels else levels[0]
    boot = bool(table.slope_ci_low.notna().any())
    intervals = ("with 95 % bootstrap intervals over examples (members fixed)" if boot else
                 "without intervals (alignment_size.bootstrap = 0)")
    no_boot = ("" if boot else
               " Without bootstrap replicates the K → ∞ values are unweighted least squares "
               "on 1/K with no standard errors, and the check of the 1/K model is unavailable.")
    fig = Figure(
        "alignment_size", "Alignment against ensemble size",
        "Alignment slope (OLS of log variance on log bias², correctly classified test "
        "examples of the full ensemble) refitted on nested subsets of whole draws, for "
        f"plug-in, unbiased and split-half MSE terms and plug-in CE terms, {intervals}; "
        "slope 1 dashed. "
        + " ".join(size_words(table, extrap, p) for p in levels) + no_boot,
        plots.alignment_size_figure(table, clean, style))
    at = next((i for i, f in enumerate(rep.figures) if f.name == "alignment"), -1)
    rep.figures.insert(at + 1, fig)


def calibration_words(table: pd.DataFrame) -> str:
    """Per noise level: member/ensemble ECE and the gap before -> after at the widest width,
    and at which widths the gap moved toward 0 (|after| < |before|, intervals disjoint)."""
    out = []
    for p, d in table.groupby("label_noise"):
        d = d.sort_values("width")
        r = d.iloc[-1]
        toward = d[(d.gap_after.abs() < d.gap_before.abs())
                   & ((d.gap_ci_high_after < d.gap_ci_low_before)
                      | (d.gap_ci_low_after > d.gap_ci_high_before))]
        if d[["gap_ci_low_before", "gap_ci_high_before"]].isna().all().all():
            # no bootstrap replicates: no interval, so no verdict either way
            where = ("untested (no intervals: calibration_intervention.bootstrap = 0)")
        else:
            where = (f"at width {', '.join(str(int(w)) for w in toward.width)}"
                     if len(toward) else "at no width")
        out.append(f"{plots._noise_label(p)}, width {int(r.width)}: mean temperature "
                   f"{r.temperature_mean:.2f}, member ECE {r.member_ece_before:.3f} → "
                   f"{r.member_ece_after:.3f}, ensemble ECE {r.ensemble_ece_before:.3f} → "
                   f"{r.ensemble_ece_after:.3f}, gap {r.gap_before:.2f} → {r.gap_after:.2f}, "
                   f"slope {r.slope_before:.2f} → {r.slope_after:.2f}; "
                   + (f"whether the gap moved toward 0 is {where}" if where.startswith("untested")
                      else f"the gap moved toward 0 {where}"))
    text = "; ".join(out) + "."
    return text[0].upper() + text[1:]


def add_calibration_intervention(rep: Report, table: pd.DataFrame, style: Style) -> None:
    """The calibration-intervention figure, after the calibration figure."""
    fig = Figure(
        "calibration_intervention", "Calibration as a cause, tested",
        "Each member's logits divided by a temperature fitted on its out-of-bag training "
        "examples (NLL against its training labels); member and ensemble ECE and the "
        "alignment gap on the test set before (solid) and after (dashed), with 95 % bootstrap "
        "intervals of the gap over test examples (members and temperatures fixed). "
        + calibration_words(table),
        plots.calibration_intervention_figure(table, style))
    at = next((i for i, f in enumerate(rep.figures) if f.name == "calibration"), -1)
    rep.figures.insert(at + 1, fig)


def pc_bias_convergence(table: pd.DataFrame, metrics: dict[str, dict]) -> pd.DataFrame:
    """Per (config, pc): eigenvalue (from the table) and convergence step (the stage's
    metrics, ``None`` -> NaN: never converged)."""
    rows = []
    for c, d in table.groupby("config"):
        ev = d[d.step == d.step.min()].sort_values("pc")
        steps = [np.nan if s is None else float(s) for s in metrics[c]["convergence_step"]]
        rows.append(pd.DataFrame({"config": c, "pc": ev.pc.to_numpy(),
                                  "eigenvalue": ev.eigenvalue.to_numpy(),
                                  "convergence_step": steps}))
    return pd.concat(rows, ignore_index=True)


def pc_bias_words(metrics: dict[str, dict], fraction: float) -> str:
    """Per config: the rank correlation and how many PCs converged, from the stage metrics."""
    parts = []
    for c in sorted(metrics):
        m = metrics[c]
        rho = m["spearman_eigenvalue_vs_convergence"]
        rho_text = "undefined (all at one step)" if rho != rho else f"{rho:.2f}"
        parts.append(f"{c}: Spearman correlation of eigenvalue and convergence step "
                     f"{rho_text}, {m['converged_pcs']} of {m['pcs']} PCs converged, final sd "
                     f"ratio {m['final_sd_ratio_top5']:.3g} on the top 5 PCs vs "
                     f"{m['final_sd_ratio_bottom5']:.3g} on the bottom 5")
    return (f"A PC has converged at the first logged step at which the members' sd along it "
            f"is at most {fraction:g} of its initial value (never-converged PCs are tied "
            f"after the last step). " + "; ".join(parts) + ".")


def add_pc_bias(rep: Report, table: pd.DataFrame, metrics: dict[str, dict], fraction: float,
                style: Style) -> None:
    """The PC-bias figure; its caption from the stage metrics."""
    conv = pc_bias_convergence(table, metrics)
    rep.figures.append(Figure(
        "pc_bias", "Principal-component bias",
        "Ensembles of bias-free MLPs on MNIST-1D inputs in their PCA basis (full batch, MSE "
        "to one-hot labels). Top: across-member standard deviation of each member's compact "
        "linear map along each principal component, relative to initialization (product of "
        "the layers for linear nets, mean input Jacobian otherwise), coloured by the PC's "
        "eigenvalue; bottom: convergence step against eigenvalue. The whitened config scales "
        "every PC to variance 1 (the control: nothing to order by). "
        + pc_bias_words(metrics, fraction),
        plots.pc_bias_figure(table, conv, style)))


def spectral_cls_words(metrics: dict[str, dict]) -> str:
    """Per config: the frequency centroid at init, first logged step and end, its rank
    correlation with the step, and the final train / test error, from the stage metrics."""
    parts = []
    for c in sorted(metrics):
        m = metrics[c]
        parts.append(f"{c}: centroid {m['centroid_init']:.3f} at init, {m['centroid_first']:.3f} "
                     f"at the first logged step, {m['centroid_final']:.3f} at the end (Spearman "
                     f"with step {_fmt_rho(m['centroid_spearman'])}), train error "
                     f"{m['final_train_error']:.3f}, test error {m['final_test_error']:.3f}")
    return "; ".join(parts) + "."


def _fmt_rho(v: float) -> str:
    return "undefined" if v != v else f"{v:.2f}"


def add_spectral_cls(rep: Report, table: pd.DataFrame, metrics: dict[str, dict],
                     style: Style) -> None:
    """The classification spectral-bias figure; its caption from the stage metrics."""
    rep.figures.append(Figure(
        "spectral_cls", "Spectral bias on a classification task",
        "Ensembles trained on MNIST-1D (minibatch cross-entropy); every member's logits on "
        "straight paths between pairs of training inputs, minus the straight line between the "
        "path's end values, Fourier-transformed along the path; A_k is the squared magnitude "
        "averaged over members, paths and classes. Each panel: the change of the energy share "
        "R_k = log(A_k / Σ A) since the first logged step (dashed: initialization); last "
        "panel: the frequency centroid. A rising centroid after the first "
        "updates means that higher frequencies are added later in training. "
        + spectral_cls_words(metrics),
        plots.spectral_cls_figure(table, style)))


def erank_depth_words(metrics: dict[str, dict]) -> str:
    """Per config: erank at the shallowest and deepest depth, init and trained, and the rank
    correlation with depth, from the stage metrics."""
    parts = []
    for c in sorted(metrics):
        m = metrics[c]
        d0, d1 = m["depths"][0], m["depths"][-1]
        phases = [f"{ph} {m[ph]['erank'][0]:.1f} → {m[ph]['erank'][-1]:.1f} "
                  f"(Spearman {_fmt_rho(m[ph]['spearman_depth'])})" for ph in ("init", "trained")]
        parts.append(f"{c}, depth {d0} → {d1}: " + ", ".join(phases))
    return "Mean effective rank over members: " + "; ".join(parts) + "."


def add_erank_depth(rep: Report, table: pd.DataFrame, metrics: dict[str, dict],
                    style: Style) -> None:
    """The effective-rank-against-depth figure; its caption from the stage metrics."""
    w = sorted({m["width"] for m in metrics.values()})
    rep.figures.append(Figure(
        "erank_depth", "Low-rank simplicity bias: effective rank against depth",
        f"MLP ensembles of width {', '.join(map(str, w))} at each depth, trained on MNIST-1D "
        "(minibatch cross-entropy); effective rank (exp of the entropy of the normalized "
        "singular values) of each member's penultimate embeddings of the test inputs, at "
        "initialization (dashed) and after training (solid). "
        + erank_depth_words(metrics),
        plots.erank_depth_figure(table, style)))


# The summary of the simplicity-bias grid: one row per (bias, config[, phase]).
SIMPLICITY_COLUMNS = ("bias", "config", "changed", "decides", "value", "holds", "detail")
# A bias "holds" for a config when the number that decides it passes this cut. The cuts
# ask for a clear monotone ordering (|rank correlation| >= 0.5), not mere significance.
RHO_CUT = 0.5


def _verdict(value: float, ok: bool) -> bool | None:
    """True / False, or None (undecided) when the deciding number is undefined (NaN)."""
    return None if value != value else bool(ok)


def _changed(m: dict) -> str:
    over = m.get("overrides") or {}
    return ", ".join(f"{k}={v}" for k, v in over.items()) if over else "(base)"


def simplicity_table(pc_bias: dict[str, dict], spectral_cls: dict[str, dict],
                     erank_depth: dict[str, dict], spectral: dict[str, dict]) -> pd.DataFrame:
    """For each bias and config (the factor levels of the grid), the number that decides
    whether the bias holds and the verdict. Rules (``RHO_CUT`` = 0.5):

    - principal-component: Spearman(eigenvalue, convergence step) <= -0.5;
    - spectral (1-D regression, ``spectral@``): the lowest frequency is learned first and
      Spearman(k, learning step) >= 0.5, never-learned frequencies tied after the last step;
    - spectral (classification): Spearman(step, frequency centroid) >= 0.5 after
      initialization and the centroid rose from the first logged step to the end;
    - low rank (per phase, init and trained): Spearman(depth, effective rank) <= -0.5 and
      effective rank at the deepest below that at the shallowest depth.
    """
    from scipy.stats import spearmanr

    rows = []
    for c, m in sorted(pc_bias.items()):
        rho = m["spearman_eigenvalue_vs_convergence"]
        rows.append(("principal-component", c, _changed(m),
                     "Spearman(eigenvalue, convergence step)", rho, _verdict(rho, rho <= -RHO_CUT),
                     f"{m['converged_pcs']}/{m['pcs']} PCs converged"))
    for c, m in sorted(spectral.items()):
        # never-learned frequencies tie after the last step (censored), as in pc_bias
        steps = {int(k): (m["steps"] + 1 if v is None else v)
                 for k, v in m["first_step_learned"].items()}
        learned = {k: v for k, v in m["first_step_learned"].items() if v is not None}
        rho = (float(spearmanr(list(steps), list(steps.values())).statistic)
               if len(set(steps.values())) > 1 else float("nan"))
        lowest = min(steps)
        rows.append(("spectral (1-D regression)", c, "(see spectral.configs)",
                     "Spearman(k, learning step)", rho,
                     _verdict(rho, m["first_learned"] == lowest and rho >= RHO_CUT),
                     f"k = {m['first_learned']} learned first; {len(learned)} of "
                     f"{len(m['first_step_learned'])} frequencies learned"))
    for c, m in sorted(spectral_cls.items()):
        rho = m["centroid_spearman"]
        rows.append(("spectral (classification)", c, _changed(m),
                     "Spearman(step, frequency centroid)", rho,
                     _verdict(rho, rho >= RHO_CUT and m["centroid_change"] > 0),
                     f"centroid {m['centroid_first']:.4f} → {m['centroid_final']:.4f}; "
                     f"test error {m['final_test_error']:.3f}"))
    for c, m in sorted(erank_depth.items()):
        for ph in ("init", "trained"):
            e = m[ph]
            rho = e["spearman_depth"]
            rows.append((f"low rank ({ph})", c, _changed(m), "Spearman(depth, effective rank)",
                         rho, _verdict(rho, rho <= -RHO_CUT
                                       and e["ratio_deepest_shallowest"] < 1),
                         f"erank {e['erank'][0]:.1f} → {e['erank'][-1]:.1f} over depths "
                         f"{m['depths'][0]}–{m['depths'][-1]}"))
    return pd.DataFrame(rows, columns=list(SIMPLICITY_COLUMNS))


def simplicity_words(table: pd.DataFrame) -> str:
    """Per bias: in how many of its configs it holds, which it fails in, which are
    undecided (the deciding number undefined, e.g. no PC converged)."""
    parts = []
    for bias, d in table.groupby("bias", sort=False):
        fails = d[d.holds.map(lambda h: h is False)].config.tolist()
        open_ = d[d.holds.isna()].config.tolist()
        parts.append(f"{bias}: holds in {int((d.holds == True).sum())} of {len(d)} configs"  # noqa: E712
                     + (f" (not in {', '.join(fails)})" if fails else "")
                     + (f" (undecided in {', '.join(open_)})" if open_ else ""))
    return "; ".join(parts) + "."


def add_simplicity_summary(rep: Report, table: pd.DataFrame) -> None:
    """The grid's summary table as a Markdown section of the report README."""
    show = table.assign(holds=table.holds.map(
        lambda h: "undecided" if h is None else ("yes" if h else "no")))
    rep.sections += [
        "## Simplicity biases: which holds where", "",
        "One row per bias and config (a factor level of the grid: what the config changes "
        "from its study's base settings). A bias *holds* when the deciding rank correlation "
        f"is at least {RHO_CUT} in the direction the bias predicts; *undecided* when that "
        "number is undefined (e.g. no principal component converged: the criterion is "
        "relative to the initial spread, see docs/studies.md) (rules: "
        "`biasvar.report.document.simplicity_table`). " + simplicity_words(table), "",
        markdown_table(show), ""]


def add_studies(rep: Report, tradeoff: pd.DataFrame | None, ridgeless: pd.DataFrame | None,
                spectral: pd.DataFrame | None, erank: pd.DataFrame | None,
                style: Style, learned_at: float = 0.9) -> None:
    """Append the companion studies' figures; captions state the measured shapes."""
    if tradeoff is not None:
        t = tradeoff.sort_values("hidden_units")
        d = t.hidden_units.to_numpy()
        total = wording.shape(d, t.total.to_numpy())
        u = ("U-shaped, lowest" if total["kind"] == "valley" else
             f"{total['kind']}, lowest")
        rep.figures.append(Figure(
            "tradeoff", "Classical trade-off (toy regression)",
            f"Noise, bias², variance and their sum against the number of hidden units D of the "
            f"fixed-first-layer model, with the independently measured test loss: "
            f"{wording.describe(d, t.bias2.to_numpy(), 'bias²', 'D')}, "
            f"{wording.describe(d, t.variance.to_numpy(), 'variance', 'D')}, and the total is "
            f"{u} at D = {total['x_min']:g} ({total['y_min']:.3f}; noise floor "
            f"{t.noise.iloc[0]:.2f}).",
            plots.tradeoff_figure(tradeoff, style)))
    if ridgeless is not None:
        peak = ridgeless.loc[ridgeless.test_mse_median.idxmax()]
        n = int(ridgeless.n_train.iloc[0])
        after = ridgeless[ridgeless.n_features > n]
        best_after = after.loc[after.test_mse_median.idxmin()] if len(after) else None
        tail = (f"; past P = N it descends to {best_after.test_mse_median:.3g} at P = "
                f"{int(best_after.n_features)}" if best_after is not None
                and best_after.test_mse_median < peak.test_mse_median else
                "; it does not descend past P = N" if best_after is not None else "")
        where = (f"at the interpolation threshold P = N = {n}" if int(peak.n_features) == n
                 else f"at P = {int(peak.n_features)}, not at the threshold P = N = {n}")
        rep.figures.append(Figure(
            "ridgeless", "Double descent (min-norm least squares)",
            f"Median train and test MSE of min-norm Legendre-feature fits against the number of "
            f"features P (log-log): the median test error is highest "
            f"({peak.test_mse_median:.3g}) {where}{tail}.",
            plots.ridgeless_figure(ridgeless, style)))
    if spectral is not None:
        rep.figures.append(Figure(
            "spectral", "Spectral bias",
            "Normalized DFT magnitude of the network's prediction at each target frequency "
            "against training step, one heatmap per configuration; "
            + spectral_words(spectral, learned_at),
            plots.spectral_figure(spectral, style)))
    if erank is not None:
        parts = []
        for p, d in erank.groupby("label_noise"):
            d = d.sort_values("width")
            w = d.width.to_numpy()
            parts.append(f"{plots._noise_label(p)}: "
                         + wording.describe(w, d.erank_mean.to_numpy(), "the effective rank",
                                            digits=3) + ", "
                         + wording.describe(w, d.erank_ratio_mean.to_numpy(),
                                            "its fraction of the width", digits=2))
        rep.figures.append(Figure(
            "effective_rank", "Effective rank of embeddings",
            f"Effective rank (Roy & Vetterli) of each member's penultimate-layer test "
            f"embeddings against width; {'; '.join(parts)}.",
            plots.erank_figure(erank, style)))


def collapse_words(summary: pd.DataFrame, model: pd.DataFrame) -> str:
    """The binary study's caption sentences, computed from its per-width summary and the
    model curve (``c``, ``log_bias2``, ``log_var``; its first row is c = 0)."""
    logistic_sd = np.pi / np.sqrt(3.0)
    at_zero = model.sort_values("c").iloc[0]
    ratio_at_zero = at_zero.log_bias2 / at_zero.log_var
    s = summary.sort_values("width")
    w = s.width.to_numpy()
    first, last = s.iloc[0], s.iloc[-1]
    inside = s.ratio_in_range.min()
    return (
        f"On the members' training examples "
        f"{wording.describe(w, s.nc1_train.to_numpy(), 'NC1', digits=3)}; member train error "
        f"{first.member_train_error:.3f} at width {int(first.width)} and "
        f"{last.member_train_error:.3f} at width {int(last.width)}; member test error "
        f"{first.member_test_error:.3f} → {last.member_test_error:.3f}. Alignment on correctly "
        f"classified test examples: slope {first.slope:.2f} (R² {first.r2:.2f}) at width "
        f"{int(first.width)}, {last.slope:.2f} (R² {last.r2:.2f}) at width {int(last.width)}. "
        f"Assumption 5.1 (unit Gumbel noise) puts the members' margin sd at π/√3 = "
        f"{logistic_sd:.2f}; measured medians are {s.margin_sd_median.min():.1f}–"
        f"{s.margin_sd_median.max():.1f}, so at each example's own mean margin the model's "
        f"log variance is below the measured one by a median {s.chen_log_var_error.min():.1f}–"
        f"{s.chen_log_var_error.max():.1f} and its log bias² by "
        f"{s.chen_log_bias2_error.min():.1f}–{s.chen_log_bias2_error.max():.1f}. With the noise "
        f"scaled to each example's measured spread the model's slope is "
        f"{last.scaled_slope:.2f} at width {int(last.width)} (measured {last.slope:.2f}): "
        f"logistic noise makes log variance grow half as fast as log bias² for confident "
        f"examples (ratio → 2), not at the same rate. "
        f"The ratio log bias² / log var of correct examples has median "
        f"{s.ratio_median.min():.2f}–{s.ratio_median.max():.2f}; at every width at least "
        f"{100 * inside:.1f} % lie in the model's range [{ratio_at_zero:.3f}, 2], but "
        f"the upper end holds for every correctly classified example whatever the model "
        f"(var ≤ p̄(1 − p̄) < √bias²), so only the lower end tests it."
    )


def add_collapse(rep: Report, summary: pd.DataFrame, examples: pd.DataFrame,
                 model: pd.DataFrame, style: Style) -> None:
    """The binary neural-collapse figure (after the alignment and calibration figures);
    ``model``: Assumption 5.1's curve as the collapse stage wrote it."""
    fig = Figure(
        "collapse", "Neural collapse, binary (Chen et al. Sec. 5)",
        "Two MNIST-1D classes, MLP ensembles with two outputs across widths. Top: log variance "
        "against log bias² of the true-class probability per test example (plug-in), with the "
        "curve of Chen et al.'s Assumption 5.1 (member logits = scaled ETF + i.i.d. standard "
        "Gumbel noise, so the margin is c + standard logistic) for c ≥ 0, and the same model "
        "with the noise scaled to each example's measured margin spread (grey). Bottom: NC1, "
        "margins, slopes against width. " + collapse_words(summary, model),
        plots.collapse_figure(examples, summary, model, style))
    at = max((i for i, f in enumerate(rep.figures) if f.name.startswith(("alignment",
                                                                         "calibration"))),
             default=len(rep.figures) - 1)
    rep.figures.insert(at + 1, fig)


def spectral_words(spectral: pd.DataFrame, learned_at: float = 0.9) -> str:
    """Per configuration: which frequency reaches ``learned_at`` of its amplitude first,
    whether it is the lowest, and the rank correlation of frequency and learning step."""
    from scipy.stats import spearmanr

    parts = []
    for c, d in spectral.groupby("config"):
        reached = d[d.normalized_magnitude >= learned_at]
        step = reached.groupby("frequency").step.min()
        if not len(step):
            parts.append(f"{c}: no frequency reaches {learned_at}")
            continue
        lowest = d.frequency.min()
        first = step.idxmin()
        which = "the lowest" if first == lowest else f"not the lowest, {lowest:g}"
        text = f"{c}: k = {first:g} first ({which}; step {int(step.min())})"
        if len(step) >= 3:
            rho = spearmanr(step.index.to_numpy(), step.to_numpy()).statistic
            text += f", Spearman ρ(k, step) = {rho:.2f} over {len(step)} learned frequencies"
        parts.append(text)
    return (f"the first frequency to reach {learned_at} of its amplitude, per configuration: "
            + "; ".join(parts) + ".")
