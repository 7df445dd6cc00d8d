"""Effective rank of embeddings against depth (Huh et al., "The Low-Rank Simplicity Bias
in Deep Networks", TMLR 2023): deeper networks map inputs to lower-rank embeddings,
at initialization and after training.

Protocol (one config):

1. MNIST-1D (``num_samples`` examples, half train / half test), inputs in one
   of the versions of ``nets.input_version`` (``data``).
2. For every depth in ``depths``: an ensemble of ``members`` MLPs with
   ``depth`` hidden layers of ``width`` units and ``activation``, initialized
   (PyTorch default times ``init_scale``) and trained with minibatch
   cross-entropy (``optimizer``, ``lr``, ``steps``, ``batch_size``). Depth d
   and member m draw their initialization from their own generator.
3. At initialization and after training, each member's penultimate embeddings
   of the test inputs, an (n_test, width) matrix, and its effective rank (Roy &
   Vetterli: exp of the entropy of the normalized singular values;
   ``effective_rank``), uncentred unless ``center``.
4. The bias holds when the mean effective rank falls with depth: the Spearman
   rank correlation between depth and the members' mean effective rank is
   negative (per phase), and the ratio erank(deepest) / erank(shallowest) is
   below 1. Both are in the metrics; the report's summary table decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from biasvar.core.config import (
    MAX_DEPTH,
    BatchSize,
    Bool,
    Choice,
    Ints,
    Members,
    NumSamples,
    PositiveFloat,
    Section,
    Seed,
    Steps,
    Width,
)
from biasvar.studies.common import StudyResult
from biasvar.studies.effective_rank import effective_rank
from biasvar.studies.grid import expand_configs
from biasvar.studies.nets import ACTIVATIONS, INPUT_VERSIONS

PHASES = ("init", "trained")

# The tidy table: one row per (depth, member, phase).
ERANK_DEPTH_COLUMNS = (
    "depth",  # hidden layers
    "member",  # member index within the depth's ensemble
    "phase",  # init | trained
    "erank",  # effective rank of the (n_test, width) test embeddings
    "test_error",  # the member's test error (fraction) at this phase
)


class ErankDepthSettings(Section):
    """One config's training settings (``erank_depth.base`` updated by a config entry)."""

    SECTION: ClassVar[str] = "erank_depth.base"
    activation: Choice(*ACTIVATIONS)
    width: Width
    members: Members()
    optimizer: Choice("adam", "sgd")  # sgd with momentum 0.9
    lr: PositiveFloat
    steps: Steps
    batch_size: BatchSize
    init_scale: PositiveFloat  # multiplies PyTorch's default initialization
    data: Choice(*INPUT_VERSIONS)


@dataclass(frozen=True)
class ErankDepthRun:
    """One config with the section's shared settings."""

    name: str
    activation: str
    width: int
    members: int
    optimizer: str
    lr: float
    steps: int
    batch_size: int
    init_scale: float
    data: str
    depths: tuple[int, ...] = (1, 2)
    center: bool = False
    seed: int = 0


class ErankDepthParams(Section):
    """The ``erank_depth.*`` section: data, depths, shared settings and the configs (one DVC
    stage ``erank_depth@<name>`` each)."""

    SECTION: ClassVar[str] = "erank_depth"
    num_samples: NumSamples(20)  # make_dataset's size: half train, half test
    data_seed: Seed
    depths: Ints(1, "depths", MAX_DEPTH)
    center: Bool  # subtract the mean embedding before the SVD
    seed: Seed
    base: dict[str, Any]
    configs: Annotated[dict[str, Any], Field(min_length=1, description=(
        "a non-empty mapping of name -> overrides of erank_depth.base"))]

    @model_validator(mode="after")
    def _check(self) -> ErankDepthParams:
        _ = self.runs
        return self

    @property
    def runs(self) -> tuple[ErankDepthRun, ...]:
        return tuple(ErankDepthRun(name, **s.model_dump(), depths=tuple(self.depths),
                                   center=self.center, seed=self.seed)
                     for name, s in expand_configs("erank_depth", self.base, self.configs,
                                                   ErankDepthSettings))


def depth_trend(depths: np.ndarray, erank: np.ndarray) -> tuple[float, float]:
    """``(spearman, ratio)`` of mean effective rank against depth: the rank correlation and
    erank at the deepest over erank at the shallowest depth (NaN when undefined)."""
    from scipy.stats import spearmanr

    order = np.argsort(depths)
    d, e = np.asarray(depths)[order], np.asarray(erank, dtype=float)[order]
    rho = float(spearmanr(d, e).statistic) if len(d) > 1 and np.ptp(e) > 0 else float("nan")
    ratio = float(e[-1] / e[0]) if e[0] > 0 else float("nan")
    return rho, ratio


def erank_depth(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray, cfg: ErankDepthRun, threads: int = 0) -> StudyResult:
    """Train one config's ensembles at every depth; effective rank at init and trained."""
    import pandas as pd
    import torch

    from biasvar.studies import nets

    if threads:
        torch.set_num_threads(threads)
    xtr, xte = nets.input_version(x_train, x_test, cfg.data, cfg.seed)
    rows = []
    for depth in cfg.depths:
        net = nets.build("mlp", cfg.members, depth, cfg.width, cfg.activation, cfg.init_scale,
                         cfg.seed, f"erank_depth/{depth}")

        def measure(phase: str, net=net, depth=depth) -> None:
            emb = nets.embed(net, xte)  # (M, n_test, width)
            err = (nets.predict(net, xte).argmax(-1) != y_test).mean(1)  # (M,)
            for m in range(cfg.members):
                rows.append((depth, m, phase, effective_rank(emb[m], cfg.center), float(err[m])))

        measure("init")
        nets.train(net, xtr, y_train, optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.steps,
                   batch_size=cfg.batch_size, seed=cfg.seed, purpose=f"erank_depth/{depth}",
                   log_every=cfg.steps)
        measure("trained")
    table = pd.DataFrame(rows, columns=list(ERANK_DEPTH_COLUMNS))
    metrics: dict[str, Any] = {"width": cfg.width, "depths": list(cfg.depths)}
    for phase in PHASES:
        mean = table[table.phase == phase].groupby("depth").erank.mean()
        rho, ratio = depth_trend(mean.index.to_numpy(), mean.to_numpy())
        metrics[phase] = {"erank": [float(v) for v in mean], "spearman_depth": rho,
                          "ratio_deepest_shallowest": ratio}
    err = table[table.phase == "trained"].groupby("depth").test_error.mean()
    metrics["trained"]["test_error"] = [float(v) for v in err]
    return StudyResult(table, metrics)
