"""Principal-component bias (Hacohen & Weinshall, JMLR 2022): members agree first along
the data's large principal directions.

Protocol (one config):

1. Inputs: MNIST-1D training inputs ``x`` (n, 40), centred by their mean and
   rotated into the PCA basis of their covariance, ``z = (x - mean) V`` with
   ``Sigma = V diag(lambda) V^T``, eigenvalues in decreasing order. Coordinate j
   of ``z`` is principal component j. ``data: whitened`` further divides each
   coordinate by ``sqrt(lambda_j)`` (all variances 1): the control in which
   the bias has nothing to order by.
2. An ensemble of M bias-free MLPs ``f(z) = W_L s(W_{L-1} ... s(W_1 z))`` with
   ``s`` linear, ReLU or tanh, trained together (stacked weights, one ``bmm``
   per layer), full batch, on the MSE to one-hot labels; each member has its
   own initialization (PyTorch's default distribution times ``init_scale``).
3. Every ``log_every`` steps, each member's *compact map* ``W`` (classes, 40):
   for a linear network the product ``W_L ... W_1`` (exact: f(z) = W z); for
   ReLU / tanh its linearization, the input Jacobian averaged over the training
   inputs, ``mean_z df/dz`` (equal to the product for a linear network; tested).
   Column j of ``W`` is the map's action on principal component j.
4. The across-member standard deviation along PC j,
   ``sd_j(t) = sqrt(mean_c var_m W[m, c, j])`` (ddof 1), and its ratio to the
   initial value. PC j has *converged* at the first logged step at which the
   ratio is at most ``converged_fraction``. The bias holds when convergence is
   ordered by eigenvalue: the Spearman rank correlation between ``lambda_j``
   and the convergence step is strongly negative (PCs that never converge
   count as converging after the last step, tied).

Why it holds for a linear model (depth 1, gradient descent, MSE): the error of
every member along PC j decays as ``(1 - 2 lr lambda_j / C)^t`` towards the
same least-squares solution, so the members' spread along j shrinks by that
factor; ``tests/test_pc_bias.py`` checks the measured ratio against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from biasvar.core.config import (
    Choice,
    Depth,
    Members,
    NumSamples,
    PositiveFloat,
    Section,
    Seed,
    Steps,
    UnitInterval,
    Width,
)
from biasvar.core.errors import ParamError
from biasvar.studies.common import StudyResult
from biasvar.studies.grid import expand_configs

ACTIVATIONS = ("linear", "relu", "tanh")
DATA_VERSIONS = ("pca", "whitened")

# The tidy table: one row per (logged step, principal component).
PC_BIAS_COLUMNS = (
    "step",  # optimization step (0 = initialization)
    "pc",  # principal component, 0 = largest eigenvalue
    "eigenvalue",  # lambda_j of the training-input covariance (before any whitening)
    "sd",  # across-member sd of the compact map along PC j (mean over classes of the var)
    "sd_ratio",  # sd / sd at step 0
    "loss",  # mean training MSE over members at this step (the same on every pc row)
)


class PCBiasSettings(Section):
    """The training settings of one config (``pc_bias.base``, updated by an entry of
    ``pc_bias.configs``)."""

    SECTION: ClassVar[str] = "pc_bias.base"
    activation: Choice(*ACTIVATIONS)
    depth: Depth  # weight matrices (1 = a linear model)
    width: Width  # hidden units of every hidden layer
    members: Members(2)
    optimizer: Choice("sgd", "adam")  # full batch
    lr: PositiveFloat
    steps: Steps
    init_scale: PositiveFloat  # multiplies PyTorch's default initialization
    data: Choice(*DATA_VERSIONS)


@dataclass(frozen=True)
class PCBiasRun:
    """One config: ``pc_bias.base`` updated by ``pc_bias.configs.<name>``, and the shared
    logging, convergence rule and seed."""

    name: str
    activation: str
    depth: int
    width: int
    members: int
    optimizer: str
    lr: float
    steps: int
    init_scale: float
    data: str
    log_every: int = 10
    converged_fraction: float = 0.5
    seed: int = 0


class PCBiasParams(Section):
    """The ``pc_bias.*`` section of params.yaml: data, shared settings, and the configs
    (one DVC stage ``pc_bias@<name>`` each)."""

    SECTION: ClassVar[str] = "pc_bias"
    num_samples: NumSamples(20)  # make_dataset's size; the first half (train split) is used
    data_seed: Seed  # make_dataset's seed
    log_every: Steps  # steps between measurements of the compact maps
    converged_fraction: UnitInterval  # sd_ratio at or below which a PC has converged
    seed: Seed  # members' initializations (the same for every config of one architecture)
    base: dict[str, Any]
    configs: Annotated[dict[str, Any], Field(min_length=1, description=(
        "a non-empty mapping of name -> overrides of pc_bias.base"))]

    @model_validator(mode="after")
    def _check(self) -> PCBiasParams:
        _ = self.runs  # validates base and every configuration
        return self

    @property
    def runs(self) -> tuple[PCBiasRun, ...]:
        out = []
        for name, s in expand_configs("pc_bias", self.base, self.configs, PCBiasSettings):
            if self.log_every > s.steps:
                over = self.configs[name]
                key = (f"pc_bias.configs.{name}.steps" if "steps" in over
                       else "pc_bias.base.steps")
                raise ParamError(key, s.steps, f"an integer >= pc_bias.log_every = "
                                 f"{self.log_every}")
            out.append(PCBiasRun(name, **s.model_dump(), log_every=self.log_every,
                                 converged_fraction=self.converged_fraction, seed=self.seed))
        return tuple(out)


def pca_rotate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, eigenvalues, V)``: ``x`` (n, d) centred and rotated into its PCA basis.

    ``Sigma = (x - mean)^T (x - mean) / n = V diag(eigenvalues) V^T``, eigenvalues
    in decreasing order; ``z = (x - mean) V`` (n, d) has covariance diag(eigenvalues).
    """
    xc = x - x.mean(0, keepdims=True)
    evals, evecs = np.linalg.eigh(xc.T @ xc / len(xc))  # ascending
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    return xc @ evecs, evals, evecs


def init_weights(members: int, dims: list[int], init_scale: float, seed: int) -> list:
    """Bias-free stacked weights ``[(M, dims[i+1], dims[i])]``, member m drawn from its own
    generator: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default) times ``init_scale``."""
    import torch

    from biasvar.core.rng import torch_generator

    weights = [torch.empty(members, dims[i + 1], dims[i]) for i in range(len(dims) - 1)]
    for m in range(members):
        g = torch_generator(seed, "pc_bias", m)
        for w in weights:
            bound = init_scale / math.sqrt(w.shape[2])
            w[m] = (torch.rand(w.shape[1:], generator=g) * 2 - 1) * bound
    return [w.requires_grad_(True) for w in weights]


def forward(weights: list, z, activation: str):
    """``(M, n, d) -> (M, n, classes)``: the stacked bias-free MLP."""
    import torch

    act = {"linear": lambda h: h, "relu": torch.relu, "tanh": torch.tanh}[activation]
    h = z
    for i, w in enumerate(weights):
        h = torch.bmm(h, w.transpose(1, 2))  # (M, n, out)
        if i < len(weights) - 1:
            h = act(h)
    return h


def product_map(weights: list):
    """``W_L ... W_1`` per member: (M, classes, d)."""
    import torch

    out = weights[0]
    for w in weights[1:]:
        out = torch.bmm(w, out)
    return out


def mean_jacobian(weights: list, z, activation: str):
    """``mean_n df_m(z_n)/dz`` per member: (M, classes, d), by one backward pass per class.

    The gradient of ``sum_n f_c(z_n)`` with respect to the inputs holds each
    example's Jacobian row for class c; their mean over examples is row c.
    """
    import torch

    z = z.detach().requires_grad_(True)
    out = forward(weights, z, activation)  # (M, n, C)
    rows = []
    for c in range(out.shape[2]):
        (g,) = torch.autograd.grad(out[:, :, c].sum(), z, retain_graph=True)  # (M, n, d)
        rows.append(g.mean(1))  # (M, d)
    return torch.stack(rows, 1)  # (M, C, d)


def compact_map(weights: list, z, activation: str):
    """The members' compact linear maps (M, classes, d): the product for a linear network,
    the mean input Jacobian otherwise."""
    import torch

    with torch.no_grad():
        if activation == "linear":
            return product_map(weights).detach()
    return mean_jacobian(weights, z, activation).detach()


def sd_along_pcs(maps: np.ndarray) -> np.ndarray:
    """``(M, C, d) -> (d,)``: sqrt of the across-member variance (ddof 1), averaged over
    classes, per input coordinate (a PC when the inputs are in the PCA basis)."""
    return np.sqrt(maps.var(axis=0, ddof=1).mean(axis=0))


def convergence_steps(table: Any, fraction: float) -> np.ndarray:
    """Per PC, the first logged step with ``sd_ratio <= fraction`` (NaN: never)."""
    out = []
    for _, d in table.sort_values("step").groupby("pc", sort=True):
        hit = d.step[d.sd_ratio <= fraction]
        out.append(float(hit.iloc[0]) if len(hit) else np.nan)
    return np.array(out)


def rank_correlation(eigenvalues: np.ndarray, steps: np.ndarray, censor: float) -> float:
    """Spearman correlation of eigenvalue and convergence step, never-converged PCs set to
    ``censor`` (tied); NaN when every PC converges at the same step."""
    from scipy.stats import spearmanr

    s = np.where(np.isnan(steps), censor, steps)
    if np.all(s == s[0]):
        return float("nan")
    return float(spearmanr(eigenvalues, s).statistic)


def pc_bias(x: np.ndarray, y: np.ndarray, cfg: PCBiasRun, classes: int = 10,
            threads: int = 0) -> StudyResult:
    """Train one config's ensemble and measure its spread along the principal components."""
    import pandas as pd
    import torch

    if threads:
        torch.set_num_threads(threads)
    z_np, evals, _ = pca_rotate(np.asarray(x, dtype=np.float64))
    if cfg.data == "whitened":
        z_np = z_np / np.sqrt(np.where(evals > 0, evals, 1.0))
    d = z_np.shape[1]
    z = torch.as_tensor(z_np, dtype=torch.float32).expand(cfg.members, -1, -1)  # (M, n, d)
    target = torch.nn.functional.one_hot(torch.as_tensor(y), classes).float()  # (n, C)
    dims = [d] + [cfg.width] * (cfg.depth - 1) + [classes]
    weights = init_weights(cfg.members, dims, cfg.init_scale, cfg.seed)
    opt = (torch.optim.SGD(weights, lr=cfg.lr) if cfg.optimizer == "sgd"
           else torch.optim.Adam(weights, lr=cfg.lr))
    rows, sd0 = [], None

    def log(step: int, loss: float) -> None:
        nonlocal sd0
        sd = sd_along_pcs(compact_map(weights, z, cfg.activation).numpy().astype(np.float64))
        if sd0 is None:
            sd0 = np.where(sd > 0, sd, np.nan)
        rows.append(pd.DataFrame({"step": step, "pc": np.arange(d), "eigenvalue": evals,
                                  "sd": sd, "sd_ratio": sd / sd0, "loss": loss}))

    for step in range(cfg.steps + 1):
        out = forward(weights, z, cfg.activation)  # (M, n, C)
        # per member: mean over examples and classes; summed over members so that
        # each member's gradient is its own loss's gradient
        loss = ((out - target) ** 2).mean(dim=(1, 2)).sum()
        if step % cfg.log_every == 0 or step == cfg.steps:
            log(step, float(loss.detach()) / cfg.members)
        if step == cfg.steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    table = pd.concat(rows, ignore_index=True)[list(PC_BIAS_COLUMNS)]
    steps = convergence_steps(table, cfg.converged_fraction)
    censor = float(cfg.steps + cfg.log_every)
    metrics = {
        "spearman_eigenvalue_vs_convergence": rank_correlation(evals, steps, censor),
        "converged_pcs": int(np.isfinite(steps).sum()),
        "pcs": int(d),
        "convergence_step": [None if np.isnan(s) else int(s) for s in steps],
        "final_loss": float(table.loss.iloc[-1]),
        "final_sd_ratio_top5": float(table[table.step == table.step.max()]
                                     .sort_values("pc").sd_ratio.iloc[:5].mean()),
        "final_sd_ratio_bottom5": float(table[table.step == table.step.max()]
                                        .sort_values("pc").sd_ratio.iloc[-5:].mean()),
    }
    return StudyResult(table, metrics)
