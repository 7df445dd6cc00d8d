"""Params of the analysis stages: ``import.*``, ``decompose.*``, ``regress.*``, …"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from biasvar.core.config import (
    Bins,
    Bool,
    Bootstrap,
    Choice,
    OpenUnitInterval,
    Section,
    Seed,
    UnitInterval,
    Width,
)


class ImportParams(Section):
    """The ensemble file of ``source: import`` (``import.*``); see
    ``biasvar.analysis.imported.import_source``."""

    SECTION: ClassVar[str] = "import"
    path: Annotated[str, Field(min_length=1, description=(
        "a path: an .npz, a logits .parquet or a directory of per-member .npy files "
        "(docs/your-own.md)"))]
    label_noise: UnitInterval  # the level of a config whose name gives none
    width: Width  # the width of a config whose name gives none


class DecomposeParams(Section):
    """Per-config summaries (``decompose.*``): jackknife intervals and calibration bins."""

    SECTION: ClassVar[str] = "decompose"
    intervals: Bool  # delete-one-draw jackknife intervals (false: skip them)
    ci: OpenUnitInterval  # confidence level of the intervals
    ece_bins: Bins  # equal-width confidence bins


class RegressParams(Section):
    """Alignment regression (``regress.*``): which MSE terms, bootstrap over examples."""

    SECTION: ClassVar[str] = "regress"
    estimator: Choice("plugin", "unbiased")
    bootstrap: Bootstrap  # 0: no intervals
    ci: OpenUnitInterval
    seed: Seed


class AlignmentSizeParams(Section):
    """Alignment against ensemble size (``alignment_size.*``): bootstrap over examples."""

    SECTION: ClassVar[str] = "alignment_size"
    # replicates resampling test examples (0: no intervals, no extrapolation standard errors
    # and no check of the 1/K model; the K -> infinity value is then an unweighted fit)
    bootstrap: Bootstrap
    ci: OpenUnitInterval
    seed: Seed


class CalibrationInterventionParams(Section):
    """Per-member temperature scaling on out-of-bag data (``calibration_intervention.*``)."""

    SECTION: ClassVar[str] = "calibration_intervention"
    ece_bins: Bins  # equal-width confidence bins for ECE and the per-bin table
    bootstrap: Bootstrap  # replicates resampling test examples (paired before/after)
    ci: OpenUnitInterval
    seed: Seed


class DynamicsParams(Section):
    """The decomposition at every checkpoint step (``dynamics.*``): the intervals' level
    and the alignment fit's bootstrap over test examples. The steps themselves are
    ``train.checkpoints`` (they are logits the train stage keeps)."""

    SECTION: ClassVar[str] = "dynamics"
    bootstrap: Bootstrap  # 0: no intervals for the alignment slope
    ci: OpenUnitInterval
    seed: Seed

