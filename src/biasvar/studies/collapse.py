"""Neural collapse and bias-variance alignment in binary classification (Chen et al. 2024, Sec. 5).

The task: two MNIST-1D classes (``collapse.classes``, label 1 = the second)
from a dataset generated with ``collapse.num_samples`` (``make_dataset``
draws ``num_samples // 10`` per class). Ensembles of MLPs with two outputs
are trained per width, vectorized as in the main study: ``draws`` bootstrap
resamples of the binary training set times ``seeds_per_draw`` seeds; member
m trains on draw ``m // seeds_per_draw`` with its own init and minibatch
streams ``(seed, purpose, m)``, Adam, cross-entropy.

Measured per member (on its *in-bag* examples, the distinct examples of its
draw = its training set, and on the test set):

- NC1 (Papyan, Han & Donoho 2020): ``tr(Sigma_W Sigma_B^+) / K`` of the
  penultimate features h, with ``Sigma_W`` the within-class covariance
  (pooled, divided by the number of examples) and ``Sigma_B`` the covariance
  of the class means around their mean (rank K - 1). 0 when every example
  sits on its class mean; for K = 2 it equals ``2 d^T Sigma_W d / |d|^4``,
  ``d = mu_1 - mu_0``.
- NC3 (self-duality): the cosine of ``w_1 - w_0`` (the difference of the two
  output rows) and ``mu_1 - mu_0``; 1 when the classifier aligns with the means.
  (NC2's equal norms and ETF angle hold trivially for two balanced classes:
  the centered means are antipodal, so they are not reported.)
- the logit scale: the mean margin ``z = logit_y - logit_other`` (in nats).

Per test example and width, from the members' probabilities ``p_m`` of the
true class (binary convention: the MSE terms of the probability of the
true class; those of the two-class probability vector are exactly twice
these): plug-in ``bias2 = (1 - mean p)^2`` and ``var = mean (p_m - mean p)^2``
(so ``mean (1 - p_m)^2 = bias2 + var``), and the margins' mean and standard
deviation across members.

The model tested, Chen et al. (ICLR 2024), Section 5, Assumption 5.1: a
member's probabilities are ``softmax(s w^ETF_Y + v)`` with the entries of
``v`` i.i.d. standard Gumbel. For K = 2 the margin is then ``c + L`` with
``c = s (w_Y,Y - w_Y,other)`` and ``L``, a difference of two i.i.d. Gumbels,
standard logistic (sd ``pi / sqrt 3``), so ``p = sigmoid(c + L)``. Since
``U = sigmoid(L)`` is uniform, with ``a = e^c``::

    E[1 - p]     = a c / (a - 1)^2 - 1 / (a - 1)
    E[(1 - p)^2] = (a + 1 - 2 a c / (a - 1)) / (a - 1)^2

(``chen_terms``), bias2(c) = E[1-p]^2, var(c) = E[(1-p)^2] - E[1-p]^2. Along
c >= 0 the ratio log bias2 / log var rises from ``log 4 / log 12 = 0.558`` at
c = 0 toward 2 (large c: var ~ e^-c, bias2 ~ (c-1)^2 e^-2c): the range quoted
for Corollary 5.3, which this closed form reproduces. Each test example is
compared with the model at its own ``c`` = the members' mean margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import AfterValidator, BeforeValidator, Field

from biasvar.core.config import (
    MAX_WIDTH,
    BatchSize,
    Depth,
    Ints,
    Members,
    NumSamples,
    OpenUnitInterval,
    PositiveFloat,
    Section,
    Seed,
    Steps,
)
from biasvar.core.rng import torch_generator
from biasvar.studies.common import StudyResult

LOGISTIC_SD = math.pi / math.sqrt(3.0)  # sd of a standard logistic variable, 1.8138
RATIO_AT_ZERO = math.log(4.0) / math.log(12.0)  # Chen's model at c = 0: bias2 1/4, var 1/12
EVAL_CHUNK = 2048

# Per test example and width, sorted by width, example.
COLLAPSE_EXAMPLE_COLUMNS = (
    "width",
    "example",  # index into the binary test set
    "label",  # 0 = first class of collapse.classes, 1 = second
    "correct",  # the ensemble (mean probability) predicts the label
    "p_mean",  # mean over members of the true-class probability
    "bias2",  # (1 - p_mean)^2, plug-in
    "var",  # mean over members of (p_m - p_mean)^2, plug-in (ddof 0)
    "margin_mean",  # mean over members of logit_y - logit_other (nats): Chen's c
    "margin_sd",  # its sd across members (ddof 1); Assumption 5.1: pi / sqrt 3
    "chen_log_bias2",  # Assumption 5.1's log bias2 at c = margin_mean
    "chen_log_var",  # Assumption 5.1's log var at c = margin_mean
    "scaled_log_bias2",  # the same with the logistic noise scaled to margin_sd
    "scaled_log_var",
)

# Per member and width, sorted by width, member.
COLLAPSE_MEMBER_COLUMNS = (
    "width", "member", "draw", "seed",
    "train_error",  # on its in-bag examples
    "test_error",
    "nc1_train",  # tr(Sigma_W Sigma_B^+) / K on its in-bag examples' features
    "nc1_test",  # the same on the test set
    "nc3_cos",  # cos(w_1 - w_0, mu_1 - mu_0), in-bag class means
    "margin_train",  # mean margin on its in-bag examples (nats)
    "margin_test",  # mean margin on the test set
)

# Per width, sorted by width.
COLLAPSE_SUMMARY_COLUMNS = (
    "width", "n_members", "n_test", "n_correct",
    "member_train_error", "member_test_error", "ensemble_test_error",
    "nc1_train", "nc1_train_sd", "nc1_test", "nc3_cos", "margin_train", "margin_test",
    "margin_sd_median",  # median over correct test examples of the margin sd across members
    "slope", "intercept", "r2",  # OLS of log var on log bias2, correct test examples
    "ratio_median",  # median over correct test examples of log bias2 / log var
    "ratio_in_range",  # fraction of correct examples with ratio in [0.558, 2]
    "chen_log_var_error",  # median over correct examples of log var - log chen_var
    "chen_log_bias2_error",  # median over correct examples of log bias2 - log chen_bias2
    "scaled_log_var_error",  # the same against the scaled-noise model
    "scaled_log_bias2_error",
    "scaled_slope",  # OLS slope of the scaled model's log var on its log bias2
)


def _pair(v: Any) -> Any:
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        raise ValueError("the two classes are the same")
    return v


class CollapseParams(Section):
    """The ``collapse.*`` section of params.yaml (the binary neural-collapse study)."""

    SECTION: ClassVar[str] = "collapse"
    classes: Annotated[
        tuple[Annotated[int, Field(ge=0, le=9)], Annotated[int, Field(ge=0, le=9)]],
        BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v),
        AfterValidator(_pair),
        Field(description="two distinct MNIST-1D classes in 0..9, e.g. [8, 9]")]
    num_samples: NumSamples(100)  # make_dataset's size; num_samples // 10 per class
    train_split: OpenUnitInterval
    data_seed: Seed  # make_dataset's seed
    widths: Ints(1, "integers", MAX_WIDTH)
    depth: Depth
    draws: Members(2)  # bootstrap resamples of the binary training set
    seeds_per_draw: Members()
    steps: Steps
    batch_size: BatchSize
    lr: PositiveFloat
    seed: Seed  # base of draws, inits and minibatch streams


# ------------------------------------------------------------------ closed forms
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


def chen_log_terms(c: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Assumption 5.1 (K = 2): ``(log bias2, log var)`` of ``p = sigmoid(c + L)``, L standard
    logistic.

    For ``c >= 0.5`` the closed form with ``q = e^-c`` factored out (no
    underflow for large c)::

        E[1-p] = q (c - 1 + q) / (1-q)^2
        var    = q [(1 + q - 2 c q / (1-q)) / (1-q)^2 - q (c - 1 + q)^2 / (1-q)^4]

    Below, 64-point Gauss-Legendre of ``E[(1-U)^k / (1 + (a-1) U)^k]`` with U
    uniform and ``a = e^c`` (where the closed form cancels); the integrand is
    smooth there (its pole lies at ``u = -1 / (a-1)``, outside [0, 1]).
    ``c`` is clipped to [-50, 1e6].
    """
    c = np.atleast_1d(np.clip(np.asarray(c, dtype=np.float64), -50.0, 1e6))
    log_b = np.empty_like(c)
    log_v = np.empty_like(c)
    big = c >= 0.5
    cb = c[big]
    q = np.exp(-cb)
    one_q = -np.expm1(-cb)  # 1 - q
    lead = cb - 1.0 + q
    log_b[big] = 2.0 * (-cb + np.log(lead) - 2.0 * np.log(one_q))
    inner = ((1.0 + q - 2.0 * cb * q / one_q) / one_q**2 - q * lead**2 / one_q**4)
    log_v[big] = -cb + np.log(inner)
    cs = c[~big]
    if cs.size:
        u = 0.5 * (_GL_NODES + 1.0)  # (64,) nodes on [0, 1]
        w = 0.5 * _GL_WEIGHTS
        f = (1.0 - u) / (1.0 + np.expm1(cs)[:, None] * u)  # (n, 64)
        e1 = f @ w
        log_b[~big] = 2.0 * np.log(e1)
        log_v[~big] = np.log(((f - e1[:, None]) ** 2) @ w)  # no E f^2 - (E f)^2 cancellation
    return log_b, log_v


def scaled_log_terms(c: np.ndarray, scale: np.ndarray, half_width: float = 80.0,
                     n_grid: int = 8001) -> tuple[np.ndarray, np.ndarray]:
    """``(log bias2, log var)`` of ``p = sigmoid(c + scale * L)``, L standard logistic.

    Assumption 5.1 with the Gumbel noise scaled by ``scale`` (1: the paper's
    model). By the trapezoid rule over ``l`` in ``[-half_width, half_width]``
    with the logistic density, in log space (``log(1 - p) = -softplus(c + s l)``),
    so tiny bias2 does not underflow; ``c`` and ``scale`` broadcast to (n,).
    """
    c = np.atleast_1d(np.asarray(c, dtype=np.float64))
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), c.shape)
    grid = np.linspace(-half_width, half_width, n_grid)  # (G,)
    log_w = -grid - 2.0 * np.logaddexp(0.0, -grid)  # log logistic density, (G,)
    log_w = log_w + np.log(grid[1] - grid[0])
    log_w[[0, -1]] += np.log(0.5)  # trapezoid end weights
    log_q = -np.logaddexp(0.0, c[:, None] + scale[:, None] * grid)  # log(1 - p), (n, G)
    from scipy.special import logsumexp

    log_e1 = logsumexp(log_q + log_w, axis=1)  # log E[1 - p], (n,)
    # var = E[(q - E q)^2], summed directly (no E[q^2] - E[q]^2 cancellation)
    dev = np.exp(log_q - log_e1[:, None]) - 1.0  # q / E q - 1, (n, G)
    log_v = 2.0 * log_e1 + logsumexp(log_w + np.log(dev * dev + 1e-300), axis=1)
    return 2.0 * log_e1, log_v


def chen_terms(c: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Assumption 5.1 (K = 2): ``(bias2, var)`` at ``c`` (``exp`` of ``chen_log_terms``)."""
    log_b, log_v = chen_log_terms(c)
    return np.exp(log_b), np.exp(log_v)


def chen_ratio(c: np.ndarray | float) -> np.ndarray:
    """``log bias2 / log var`` of Assumption 5.1 at ``c``."""
    log_b, log_v = chen_log_terms(c)
    return log_b / log_v


def model_curve(c_max: float = 60.0) -> Any:
    """Assumption 5.1's curve for the report: columns ``c``, ``log_bias2``, ``log_var``,
    ``ratio`` at c = 0 (first row), fine steps to 5, coarser to ``c_max``."""
    import pandas as pd

    c = np.concatenate([np.linspace(0.0, 5.0, 101), np.linspace(5.0, c_max, 221)[1:]])
    lb, lv = chen_log_terms(c)
    return pd.DataFrame({"c": c, "log_bias2": lb, "log_var": lv, "ratio": lb / lv})


def nc1(features: np.ndarray, labels: np.ndarray, n_classes: int = 2) -> float:
    """Papyan et al.'s NC1 = ``tr(Sigma_W Sigma_B^+) / K`` of ``features`` (N, F), ``labels`` (N,).

    ``Sigma_B`` is ``M M^T / K`` with M's columns the class means minus their
    mean (Papyan et al. center on the global mean: the same for balanced
    classes; rank K - 1); its pseudo-inverse keeps the K - 1 nonzero directions
    exactly (an SVD of the thin M, not a cutoff on a rounded F x F matrix).
    NaN when a class is missing or the class means coincide.
    """
    h = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    means = []
    for k in range(n_classes):
        if not (y == k).any():
            return float("nan")
        means.append(h[y == k].mean(0))
    mu = np.stack(means, 1)  # (F, K)
    centered = h - mu.T[y]  # (N, F) each example minus its class mean
    sigma_w = centered.T @ centered / len(h)  # (F, F)
    m = mu - mu.mean(1, keepdims=True)  # (F, K), columns sum to 0
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    r = n_classes - 1
    if s[r - 1] <= 1e-12 * max(1.0, s[0]):
        return float("nan")
    # Sigma_B^+ = K * U_r diag(1/s^2) U_r^T on the K - 1 directions of M, so
    # tr(Sigma_W Sigma_B^+) / K = tr(P^T Sigma_W P) with P = U_r diag(1/s).
    proj = u[:, :r] / s[:r]  # (F, r)
    return float(np.trace(proj.T @ sigma_w @ proj))


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS ``y = a + b x``: ``(slope, intercept, r2)``; NaN with fewer than 3 points."""
    if len(x) < 3 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    r2 = 1.0 - (resid @ resid) / ((y - y.mean()) @ (y - y.mean()))
    return float(b), float(a), float(r2)


# ------------------------------------------------------------------ data
def binary_task(classes: Sequence[int], num_samples: int, train_split: float,
                data_seed: int) -> dict[str, np.ndarray]:
    """The two classes of an MNIST-1D dataset; labels 0 (first class) / 1 (second)."""
    from biasvar.data.providers.mnist1d import study_data

    src = study_data(num_samples, data_seed, train_split)
    a, b = classes
    out = {}
    for part in ("train", "test"):
        y = getattr(src, f"y_{part}")
        keep = (y == a) | (y == b)
        out[f"x_{part}"] = np.asarray(getattr(src, f"x_{part}"), dtype=np.float64)[keep]  # (N, 40)
        out[f"y_{part}"] = (y[keep] == b).astype(np.int64)  # (N,)
    return out


# ------------------------------------------------------------------ training
def train_binary(task: dict[str, np.ndarray], width: int, depth: int, draw_idx: np.ndarray,
                 seeds: np.ndarray, steps: int, batch_size: int, lr: float, seed: int,
                 threads: int = 0) -> dict[str, np.ndarray]:
    """Train one stacked binary MLP per member; return logits and penultimate features.

    ``draw_idx`` (M, n_draw): each member's training indices. Returns
    ``test_logits`` (M, n_test, 2), ``test_features`` (M, n_test, width),
    ``train_logits`` (M, n_train, 2), ``train_features`` (M, n_train, width),
    ``out_weight`` (M, 2, width).
    """
    import torch

    from biasvar.core.errors import BiasvarError, NonFiniteLossError
    from biasvar.ensemble.models import init_members, stacked_model
    from biasvar.ensemble.train import EpochBatches, fit_members

    if threads:  # else torch's default: OMP_NUM_THREADS when set, else the cores
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    n_members, n_draw = draw_idx.shape
    x_train = torch.as_tensor(task["x_train"], dtype=torch.float32)
    y_train = torch.as_tensor(task["y_train"])
    x_test = torch.as_tensor(task["x_test"], dtype=torch.float32)
    # the pipeline's stacked MLP (no residual) with two classes: features() is the
    # penultimate layer the collapse measures read
    model = stacked_model("mlp", n_members, width, depth, False, (x_train[0].numel(),), 2)
    members = range(n_members)
    init_members(model, [torch_generator(seed, "collapse-init", width, m) for m in members])
    # the pipeline's ensemble protocol and training loop: each member its own draw and
    # its own minibatch order, Adam on one flat buffer
    batches = EpochBatches(torch.as_tensor(draw_idx), min(batch_size, n_draw),
                           [torch_generator(seed, "collapse-batches", width, m)
                            for m in members])
    try:
        fit_members(model, x_train, y_train, batches, steps, "adam", lr)
    except NonFiniteLossError as e:
        raise BiasvarError(f"collapse: width {width}: {e} (lower collapse.lr)") from None

    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for part, x in (("train", x_train), ("test", x_test)):
            feats, logits = [], []
            for start in range(0, len(x), EVAL_CHUNK):
                xb = x[start:start + EVAL_CHUNK].unsqueeze(0).expand(n_members, -1, -1)
                h = model.features(xb)  # (M, b, width)
                feats.append(h)
                logits.append(model.out(h))
            out[f"{part}_features"] = torch.cat(feats, 1).double().numpy()
            out[f"{part}_logits"] = torch.cat(logits, 1).double().numpy()
        out["out_weight"] = model.out.weight.detach().double().numpy()  # (M, 2, width)
    for k, v in out.items():
        if not np.isfinite(v).all():
            raise BiasvarError(f"collapse: width {width}: non-finite {k} after training "
                               "(lower collapse.lr)")
    return out


# ------------------------------------------------------------------ measurements
def margins(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``logit_y - logit_other``: logits (M, N, 2), labels (N,) -> (M, N)."""
    sign = np.where(labels == 1, 1.0, -1.0)  # (N,)
    return (logits[..., 1] - logits[..., 0]) * sign


def example_terms(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per example: plug-in bias2/var of the true-class probability and margin stats."""
    z = margins(logits, labels)  # (M, N)
    p = 1.0 / (1.0 + np.exp(-z))  # true-class probability, (M, N)
    p_mean = p.mean(0)
    var = ((p - p_mean) ** 2).mean(0)
    zm = z.mean(0)
    chen_lb, chen_lv = chen_log_terms(zm)
    sd = z.std(0, ddof=1)
    scaled_lb, scaled_lv = scaled_log_terms(zm, sd / LOGISTIC_SD)
    return {"p_mean": p_mean, "bias2": (1.0 - p_mean) ** 2, "var": var, "correct": p_mean > 0.5,
            "margin_mean": zm, "margin_sd": sd, "chen_log_bias2": chen_lb,
            "chen_log_var": chen_lv, "scaled_log_bias2": scaled_lb, "scaled_log_var": scaled_lv}


def member_rows(width: int, out: dict[str, np.ndarray], task: dict[str, np.ndarray],
                draw_idx: np.ndarray, draws: np.ndarray, seeds: np.ndarray) -> list[dict]:
    """One row (``COLLAPSE_MEMBER_COLUMNS``) per member."""
    y_tr, y_te = task["y_train"], task["y_test"]
    rows = []
    for m in range(len(draw_idx)):
        bag = np.unique(draw_idx[m])  # its distinct training examples
        h, y = out["train_features"][m, bag], y_tr[bag]
        lt, lte = out["train_logits"][m, bag], out["test_logits"][m]
        d_mu = h[y == 1].mean(0) - h[y == 0].mean(0)
        d_w = out["out_weight"][m, 1] - out["out_weight"][m, 0]
        cos = float(d_w @ d_mu / (np.linalg.norm(d_w) * np.linalg.norm(d_mu) + 1e-300))
        rows.append({
            "width": width, "member": m, "draw": int(draws[m]), "seed": int(seeds[m]),
            "train_error": float((lt.argmax(-1) != y).mean()),
            "test_error": float((lte.argmax(-1) != y_te).mean()),
            "nc1_train": nc1(h, y), "nc1_test": nc1(out["test_features"][m], y_te),
            "nc3_cos": cos,
            "margin_train": float(margins(lt[None], y)[0].mean()),
            "margin_test": float(margins(lte[None], y_te)[0].mean()),
        })
    return rows


def summarize(examples: Any, members: Any) -> Any:
    """Per-width summary (``COLLAPSE_SUMMARY_COLUMNS``) of the example and member tables."""
    import pandas as pd

    rows = []
    lo, hi = RATIO_AT_ZERO, 2.0
    for width, e in examples.groupby("width", sort=True):
        mem = members[members.width == width]
        c = e[e.correct & (e["var"] > 0) & (e.bias2 > 0)]
        lb, lv = np.log(c.bias2.to_numpy()), np.log(c["var"].to_numpy())
        slope, intercept, r2 = fit_line(lb, lv)
        ratio = lb / lv
        rows.append({
            "width": width, "n_members": len(mem), "n_test": len(e),
            "n_correct": int(e.correct.sum()),
            "member_train_error": mem.train_error.mean(),
            "member_test_error": mem.test_error.mean(),
            "ensemble_test_error": 1.0 - e.correct.mean(),
            "nc1_train": mem.nc1_train.mean(), "nc1_train_sd": mem.nc1_train.std(),
            "nc1_test": mem.nc1_test.mean(), "nc3_cos": mem.nc3_cos.mean(),
            "margin_train": mem.margin_train.mean(), "margin_test": mem.margin_test.mean(),
            "margin_sd_median": float(np.median(c.margin_sd)) if len(c) else np.nan,
            "slope": slope, "intercept": intercept, "r2": r2,
            "ratio_median": float(np.median(ratio)) if len(c) else np.nan,
            "ratio_in_range": float(((ratio >= lo) & (ratio <= hi)).mean()) if len(c) else np.nan,
            "chen_log_var_error": float(np.median(lv - c.chen_log_var)) if len(c) else np.nan,
            "chen_log_bias2_error": (float(np.median(lb - c.chen_log_bias2))
                                     if len(c) else np.nan),
            "scaled_log_var_error": (float(np.median(lv - c.scaled_log_var))
                                     if len(c) else np.nan),
            "scaled_log_bias2_error": (float(np.median(lb - c.scaled_log_bias2))
                                       if len(c) else np.nan),
            "scaled_slope": fit_line(c.scaled_log_bias2.to_numpy(),
                                     c.scaled_log_var.to_numpy())[0],
        })
    return pd.DataFrame(rows, columns=list(COLLAPSE_SUMMARY_COLUMNS))


def run_collapse(cfg: CollapseParams, threads: int = 0, log=print) -> tuple[StudyResult, Any, Any]:
    """The whole study: ``(summary result, per-example table, per-member table)``."""
    import pandas as pd

    from biasvar.data.splits import draw_indices

    task = binary_task(cfg.classes, cfg.num_samples, cfg.train_split, cfg.data_seed)
    n_train = len(task["y_train"])
    n_members = cfg.draws * cfg.seeds_per_draw
    draws = np.arange(n_members) // cfg.seeds_per_draw
    seeds = np.arange(n_members) % cfg.seeds_per_draw
    per_draw = np.stack([draw_indices("bootstrap", n_train, d, cfg.seed)
                         for d in range(cfg.draws)])  # (draws, n_train)
    draw_idx = per_draw[draws]  # (M, n_train)
    ex, mem = [], []
    for width in cfg.widths:
        out = train_binary(task, width, cfg.depth, draw_idx, seeds, cfg.steps, cfg.batch_size,
                           cfg.lr, cfg.seed, threads)
        t = example_terms(out["test_logits"], task["y_test"])
        ex.append(pd.DataFrame({"width": width, "example": np.arange(len(task["y_test"])),
                                "label": task["y_test"], **t}))
        mem += member_rows(width, out, task, draw_idx, draws, seeds)
        log(f"collapse: width {width}: {n_members} members trained")
    examples = pd.concat(ex, ignore_index=True)[list(COLLAPSE_EXAMPLE_COLUMNS)]
    members = pd.DataFrame(mem, columns=list(COLLAPSE_MEMBER_COLUMNS))
    summary = summarize(examples, members)
    metrics = {
        "classes": list(cfg.classes), "n_train": n_train, "n_test": len(task["y_test"]),
        "members": n_members, "ratio_range_model": [round(RATIO_AT_ZERO, 4), 2.0],
        "per_width": {str(int(r.width)): {k: (round(float(getattr(r, k)), 4))
                                          for k in ("member_test_error", "member_train_error",
                                                    "nc1_train", "nc3_cos", "margin_train",
                                                    "margin_sd_median", "slope", "r2",
                                                    "ratio_median", "ratio_in_range",
                                                    "chen_log_var_error", "chen_log_bias2_error",
                                                    "scaled_log_var_error", "scaled_slope")}
                      for r in summary.itertuples()},
    }
    return StudyResult(summary, metrics), examples, members
