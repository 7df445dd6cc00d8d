"""Params of the data stages: ``data.*``, ``split.*`` and the member layout ``ensemble.*``.

``ensemble.*`` lives here because ``split`` (the first stage that reads it)
needs the member layout to know which draws a block holds.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from biasvar.core.config import (
    MAX_MEMBERS,
    MAX_SAMPLES,
    MAX_WIDTH,
    Choice,
    Ints,
    Members,
    Section,
    Seed,
    _as_tuple,
    _distinct,
)
from biasvar.core.errors import ParamError
from biasvar.data.providers import FILE_PROVIDERS, PROVIDER_NAMES, train_size

DIGITS_IMAGES = 1797  # sklearn's bundled digits

LabelNoise = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False,
                                    description="a probability in [0, 1)")]
# make_dataset draws num_samples // 10 per class: fewer than 20 leaves a partition empty.
MIN_MNIST1D_SAMPLES = 20


def check_root(value: Any) -> str | None:
    """``data.root``: null or a path string (relative or absolute) that is safe to pass
    on a command line and to ``open``: non-empty, no control characters, not starting
    with ``-`` (read as an option) or whitespace."""
    if value is None:
        return None
    if (not isinstance(value, str) or not value or value[0] in "- \t"
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
        raise ParamError("data.root", value, (
            "null or a path string (relative or absolute; no control characters, not "
            "starting with '-' or a space)"))
    return value


class DataParams(Section):
    """Which examples (``data.name``, ``data.root``), their size and split, and label
    noise (``data.*``).

    ``num_samples`` per provider: ``mnist1d``, make_dataset's total (train + test,
    an integer >= 20); ``digits``, the images kept of 1797 (null: all);
    ``cifar10``/``cifar100``/``arrays``, the examples kept, ``int(num_samples x
    train_split)`` of them from the file's training set and the rest from its test
    set (null: all, and ``train_split`` is not used). ``root`` is required by the
    file providers (cifar10, cifar100: a directory; arrays: an .npz) and must be
    null for the others.
    """

    SECTION: ClassVar[str] = "data"
    label_noise: Annotated[tuple[LabelNoise, ...], Field(min_length=1, description=(
        "a non-empty list of distinct probabilities in [0, 1)"))]
    num_samples: Annotated[int | None, Field(ge=1, le=MAX_SAMPLES, description=(
        f"an integer >= {MIN_MNIST1D_SAMPLES} and <= {MAX_SAMPLES} (mnist1d); null or an "
        "integer >= 2 (other providers)"))]
    train_split: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False,
                                        description="a fraction in (0, 1)")]
    seed: Seed
    noise_seed: Seed
    name: Annotated[Choice(*PROVIDER_NAMES), Field(default="mnist1d")]
    root: Annotated[str | None, Field(default=None, description=(
        "null or a path string (required by cifar10, cifar100, arrays)"))]

    _tuple = field_validator("label_noise", mode="before")(lambda v: _as_tuple(v))
    _unique = field_validator("label_noise")(lambda v: _distinct(v))
    _root = field_validator("root", mode="before")(lambda v: check_root(v))

    @model_validator(mode="after")
    def _provider_rules(self) -> DataParams:
        name, n = self.name, self.num_samples
        if name in FILE_PROVIDERS and self.root is None:
            what = "an .npz file" if name == "arrays" else "a directory in the CIFAR python layout"
            raise ParamError("data.root", None, f"a path for data.name {name}: {what}")
        if name not in FILE_PROVIDERS and self.root is not None:
            raise ParamError("data.root", self.root, f"null for data.name {name}")
        if name == "mnist1d" and (n is None or n < MIN_MNIST1D_SAMPLES):
            raise ParamError("data.num_samples", n, (
                f"an integer >= {MIN_MNIST1D_SAMPLES} and <= {MAX_SAMPLES}"))
        if name == "digits" and n is not None and not 2 <= n <= DIGITS_IMAGES:
            raise ParamError("data.num_samples", n,
                             f"null or an integer >= 2 and <= {DIGITS_IMAGES} (digits)")
        if n is None and name != "digits":  # all of a file: checked when it is read
            return self
        n_train = self.train_size()
        kept = {"mnist1d": (n or 0) // 10 * 10, "digits": n or DIGITS_IMAGES}.get(name, n)
        if n_train < 1 or n_train >= kept:
            raise ParamError("data.train_split", self.train_split,
                             "a fraction leaving both partitions non-empty")
        return self

    def train_size(self) -> int:
        """The training-set size the provider gives (reads a file's labels only when
        ``num_samples`` is null): what ``split`` draws indices from."""
        return train_size(self.name, self.num_samples, self.train_split, self.seed, self.root)


class EnsembleParams(Section):
    """Sweep axes and member layout (``ensemble.*``).

    Member ``m`` trains in block ``m // block_size`` on draw ``m // seeds_per_draw``
    with optimization seed ``m % seeds_per_draw``.
    """

    SECTION: ClassVar[str] = "ensemble"
    widths: Ints(1, "integers", MAX_WIDTH)
    blocks: Annotated[Ints(0, "block ids"), Field(description=(
        "a non-empty list of distinct block ids (integers >= 0)"))]
    block_size: Members()
    seeds_per_draw: Members()

    @model_validator(mode="after")
    def _whole_draws(self) -> EnsembleParams:
        spd, n = self.seeds_per_draw, self.block_size * len(self.blocks)
        if n % spd:
            raise ParamError("ensemble.seeds_per_draw", spd,
                             f"a divisor of block_size x len(blocks) = {n}")
        # Neal's split needs a balanced draws x seeds grid: every draw that has
        # a member must have all of its seeds_per_draw members listed.
        members = set(self.members)
        for draw in sorted({m // spd for m in members}):
            have = sum((draw * spd + s) in members for s in range(spd))
            if have != spd:
                raise ParamError("ensemble.blocks", list(self.blocks),
                                 f"blocks that hold whole draws (draw {draw} has {have} of "
                                 f"{spd} seeds)")
        return self

    @property
    def members(self) -> tuple[int, ...]:
        """Every member id the blocks list, ascending."""
        return tuple(m for b in sorted(self.blocks) for m in self.block_members(b))

    def block_members(self, block: int) -> tuple[int, ...]:
        """The member ids trained by ``block``."""
        return tuple(range(block * self.block_size, (block + 1) * self.block_size))

    @property
    def n_draws(self) -> int:
        """Number of distinct draws (training-set resamples) across all members."""
        return len({m // self.seeds_per_draw for m in self.members})

    def draw(self, member: int) -> int:
        return member // self.seeds_per_draw

    def seed(self, member: int) -> int:
        return member % self.seeds_per_draw


class SplitParams(Section):
    """How each draw's training indices are made (``split.*``).

    ``parts`` is the number K of disjoint parts for ``method: disjoint``
    (null: one part per draw of the ensemble); ignored otherwise.
    """

    SECTION: ClassVar[str] = "split"
    method: Choice("bootstrap", "disjoint", "full", "half")
    seed: Seed
    parts: Annotated[int | None, Field(ge=2, description="null or an integer >= 2")]

    def check_against(self, ensemble: EnsembleParams, n_train: int) -> int | None:
        """Cross-check with the ensemble and the training set; returns K for disjoint
        splits, else None.

        ``tools.validate.validate_all`` (``make pipeline``, before ``dvc repro``) and the
        ``split`` stage (the first stage that reads data, split and ensemble) both call
        it, so a configuration that cannot produce a report fails before any training.
        The rules refuse exactly those configurations:

        - at least 2 draws across the listed blocks: the report's variance over draws
          (Neal's sampling part), its jackknife intervals and the unbiased terms need
          D >= 2 (with one draw, ``plot`` failed late on a missing ``var_sampling``
          column);
        - every draw holds at least one training example and leaves at least one out of
          bag: the report includes ``calibration_intervention``, which fits each member's
          temperature on its out-of-bag examples. ``full`` gives every draw every example
          and is refused here; it stays a method of ``data.splits`` (an ensemble whose
          members differ only in their seeds, for library code and tests): train,
          decompose and regress run with it, the report cannot. The other methods are
          checked exactly: ``half`` of one example is empty, a bootstrap draw of a tiny
          training set can hold all of it (its indices are drawn here, as ``split``
          draws them);
        - ``disjoint``: K parts, at least one per draw, none empty.
        """
        self._check_draws(ensemble)
        if self.method == "full":
            raise ParamError("split.method", self.method, (
                "bootstrap, disjoint or half: the report's calibration_intervention fits each "
                "member's temperature on its out-of-bag training examples, and full leaves "
                "none"))
        k = None
        if self.method == "disjoint":
            k = self.parts if self.parts is not None else ensemble.n_draws
            max_draw = max(ensemble.members) // ensemble.seeds_per_draw
            if k < 2 or k <= max_draw:
                raise ParamError("split.parts", self.parts,
                                 f"null or an integer >= {max(2, max_draw + 1)} (one part per "
                                 "draw)")
            if n_train // k < 1:
                raise ParamError("split.parts", self.parts,
                                 f"at most {n_train} parts for {n_train} training examples")
        elif self.method == "half" and n_train // 2 < 1:
            raise ParamError("split.method", self.method,
                             f"a method whose draws hold examples: half of {n_train} training "
                             "example is none")
        elif self.method == "bootstrap":
            self._check_out_of_bag(ensemble, n_train)
        return k

    def draw_size(self, n_train: int, k: int | None = None) -> int:
        """Indices in one draw (duplicates counted): what a minibatch is drawn from."""
        if self.method == "disjoint":
            return n_train // (k if k is not None else self.parts or 1)
        return n_train // 2 if self.method == "half" else n_train

    @staticmethod
    def _check_draws(ensemble: EnsembleParams) -> None:
        n, d, spd = len(ensemble.members), ensemble.n_draws, ensemble.seeds_per_draw
        if d >= 2:
            return
        why = ("the report's variance over draws, Neal's split and the jackknife need "
               "2 draws")
        if n >= 2:
            raise ParamError("ensemble.seeds_per_draw", spd,
                             f"a divisor of block_size x len(blocks) = {n} that leaves >= 2 "
                             f"draws ({n} members of {spd} seeds make {d} draw; {why})")
        raise ParamError("ensemble.block_size", ensemble.block_size,
                         f"block_size x len(blocks) >= 2 members in >= 2 draws ({why})")

    def _check_out_of_bag(self, ensemble: EnsembleParams, n_train: int) -> None:
        # Exact: the draws' indices as the split stage makes them (a few ms at most).
        import numpy as np

        from biasvar.data.splits import draw_indices

        for d in sorted({ensemble.draw(m) for m in ensemble.members}):
            idx = draw_indices(self.method, n_train, d, self.seed)
            if np.bincount(idx, minlength=n_train).all():
                raise ParamError("split.method", self.method, (
                    f"a split that leaves out-of-bag examples: draw {d} holds all {n_train} "
                    "training examples, and calibration_intervention fits temperatures on "
                    "out-of-bag examples (more training examples, or another split.seed)"))


# ---------------------------------------------------------------- single values
def check_label_noise(key: str, value: Any) -> float:
    """A label-noise probability in [0, 1) (one value of ``data.label_noise``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ParamError(key, value, "a probability in [0, 1)")
    return float(value)


def check_width(key: str, value: Any) -> int:
    """A width (hidden units or channels) in [1, MAX_WIDTH]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WIDTH:
        raise ParamError(key, value, f"an integer >= 1 and <= {MAX_WIDTH}")
    return value


def check_block_layout(block_size: Any, seeds_per_draw: Any) -> tuple[int, int]:
    """``ensemble.block_size`` and ``ensemble.seeds_per_draw``, each in [1, MAX_MEMBERS]."""
    for key, v in (("ensemble.block_size", block_size),
                   ("ensemble.seeds_per_draw", seeds_per_draw)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_MEMBERS:
            raise ParamError(key, v, f"an integer >= 1 and <= {MAX_MEMBERS}")
    return block_size, seeds_per_draw


def sweep_axes(params) -> tuple[list, list]:
    """The raw ``data.label_noise`` and ``ensemble.widths`` of a stage's declared params,
    each value checked. Raw values (not floats): they name the files and directories."""
    noise, widths = params.get("data.label_noise"), params.get("ensemble.widths")
    for key, values, check in (("data.label_noise", noise, check_label_noise),
                               ("ensemble.widths", widths, check_width)):
        if not isinstance(values, list) or not values:
            raise ParamError(key, values, "a non-empty list")
        for i, v in enumerate(values):
            check(f"{key}[{i}]", v)
    return noise, widths
