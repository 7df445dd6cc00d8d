"""Bias, variance, calibration and alignment off the training distribution.

Every trained member (its checkpoint in ``<block>/checkpoints/``, loaded into the plain
reference model) is scored on the shifted test sets of ``biasvar.data.shift``: the same
test examples and labels, pushed off the training distribution by a ``kind`` at
``severity`` 1..5 (MNIST-1D: the generator's noise, scale or shear beyond its training
range; images: CIFAR-10-C-style Gaussian noise, blur or contrast). Severity 0 is the
clean test set, whose logits are the final ones of the train stage (up to float
reassociation: the reference model and the stacked twin sum in another order;
tests/test_shifted.py checks them against each other).

Per config, kind and severity: ``summarize``'s quantities (MSE, CE and 0-1 terms, member
and ensemble errors, member and ensemble ECE) with their population estimates and
delete-one-draw jackknife intervals, and the alignment fit (plug-in MSE terms, correctly
classified examples, percentile bootstrap over examples), exactly as ``decompose`` and
``regress`` treat the clean test set. The per-example plug-in terms of the clean set and
of the strongest severity are kept for the alignment scatter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from biasvar.analysis.dynamics import step_rows
from biasvar.core.config import (
    Bins,
    Bootstrap,
    Choice,
    OpenUnitInterval,
    Section,
    Seed,
    _as_tuple,
    _distinct,
)
from biasvar.core.errors import InputError
from biasvar.data.shift import IMAGE_KINDS, MNIST1D_KINDS

SUMMARY_COLUMNS = ("label_noise", "width", "kind", "severity", "quantity", "value",
                   "estimate", "ci_low", "ci_high")
FITS_COLUMNS = ("label_noise", "width", "kind", "severity", "n", "slope", "slope_ci_low",
                "slope_ci_high", "intercept", "r2")
EXAMPLE_COLUMNS = ("label_noise", "width", "kind", "severity", "example", "correct", "bias2",
                   "var")
CHUNK = 4096  # examples per forward pass


# MNIST-1D's own transformations and the image corruptions (biasvar.data.shift)
SHIFT_KINDS = MNIST1D_KINDS + IMAGE_KINDS


class ShiftParams(Section):
    """Members scored on shifted test sets (``shift.*``, ``biasvar.analysis.shifted``).

    ``kinds``: for ``data.name: mnist1d`` the generator's ``noise``, ``scale`` and
    ``shear``; for images (``digits``, ``cifar10``, ``cifar100``) ``gaussian_noise``,
    ``blur`` and ``contrast``; ``[]``: the clean test set only. ``severities``: distinct
    integers 1..5 (0, the clean set, is always scored). The rest as in ``decompose`` and
    ``regress``: interval level, calibration bins, the alignment bootstrap and its seed
    (which also seeds the Gaussian noise of images).
    """

    SECTION: ClassVar[str] = "shift"
    kinds: Annotated[tuple[Choice(*SHIFT_KINDS), ...], Field(description=(
        "a list of distinct kinds: " + ", ".join(SHIFT_KINDS) + " (or [])"))]
    severities: Annotated[tuple[Annotated[int, Field(ge=1, le=5)], ...], Field(
        min_length=1, description="a non-empty list of distinct integers >= 1 and <= 5")]
    ece_bins: Bins
    bootstrap: Bootstrap
    ci: OpenUnitInterval
    seed: Seed

    _tuple = field_validator("kinds", "severities", mode="before")(lambda v: _as_tuple(v))
    _unique = field_validator("kinds", "severities")(lambda v: _distinct(v))

    def check_data(self, name: str) -> None:
        """Refuse kinds that the dataset ``data.name`` has no generator for."""
        from biasvar.core.errors import ParamError

        allowed = {"mnist1d": MNIST1D_KINDS, "digits": IMAGE_KINDS, "cifar10": IMAGE_KINDS,
                   "cifar100": IMAGE_KINDS}.get(name, ())
        bad = [k for k in self.kinds if k not in allowed]
        if bad:
            what = (f"kinds of {', '.join(allowed)} for data.name {name} (or [])" if allowed
                    else f"[]: data.name {name} has no shifted test sets")
            raise ParamError("shift.kinds", list(self.kinds), what)


def shifted_inputs(name: str, x_test: np.ndarray, y_test: np.ndarray, kind: str,
                   severity: int, *, num_samples: int | None, train_split: float,
                   data_seed: int, seed: int, where: str = "the dataset") -> np.ndarray:
    """The test inputs of dataset ``name`` shifted by ``kind`` at ``severity``, float32,
    in the members' input layout (``x_test``'s shape).

    MNIST-1D regenerates its test set with ``data.*`` (``num_samples``, ``train_split``,
    ``data_seed``) and refuses a dataset whose test labels are not the regenerated ones
    (``where`` names it); images are corrupted in [0, 1], the range of the digits and
    CIFAR providers, with the noise seeded by ``seed``.
    """
    from biasvar.data.shift import MNIST1D_KINDS, corrupt_images, mnist1d_shifted

    if severity == 0:
        return np.asarray(x_test, np.float32)
    if kind in MNIST1D_KINDS:
        if name != "mnist1d":
            raise InputError(f"{where}: shift kind {kind!r} shifts MNIST-1D, not {name}")
        x, y = mnist1d_shifted(num_samples, train_split, data_seed, kind, severity)
        if x.shape != x_test.shape or not np.array_equal(y, np.asarray(y_test)):
            raise InputError(f"{where}: its test set is not MNIST-1D's for data.num_samples "
                             f"{num_samples}, data.train_split {train_split}, data.seed "
                             f"{data_seed} (rerun generate)")
        return x.astype(np.float32)
    x = np.asarray(x_test)
    if x.ndim != 4 or x.min() < 0 or x.max() > 1:
        raise InputError(f"{where}: shift kind {kind!r} corrupts images (n, channels, h, w) "
                         f"in [0, 1]; its inputs have shape {x.shape} and range "
                         f"[{x.min():.3g}, {x.max():.3g}]")
    return corrupt_images(x, kind, severity, seed).astype(np.float32)


def members_logits(blocks: Sequence[str | Path], inputs: Sequence[np.ndarray]
                   ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each member of ``blocks`` (one config) scored on each of ``inputs``: the members'
    draws (M,) and one (M, N, classes) float32 array per input."""
    import torch

    from biasvar.core.io import read_json
    from biasvar.ensemble.members import load_member

    draws, out = [], [[] for _ in inputs]
    for block in blocks:
        block = Path(block)
        info = read_json(block / "members.json")
        try:
            model_params, width = info["params"]["model"], int(info["width"])
            n_classes = int(info["dataset"]["n_classes"])
            rows = [(int(r["member"]), int(r["draw"])) for r in info["members"]]
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{block / 'members.json'}: lacks {e} (params.model, width, "
                             "dataset.n_classes, members)") from e
        for member, draw in rows:
            model = load_member(block, member, model_params, width,
                                tuple(inputs[0].shape[1:]), n_classes)
            model.eval()
            draws.append(draw)
            with torch.no_grad():
                for i, x in enumerate(inputs):
                    xt = torch.as_tensor(x, dtype=torch.float32)
                    out[i].append(torch.cat([model(xt[s:s + CHUNK])
                                             for s in range(0, len(xt), CHUNK)]).numpy())
    return np.asarray(draws), [np.stack(o).astype(np.float32) for o in out]


def shift_config(blocks: Sequence[str | Path], y_test: np.ndarray,
                 inputs: dict[tuple[str, int], np.ndarray], ci: float, n_bins: int,
                 n_boot: int, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """One config on every ``inputs[(kind, severity)]`` (severity 0: the clean set,
    listed once per kind): summary rows, fit rows and, for severity 0 and each kind's
    strongest severity, the per-example plug-in terms."""
    from biasvar.analysis.summary import per_example

    keys = list(inputs)
    draws, logits = members_logits(blocks, [inputs[k] for k in keys])
    strongest = {}
    for kind, sev in keys:
        strongest[kind] = max(strongest.get(kind, 0), sev)
    summary, fits, examples = [], [], []
    for (kind, sev), lg in zip(keys, logits, strict=True):
        rows, fit = step_rows(lg, y_test, draws, ci, n_bins, n_boot, seed)
        key = {"kind": kind, "severity": int(sev)}
        summary += [{**key, **r} for r in rows]
        fits.append({**key, **fit})
        if sev in (0, strongest[kind]):
            ex = per_example(lg, y_test, draws)
            examples.append(pd.DataFrame({**key, "example": ex["example"],
                                          "correct": ex["correct"], "bias2": ex["mse_bias2"],
                                          "var": ex["mse_var"]}))
    return summary, fits, examples


def shift_all(members_root: str | Path, datasets: dict[float, Any], label_noise: list,
              widths: list, blocks: list, kinds: Sequence[str], severities: Sequence[int], *,
              data: dict[str, Any], ci: float, n_bins: int, n_boot: int, seed: int,
              progress=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every config of the train stage's blocks under ``members_root`` on every shifted
    test set: (summary, fits, examples) tables, sorted by label_noise, width, kind,
    severity. ``datasets[level]``: the ``Dataset`` the members trained on; ``data``: its
    ``data.*`` params (name, num_samples, train_split, seed; ``file``: the dataset file,
    for messages). With no ``kinds``, the
    clean test set only (kind ``none``)."""
    from biasvar.ensemble.blocks import block_dir

    ref = datasets[label_noise[0]]
    y_test = np.asarray(ref.y_test)
    inputs: dict[tuple[str, int], np.ndarray] = {}
    for kind in kinds or ("none",):
        inputs[(kind, 0)] = np.asarray(ref.x_test, np.float32)
        for sev in (sorted(severities) if kinds else ()):
            inputs[(kind, sev)] = shifted_inputs(
                data["name"], ref.x_test, y_test, kind, sev, num_samples=data["num_samples"],
                train_split=data["train_split"], data_seed=data["seed"], seed=seed,
                where=str(data.get("file", "the dataset")))
    summary, fits, examples = [], [], []
    for p in label_noise:
        if not np.array_equal(np.asarray(datasets[p].y_test), y_test):
            raise InputError(f"the datasets of label_noise {label_noise[0]} and {p} have "
                             "different test labels (rerun generate)")
        for w in widths:
            s, f, e = shift_config([block_dir(members_root, p, w, b) for b in blocks], y_test,
                                   inputs, ci, n_bins, n_boot, seed)
            key = {"label_noise": float(p), "width": int(w)}
            summary += [{**key, **r} for r in s]
            fits += [{**key, **r} for r in f]
            examples += [x.assign(**key) for x in e]
            if progress is not None:
                progress(p, w)
    order = ["label_noise", "width", "kind", "severity"]
    return (pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS)).sort_values(
                order + ["quantity"], kind="stable").reset_index(drop=True),
            pd.DataFrame(fits, columns=list(FITS_COLUMNS)).sort_values(
                order, kind="stable").reset_index(drop=True),
            pd.concat(examples)[list(EXAMPLE_COLUMNS)].sort_values(
                order + ["example"], kind="stable").reset_index(drop=True))


def shift_metrics(summary: pd.DataFrame, fits: pd.DataFrame) -> dict:
    """What ``metrics/shift.json`` holds: per level, width and kind, the severities and,
    at each, the mean-member and ensemble test errors, plug-in bias² and variance (with
    the population intervals of the unbiased estimators), member and ensemble ECE and
    the alignment slope with its interval (6 significant digits; None for NaN)."""
    def r(x) -> float | None:
        x = float(x)
        return float(f"{x:.6g}") if np.isfinite(x) else None

    idx = ["label_noise", "width", "kind", "severity"]
    out: dict = {}
    f = fits.set_index(idx)
    for (p, w, kind), d in summary.groupby(idx[:3], sort=True):
        v = d.pivot_table(index="severity", columns="quantity", values="value", dropna=False)
        lo = d.pivot_table(index="severity", columns="quantity", values="ci_low", dropna=False)
        hi = d.pivot_table(index="severity", columns="quantity", values="ci_high",
                           dropna=False)
        sev = [int(s) for s in v.index]
        fk = [f.loc[(p, w, kind, s)] for s in sev]
        out.setdefault(f"noise-{p:g}", {}).setdefault(f"width-{int(w)}", {})[kind] = {
            "severity": sev,
            "member_test_error": [r(x) for x in v["member_error"]],
            "ensemble_test_error": [r(x) for x in v["ensemble_error"]],
            "bias2": [r(x) for x in v["mse_bias2"]],
            "bias2_ci": [[r(a), r(b)] for a, b in zip(lo["mse_bias2"], hi["mse_bias2"],
                                                      strict=True)],
            "variance": [r(x) for x in v["mse_var"]],
            "variance_ci": [[r(a), r(b)] for a, b in zip(lo["mse_var"], hi["mse_var"],
                                                         strict=True)],
            "member_ece": [r(x) for x in v["member_ece"]],
            "ensemble_ece": [r(x) for x in v["ensemble_ece"]],
            "slope": [r(x.slope) for x in fk],
            "slope_ci": [[r(x.slope_ci_low), r(x.slope_ci_high)] for x in fk],
        }
    return out
