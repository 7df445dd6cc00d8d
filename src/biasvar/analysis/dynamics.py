"""Bias, variance and alignment over training time: every decomposition at every checkpoint.

The train stage keeps every member's test logits at the log-spaced checkpoint steps of
``train.checkpoints`` (``biasvar.ensemble.config.checkpoint_steps``); ``collect`` stores
them in the ``CHECKPOINT_LOGITS`` contract. Here each (config, step) gets exactly what
the final logits get in ``decompose`` and ``regress``:

- ``summarize``'s quantities (MSE, CE and 0-1 terms, member and ensemble errors, ECE)
  with their population estimates and delete-one-draw jackknife intervals;
- the members' in-bag and out-of-bag training errors at that step (``in_bag_error``,
  ``oob_error``), their mean with a Student-t interval over the draw means;
- the alignment fit (plug-in MSE terms, correctly classified examples, percentile
  bootstrap over examples), as in ``regress``.

The last checkpoint is the last training step, so its rows equal the final
decomposition's (tests/test_dynamics.py checks it). Every number carries the estimator
caveats of the final ones: the plug-in ``value`` of bias² is high by about variance / K,
the alignment slope is a plug-in fit at this K (``alignment_size`` shows how it moves
with K).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biasvar.analysis.alignment import fit_alignment
from biasvar.analysis.summary import per_example, summarize

SUMMARY_COLUMNS = ("label_noise", "width", "step", "quantity", "value", "estimate", "ci_low",
                   "ci_high")
FITS_COLUMNS = ("label_noise", "width", "step", "n", "slope", "slope_ci_low", "slope_ci_high",
                "intercept", "r2")
# per-member training scores at each checkpoint, summarized like member means
MEMBER_QUANTITIES = ("in_bag_error", "oob_error")


def draw_mean_interval(values: np.ndarray, draws: np.ndarray, ci: float
                       ) -> tuple[float, float, float]:
    """Mean of per-member ``values`` and a Student-t interval over the D draw means
    (D - 1 df): the members of one draw share their training set, so the draws are the
    independent units. NaN where a value is NaN (no out-of-bag example) or D < 2."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    uniq, inv = np.unique(np.asarray(draws), return_inverse=True)
    per_draw = np.bincount(inv, weights=values) / np.bincount(inv)  # (D,)
    mean = float(per_draw.mean())
    d = len(uniq)
    if d < 2 or not np.isfinite(per_draw).all():
        return mean, float("nan"), float("nan")
    half = stats.t.ppf((1 + ci) / 2, d - 1) * per_draw.std(ddof=1) / np.sqrt(d)
    return mean, mean - half, mean + half


def step_rows(logits: np.ndarray, labels: np.ndarray, draws: np.ndarray, ci: float,
              n_bins: int, n_boot: int, seed: int) -> tuple[list[dict], dict]:
    """One config at one step: the summary rows (``quantity``, ``value``, ``estimate``,
    ``ci_low``, ``ci_high``) and the alignment fit (``n``, ``slope``, its interval,
    ``intercept``, ``r2``). ``logits`` (members, examples, classes)."""
    s = summarize(logits, labels, draws, intervals=True, ci=ci, n_bins=n_bins)
    rows = [{"quantity": q, "value": float(v), "estimate": float(e), "ci_low": float(lo),
             "ci_high": float(hi)}
            for q, v, e, lo, hi in zip(s.quantities, s.value, s.estimate, s.ci_low, s.ci_high,
                                       strict=True)]
    ex = per_example(logits, labels, draws)
    fit = fit_alignment(ex["mse_bias2"], ex["mse_var"], ex["correct"], "correct",
                        n_boot=n_boot, seed=seed, ci=ci)
    return rows, {"n": fit.n, "slope": fit.slope, "slope_ci_low": fit.slope_ci[0],
                  "slope_ci_high": fit.slope_ci[1], "intercept": fit.intercept, "r2": fit.r2}


def dynamics_all(source: str | Path, label_noise: list, widths: list, ci: float, n_bins: int,
                 n_boot: int, seed: int, progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every config and checkpoint step of a train source folder: the summary table
    (``SUMMARY_COLUMNS``; ``summarize``'s quantities plus ``MEMBER_QUANTITIES``) and the
    fits table (``FITS_COLUMNS``), both sorted by label_noise, width, step. A source
    with no checkpoints (``train.checkpoints: 0``: a header-only
    ``checkpoint_members.csv``; an imported ensemble: none) gives empty tables."""
    from biasvar.core.schema import CHECKPOINT_MEMBERS_CSV, read_csv
    from biasvar.ensemble.logits import read_checkpoints

    source = Path(source)
    summary, fits = [], []
    members_csv = source / "checkpoint_members.csv"
    if not members_csv.exists() or _header_only(members_csv):  # no checkpoint kept
        return (pd.DataFrame(columns=list(SUMMARY_COLUMNS)),
                pd.DataFrame(columns=list(FITS_COLUMNS)))
    scores = read_csv(members_csv, CHECKPOINT_MEMBERS_CSV)
    for p in label_noise:
        for w in widths:
            per_step = read_checkpoints(source, p, w)
            mine = scores[(scores.label_noise == float(p)) & (scores.width == int(w))]
            for step, cl in per_step.items():
                rows, fit = step_rows(cl.logits, cl.labels, cl.draws, ci, n_bins, n_boot, seed)
                at = mine[mine.step == step].set_index("member").reindex(cl.members)
                if at.isna().all(axis=None) or len(at) != len(cl.members):
                    from biasvar.core.errors import InputError

                    raise InputError(f"{members_csv}: no scores for label_noise {p}, width "
                                     f"{w}, step {step} (rerun collect)")
                for q in MEMBER_QUANTITIES:
                    mean, lo, hi = draw_mean_interval(at[q].to_numpy(), cl.draws, ci)
                    rows.append({"quantity": q, "value": mean, "estimate": mean,
                                 "ci_low": lo, "ci_high": hi})
                key = {"label_noise": float(p), "width": int(w), "step": int(step)}
                summary += [{**key, **r} for r in rows]
                fits.append({**key, **fit})
                if progress is not None:
                    progress(p, w, step)
    return (pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS)),
            pd.DataFrame(fits, columns=list(FITS_COLUMNS)))


def _header_only(path: Path) -> bool:
    """Whether a CSV holds its header and no row (``collect`` with ``train.checkpoints:
    0``); a half-written file still fails in ``read_csv``."""
    with path.open("rb") as f:
        f.readline()
        return f.read(1) == b""


def curves(summary: pd.DataFrame, fits: pd.DataFrame) -> dict:
    """What ``metrics/dynamics.json`` holds: per level and width, the checkpoint steps and,
    at each, the mean-member and ensemble test errors, the plug-in bias² and variance,
    the in-bag error and the alignment slope (6 significant digits; None for NaN)."""
    def r(x) -> float | None:
        x = float(x)
        return float(f"{x:.6g}") if np.isfinite(x) else None

    wide = summary.pivot_table(index=["label_noise", "width", "step"], columns="quantity",
                               values="value", dropna=False)
    f = fits.set_index(["label_noise", "width", "step"])
    out: dict = {}
    for (p, w), d in wide.groupby(level=[0, 1]):
        d = d.droplevel([0, 1]).sort_index()
        out.setdefault(f"noise-{p:g}", {})[f"width-{int(w)}"] = {
            "step": [int(s) for s in d.index],
            "member_test_error": [r(v) for v in d["member_error"]],
            "ensemble_test_error": [r(v) for v in d["ensemble_error"]],
            "bias2": [r(v) for v in d["mse_bias2"]],
            "variance": [r(v) for v in d["mse_var"]],
            "in_bag_error": [r(v) for v in d["in_bag_error"]],
            "slope": [r(f.loc[(p, w, s), "slope"]) for s in d.index],
        }
    return out
