"""Build a report folder: figures (PNG), metrics JSON, generated fragments and README.md.

``main_report`` and the ``add_*`` functions draw every figure of
``biasvar.report.figures`` from the tables and give each a caption: a fixed
description of what is drawn plus sentences from ``biasvar.report.wording``,
which state what the numbers show. ``write_report`` saves the figures, renders
the README from the template ``templates/report.md.j2`` (figures with their
captions, then the key-number, population and simplicity sections), writes the
metrics JSON and the fragments of ``biasvar.report.fragments`` rendered from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasvar.report import figures as plots
from biasvar.report import wording
from biasvar.report.config import Style
from biasvar.report.wording import (
    alignment_words,
    calibration_words,
    collapse_words,
    double_descent_words,
    erank_depth_words,
    erank_words,
    in_bag_words,
    interval_text,
    pc_bias_words,
    ridgeless_words,
    simplicity_words,
    size_words,
    spectral_cls_words,
    spectral_words,
    terms_words,
    tradeoff_words,
    variance_peak_words,
)

TEMPLATE = "report.md.j2"  # in biasvar/report/templates


@dataclass
class Figure:
    """One figure of the report: its file stem, title, caption and matplotlib figure."""

    name: str  # file stem
    title: str
    caption: str  # what the figure shows, with the numbers (biasvar.report.wording)
    fig: object


@dataclass
class Report:
    """A report being built: the title, the figures in order, the values of the
    template's sections after them, and the numbers the report computed from the
    tables that no stage's metrics hold (``metrics.json`` key ``report``)."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    # template section -> its values: "key_numbers" (table), "population" (intervals,
    # table), "simplicity" (rho_cut, words, table); the template fixes their order
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)


# What a decomposition written before providers existed was computed on.
MNIST1D_DATA = {"name": "mnist1d", "input_shape": [40], "n_classes": 10, "source": ""}
# Display names of the providers (``data.name``); the default title reads "... on MNIST-1D".
DATASET_NAMES = {"mnist1d": "MNIST-1D", "digits": "digits", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100"}


def dataset_title(data: dict) -> str:
    """The data as the report's title names it: ``MNIST-1D`` for the default dataset;
    otherwise the provider (a user's ``arrays`` by its file's name) with one input's shape
    and the class count, e.g. ``digits (inputs 1×8×8, 10 classes)``."""
    name = str(data.get("name", "mnist1d"))
    if name == "import":  # a user's ensemble: its file, and what it says of the data
        return f"{Path(str(data.get('source', 'ensemble'))).name}, {data.get('n_classes')} classes"
    shape = [int(s) for s in data.get("input_shape", [40])]
    n_classes = int(data.get("n_classes", 10))
    shown = DATASET_NAMES.get(name, name)
    if name == "arrays" and data.get("source"):
        shown = Path(str(data["source"])).name  # the user's file: more telling than "arrays"
    if name == "mnist1d" and shape == [40] and n_classes == 10:
        return shown  # the default report's title, unchanged
    return f"{shown} (inputs {'×'.join(map(str, shape))}, {n_classes} classes)"


def threshold_width(arch: str, depth: int, residual: bool, n_train: int,
                    widths: list[int], input_shape: tuple[int, ...] = (40,),
                    n_classes: int = 10) -> float | None:
    """Width at which a member's parameter count equals ``n_train`` (log-interpolated).

    None when the sweep does not cross it or the architecture has no width (or,
    for a user's ``module``, no parameter count known without importing it).
    """
    from biasvar.ensemble.models import n_parameters

    if arch in ("logistic", "module"):
        return None
    grid = np.unique(np.geomspace(1, max(widths) * 4, 400).astype(int))
    counts = np.array([n_parameters(arch, int(w), depth, residual, input_shape, n_classes)
                       for w in grid])
    i = np.searchsorted(counts, n_train)
    if i == 0 or i == len(grid):
        return None
    # interpolate in log-width between the two grid points around n_train
    w0, w1, c0, c1 = grid[i - 1], grid[i], counts[i - 1], counts[i]
    t = (n_train - c0) / (c1 - c0)
    w = float(np.exp(np.log(w0) + t * (np.log(w1) - np.log(w0))))
    return w if min(widths) <= w <= max(widths) else None


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


def render_readme(report: Report) -> str:
    """The report's README.md: ``templates/report.md.j2`` filled with the report's title,
    figures (title, file, caption) and sections."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("biasvar.report", "templates"),
        # Markdown, not HTML: no escaping; a misspelt variable fails instead of printing ""
        autoescape=False, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True)
    text = env.get_template(TEMPLATE).render(title=report.title, figures=report.figures,
                                             sections=report.sections)
    return text.rstrip() + "\n"


def _number(x: Any) -> Any:
    """A JSON-safe number for ``metrics.json``: 6 significant digits, None for NaN / inf."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else None


def report_metrics(metrics: dict, report: Report) -> dict:
    """What ``metrics.json`` holds: the stages' metrics plus, under ``report``, the
    numbers the report computed (``Report.numbers``) when there are any."""
    return {**metrics, "report": report.numbers} if report.numbers else dict(metrics)


def write_report(report: Report, out_dir: str | Path, metrics: dict, dpi: int) -> None:
    """Save figures, README, ``metrics.json`` and the fragments into ``out_dir``, replaced
    atomically as a whole.

    The fragments (``biasvar.report.fragments``) are rendered from the JSON text written
    to ``metrics.json``, read back: the same input as when they are regenerated from the
    committed file."""
    import matplotlib.pyplot as plt

    from biasvar.core.io import atomic_dir
    from biasvar.report import fragments

    with atomic_dir(out_dir) as tmp:
        for fg in report.figures:
            # Agg PNGs carry a Software tag but no timestamp: same inputs, same bytes.
            fg.fig.savefig(tmp / f"{fg.name}.png", dpi=dpi, metadata={"Software": None})
            plt.close(fg.fig)
        (tmp / "README.md").write_text(render_readme(report))
        text = json.dumps(report_metrics(metrics, report), indent=2) + "\n"
        (tmp / "metrics.json").write_text(text)
        for name, fragment in fragments.render(json.loads(text)).items():
            (tmp / name).write_text(fragment, encoding="utf-8")


def main_report(examples: pd.DataFrame, summary: pd.DataFrame, reliability: pd.DataFrame,
                fits: pd.DataFrame, curves: pd.DataFrame | None,
                members: pd.DataFrame | None,
                metrics: dict, style: Style, arch: str, depth: int, residual: bool,
                ci: float = 0.95, data: dict | None = None,
                module: str | None = None) -> Report:
    """The main study's figures and key-number table.

    ``ci``: the level of the decomposition's intervals (``decompose.ci``, recorded in
    the decomposition files), stated in the captions.

    ``data``: what the members were trained on (``Dataset.metadata()``: ``name``,
    ``input_shape``, ``n_classes``, ``source``; recorded by ``decompose``), which names
    the dataset in the title and sizes the parameter counts; None: MNIST-1D. ``module``:
    the user's factory (``model.module``), named in the title in place of ``module``.

    ``members``: the per-member table of ``collect`` (in-bag / out-of-bag
    errors, ``n_in_bag`` distinct examples of the member's draw, split method).
    ``curves`` and ``members`` are None for an imported ensemble (``source: import``:
    test logits only, no training run to describe): the report then leaves out the
    figures of training (train and out-of-bag errors, the interpolation threshold,
    training curves) and names the imported file in its title.
    """
    style.apply()
    levels = sorted(summary.label_noise.unique())
    clean = 0.0 if 0.0 in levels else levels[0]
    widths = sorted(summary.width.unique())
    trained = members is not None
    thr = None
    if trained:
        n_train = int((examples[(examples.partition == "train")
                                & (examples.label_noise == clean)
                                & (examples.width == widths[0])]).shape[0])
        # A member is fitted to the distinct examples of its draw (~63 % of n for a
        # bootstrap): that, not n_train, is what its parameters must match to interpolate.
        members = members.astype({"label_noise": summary.label_noise.dtype})  # float32
        n_fit = float(members.n_in_bag.mean())
        methods = sorted(members.split_method.unique())
        data = {**MNIST1D_DATA, **(data or {})}
        thr = threshold_width(arch, depth, residual, n_fit, widths,
                              tuple(data["input_shape"]), int(data["n_classes"]))
        family = module if arch == "module" and module else arch
        title = f"biasvar report: {family} ensembles on {dataset_title(data)}"
    else:  # an imported ensemble: what the file holds, not what params would train
        data = data or {}
        title = f"biasvar report: an imported ensemble ({dataset_title(data)})"
    rep = Report(title=title)
    rep.figures.append(Figure(
        "alignment", "Bias-variance alignment",
        f"Per test example, variance against bias² on log-log axes for each width "
        f"({wording.noise_label(clean)}), with y = x dashed; " + alignment_words(fits, clean),
        plots.alignment_figure(examples, fits, clean, style)))
    rep.figures.append(Figure(
        "bias_variance_width", "Bias and variance vs width",
        "Mean bias², variance and its optimization (within draw) and sampling (across draws) "
        "parts, and ensemble and member test error against width, "
        + ("for clean and noisy labels, " if trained else "")
        + f"{interval_text(summary, ci)}. " + terms_words(summary)
        + variance_peak_words(summary, thr),
        plots.terms_vs_width_figure(summary, style)))
    if trained:
        rep.figures.append(_error_width_figure(examples, summary, members, thr, n_fit,
                                               methods, n_train, style))
    rep.figures.append(Figure(
        "calibration", "Calibration and the alignment gap",
        "Reliability diagram of the ensemble per width (left), ECE of the ensemble and of the "
        "average member vs width (middle), and the alignment gap mean log(variance / bias²) "
        "over correctly classified test examples (right; 0 = on y = x).",
        plots.calibration_figure(reliability, summary, fits, clean, style)))
    if trained:
        rep.figures.append(Figure(
            "training_curves", "Training curves",
            "Median over members (band: interquartile range) of the minibatch training loss "
            "(log scale) and of test accuracy against optimization step, per width and "
            "label-noise level.",
            plots.curves_figure(curves, style)))
    rep.sections["key_numbers"] = {
        "table": markdown_table(key_numbers(summary, fits, members))}
    rep.sections["population"] = {"intervals": interval_text(summary, ci),
                                  "table": markdown_table(population_table(summary))}
    if "mse_diversity" in set(summary.quantity):  # decompositions from before it existed
        rep.sections["diversity"] = {
            "words": wording.diversity_words(summary),
            "table": markdown_table(population_table(summary, DIVERSITY))}
        rep.numbers["diversity"] = population_numbers(summary, DIVERSITY)
    if trained:
        rep.numbers.update({"n_train": n_train, "n_fit": _number(n_fit), "split": methods,
                            "threshold_width": None if thr is None else _number(thr)})
    else:
        rep.numbers.update({"source": "import", "file": data.get("source"),
                            "sha256": data.get("fingerprint")})
    rep.numbers["population"] = population_numbers(summary)
    return rep


def _error_width_figure(examples: pd.DataFrame, summary: pd.DataFrame, members: pd.DataFrame,
                        thr: float | None, n_fit: float, methods: list, n_train: int,
                        style: Style) -> Figure:
    """Test, in-bag and out-of-bag errors against width (a trained ensemble only)."""
    fit_text = (f"the {n_fit:.0f} distinct examples a member is fitted to (mean over draws "
                f"of the {', '.join(methods)} split of the {n_train} training examples)")
    thr_text = (f"the dashed line marks width {thr:.1f}, where a member's parameters equal "
                f"{fit_text}" if thr else
                f"the sweep does not cross parameters = {fit_text}")
    train = examples[(examples.partition == "train") & (examples.oob_members > 0)]
    oob = (train.assign(oob_error=train.oob_prediction != train.label)
           .groupby(["label_noise", "width"], as_index=False).oob_error.mean())
    return Figure(
        "error_width", "Test and train error vs width",
        f"Left: mean-member 0-1 error on the test set (solid), on the distinct examples of "
        f"its own draw (in-bag, dotted) and on the other training examples (out-of-bag, "
        f"dash-dot); right: ensemble error on the test set, on all training examples "
        f"(dotted), and out-of-bag (dash-dot: each training example predicted by the "
        f"members whose draw does not hold it); "
        f"train errors are against the training labels, noisy ones included. "
        f"{in_bag_words(members)} {thr_text[0].upper() + thr_text[1:]}. "
        + double_descent_words(summary, thr),
        plots.error_vs_width_figure(summary, members, thr, style, oob))


def population_table(summary: pd.DataFrame, quantities: dict[str, str] | None = None
                     ) -> pd.DataFrame:
    """One row per config: estimate and interval of each of ``quantities`` (summary name ->
    column; default ``POPULATION``: bias², variance and Neal's parts), on the test set."""
    quantities = POPULATION if quantities is None else quantities
    test = summary[summary.partition == "test"]
    out = []
    for (p, w), d in test.groupby(["label_noise", "width"], sort=True):
        d = d.set_index("quantity")
        row = {"label_noise": float(p), "width": int(w)}
        for q, name in quantities.items():
            r = d.loc[q]
            row[name] = (f"{r.estimate:.4g} ({r.ci_low:.4g}–{r.ci_high:.4g})"
                         if np.isfinite(r.ci_low) else f"{r.estimate:.4g}")
        out.append(row)
    return pd.DataFrame(out)


# The summary quantities of the population-estimate table (and metrics["report"]["population"]).
POPULATION = {"mse_bias2": "bias²", "mse_var": "variance", "var_optimization": "opt. var",
              "var_sampling": "sampling var"}
# Bias-variance-diversity (Wood et al. 2023): the table of the report's diversity section
# (and metrics["report"]["diversity"]); the ensemble is one draw's S seeds.
DIVERSITY = {"mse_loss": "member MSE", "mse_ensemble_loss": "ensemble MSE",
             "mse_diversity": "MSE diversity", "ce_loss": "member CE",
             "ce_ensemble_loss": "ensemble CE", "ce_diversity": "CE diversity"}


def population_numbers(summary: pd.DataFrame, quantities: dict[str, str] | None = None
                       ) -> dict[str, dict[str, dict]]:
    """``noise-<p>`` -> ``width-<w>`` -> quantity (of ``quantities``, default
    ``POPULATION``) -> plug-in mean (``plugin``), population ``estimate`` and its interval
    (``ci_low``, ``ci_high``; None without intervals), on the test set: Neal's split (and
    the diversity terms) for ``biasvar.report.fragments``."""
    quantities = POPULATION if quantities is None else quantities
    test = summary[(summary.partition == "test") & summary.quantity.isin(list(quantities))]
    out: dict[str, dict[str, dict]] = {}
    for (p, w), d in test.groupby(["label_noise", "width"], sort=True):
        d = d.set_index("quantity")
        out.setdefault(f"noise-{float(p):g}", {})[f"width-{int(w)}"] = {
            q: {"plugin": _number(d.loc[q, "value"]), "estimate": _number(d.loc[q, "estimate"]),
                "ci_low": _number(d.loc[q, "ci_low"]), "ci_high": _number(d.loc[q, "ci_high"])}
            for q in quantities}
    return out


def size_numbers(table: pd.DataFrame, extrap: pd.DataFrame) -> dict[str, dict]:
    """Per level at the widest width, per series of ``wording.SIZE_SERIES``
    (``<loss>_<estimator>``): the slope at the smallest and largest K, its K -> infinity
    extrapolation with standard error, and the chi² / dof that decide whether the 1/K
    model fits (None when unchecked), as the alignment-size caption states them."""
    out: dict[str, dict] = {}
    for p in sorted(table.label_noise.unique()):
        t = table[np.isclose(table.label_noise, p) & (table.subset == "correct")]
        w = int(t.width.max())
        t = t[t.width == w]
        e = extrap[np.isclose(extrap.label_noise, p) & (extrap.width == w)
                   & (extrap.subset == "correct") & (extrap.quantity == "slope")]
        level: dict[str, Any] = {"width": w}
        for loss, est, _ in wording.SIZE_SERIES:
            s = t[(t.loss == loss) & (t.estimator == est)].sort_values("n_members")
            x = e[(e.loss == loss) & (e.estimator == est)]
            if s.empty:
                continue
            row = {"k_min": int(s.n_members.iloc[0]), "slope_k_min": _number(s.slope.iloc[0]),
                   "k_max": int(s.n_members.iloc[-1]), "slope_k_max": _number(s.slope.iloc[-1])}
            if len(x):
                x = x.iloc[0]
                row.update(slope_inf=_number(x.value_inf), slope_inf_se=_number(x.value_inf_se),
                           chi2=_number(x.chi2), dof=_number(x.dof))
            level[f"{loss}_{est}"] = row
        out[f"noise-{float(p):g}"] = level
    return out


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
    rep.numbers["alignment_size_fit"] = size_numbers(table, extrap)


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
# A bias "holds" for a config when the number that decides it passes this cut (a wording
# rule: the report's sentences and the fragments state the same cut).
RHO_CUT = wording.RHO_CUT


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


def add_simplicity_summary(rep: Report, table: pd.DataFrame) -> None:
    """The grid's summary table as a Markdown section of the report README."""
    show = table.assign(holds=table.holds.map(
        lambda h: "undecided" if h is None else ("yes" if h else "no")))
    rep.sections["simplicity"] = {"rho_cut": RHO_CUT, "words": simplicity_words(table),
                                  "table": markdown_table(show)}


def add_studies(rep: Report, tradeoff: pd.DataFrame | None, ridgeless: pd.DataFrame | None,
                spectral: pd.DataFrame | None, erank: pd.DataFrame | None,
                style: Style, learned_at: float = 0.9) -> None:
    """Append the companion studies' figures; captions state the measured shapes."""
    if tradeoff is not None:
        rep.figures.append(Figure(
            "tradeoff", "Classical trade-off (toy regression)",
            "Noise, bias², variance and their sum against the number of hidden units D of the "
            "fixed-first-layer model, with the independently measured test loss: "
            + tradeoff_words(tradeoff),
            plots.tradeoff_figure(tradeoff, style)))
    if ridgeless is not None:
        rep.figures.append(Figure(
            "ridgeless", "Double descent (min-norm least squares)",
            "Median train and test MSE of min-norm Legendre-feature fits against the number of "
            "features P (log-log): " + ridgeless_words(ridgeless),
            plots.ridgeless_figure(ridgeless, style)))
    if spectral is not None:
        rep.figures.append(Figure(
            "spectral", "Spectral bias",
            "Normalized DFT magnitude of the network's prediction at each target frequency "
            "against training step, one heatmap per configuration; "
            + spectral_words(spectral, learned_at),
            plots.spectral_figure(spectral, style)))
    if erank is not None:
        rep.figures.append(Figure(
            "effective_rank", "Effective rank of embeddings",
            "Effective rank (Roy & Vetterli) of each member's penultimate-layer test "
            "embeddings against width; " + erank_words(erank),
            plots.erank_figure(erank, style)))


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


