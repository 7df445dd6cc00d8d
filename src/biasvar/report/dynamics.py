"""The report's training-dynamics section: figures and computed captions.

Everything here reads the ``dynamics`` stage's tables (``data/dynamics/summary.csv``,
``fits.csv``) for the figures and its metrics (``data/metrics/dynamics.json``: per
level and width, the curves over the checkpoint steps) for the captions, so that a test
can recompute every caption from the report's ``metrics.json``.

Epoch-wise double descent (Nakkiran et al. 2019) is called when the mean-member test
error of the widest width has an interior local maximum over the checkpoint steps at
least ``DD_RISE`` above the lowest error before it and ``DD_RISE`` above the last
step's (``report.headline.interior_peak`` over steps, as the model-wise peak is called
over widths); a model-wise peak at a step is an interior maximum over widths at least
``DD_RISE`` above the lowest error at a narrower width.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from biasvar.report import wording
from biasvar.report.config import Style
from biasvar.report.headline import interior_peak

DD_RISE = 0.01  # 1 point of test error: a peak smaller than this is not called a peak


def levels(curves: dict) -> list[tuple[float, dict]]:
    """``(label_noise, {width: entry})`` sorted by level, from a stage's ``curves``
    (``noise-<p>`` -> ``width-<w>`` -> entry: ``dynamics.json`` and ``shift.json``)."""
    out = []
    for key, per_width in curves.items():
        p = float(key.split("-", 1)[1])
        out.append((p, {int(k.split("-")[1]): v for k, v in per_width.items()}))
    return sorted(out, key=lambda t: t[0])


def _vals(c: dict, key: str) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in c[key]])


def epochwise(steps: list[int], err: list[float]) -> dict | None:
    """The epoch-wise peak of a test-error curve over steps: ``{"step", "error",
    "min_step", "min_error", "final_error", "rise", "fall"}``, or None when no interior
    maximum rises ``DD_RISE`` above both the lowest error before it and the last one."""
    s, rise, fall = interior_peak(list(steps), list(err))
    if s is None or rise < DD_RISE or fall < DD_RISE:
        return None
    i = list(steps).index(s)
    j = int(np.argmin(err[:i]))
    return {"step": int(s), "error": float(err[i]), "min_step": int(steps[j]),
            "min_error": float(err[j]), "final_error": float(err[-1]), "rise": float(rise),
            "fall": float(fall)}


def modelwise(curve_by_width: dict[int, dict]) -> list[dict]:
    """Per checkpoint step, the model-wise peak of the mean-member test error over widths:
    ``{"step", "width"}`` (None when there is none) plus ``rise`` and ``fall`` as in
    ``interior_peak``."""
    widths = sorted(curve_by_width)
    steps = curve_by_width[widths[0]]["step"]
    out = []
    for i, step in enumerate(steps):
        err = [float(curve_by_width[w]["member_test_error"][i]) for w in widths]
        w, rise, fall = interior_peak(widths, err)
        called = w is not None and rise >= DD_RISE
        out.append({"step": int(step), "width": int(w) if called else None,
                    "rise": float(rise), "fall": float(fall)})
    return out


def dynamics_words(curves: dict) -> str:
    """Per level, at the widest width: the shape of the mean-member test error over steps
    (epoch-wise double descent or not), of bias² and of variance; and the comparison
    with Nakkiran et al. where labels are noisy."""
    out = []
    for p, by_w in levels(curves):
        w = max(by_w)
        c = by_w[w]
        steps, err = c["step"], list(_vals(c, "member_test_error"))
        ew = epochwise(steps, err)
        if ew:
            e = (f"epoch-wise double descent: the mean-member test error falls to "
                 f"{ew['min_error']:.3f} at step {ew['min_step']}, rises "
                 f"{100 * ew['rise']:.1f} points to {ew['error']:.3f} at step {ew['step']} "
                 f"and ends at {ew['final_error']:.3f} at step {steps[-1]}")
        else:
            j = int(np.nanargmin(err))
            rise = err[-1] - err[j]
            if rise >= DD_RISE:  # a U over time: overfitting without a second descent
                e = (f"no epoch-wise double descent: the mean-member test error falls from "
                     f"{err[0]:.3f} to its minimum {err[j]:.3f} at step {steps[j]}, then "
                     f"rises {100 * rise:.1f} points to {err[-1]:.3f} at step {steps[-1]} "
                     "without falling again")
            else:
                e = ("no epoch-wise peak: "
                     + wording.describe(steps, err, "the mean-member test error", "step"))
        terms = (wording.describe(steps, _vals(c, "bias2"), "bias²", "step") + ", "
                 + wording.describe(steps, _vals(c, "variance"), "variance", "step"))
        ib = _vals(c, "in_bag_error")
        out.append(f"{wording.noise_label(p)}, width {w}: {e}; {terms}; in-bag error "
                   f"{ib[0]:.3f} at step {steps[0]} and {ib[-1]:.3f} at the last step")
        if p > 0:
            out[-1] += ("; Nakkiran et al. (2019) report epoch-wise double descent for wide "
                        "models trained under 10-20 % label noise, " +
                        ("and this run shows it" if ew else "and this run does not show it "
                         "at these checkpoints (a peak between two of them would be missed)"))
    text = "; ".join(out) + "."
    return text[0].upper() + text[1:]


def epochwise_widths(curve_by_width: dict[int, dict]) -> list[int]:
    """The widths whose mean-member test error has an epoch-wise peak (``epochwise``)."""
    return [w for w in sorted(curve_by_width)
            if epochwise(curve_by_width[w]["step"],
                         [float(v) for v in curve_by_width[w]["member_test_error"]])]


def _widths(ws: list[int]) -> str:
    return ("width " if len(ws) == 1 else "widths ") + ", ".join(map(str, ws))


def late_rise_widths(curve_by_width: dict[int, dict]) -> list[int]:
    """The widths whose mean-member test error ends at least ``DD_RISE`` above its lowest
    checkpoint (it rises again late in training: epoch-wise overfitting)."""
    out = []
    for w in sorted(curve_by_width):
        err = [float(v) for v in curve_by_width[w]["member_test_error"]]
        if err[-1] - min(err) >= DD_RISE:
            out.append(w)
    return out


def heatmap_words(curves: dict) -> str:
    """Per level: the widths with an epoch-wise peak, the first checkpoint step with a
    model-wise peak, its width, and the peak at the last step."""
    out = []
    for p, by_w in levels(curves):
        ew = epochwise_widths(by_w)
        ew_text = (f"epoch-wise peaks at {_widths(ew)}" if ew
                   else "no width has an epoch-wise peak")
        late = late_rise_widths(by_w)
        if late:
            ew_text += (f", and the error ends at least {100 * DD_RISE:g} point above its "
                        f"lowest checkpoint at {_widths(late)}")
        mw = modelwise(by_w)
        first = next((m for m in mw if m["width"] is not None), None)
        last = mw[-1]
        if first is None:
            out.append(f"{wording.noise_label(p)}: {ew_text}; no checkpoint step has a "
                       "model-wise peak")
            continue
        s = (f"{wording.noise_label(p)}: {ew_text}; the model-wise peak first appears at step "
             f"{first['step']} (width {first['width']}, {100 * first['rise']:.1f} points "
             "above the lowest error at a narrower width)")
        if last["width"] is not None:
            s += (f" and at the last step lies at width {last['width']} "
                  f"({100 * last['rise']:.1f} points)")
        else:
            s += "; the last step has none"
        out.append(s)
    text = "; ".join(out) + "."
    return text[0].upper() + text[1:]


def slope_words(curves: dict) -> str:
    """Per level: the alignment slope at the first and last checkpoint of the narrowest and
    the widest width."""
    out = []
    for p, by_w in levels(curves):
        parts = []
        for w in sorted({min(by_w), max(by_w)}):
            sl = _vals(by_w[w], "slope")
            steps = by_w[w]["step"]
            parts.append(f"width {w} {sl[0]:.2f} at step {steps[0]} → {sl[-1]:.2f} at step "
                         f"{steps[-1]}")
        out.append(f"{wording.noise_label(p)}: " + ", ".join(parts))
    return "Alignment slope " + "; ".join(out) + "."


# ---------------------------------------------------------------- figures
def _step_axis(ax, steps) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("training step")


def _width_colors(widths) -> dict:
    import seaborn as sns

    colors = sns.color_palette("viridis", len(widths))
    return dict(zip(sorted(widths), colors, strict=True))


TERMS = (("member_error", "mean-member test error"), ("mse_bias2", "bias²"),
         ("mse_var", "variance"), ("in_bag_error", "in-bag training error"))


def terms_figure(summary: pd.DataFrame, style: Style):
    """Rows: label-noise levels; columns: member test error, bias², variance, in-bag
    error against the training step (log), one line per width, bands: 95 % intervals."""
    import matplotlib.pyplot as plt

    levels = sorted(summary.label_noise.unique())
    widths = sorted(summary.width.unique())
    col = _width_colors(widths)
    fig, axes = plt.subplots(len(levels), len(TERMS), squeeze=False, constrained_layout=True,
                             figsize=(style.panel_size * len(TERMS),
                                      style.panel_size * len(levels)))
    for r, p in enumerate(levels):
        for c, (q, name) in enumerate(TERMS):
            ax = axes[r, c]
            for w in widths:
                d = summary[(summary.label_noise == p) & (summary.width == w)
                            & (summary.quantity == q)].sort_values("step")
                ax.plot(d.step, d.value, marker="o", ms=2.5, lw=1.2, color=col[w],
                        label=f"{w}")
                if d.ci_low.notna().any() and q != "mse_bias2" and q != "mse_var":
                    ax.fill_between(d.step, d.ci_low, d.ci_high, color=col[w], alpha=0.15,
                                    lw=0)
            _step_axis(ax, summary.step.unique())
            ax.set_title(f"{name}\n{wording.noise_label(p)}", fontsize="small")
    axes[0, -1].legend(title="width", fontsize="x-small", title_fontsize="x-small", ncol=2)
    fig.suptitle("Bias, variance and error over training time (test set; plug-in MSE terms "
                 "on probabilities)")
    return fig


def heatmap_figure(summary: pd.DataFrame, style: Style):
    """Width x step heatmaps of the mean-member test error and of the variance; one
    column per label-noise level: model-wise (rows) and epoch-wise (columns of a panel)
    double descent in one picture (Nakkiran et al. 2019, their Fig. 2)."""
    import matplotlib.pyplot as plt

    levels = sorted(summary.label_noise.unique())
    rows = (("member_error", "mean-member test error"), ("mse_var", "variance"))
    fig, axes = plt.subplots(len(rows), len(levels), squeeze=False, constrained_layout=True,
                             figsize=(1.4 * style.panel_size * len(levels),
                                      style.panel_size * len(rows)))
    for r, (q, name) in enumerate(rows):
        d = summary[summary.quantity == q]
        vmin, vmax = d.value.min(), d.value.max()  # one scale per row: levels compare
        for c, p in enumerate(levels):
            ax = axes[r, c]
            grid = d[d.label_noise == p].pivot(index="width", columns="step", values="value")
            im = ax.imshow(grid.to_numpy(), aspect="auto", origin="lower", cmap="magma",
                           vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks(range(grid.shape[1]), [f"{s:g}" for s in grid.columns],
                          rotation=60, fontsize="x-small")
            ax.set_yticks(range(grid.shape[0]), [f"{w:g}" for w in grid.index],
                          fontsize="x-small")
            ax.set_xlabel("training step (checkpoints, log-spaced)")
            ax.set_ylabel("width")
            ax.set_title(f"{name}, {wording.noise_label(p)}", fontsize="small")
            ax.grid(False)
        fig.colorbar(im, ax=axes[r, :].tolist(), shrink=0.9, label=name)
    fig.suptitle("Model-wise and epoch-wise: test error and variance over width x steps")
    return fig


def slope_figure(fits: pd.DataFrame, style: Style):
    """The alignment slope (plug-in, correct examples) against the step, one line per
    width, bands: bootstrap intervals over examples; one panel per label-noise level."""
    import matplotlib.pyplot as plt

    levels = sorted(fits.label_noise.unique())
    widths = sorted(fits.width.unique())
    col = _width_colors(widths)
    fig, axes = plt.subplots(1, len(levels), squeeze=False, constrained_layout=True,
                             figsize=(1.3 * style.panel_size * len(levels), style.panel_size))
    for ax, p in zip(axes[0], levels, strict=True):
        for w in widths:
            d = fits[(fits.label_noise == p) & (fits.width == w)].sort_values("step")
            ax.plot(d.step, d.slope, marker="o", ms=2.5, lw=1.2, color=col[w], label=f"{w}")
            if d.slope_ci_low.notna().any():
                ax.fill_between(d.step, d.slope_ci_low, d.slope_ci_high, color=col[w],
                                alpha=0.15, lw=0)
        ax.axhline(1.0, ls="--", color="0.4", lw=1)
        _step_axis(ax, fits.step.unique())
        # early slopes can be far below 0 (about -25 at step 8 for narrow nets): symlog
        # keeps them visible and the region around 1 linear
        ax.set_yscale("symlog", linthresh=2)
        from matplotlib.ticker import FixedLocator, FormatStrFormatter

        lo = float(np.nanmin(fits.slope)) if fits.slope.notna().any() else 0.0
        ticks = [t for t in (-50, -20, -10, -5, -2, -1, 0, 1, 2) if t >= min(lo, -1) * 1.05]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.set_title(wording.noise_label(p), fontsize="small")
    axes[0, 0].set_ylabel("slope of log var on log bias²")
    axes[0, -1].legend(title="width", fontsize="x-small", title_fontsize="x-small", ncol=2)
    fig.suptitle("Bias-variance alignment over training time")
    return fig


def add_dynamics(rep, summary: pd.DataFrame, fits: pd.DataFrame, metrics: dict,
                 style: Style) -> None:
    """The three dynamics figures with their computed captions (``metrics``: the dynamics
    stage's JSON); nothing when the source has no checkpoints."""
    from biasvar.report.document import Figure

    curves = metrics.get("curves") or {}
    if not len(summary) or not curves:
        return
    steps = ", ".join(str(s) for s in metrics["steps"])
    rep.figures.append(Figure(
        "dynamics", "Bias and variance over training time",
        f"Every member's test logits kept at the checkpoint steps {steps} (train.checkpoints, "
        "log-spaced; the last is the final step, so its numbers are the final ones) and "
        "decomposed like the final logits: mean-member test error, plug-in bias² and "
        "variance (MSE on probabilities) and the members' in-bag training error, one line "
        "per width; bands: 95 % intervals over draws (member means; the bias² and variance "
        "intervals, of the unbiased estimators, are in data/dynamics/summary.csv). The "
        "plug-in bias² is high by about variance / K at every step (K: the members). "
        + dynamics_words(curves),
        terms_figure(summary, style)))
    rep.figures.append(Figure(
        "dynamics_heatmap", "Model-wise and epoch-wise double descent in one picture",
        "Mean-member test error (top) and variance (bottom) over width (rows) and "
        "checkpoint step (columns), clean and noisy labels side by side, one colour scale "
        "per row (Nakkiran et al. 2019, Fig. 2, plot test error over width x epochs). A "
        f"peak is called when it is at least {100 * DD_RISE:g} point above the lowest error "
        "before it. " + heatmap_words(curves),
        heatmap_figure(summary, style)))
    rep.figures.append(Figure(
        "dynamics_alignment", "Alignment over training time",
        "Slope of log variance on log bias² over the correctly classified test examples "
        "(plug-in MSE terms, as in the alignment figure) at each checkpoint, one line per "
        "width; bands: 95 % percentile bootstrap over examples (members fixed); dashed: "
        "slope 1. The slope is a plug-in fit at this ensemble size (the ensemble-size "
        "figure shows how it moves with K). " + slope_words(curves),
        slope_figure(fits, style)))
