"""The report's distribution-shift section: figures and computed captions.

The figures read the ``shift`` stage's tables (``data/shift/summary.csv``, ``fits.csv``,
``examples.csv``); the captions read its metrics (``data/metrics/shift.json``: per
level, width and kind, the curves over severity), so that a test can recompute every
caption from the report's ``metrics.json``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from biasvar.report import wording
from biasvar.report.config import Style
from biasvar.report.dynamics import levels

KIND_NAMES = {"noise": "stronger noise", "scale": "larger scaling", "shear": "larger shear",
              "gaussian_noise": "Gaussian noise", "blur": "blur", "contrast": "low contrast",
              "none": "none"}


AXIS_QUANTILE = 0.01  # the scatter's axes start at this quantile of the drawn terms


def _disjoint(a: list, b: list) -> bool | None:
    """Whether two intervals ``[lo, hi]`` are disjoint; None when either is undefined."""
    if None in a or None in b:
        return None
    return bool(a[1] < b[0] or b[1] < a[0])


def bias_share(c: dict) -> float | None:
    """The share of the rise of the mean-member MSE loss (bias² + variance, plug-in) from
    the clean set to the strongest severity that is bias²; None when it does not rise."""
    db = c["bias2"][-1] - c["bias2"][0]
    dv = c["variance"][-1] - c["variance"][0]
    return db / (db + dv) if db + dv > 0 else None


def shift_words(curves: dict) -> str:
    """Per level and kind, at the widest width: errors, bias², variance and ECE on the clean
    set and at the strongest severity, the share of the added loss that is bias², and
    whether bias² grew beyond its intervals (the comparison with Yang et al. 2020)."""
    out = []
    for p, by_w in levels(curves):
        w = max(by_w)
        for kind, c in sorted(by_w[w].items()):
            if len(c["severity"]) < 2:
                continue
            s = c["severity"][-1]
            share = bias_share(c)
            grew = _disjoint(c["bias2_ci"][0], c["bias2_ci"][-1])
            out.append(
                f"{wording.noise_label(p)}, width {w}, {KIND_NAMES.get(kind, kind)} at "
                f"severity {s}: mean-member test error {c['member_test_error'][0]:.3f} → "
                f"{c['member_test_error'][-1]:.3f}, ensemble {c['ensemble_test_error'][0]:.3f}"
                f" → {c['ensemble_test_error'][-1]:.3f}; bias² {c['bias2'][0]:.3f} → "
                f"{c['bias2'][-1]:.3f}, variance {c['variance'][0]:.3f} → "
                f"{c['variance'][-1]:.3f}"
                + (f" (bias² is {100 * share:.0f} % of the added loss)" if share is not None
                   else "")
                + f"; member ECE {c['member_ece'][0]:.3f} → {c['member_ece'][-1]:.3f}, "
                f"ensemble ECE {c['ensemble_ece'][0]:.3f} → {c['ensemble_ece'][-1]:.3f}"
                + ("" if grew is None else
                   "; the population bias² intervals of the clean and the shifted set "
                   + ("are disjoint" if grew else "overlap")))
    if not out:
        return "No shifted test set was scored (shift.kinds is empty)."
    text = "; ".join(out) + "."
    return text[0].upper() + text[1:]


def yang_words(curves: dict) -> str:
    """The comparison with Yang et al. (2020): on CIFAR-10-C they find that bias, more
    than variance, grows out of distribution. Counted over every config and kind: where
    the bias² rise is the larger part of the added loss."""
    n = larger = 0
    for _, by_w in levels(curves):
        for per_kind in by_w.values():
            for c in per_kind.values():
                if len(c["severity"]) < 2:
                    continue
                n += 1
                share = bias_share(c)
                larger += share is not None and share > 0.5
    if n == 0:
        return ""
    return (f"Yang et al. (2020) find on CIFAR-10-C that bias grows more than variance out "
            f"of distribution; here bias² is the larger part of the added loss at the "
            f"strongest severity in {larger} of {n} (config, kind) pairs.")


SATURATED = 1e-8  # a term below this: the members' probabilities are one-hot to 1e-4


def scatter_numbers(examples: pd.DataFrame) -> dict:
    """What the OLS slope of the scatter does not show, per level and kind at the widest
    width, for the clean set and the strongest severity (``examples.csv``'s correctly
    classified examples): ``n``, the Spearman rank correlation of bias² and variance
    (``spearman``, robust to the few extreme points that can carry an OLS fit on log
    axes) and how many have a term below ``SATURATED`` (``saturated``: members that
    saturate on a strongly shifted input). Report numbers (``metrics.json`` key
    ``report``)."""
    from scipy import stats

    w = int(examples.width.max())
    out: dict = {}
    ex = examples[(examples.width == w) & (examples.correct.astype(str) == "True")]
    for (p, kind), d in ex.groupby(["label_noise", "kind"], sort=True):
        rows = {"width": w, "severity": [], "n": [], "spearman": [], "saturated": []}
        for sev, e in d.groupby("severity", sort=True):
            ok = (e.bias2 > 0) & (e["var"] > 0)
            rho = stats.spearmanr(e.bias2[ok], e["var"][ok]).statistic if ok.sum() > 2 \
                else float("nan")
            rows["severity"].append(int(sev))
            rows["n"].append(int(ok.sum()))
            rows["spearman"].append(round(float(rho), 6))
            rows["saturated"].append(int(((e.bias2 < SATURATED) | (e["var"] < SATURATED))
                                         .sum()))
        out.setdefault(f"noise-{p:g}", {})[kind] = rows
    return out


def alignment_words(curves: dict, scatter: dict | None = None) -> str:
    """Per level and kind, at the widest width: the alignment slope (with its interval) on
    the clean set and at the strongest severity and, from ``scatter``
    (``scatter_numbers``), the rank correlation and the saturated examples behind it."""
    out = []
    for p, by_w in levels(curves):
        w = max(by_w)
        for kind, c in sorted(by_w[w].items()):
            if len(c["severity"]) < 2:
                continue
            lo0, hi0 = c["slope_ci"][0]
            lo1, hi1 = c["slope_ci"][-1]

            def ci(lo, hi):
                return "" if lo is None else f" [{lo:.2f}, {hi:.2f}]"

            text = (f"{wording.noise_label(p)}, width {w}, "
                    f"{KIND_NAMES.get(kind, kind)}: slope {c['slope'][0]:.2f}"
                    f"{ci(lo0, hi0)} clean, {c['slope'][-1]:.2f}{ci(lo1, hi1)} at severity "
                    f"{c['severity'][-1]}")
            sc = (scatter or {}).get(f"noise-{p:g}", {}).get(kind)
            if sc and len(sc["severity"]) >= 2:
                text += (f" (Spearman ρ {sc['spearman'][0]:.2f} → {sc['spearman'][-1]:.2f}; "
                         f"{sc['saturated'][0]} → {sc['saturated'][-1]} of the correctly "
                         f"classified examples have a term below {SATURATED:g})")
            out.append(text)
    if not out:
        return ""
    return "Alignment slope " + "; ".join(out) + "."


# ---------------------------------------------------------------- figures
TERMS = (("member_error", "mean-member test error"), ("mse_bias2", "bias²"),
         ("mse_var", "variance"), ("member_ece", "member ECE"), ("slope", "alignment slope"))


def _shown_widths(widths: list[int], n: int = 4) -> list[int]:
    """At most ``n`` widths spread over the sweep (both ends kept)."""
    widths = sorted(widths)
    if len(widths) <= n:
        return widths
    idx = np.unique(np.rint(np.linspace(0, len(widths) - 1, n)).astype(int))
    return [widths[i] for i in idx]


def terms_figure(summary: pd.DataFrame, fits: pd.DataFrame, style: Style):
    """Rows: kinds of shift; columns: mean-member test error, bias², variance, member ECE
    and alignment slope against severity (0: the clean test set); colour: width (at most
    four of the sweep); solid: the first label-noise level, dashed: the others; bands:
    95 % intervals (jackknife over draws for the errors and ECE, bootstrap over examples
    for the slope)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    kinds = sorted(summary.kind.unique())
    levels = sorted(summary.label_noise.unique())
    widths = _shown_widths(sorted(summary.width.unique()))
    col = dict(zip(widths, sns.color_palette("viridis", len(widths)), strict=True))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(len(kinds), len(TERMS), squeeze=False, constrained_layout=True,
                             figsize=(style.panel_size * len(TERMS),
                                      style.panel_size * len(kinds)))
    for r, kind in enumerate(kinds):
        for c, (q, name) in enumerate(TERMS):
            ax = axes[r, c]
            for li, p in enumerate(levels):
                for w in widths:
                    if q == "slope":
                        d = fits[(fits.kind == kind) & (fits.label_noise == p)
                                 & (fits.width == w)].sort_values("severity")
                        y, lo, hi = d.slope, d.slope_ci_low, d.slope_ci_high
                    else:
                        d = summary[(summary.kind == kind) & (summary.label_noise == p)
                                    & (summary.width == w)
                                    & (summary.quantity == q)].sort_values("severity")
                        y, lo, hi = d.value, d.ci_low, d.ci_high
                    ax.plot(d.severity, y, marker="o", ms=2.5, lw=1.2, color=col[w],
                            ls=styles[li % len(styles)],
                            label=f"width {w}, {wording.noise_label(p)}")
                    # bias² and variance: the intervals are the unbiased estimators' (the
                    # plug-in line may lie outside them), so they are not drawn as bands
                    if q not in ("mse_bias2", "mse_var") and lo.notna().any():
                        ax.fill_between(d.severity, lo, hi, color=col[w], alpha=0.12, lw=0)
            if q == "slope":
                ax.axhline(1.0, ls="--", color="0.4", lw=1)
            ax.set_xticks(sorted(summary.severity.unique()))
            ax.set_xlabel("severity (0 = clean)")
            ax.set_title(f"{name}\n{KIND_NAMES.get(kind, kind)}", fontsize="small")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)),
               fontsize="x-small")
    fig.suptitle("Bias, variance, calibration and alignment under distribution shift "
                 "(test examples shifted, members fixed)")
    return fig


def alignment_figure(examples: pd.DataFrame, fits: pd.DataFrame, style: Style,
                     seed: int = 0):
    """Per-example bias² against variance at the widest width: the clean test set beside
    each kind's strongest severity; one row per label-noise level; black line: the fit
    over correctly classified examples."""
    import matplotlib.pyplot as plt

    from biasvar.report.figures import CORRECT_COLORS

    w = int(examples.width.max())
    ex = examples[examples.width == w]
    levels = sorted(ex.label_noise.unique())
    kinds = sorted(ex.kind.unique())
    panels = [(kinds[0], 0)] + [(k, int(ex[ex.kind == k].severity.max())) for k in kinds]
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(levels), len(panels), squeeze=False, constrained_layout=True,
                             figsize=(style.panel_size * len(panels),
                                      style.panel_size * len(levels)))
    for r, p in enumerate(levels):
        for c, (kind, sev) in enumerate(panels):
            ax = axes[r, c]
            d = ex[(ex.label_noise == p) & (ex.kind == kind) & (ex.severity == sev)
                   & (ex.bias2 > 0) & (ex["var"] > 0)]
            if len(d) > style.max_points:
                d = d.iloc[np.sort(rng.choice(len(d), style.max_points, replace=False))]
            correct = d.correct.astype(str) == "True"
            for ok in (False, True):
                s = d[correct == ok]
                ax.scatter(s.bias2, s["var"], s=4, alpha=0.4, lw=0, color=CORRECT_COLORS[ok],
                           label="correct" if ok else "incorrect", rasterized=True)
            ax.set_xscale("log")
            ax.set_yscale("log")
            if len(d):
                # Saturated members (huge shifted inputs: one-hot probabilities) give
                # terms down to 1e-100, which would squash the rest into a corner: the
                # axes start at the 1st percentile; the points below are counted.
                terms = np.concatenate([d.bias2.to_numpy(), d["var"].to_numpy()])
                lo = np.quantile(terms, AXIS_QUANTILE) / 2
                hi = terms.max() * 2
                below = int(((d.bias2 < lo) | (d["var"] < lo)).sum())
                ax.plot([lo, hi], [lo, hi], ls="--", color="0.4", lw=1, label="y = x")
                ax.set_xlim(lo, hi)
                ax.set_ylim(lo, hi)
                if below:
                    ax.text(0.96, 0.04, f"{below} below the axes", transform=ax.transAxes,
                            ha="right", fontsize="x-small", color="0.3")
            f = fits[(fits.label_noise == p) & (fits.width == w) & (fits.kind == kind)
                     & (fits.severity == sev)]
            if len(f) and np.isfinite(f.slope.iloc[0]) and correct.any():
                rr = f.iloc[0]
                cx = d[correct]
                xs = np.geomspace(cx.bias2.min(), cx.bias2.max(), 50)
                ax.plot(xs, np.exp(rr.intercept) * xs**rr.slope, color="k", lw=1.2,
                        label="OLS fit, correct examples")
                ax.text(0.04, 0.96, f"slope {rr.slope:.2f}\n$R^2$ {rr.r2:.2f}",
                        transform=ax.transAxes, va="top", fontsize="small",
                        bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8, "lw": 0})
            title = "clean test set" if sev == 0 else f"{KIND_NAMES.get(kind, kind)}, sev. {sev}"
            ax.set_title(f"{title}\n{wording.noise_label(p)}", fontsize="small")
            ax.set_xlabel("bias²")
            ax.set_ylabel("variance")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, markerscale=3,
               fontsize="small")
    fig.suptitle(f"Alignment on the clean and the most shifted test set, width {w}")
    return fig


def add_shift(rep, summary: pd.DataFrame, fits: pd.DataFrame, examples: pd.DataFrame,
              metrics: dict, style: Style) -> None:
    """The two shift figures with their computed captions (``metrics``: the shift stage's
    JSON); nothing when no shifted set was scored."""
    from biasvar.report.document import Figure

    curves = metrics.get("curves") or {}
    if not metrics.get("kinds") or not len(summary):
        return
    sev = ", ".join(str(s) for s in metrics["severities"])
    kinds = ", ".join(KIND_NAMES.get(k, k) for k in metrics["kinds"])
    rep.figures.append(Figure(
        "shift", "Bias and variance under distribution shift",
        f"The trained members, unchanged, scored on test sets shifted by {kinds} at "
        f"severities {sev} (biasvar.data.shift: generated, the same examples and labels; "
        "severity 0 is the clean test set) and decomposed like the clean one: mean-member "
        "test error, plug-in bias² and variance, member ECE and the alignment slope, for "
        "up to four widths of the sweep (solid: clean training labels, dashed: noisy); "
        "bands: 95 % intervals (jackknife over draws; bootstrap over examples for the "
        "slope). " + shift_words(curves) + " " + yang_words(curves),
        terms_figure(summary, fits, style)))
    scatter = scatter_numbers(examples)
    rep.numbers["shift_alignment"] = scatter
    rep.figures.append(Figure(
        "shift_alignment", "Alignment off the training distribution",
        "Per-example bias² against variance at the widest width on the clean test set and "
        "at each kind's strongest severity; black: the OLS fit over correctly classified "
        "examples (plug-in terms). The axes start at the 1st percentile of the drawn "
        "terms: members that saturate on strongly shifted inputs give terms down to "
        "1e-100, which are in the fit and counted in the corner, not drawn. Such points "
        "can carry an OLS fit on log axes, so the rank correlation over the correct "
        "examples is given beside each slope. Chen et al. (2024) test alignment in "
        "distribution only. " + alignment_words(curves, scatter),
        alignment_figure(examples, fits, style)))
