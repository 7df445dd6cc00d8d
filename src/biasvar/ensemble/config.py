"""Params of the train stage: the architecture (``model.*``) and optimization (``train.*``)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from biasvar.core.config import (
    MAX_BATCH,
    Bool,
    Choice,
    Depth,
    NonNegativeFloat,
    PositiveFloat,
    Section,
    Seed,
    Steps,
    UnitInterval,
)
from biasvar.core.errors import ParamError

ARCHS = ("mlp", "cnn", "logistic")
OPTIMIZERS = ("adam", "sgd")


class ModelParams(Section):
    """Architecture (``model.*``); the width comes from the sweep.

    ``depth`` is the number of hidden layers of ``mlp``; ``residual`` adds the
    skip connection ``h = h + relu(L h)`` on hidden-to-hidden layers (the
    MNIST-1D reference MLP is depth 2, residual, width 100).
    """

    SECTION: ClassVar[str] = "model"
    arch: Choice(*ARCHS)
    depth: Depth
    residual: Bool


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

    @model_validator(mode="after")
    def _log_within_steps(self) -> TrainParams:
        if self.log_every > self.steps:
            raise ParamError("train.log_every", self.log_every,
                             f"an integer in [1, steps = {self.steps}]")
        return self

    def check_against(self, n_draw: int) -> int:
        """The effective batch size for a draw of ``n_draw`` examples."""
        if self.batch_size is None:
            return n_draw
        if self.batch_size > n_draw:
            raise ParamError("train.batch_size", self.batch_size,
                             f"null (full batch) or at most the {n_draw} examples of a draw")
        return self.batch_size
