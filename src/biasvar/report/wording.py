"""Words for numbers: what a caption may say about a curve or a fit, decided by the data.

Every sentence of the report that states a number is made here: the generic
rules (``fit_quality``, ``shape``/``describe``, ``ordering``) and the caption
sentences of each figure (``alignment_words``, ``size_words``, ``terms_words``,
``variance_peak_words``, ``double_descent_words``, ``calibration_words``, ...),
so a sentence changes when the numbers do (``tests/test_wording.py`` feeds
contrary tables and checks that it does). ``biasvar.report.document`` puts the
sentences under its figures; ``biasvar.report.fragments`` uses the same rules
for the generated key-number table and headline sentences. The thresholds are
fixed here:

- fit quality from R²: >= 0.9 strong, >= 0.7 good, >= 0.4 moderate,
  >= 0.1 weak, below that no linear relation;
- a curve over a sweep is "flat" when its range is below ``FLAT_REL`` (5 %) of
  its largest absolute value; otherwise it is rising / falling when no step
  goes the other way by more than that tolerance, it has a peak (valley) when
  it rises to an interior maximum and falls after it (falls to an interior
  minimum and rises after it), each by more than the tolerance, and it is
  "non-monotone" otherwise;
- an ordering "A > B" holds "at every x", "at x ...", or "nowhere";
- the 1/K model of a slope against ensemble size fits when chi² per degree of
  freedom is at most ``CHI2_PER_DOF`` (3);
- a number moves with the estimator when its estimates span more than
  ``ESTIMATOR_SPREAD`` (0.05);
- a simplicity bias holds when its deciding rank correlation is at least
  ``RHO_CUT`` (0.5) in the direction the bias predicts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

FLAT_REL = 0.05  # relative range below which a curve is called flat
# The 1/K model of a slope against ensemble size fits when chi² per degree of freedom is
# at most this (a weighted fit over the sizes; no verdict without bootstrap weights).
CHI2_PER_DOF = 3.0
# Estimates of one number by several estimators "move with the estimator" when they
# span more than this (the second decimal that captions print).
ESTIMATOR_SPREAD = 0.05
# A simplicity bias holds for a config when the rank correlation that decides it is at
# least this in the predicted direction: a clear monotone ordering, not mere significance.
RHO_CUT = 0.5
# Per-example alignment "holds" at a width when the log-log slope of variance on bias² is
# within this of 1 (variance proportional to bias², Chen et al. 2024) and the fit is strong.
ALIGNMENT_SLOPE_TOL = 0.1
ALIGNMENT_R2 = 0.9
R2_WORDS = ((0.9, "strong"), (0.7, "good"), (0.4, "moderate"), (0.1, "weak"))


def fit_quality(r2: float) -> str:
    """A word for the quality of a linear fit with coefficient of determination ``r2``."""
    if not np.isfinite(r2):
        return "undefined"
    for threshold, word in R2_WORDS:
        if r2 >= threshold:
            return word
    return "no linear relation"


def alignment_holds(slope: float, r2: float) -> bool:
    """Whether a width's alignment fit says variance is proportional to bias²
    (``ALIGNMENT_SLOPE_TOL``, ``ALIGNMENT_R2``); False for an undefined fit."""
    return bool(np.isfinite(slope) and np.isfinite(r2) and abs(slope - 1) <= ALIGNMENT_SLOPE_TOL
                and r2 >= ALIGNMENT_R2)


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


def fits_inverse_k(chi2: float | None, dof: int | None) -> bool | None:
    """Whether a 1/K extrapolation fits its sizes (chi² / dof <= ``CHI2_PER_DOF``); None when
    it cannot be checked (no chi²: an unweighted fit; no degree of freedom: two sizes)."""
    if chi2 is None or dof is None or not np.isfinite(chi2) or dof <= 0:
        return None
    return bool(chi2 / dof <= CHI2_PER_DOF)


def spread_words(values: dict[str, float | None], where: str) -> str:
    """Several estimators' values of one number, and whether it moves with the estimator,
    e.g. "at K = 32 plug-in 0.91, unbiased 0.84 (it moves with the estimator: range 0.07)"."""
    ok = {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}
    listed = ", ".join(f"{k} {v:.2f}" for k, v in ok.items())
    if len(ok) < 2:
        return f"at {where} {listed}"
    span = max(ok.values()) - min(ok.values())
    verdict = ("it moves with the estimator" if span > ESTIMATOR_SPREAD else
               f"within {ESTIMATOR_SPREAD:g} across estimators")
    return f"at {where} {listed} ({verdict}: range {span:.2f})"


def noise_label(p: float) -> str:
    """``clean labels`` for label noise 0, else ``label noise <p>``."""
    return "clean labels" if p == 0 else f"label noise {p:g}"


# The alignment-vs-K series, in the order captions and the figure list them.
SIZE_SERIES = (("mse", "plugin", "MSE plug-in"), ("mse", "unbiased", "MSE unbiased"),
               ("mse", "split_half", "MSE split-half"), ("ce", "plugin", "CE plug-in"))


# How the summary bands are computed (analysis.summary); stated in every caption that draws them.
def interval_text(summary: pd.DataFrame, level: float) -> str:
    """"with <level> % intervals ..." or, when the decomposition has none
    (``decompose.intervals: false``), "without intervals" saying why."""
    if summary["ci_low"].isna().all():
        return "without intervals (decompose.intervals = false)"
    return (f"with {100 * level:g} % intervals for the population values (delete-one-draw "
            "jackknife)")


def diversity_words(summary: pd.DataFrame) -> str:
    """Per label-noise level at the widest width: how much of the member loss one draw's
    ensemble of S seeds removes (the diversity), for the squared error and CE."""
    test = summary[summary.partition == "test"]
    parts = []
    for p, d in test.groupby("label_noise", sort=True):
        w = d.width.max()
        e = d[d.width == w].set_index("quantity").estimate
        seeds = int(d[d.width == w].seeds.iloc[0])
        terms = []
        for loss, name in (("mse", "MSE"), ("ce", "CE")):
            member, ens, div = e[f"{loss}_loss"], e[f"{loss}_ensemble_loss"], e[f"{loss}_diversity"]
            terms.append(f"{name} {_fmt(member)} → {_fmt(ens)} (diversity {_fmt(div)}, "
                         f"{100 * div / member:.0f} % of the member loss)")
        parts.append(f"{noise_label(float(p))}, width {int(w)}, ensembles of {seeds} "
                     f"seed{'s' if seeds != 1 else ''}: " + "; ".join(terms))
    return "; ".join(parts) + "."


def alignment_words(fits: pd.DataFrame, level: float) -> str:
    """The alignment fits at one noise level, in words: slope and R² per width, and
    where the fit is strong or weak (thresholds in ``fit_quality``)."""
    f = fits[(fits.subset == "correct") & (fits.label_noise == level)].sort_values("width")
    if f.empty:
        return "no alignment fit is available."
    per = "; ".join(f"width {int(r.width)}: slope {r.slope:.2f}, R² {r.r2:.2f}"
                    for r in f.itertuples())
    groups: dict[str, list[str]] = {}
    for r in f.itertuples():
        groups.setdefault(fit_quality(r.r2), []).append(str(int(r.width)))
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
    for loss, est, label in SIZE_SERIES:
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
                fits = fits_inverse_k(x.chi2, x.dof)
                check = (f", 1/K model {'fits' if fits else 'does not fit'}: "
                         f"χ² {x.chi2:.1f} on {int(x.dof)} dof")
            else:
                check = ""  # two sizes: the line goes through both
            text += f" (K → ∞: {x.value_inf:.2f}{se}{check})"
        parts.append(text)
    drift = "; ".join(parts)
    return (f"At width {w} ({noise_label(level)}) the slope moves with the estimator "
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
        out.append(f"{noise_label(p)}: "
                   + describe(w, piv.mse_var.to_numpy(), "the variance") + ", "
                   + describe(w, piv.mse_bias2.to_numpy(), "bias²"))
    levels = sorted(series)
    if len(levels) > 1:
        a, b = series[levels[-1]], series[levels[0]]
        common = a.index.intersection(b.index)
        out.append(ordering(common, a.mse_var[common], b.mse_var[common],
                                    f"the variance at {noise_label(levels[-1])}",
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
            out.append(f"{noise_label(p)}: in-bag error 0 from width "
                       f"{int(tail.idxmax())}")
        else:
            out.append(f"{noise_label(p)}: in-bag error never 0 (lowest "
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
        out.append(f"{noise_label(p)} at width {widths[i]}"
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
            out.append(f"{noise_label(p)}: no interior peak (test error "
                       f"{err[0]:.3f} at width {widths[0]} to {err[-1]:.3f} at width "
                       f"{widths[-1]})")
            continue
        i = widths.index(w)
        lo = int(np.argmin(err[:i]))
        where = _grid_steps_words(widths, i, threshold)
        out.append(f"{noise_label(p)}: peak {err[i]:.3f} at width {w}{where}, "
                   f"{100 * rise:.1f} points above the minimum {err[lo]:.3f} (width "
                   f"{widths[lo]}) before it and {100 * fall:.1f} points above the widest "
                   f"width's {err[-1]:.3f}")
    return "Double descent of the mean-member test error: " + "; ".join(out) + "."


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
        out.append(f"{noise_label(p)}, width {int(r.width)}: mean temperature "
                   f"{r.temperature_mean:.2f}, member ECE {r.member_ece_before:.3f} → "
                   f"{r.member_ece_after:.3f}, ensemble ECE {r.ensemble_ece_before:.3f} → "
                   f"{r.ensemble_ece_after:.3f}, gap {r.gap_before:.2f} → {r.gap_after:.2f}, "
                   f"slope {r.slope_before:.2f} → {r.slope_after:.2f}; "
                   + (f"whether the gap moved toward 0 is {where}" if where.startswith("untested")
                      else f"the gap moved toward 0 {where}"))
    text = "; ".join(out) + "."
    return text[0].upper() + text[1:]


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
        f"{describe(w, s.nc1_train.to_numpy(), 'NC1', digits=3)}; member train error "
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



def tradeoff_words(tradeoff: pd.DataFrame) -> str:
    """The toy trade-off's caption sentence: bias² and variance against D, where the total
    is lowest and the curve's shape (U-shaped when it has an interior minimum)."""
    t = tradeoff.sort_values("hidden_units")
    d = t.hidden_units.to_numpy()
    total = shape(d, t.total.to_numpy())
    u = "U-shaped, lowest" if total["kind"] == "valley" else f"{total['kind']}, lowest"
    return (f"{describe(d, t.bias2.to_numpy(), 'bias²', 'D')}, "
            f"{describe(d, t.variance.to_numpy(), 'variance', 'D')}, and the total is "
            f"{u} at D = {total['x_min']:g} ({total['y_min']:.3f}; noise floor "
            f"{t.noise.iloc[0]:.2f}).")


def ridgeless_words(ridgeless: pd.DataFrame) -> str:
    """Where the median test error of the min-norm fits peaks against the number of
    features P (at P = N or not) and whether it descends past P = N."""
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
    return f"the median test error is highest ({peak.test_mse_median:.3g}) {where}{tail}."


def erank_words(erank: pd.DataFrame) -> str:
    """Per noise level: the effective rank of the embeddings and its fraction of the width
    against width."""
    parts = []
    for p, d in erank.groupby("label_noise"):
        d = d.sort_values("width")
        w = d.width.to_numpy()
        parts.append(f"{noise_label(p)}: "
                     + describe(w, d.erank_mean.to_numpy(), "the effective rank", digits=3)
                     + ", " + describe(w, d.erank_ratio_mean.to_numpy(),
                                       "its fraction of the width", digits=2))
    return "; ".join(parts) + "."
