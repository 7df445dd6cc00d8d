"""Paper figures from the decomposition / regression tables (never from models).

Every function takes tidy ``pandas`` frames (as read from the Parquet / CSV
tables) and returns a matplotlib ``Figure``; ``biasvar.report.document`` saves them and
writes the report README. One style for all figures: seaborn's theme, one
colour per label-noise level (``NOISE_PALETTE``), log axes where the data span
decades, units in axis labels.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from biasvar.report import wording  # noqa: E402
from biasvar.report.config import Style  # noqa: E402

CORRECT_COLORS = {True: "#1b9e77", False: "#d95f02"}


def noise_palette(levels) -> dict:
    """One colour per label-noise level: clean blue, noisy levels warm."""
    levels = sorted(levels)
    colors = sns.color_palette("deep", max(len(levels), 2))
    order = [0, 3, 1, 2, 4, 5, 6, 7, 8, 9]
    return {p: colors[order[i % len(order)] % len(colors)] for i, p in enumerate(levels)}


_noise_label = wording.noise_label  # legend and title text, as the captions word it


def tick_labels(widths, min_fraction: float = 0.1) -> list[str]:
    """Labels for ticks at every swept width on a log axis, blank where they would collide.

    A fine grid (8, 12, 16, 20, 24, 28, 32, 36, ...) puts ticks closer than a label
    is wide. Labels are kept in priority order (the two ends, then powers of two,
    then the rest, narrowest first) when they are at least ``min_fraction`` of the
    axis' log span away from every label already kept; the ticks themselves stay.
    """
    ws = sorted(float(w) for w in widths)
    if len(ws) < 2:
        return [f"{w:g}" for w in ws]
    pos = np.log2(ws)
    gap = min_fraction * (pos[-1] - pos[0])
    ends = [0, len(ws) - 1]
    pow2 = [i for i, w in enumerate(ws) if w.is_integer() and int(w) & (int(w) - 1) == 0]
    order = list(dict.fromkeys(ends + pow2 + list(range(len(ws)))))
    kept: list[int] = []
    for i in order:
        if all(abs(pos[i] - pos[j]) >= gap - 1e-12 for j in kept):
            kept.append(i)
    return [f"{w:g}" if i in kept else "" for i, w in enumerate(ws)]


def _width_axis(ax, widths) -> None:
    """Log2 width axis with a tick at every swept width, labelled where labels fit."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    ws = sorted(set(float(w) for w in widths))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ws))
    ax.xaxis.set_major_formatter(FixedFormatter(tick_labels(ws)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("width (hidden units)")


def _facets(n: int, style: Style, max_cols: int = 4):
    cols = min(n, max_cols)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(style.panel_size * cols,
                                                  style.panel_size * rows),
                             squeeze=False, constrained_layout=True)
    for ax in axes.ravel()[n:]:
        ax.remove()
    return fig, axes.ravel()[:n]


# ---------------------------------------------------------------- 1. alignment
def alignment_figure(examples: pd.DataFrame, fits: pd.DataFrame, label_noise: float,
                     style: Style, seed: int = 0) -> plt.Figure:
    """Log-log scatter of per-example bias^2 vs variance, one panel per width.

    ``examples``: decomposition rows (test partition) with ``mse_bias2``,
    ``mse_var``, ``correct``; ``fits``: alignment fits (subset 'correct').
    Points with a zero term cannot be drawn on log axes and are left out
    (the fits table counts them).
    """
    ex = examples[(examples.label_noise == label_noise) & (examples.partition == "test")]
    widths = sorted(ex.width.unique())
    fig, axes = _facets(len(widths), style, max_cols=3)
    rng = np.random.default_rng(seed)
    for ax, w in zip(axes, widths, strict=True):
        d = ex[(ex.width == w) & (ex.mse_bias2 > 0) & (ex.mse_var > 0)]
        if len(d) > style.max_points:
            d = d.iloc[np.sort(rng.choice(len(d), style.max_points, replace=False))]
        for ok in (False, True):
            s = d[d.correct == ok]
            ax.scatter(s.mse_bias2, s.mse_var, s=5, alpha=0.4, lw=0, color=CORRECT_COLORS[ok],
                       label="correct" if ok else "incorrect", rasterized=True)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # per-panel square limits: the data span very different decades per width
        lo = min(d.mse_bias2.min(), d.mse_var.min()) / 2
        hi = max(d.mse_bias2.max(), d.mse_var.max()) * 2
        ax.plot([lo, hi], [lo, hi], ls="--", color="0.4", lw=1, label="y = x")
        f = fits[(fits.label_noise == label_noise) & (fits.width == w)
                 & (fits.subset == "correct")]
        if len(f) and np.isfinite(f.slope.iloc[0]):
            r = f.iloc[0]
            c = d[d.correct]
            xs = np.geomspace(c.mse_bias2.min(), c.mse_bias2.max(), 50)
            ax.plot(xs, np.exp(r.intercept) * xs**r.slope, color="k", lw=1.2,
                    label="OLS fit, correct examples")
            ax.text(0.04, 0.96, f"slope {r.slope:.2f}\n$R^2$ {r.r2:.2f}\nn {int(r.n)}",
                    transform=ax.transAxes, va="top", fontsize="small",
                    bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8, "lw": 0})
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"width {w}")
        ax.set_xlabel("bias² (MSE on probabilities)")
        ax.set_ylabel("variance")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, markerscale=3,
               fontsize="small")
    fig.suptitle(f"Per-example bias-variance alignment, test set, {_noise_label(label_noise)}")
    return fig


# ---------------------------------------------------------------- 2. terms vs width
TERMS = (("mse_bias2", "bias²"), ("mse_var", "variance"),
         ("var_optimization", "optimization variance"), ("var_sampling", "sampling variance"),
         ("ensemble_error", "ensemble test error"), ("member_error", "member test error"))


def _band(ax, d: pd.DataFrame, color, label: str) -> None:
    d = d.sort_values("width")
    ax.plot(d.width, d.value, marker="o", ms=3, color=color, label=label)
    if "estimate" in d and (d.estimate != d.value).any():
        # the population estimate the band is centred on, where it differs from the point
        ax.plot(d.width, d.estimate, ls="--", color=color, lw=1)
    if d.ci_low.notna().any():
        ax.fill_between(d.width, d.ci_low, d.ci_high, color=color, alpha=0.2, lw=0)


def terms_vs_width_figure(summary: pd.DataFrame, style: Style) -> plt.Figure:
    """Bias², variance (total, optimization, sampling) and test errors vs width (test set)."""
    s = summary[summary.partition == "test"]
    pal = noise_palette(s.label_noise.unique())
    fig, axes = _facets(len(TERMS), style, max_cols=3)
    for ax, (q, name) in zip(axes, TERMS, strict=True):
        for p, color in pal.items():
            _band(ax, s[(s.quantity == q) & (s.label_noise == p)], color, _noise_label(p))
        _width_axis(ax, s.width.unique())
        ax.set_ylabel(name + (" (fraction)" if "error" in q else ""))
        ax.set_title(name)
    axes[0].legend(fontsize="x-small")
    fig.suptitle("Bias-variance decomposition vs width (MSE on probabilities, test set)\n"
                 "solid: plug-in; dashed: population estimate; band: its 95 % interval "
                 "(delete-one-draw jackknife)")
    return fig


# ---------------------------------------------------------------- 3. double descent
def error_vs_width_figure(summary: pd.DataFrame, members: pd.DataFrame,
                          threshold_width: float | None, style: Style,
                          oob: pd.DataFrame | None = None) -> plt.Figure:
    """Test, in-bag and out-of-bag error (mean member) and ensemble error vs width.

    ``members``: the per-member table (``in_bag_error``: on the distinct
    examples of the member's draw; ``oob_error``: on the other training
    examples). ``threshold_width``: width at which parameters = distinct
    examples per draw (a vertical line), or None. ``oob``: the out-of-bag
    ensemble's training error per config (``label_noise, width, oob_error``).
    """
    pal = noise_palette(summary.label_noise.unique())
    fig, axes = _facets(2, style, max_cols=2)
    fig.set_size_inches(style.panel_size * 2.4, style.panel_size * 1.2)
    # the same float type as the summary's label_noise (float32 in Parquet), so levels match
    members = members.astype({"label_noise": summary.label_noise.dtype})
    per_config = members.groupby(["label_noise", "width"])[["in_bag_error", "oob_error"]].mean()
    for p, color in pal.items():
        d = summary[(summary.quantity == "member_error") & (summary.label_noise == p)
                    & (summary.partition == "test")].sort_values("width")
        axes[0].plot(d.width, d.value, ls="-", marker="o", ms=3, color=color,
                     label=f"test, {_noise_label(p)}")
        m = per_config.loc[p].sort_index() if p in per_config.index.get_level_values(0) else None
        if m is not None:
            axes[0].plot(m.index, m.in_bag_error, ls=":", marker="o", ms=3, color=color,
                         label=f"in-bag train, {_noise_label(p)}")
            if m.oob_error.notna().any():
                axes[0].plot(m.index, m.oob_error, ls="-.", marker="x", ms=3, color=color,
                             label=f"out-of-bag train, {_noise_label(p)}")
        for part, ls in (("test", "-"), ("train", ":")):
            d = summary[(summary.quantity == "ensemble_error") & (summary.label_noise == p)
                        & (summary.partition == part)].sort_values("width")
            axes[1].plot(d.width, d.value, ls=ls, marker="o", ms=3, color=color,
                         label=f"{part}{' (all examples)' if part == 'train' else ''}, "
                               f"{_noise_label(p)}")
        if oob is not None:
            o = oob[np.isclose(oob.label_noise, p)].sort_values("width")
            axes[1].plot(o.width, o.oob_error, ls="-.", marker="x", ms=3, color=color,
                         label=f"out-of-bag train, {_noise_label(p)}")
    for ax, title in ((axes[0], "mean member"), (axes[1], "ensemble")):
        if threshold_width is not None:
            ax.axvline(threshold_width, color="0.3", ls="--", lw=1,
                       label="parameters = distinct examples per draw")
        _width_axis(ax, summary.width.unique())
        ax.set_ylabel("0-1 error (fraction)")
        ax.set_title(title)
        # beside the panel: the curves fill the whole plotting area
        ax.legend(fontsize="xx-small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0)
    fig.set_size_inches(style.panel_size * 3.6, style.panel_size * 1.3)
    fig.suptitle("Error vs width (train error against the training labels, noisy ones included)")
    return fig


# ---------------------------------------------------------------- 4. calibration
def calibration_figure(reliability: pd.DataFrame, summary: pd.DataFrame, fits: pd.DataFrame,
                       label_noise: float, style: Style) -> plt.Figure:
    """Reliability diagrams (ensemble, test) per width; ECE and the alignment gap vs width."""
    rel = reliability[(reliability.label_noise == label_noise)
                      & (reliability.partition == "test") & (reliability.predictor == "ensemble")]
    widths = sorted(rel.width.unique())
    cmap = sns.color_palette("viridis", len(widths))
    fig, axes = _facets(3, style, max_cols=3)
    fig.set_size_inches(style.panel_size * 3.3, style.panel_size * 1.15)
    ax = axes[0]
    for w, color in zip(widths, cmap, strict=True):
        d = rel[(rel.width == w) & (rel["count"] > 0)]
        ax.plot(d.confidence, d.accuracy, marker="o", ms=3, color=color, label=f"width {w}")
    ax.plot([0, 1], [0, 1], ls="--", color="0.4", lw=1, label="calibrated")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ensemble reliability, {_noise_label(label_noise)}")
    ax.legend(fontsize="xx-small")
    pal = noise_palette(summary.label_noise.unique())
    s = summary[summary.partition == "test"]
    ax = axes[1]
    for p, color in pal.items():
        for q, ls, who in (("ensemble_ece", "-", "ensemble"), ("member_ece", ":", "members")):
            d = s[(s.quantity == q) & (s.label_noise == p)].sort_values("width")
            ax.plot(d.width, d.value, ls=ls, marker="o", ms=3, color=color,
                    label=f"{who}, {_noise_label(p)}")
    _width_axis(ax, s.width.unique())
    ax.set_ylabel("ECE")
    ax.set_title("expected calibration error")
    ax.legend(fontsize="xx-small")
    ax = axes[2]
    f = fits[(fits.subset == "correct")]
    for p, color in pal.items():
        d = f[f.label_noise == p].sort_values("width")
        ax.plot(d.width, d.mean_log_ratio, marker="o", ms=3, color=color, label=_noise_label(p))
    ax.axhline(0, color="0.4", ls="--", lw=1)
    _width_axis(ax, f.width.unique())
    ax.set_ylabel("mean log(variance / bias²)")
    ax.set_title("alignment gap (correct examples)")
    ax.legend(fontsize="xx-small")
    return fig


# ---------------------------------------------------------------- 5. training curves
def curves_figure(curves: pd.DataFrame, style: Style) -> plt.Figure:
    """Median and interquartile band over members of train loss and test accuracy vs step."""
    levels = sorted(curves.label_noise.unique())
    widths = sorted(curves.width.unique())
    cmap = dict(zip(widths, sns.color_palette("viridis", len(widths)), strict=True))
    fig, axes = _facets(2 * len(levels), style, max_cols=2)
    fig.set_size_inches(style.panel_size * 2.4, style.panel_size * 1.1 * len(levels))
    g = curves.groupby(["label_noise", "width", "step"])
    stats = {m: g[m].quantile([0.25, 0.5, 0.75]).unstack() for m in ("train_loss",
                                                                      "test_accuracy")}
    for i, p in enumerate(levels):
        for j, (metric, name, log) in enumerate((("train_loss", "training loss (CE, nats)",
                                                  True),
                                                 ("test_accuracy", "test accuracy", False))):
            ax = axes[2 * i + j]
            st = stats[metric]
            for w in widths:
                d = st.loc[(p, w)]
                ax.plot(d.index, d[0.5], color=cmap[w], lw=1.2, label=f"width {w}")
                ax.fill_between(d.index, d[0.25], d[0.75], color=cmap[w], alpha=0.2, lw=0)
            if log:
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_ylabel(name)
            ax.set_title(_noise_label(p))
    axes[0].legend(fontsize="xx-small", ncol=2)
    fig.suptitle("Training curves: median over members, band = interquartile range")
    return fig


# ---------------------------------------------------------------- companion studies
def tradeoff_figure(tradeoff: pd.DataFrame, style: Style) -> plt.Figure:
    """UDL toy: noise, bias², variance, their sum and the measured test loss vs D."""
    d = tradeoff.sort_values("hidden_units")
    fig, ax = plt.subplots(figsize=(style.panel_size * 1.6, style.panel_size * 1.2),
                           constrained_layout=True)
    x = d.hidden_units
    ax.plot(x, d.bias2, marker="o", ms=3, label="bias²")
    ax.plot(x, d.variance, marker="o", ms=3, label="variance")
    ax.plot(x, d.noise, ls=":", color="0.4", label="noise σ²")
    ax.plot(x, d.total, color="k", lw=1.5, label="noise + bias² + variance")
    ax.errorbar(x, d.test_loss, yerr=2 * d.test_loss_se, fmt="s", ms=3, color="C3",
                label="measured test loss (±2 se)")
    best = d.loc[d.total.idxmin()]
    ax.axvline(best.hidden_units, color="0.6", ls="--", lw=1)
    ax.set_xlabel("hidden units D (fixed first layer)")
    ax.set_ylabel("squared error (target units²)")
    ax.set_title("Classical bias-variance trade-off (UDL 8.2 toy)")
    ax.legend(fontsize="x-small")
    return fig


def ridgeless_figure(ridgeless: pd.DataFrame, style: Style) -> plt.Figure:
    """Min-norm least squares: train and test MSE vs number of features, log-log."""
    d = ridgeless.sort_values("n_features")
    n = int(d.n_train.iloc[0])
    fig, ax = plt.subplots(figsize=(style.panel_size * 1.6, style.panel_size * 1.2),
                           constrained_layout=True)
    ax.plot(d.n_features, d.test_mse_median, marker="o", ms=3, color="C3",
            label="test MSE (median over draws)")
    ax.fill_between(d.n_features, d.test_mse_q25, d.test_mse_q75, color="C3", alpha=0.2, lw=0,
                    label="test MSE interquartile range")
    # train MSE is exactly 0 past the threshold: clip for the log axis
    floor = max(d.test_mse_q25.min() * 1e-3, 1e-12)
    ax.plot(d.n_features, d.train_mse_median.clip(lower=floor), marker="o", ms=3, color="C0",
            label=f"train MSE (median; clipped at {floor:.0e})")
    ax.axvline(n, color="0.3", ls="--", lw=1, label=f"features = samples (P = N = {n})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Legendre features P")
    ax.set_ylabel("mean squared error")
    ax.set_title("Double descent of min-norm least squares")
    ax.legend(fontsize="x-small")
    return fig


def spectral_figure(spectral: pd.DataFrame, style: Style) -> plt.Figure:
    """Heatmap per configuration: normalized DFT magnitude, frequency x training step."""
    configs = sorted(spectral.config.unique())
    fig, axes = _facets(len(configs), style, max_cols=3)
    fig.set_size_inches(style.panel_size * 1.5 * len(axes), style.panel_size * 1.3)
    for ax, c in zip(axes, configs, strict=True):
        d = spectral[spectral.config == c].pivot_table(index="frequency", columns="step",
                                                         values="normalized_magnitude")
        steps = d.columns.to_numpy()
        im = ax.imshow(d.to_numpy(), aspect="auto", origin="lower", cmap="magma", vmin=0,
                       vmax=1, interpolation="nearest",
                       extent=(steps.min(), steps.max(), -0.5, len(d.index) - 0.5))
        ax.set_yticks(range(len(d.index)), [f"{k:g}" for k in d.index])
        ax.set_xlabel("training step")
        ax.set_ylabel("frequency k")
        ax.set_title(c)
        ax.grid(False)
    fig.colorbar(im, ax=list(axes), label="|DFT(f)(k)| / A_k", shrink=0.9)
    fig.suptitle("Spectral bias: low frequencies are fitted first")
    return fig


def pc_bias_figure(table: pd.DataFrame, conv: pd.DataFrame, style: Style) -> plt.Figure:
    """Top row, one panel per config: across-member sd along each principal component
    (relative to initialization) against step, coloured by eigenvalue. Bottom: each PC's
    convergence step against its eigenvalue, per config.

    ``table``: the pc_bias tables with a ``config`` column; ``conv``: per (config, pc)
    ``eigenvalue`` and ``convergence_step`` (NaN: never).
    """
    from matplotlib.colors import LogNorm

    configs = sorted(table.config.unique())
    # at most 5 configs per row pair (sd curves above, convergence steps below)
    cols = min(len(configs), 5)
    pairs = -(-len(configs) // cols)
    fig, grid = plt.subplots(2 * pairs, cols, squeeze=False,
                             figsize=(style.panel_size * 1.3 * cols,
                                      style.panel_size * 2.3 * pairs))
    top = [grid[2 * (i // cols), i % cols] for i in range(len(configs))]
    bottom = [grid[2 * (i // cols) + 1, i % cols] for i in range(len(configs))]
    for i in range(len(configs), pairs * cols):  # empty slots of the last row pair
        grid[2 * (i // cols), i % cols].remove()
        grid[2 * (i // cols) + 1, i % cols].remove()
    axes = [top, bottom]
    ev = table.eigenvalue[table.eigenvalue > 0]
    norm = LogNorm(vmin=ev.min(), vmax=ev.max())
    cmap = plt.get_cmap("viridis")
    for ax, c in zip(axes[0], configs, strict=True):
        d = table[table.config == c]
        for _, g in d.groupby("pc"):
            g = g.sort_values("step")
            ax.plot(g.step, g.sd_ratio, color=cmap(norm(max(g.eigenvalue.iloc[0], ev.min()))),
                    lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(c)
    axes[0][0].set_ylabel("member sd along PC / at init")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.subplots_adjust(right=0.9, hspace=0.45)
    fig.colorbar(sm, cax=fig.add_axes((0.92, 0.3, 0.012, 0.4)), label="eigenvalue of the PC")
    steps_max = float(table.step.max())
    for ax, c in zip(axes[1], configs, strict=True):
        d = conv[conv.config == c]
        done = d.convergence_step.notna()
        ax.scatter(d.eigenvalue[done], d.convergence_step[done], s=10, color="C0",
                   label="converged")
        ax.scatter(d.eigenvalue[~done], np.full((~done).sum(), steps_max * 1.05), s=10,
                   marker="^", color="C3", label="not converged (drawn above the last step)")
        ax.set_xscale("log")
        ax.set_xlabel("eigenvalue")
        ax.set_ylim(0, steps_max * 1.12)
    axes[1][0].set_ylabel("convergence step")
    axes[1][0].legend(fontsize="xx-small", loc="upper right")
    fig.suptitle("Principal-component bias: members agree first along large-eigenvalue PCs")
    return fig


def spectral_cls_figure(table: pd.DataFrame, style: Style) -> plt.Figure:
    """One panel per config: the energy share R_k = log(A_k / sum A) of the detrended logits
    along input paths against frequency k, minus its value at the first logged step after
    initialization, one line per logged step (colour: step; dashed: initialization). Last
    panel: the frequency centroid sum k A_k / sum A_k against step, every config.

    ``table``: the spectral_cls tables with a ``config`` column.
    """
    from matplotlib.colors import Normalize

    configs = sorted(table.config.unique())
    fig, axes = _facets(len(configs) + 1, style, max_cols=3)
    norm = Normalize(vmin=0, vmax=float(table.step.max()))
    cmap = plt.get_cmap("viridis")
    for ax, c in zip(axes, configs, strict=False):
        d = table[table.config == c]
        # R_k spans ~13 nats (A_k ~ k^-4: a piecewise-linear function's spectrum), so the
        # change since the first logged step is drawn: > 0 where a frequency's share grew
        first = d[d.step == sorted(d.step.unique())[1]].set_index("k").log_ratio
        for step, g in d.groupby("step"):
            g = g.sort_values("k")
            ax.plot(g.k, g.log_ratio.to_numpy() - first.loc[g.k].to_numpy(),
                    color=cmap(norm(step)), lw=0.9, ls="--" if step == 0 else "-")
        ax.axhline(0, color="0.4", lw=0.6)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("frequency k (cycles per path)")
        ax.set_ylabel("R_k − R_k at the first logged step")
        ax.set_title(c, fontsize="small")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=list(axes[:len(configs)]), label="step (dashed: init)",
                 shrink=0.8)
    ax = axes[-1]
    for i, c in enumerate(configs):
        d = table[table.config == c]
        cen = d.groupby("step").apply(lambda g: (g.k * g.energy).sum() / g.energy.sum(),
                                      include_groups=False)
        ax.plot(cen.index, cen.to_numpy(), marker="o", ms=2, color=f"C{i}", label=c)
    ax.set_xlabel("training step")
    ax.set_ylabel("frequency centroid Σ k A_k / Σ A_k")
    ax.legend(fontsize="xx-small", ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    fig.suptitle("Spectral bias on MNIST-1D classification: logits along input paths")
    return fig


def erank_depth_figure(table: pd.DataFrame, style: Style) -> plt.Figure:
    """One panel per config: effective rank of the test embeddings against depth, at
    initialization (dashed) and trained (solid); members as points, means as lines.

    ``table``: the erank_depth tables with a ``config`` column.
    """
    configs = sorted(table.config.unique())
    fig, axes = _facets(len(configs), style, max_cols=4)
    for ax, c in zip(axes, configs, strict=True):
        d = table[table.config == c]
        for phase, color, ls in (("init", "0.5", "--"), ("trained", "C0", "-")):
            g = d[d.phase == phase]
            ax.scatter(g.depth, g.erank, s=6, color=color, alpha=0.6)
            mean = g.groupby("depth").erank.mean()
            ax.plot(mean.index, mean.to_numpy(), color=color, ls=ls, marker="o", ms=3,
                    label=phase)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("depth (hidden layers)")
        ax.set_title(c, fontsize="small")
        ax.legend(fontsize="xx-small")
    axes[0].set_ylabel("effective rank of test embeddings")
    fig.suptitle("Low-rank simplicity bias: effective rank against depth")
    return fig


def erank_figure(erank: pd.DataFrame, style: Style) -> plt.Figure:
    """Effective rank of penultimate-layer embeddings vs width, and as a fraction of width."""
    pal = noise_palette(erank.label_noise.unique())
    fig, axes = _facets(2, style, max_cols=2)
    fig.set_size_inches(style.panel_size * 2.4, style.panel_size * 1.15)
    for p, color in pal.items():
        d = erank[erank.label_noise == p].sort_values("width")
        axes[0].errorbar(d.width, d.erank_mean, yerr=d.erank_sd, marker="o", ms=3, color=color,
                         capsize=2, label=_noise_label(p))
        axes[1].plot(d.width, d.erank_ratio_mean, marker="o", ms=3, color=color,
                     label=_noise_label(p))
    w = np.array(sorted(erank.width.unique()))
    axes[0].plot(w, w, ls="--", color="0.4", lw=1, label="erank = width")
    axes[0].set_yscale("log", base=2)
    axes[0].set_ylabel("effective rank (mean ± sd over members)")
    axes[1].set_ylabel("effective rank / width")
    axes[1].set_ylim(0, 1)
    for ax in axes:
        _width_axis(ax, w)
        ax.legend(fontsize="x-small")
    fig.suptitle("Effective rank of penultimate-layer embeddings (test set)")
    return fig


def collapse_figure(examples: pd.DataFrame, summary: pd.DataFrame, chen_curve: pd.DataFrame,
                    style: Style, max_points: int = 3000) -> plt.Figure:
    """Binary task: per width, log var against log bias² of test examples with Chen et al.'s
    Assumption 5.1 curve; below, NC1, the members' margin spread and the alignment slope
    against width. ``chen_curve``: columns ``log_bias2``, ``log_var`` along c >= 0."""
    widths = sorted(examples.width.unique())
    n = len(widths)
    fig, axes = plt.subplots(2, max(n, 3), figsize=(style.panel_size * max(n, 3),
                                                     style.panel_size * 2),
                             squeeze=False, constrained_layout=True)
    for ax in axes[0, n:]:
        ax.remove()
    for ax, w in zip(axes[0], widths, strict=False):
        e = examples[(examples.width == w) & (examples.bias2 > 0) & (examples["var"] > 0)]
        if len(e) > max_points:
            e = e.sample(max_points, random_state=0)
        for ok in (True, False):
            d = e[e.correct == ok]
            ax.scatter(np.log(d.bias2), np.log(d["var"]), s=3, alpha=0.4, lw=0,
                       color=CORRECT_COLORS[ok], label="correct" if ok else "misclassified")
        ax.scatter(e.scaled_log_bias2, e.scaled_log_var, s=2, alpha=0.25, lw=0, color="0.5",
                   label="Assumption 5.1, noise scaled")
        ax.plot(chen_curve.log_bias2, chen_curve.log_var, color="k", lw=1.2,
                label="Assumption 5.1 (c ≥ 0)")
        lo = min(np.log(e.bias2).min(), chen_curve.log_bias2.min())
        ax.set_xlim(max(lo, -60), 0.5)
        ax.set_ylim(max(min(np.log(e["var"]).min(), -40), -40), 0.5)
        ax.set_title(f"width {w}")
        ax.set_xlabel("log bias² (true-class prob.)")
        ax.set_ylabel("log variance")
    axes[0, 0].legend(fontsize="xx-small", markerscale=3, loc="lower right")
    s = summary.sort_values("width")
    ax = axes[1, 0]
    ax.plot(s.width, s.nc1_train, marker="o", ms=3, label="NC1, in-bag (train)")
    ax.plot(s.width, s.nc1_test, marker="s", ms=3, label="NC1, test")
    ax.set_yscale("log")
    ax.set_ylabel("NC1 (mean over members)")
    ax = axes[1, 1]
    ax.plot(s.width, s.margin_sd_median, marker="o", ms=3, label="members' margin sd (median)")
    ax.plot(s.width, s.margin_train, marker="s", ms=3, label="mean in-bag margin")
    ax.axhline(np.pi / np.sqrt(3), ls="--", color="0.4", lw=1, label="logistic sd π/√3")
    ax.set_ylabel("logit margin (nats)")
    ax = axes[1, 2]
    ax.plot(s.width, s.slope, marker="o", ms=3, label="measured slope")
    ax.plot(s.width, s.scaled_slope, marker="s", ms=3, label="scaled model's slope")
    ax.plot(s.width, s.ratio_median, marker="^", ms=3, label="median log bias² / log var")
    ax.axhline(1.0, ls="--", color="0.4", lw=1)
    ax.set_ylabel("correct test examples")
    for ax in axes[1, :3]:
        _width_axis(ax, widths)
        ax.legend(fontsize="xx-small")
    fig.suptitle("Binary task: neural collapse and Chen et al.'s Sec. 5 model")
    return fig


# ---------------------------------------------------------------- alignment vs ensemble size
SIZE_SERIES = tuple(  # (loss, estimator, label, line style): the captions' series and order
    (*s, ls) for s, ls in zip(wording.SIZE_SERIES, ("-", "--", ":", "-."), strict=True))


def alignment_size_figure(table: pd.DataFrame, label_noise: float, style: Style) -> plt.Figure:
    """Alignment slope (correct examples) against ensemble size K, one panel per width,
    one line per estimator and loss, with 95 % bootstrap intervals over examples."""
    t = table[np.isclose(table.label_noise, label_noise) & (table.subset == "correct")]
    widths = sorted(t.width.unique())
    fig, axes = _facets(len(widths), style, max_cols=3)
    colors = sns.color_palette("deep", len(SIZE_SERIES))
    for ax, w in zip(axes, widths, strict=True):
        for (loss, est, label, ls), color in zip(SIZE_SERIES, colors, strict=True):
            d = t[(t.width == w) & (t.loss == loss) & (t.estimator == est)].sort_values(
                "n_members")
            if d.empty:
                continue
            ax.plot(d.n_members, d.slope, ls=ls, marker="o", ms=3, color=color, label=label)
            ax.fill_between(d.n_members, d.slope_ci_low, d.slope_ci_high, color=color,
                            alpha=0.15, lw=0)
        ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ks = sorted(t[t.width == w].n_members.unique())
        ax.set_xticks(ks, [str(int(k)) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("ensemble size K (members)")
        ax.set_ylabel("alignment slope")
        ax.set_title(f"width {w}")
    axes[0].legend(fontsize="xx-small")
    fig.suptitle(f"Alignment slope vs ensemble size (nested subsets of whole draws)\n"
                 f"{_noise_label(label_noise)}; correctly classified test examples; bands: 95 % "
                 f"bootstrap over examples")
    return fig


# ---------------------------------------------------------------- calibration intervention
def calibration_intervention_figure(table: pd.DataFrame, style: Style) -> plt.Figure:
    """Member ECE, ensemble ECE and the alignment gap before (solid) and after (dashed)
    per-member temperature scaling, against width, per label-noise level."""
    pal = noise_palette(table.label_noise.unique())
    panels = (("member_ece", "member ECE"), ("ensemble_ece", "ensemble ECE"),
              ("gap", "alignment gap, mean log(var / bias²)"))
    fig, axes = _facets(3, style, max_cols=3)
    fig.set_size_inches(style.panel_size * 3.3, style.panel_size * 1.2)
    for ax, (q, name) in zip(axes, panels, strict=True):
        for p, color in pal.items():
            d = table[np.isclose(table.label_noise, p)].sort_values("width")
            for state, ls in (("before", "-"), ("after", "--")):
                ax.plot(d.width, d[f"{q}_{state}"], ls=ls, marker="o", ms=3, color=color,
                        label=f"{state}, {_noise_label(p)}")
                if q == "gap":
                    ax.fill_between(d.width, d[f"gap_ci_low_{state}"],
                                    d[f"gap_ci_high_{state}"], color=color, alpha=0.15, lw=0)
        if q == "gap":
            ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
        _width_axis(ax, table.width.unique())
        ax.set_ylabel(name)
        ax.set_title(name)
    axes[0].legend(fontsize="xx-small")
    fig.suptitle("Calibration as a cause: each member temperature-scaled on its out-of-bag "
                 "examples\n(test set; solid: before, dashed: after; gap over correctly "
                 "classified examples)")
    return fig
