"""Params of the train stage: the architecture (``model.*``) and optimization (``train.*``)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from biasvar.core.config import (
    MAX_BATCH,
    Bool,
    Choice,
    Depth,
    Int,
    NonNegativeFloat,
    PositiveFloat,
    Section,
    Seed,
    Steps,
    UnitInterval,
)
from biasvar.core.errors import ParamError

# ``cnn`` is the earlier name of ``cnn1d`` (configs written before cnn2d), kept as an alias
ARCHS = ("mlp", "cnn1d", "cnn", "logistic", "cnn2d", "resnet", "module")
OPTIMIZERS = ("adam", "sgd")
MAX_CHECKPOINTS = 64


def checkpoint_steps(steps: int, n: int) -> tuple[int, ...]:
    """``n`` log-spaced training steps at which test logits are kept, the last one ``steps``.

    ``round(geomspace(first, steps, n))`` with ``first = max(1, round(steps / 500))``
    (for 4000 steps: 8, ..., 4000; for 20000: 40, one epoch of the paper's draws, ...),
    made distinct (fewer than ``n`` when ``steps`` is small); ``n = 0``: none.
    """
    import numpy as np

    if n <= 0:
        return ()
    if n == 1:
        return (int(steps),)
    first = max(1, round(steps / 500))
    grid = np.unique(np.rint(np.geomspace(first, steps, n)).astype(np.int64))
    return tuple(int(s) for s in grid)


class ModelParams(Section):
    """Architecture (``model.*``); the width comes from the sweep, the input shape
    and class count from the dataset (``biasvar.ensemble.models``).

    ``depth`` is the number of hidden layers of ``mlp`` and the blocks per stage
    of ``resnet``; ``residual`` adds the skip connection ``h = h + relu(L h)`` on
    the mlp's hidden-to-hidden layers (the MNIST-1D reference MLP is depth 2,
    residual, width 100); ``stages`` is the number of ``resnet`` stages (k, 2k,
    4k, 8k channels for 4); ``module`` names a user's factory
    ``"package.module:function"`` for ``arch: module`` and is null otherwise.
    """

    SECTION: ClassVar[str] = "model"
    arch: Choice(*ARCHS)
    depth: Depth
    residual: Bool
    stages: Depth = 4
    module: Annotated[str | None, Field(description=(
        'null, or "package.module:function" when arch is module'))] = None

    @model_validator(mode="after")
    def _module_with_arch(self) -> ModelParams:
        if self.arch == "module":
            if (not isinstance(self.module, str) or self.module.count(":") != 1
                    or not all(self.module.split(":"))):
                raise ParamError("model.module", self.module,
                                 'a factory "package.module:function" (arch is module)')
        elif self.module is not None:
            raise ParamError("model.module", self.module,
                             f"null: arch is {self.arch}, not module")
        return self


class TrainParams(Section):
    """Optimization (``train.*``). ``batch_size: null`` means full batch."""

    SECTION: ClassVar[str] = "train"
    optimizer: Choice(*OPTIMIZERS)
    lr: PositiveFloat
    momentum: UnitInterval
    weight_decay: NonNegativeFloat
    steps: Steps
    batch_size: Annotated[int | None, Field(ge=1, le=MAX_BATCH, description=(
        f"null or an integer >= 1 and <= {MAX_BATCH}"))]
    seed: Seed
    log_every: Steps
    checkpoints: Int(0, "an integer", MAX_CHECKPOINTS) = 0

    @model_validator(mode="after")
    def _log_within_steps(self) -> TrainParams:
        if self.log_every > self.steps:
            raise ParamError("train.log_every", self.log_every,
                             f"an integer in [1, steps = {self.steps}]")
        return self

    def checkpoint_steps(self) -> tuple[int, ...]:
        """The steps at which every member's test logits are kept (``checkpoint_steps``)."""
        return checkpoint_steps(self.steps, self.checkpoints)

    def check_against(self, n_draw: int) -> int:
        """The effective batch size for a draw of ``n_draw`` examples."""
        if self.batch_size is None:
            return n_draw
        if self.batch_size > n_draw:
            raise ParamError("train.batch_size", self.batch_size,
                             f"null (full batch) or at most the {n_draw} examples of a draw")
        return self.batch_size
