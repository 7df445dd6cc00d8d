"""Typed, validated configs: one frozen dataclass per ``params.yaml`` section.

Stages read only the keys their ``dvc.yaml`` entry declares (``load_section``
refuses any other key), build these dataclasses, and fail with one line
naming the key, the value and what is allowed before doing any work.

``runtime.*`` is the one exception to "read only what you declare": it holds
execution settings (device, threads, progress bars) that must never trigger a
rerun, so no stage declares it and every stage may read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biasvar.errors import ParamError

ARCHS = ("mlp", "cnn", "logistic")
OPTIMIZERS = ("adam", "sgd")
SPLIT_METHODS = ("bootstrap", "disjoint", "full")
DEVICES = ("auto", "cpu", "cuda")

# MNIST-1D has 10 classes; make_dataset draws num_samples // 10 per class.
N_CLASSES = 10


# ---------------------------------------------------------------- primitive checks
def _int(key: str, value: Any, *, min_value: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(key, value, "an integer" + _min_text(min_value))
    if min_value is not None and value < min_value:
        raise ParamError(key, value, "an integer" + _min_text(min_value))
    return value


def _min_text(min_value: int | None) -> str:
    return "" if min_value is None else f" >= {min_value}"


def _float(key: str, value: Any, *, low: float, high: float, high_open: bool, low_open: bool,
           what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParamError(key, value, what)
    v = float(value)
    if v < low or (low_open and v == low) or v > high or (high_open and v == high):
        raise ParamError(key, value, what)
    return v


def _choice(key: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ParamError(key, value, "one of " + ", ".join(choices))
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamError(key, value, "true or false")
    return value


def _list(key: str, value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise ParamError(key, value, "a non-empty list")
    return value


def _check_keys(section: str, d: Any, allowed: Iterable[str]) -> Mapping[str, Any]:
    """Unknown keys are typos until proven otherwise: refuse them, listing what is allowed."""
    allowed = tuple(allowed)
    if not isinstance(d, Mapping):
        raise ParamError(section, d, "a mapping with keys " + ", ".join(allowed))
    for k in d:
        if k not in allowed:
            raise ParamError(f"{section}.{k}", d[k], "unknown key; allowed keys: "
                             + ", ".join(allowed))
    missing = [k for k in allowed if k not in d]
    if missing:
        raise ParamError(f"{section}.{missing[0]}", None, "missing; it must be set")
    return d


def check_label_noise(key: str, value: Any) -> float:
    """A label-noise probability in [0, 1)."""
    return _float(key, value, low=0.0, high=1.0, low_open=False, high_open=True,
                  what="a probability in [0, 1)")


def check_block_layout(block_size: Any, seeds_per_draw: Any) -> tuple[int, int]:
    """``ensemble.block_size`` and ``ensemble.seeds_per_draw``, each an integer >= 1."""
    return (_int("ensemble.block_size", block_size, min_value=1),
            _int("ensemble.seeds_per_draw", seeds_per_draw, min_value=1))


def check_width(key: str, value: Any) -> int:
    """A width (hidden units or channels) >= 1."""
    return _int(key, value, min_value=1)


# ---------------------------------------------------------------- sections
@dataclass(frozen=True)
class DataParams:
    """MNIST-1D generation and label noise (``data.*``)."""

    label_noise: tuple[float, ...]
    num_samples: int
    train_split: float
    seed: int
    noise_seed: int

    KEYS = ("label_noise", "num_samples", "train_split", "seed", "noise_seed")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataParams:
        _check_keys("data", d, cls.KEYS)
        noise = tuple(check_label_noise(f"data.label_noise[{i}]", v)
                      for i, v in enumerate(_list("data.label_noise", d["label_noise"])))
        if len(set(noise)) != len(noise):
            raise ParamError("data.label_noise", d["label_noise"], "distinct values")
        num_samples = _int("data.num_samples", d["num_samples"], min_value=N_CLASSES * 2)
        train_split = _float("data.train_split", d["train_split"], low=0.0, high=1.0,
                             low_open=True, high_open=True, what="a fraction in (0, 1)")
        n = (num_samples // N_CLASSES) * N_CLASSES
        if int(n * train_split) < 1 or int(n * train_split) >= n:
            raise ParamError("data.train_split", d["train_split"],
                             "a fraction leaving both partitions non-empty")
        return cls(noise, num_samples, train_split, _int("data.seed", d["seed"], min_value=0),
                   _int("data.noise_seed", d["noise_seed"], min_value=0))


def n_train_examples(num_samples: int, train_split: float) -> int:
    """Training-set size exactly as ``mnist1d.data.make_dataset`` computes it."""
    n = (num_samples // N_CLASSES) * N_CLASSES
    return int(n * train_split)


@dataclass(frozen=True)
class EnsembleParams:
    """Sweep axes and member layout (``ensemble.*``).

    Member ``m`` trains in block ``m // block_size`` on draw ``m // seeds_per_draw``
    with optimization seed ``m % seeds_per_draw``.
    """

    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    block_size: int
    seeds_per_draw: int

    KEYS = ("widths", "blocks", "block_size", "seeds_per_draw")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnsembleParams:
        _check_keys("ensemble", d, cls.KEYS)
        widths = tuple(check_width(f"ensemble.widths[{i}]", v)
                       for i, v in enumerate(_list("ensemble.widths", d["widths"])))
        if len(set(widths)) != len(widths):
            raise ParamError("ensemble.widths", d["widths"], "distinct values")
        blocks = tuple(_int(f"ensemble.blocks[{i}]", v, min_value=0)
                       for i, v in enumerate(_list("ensemble.blocks", d["blocks"])))
        if len(set(blocks)) != len(blocks):
            raise ParamError("ensemble.blocks", d["blocks"], "distinct block ids")
        block_size = _int("ensemble.block_size", d["block_size"], min_value=1)
        spd = _int("ensemble.seeds_per_draw", d["seeds_per_draw"], min_value=1)
        if (block_size * len(blocks)) % spd:
            raise ParamError("ensemble.seeds_per_draw", spd,
                             f"a divisor of block_size x len(blocks) = {block_size * len(blocks)}")
        self = cls(widths, blocks, block_size, spd)
        # Neal's split needs a balanced draws x seeds grid: every draw that has
        # a member must have all of its seeds_per_draw members listed.
        members = set(self.members)
        for draw in sorted({m // spd for m in members}):
            have = sum((draw * spd + s) in members for s in range(spd))
            if have != spd:
                raise ParamError("ensemble.blocks", list(blocks),
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


@dataclass(frozen=True)
class SplitParams:
    """How each draw's training indices are made (``split.*``).

    ``parts`` is the number K of disjoint parts for ``method: disjoint``
    (null: one part per draw of the ensemble); ignored otherwise.
    """

    method: str
    seed: int
    parts: int | None

    KEYS = ("method", "seed", "parts")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitParams:
        _check_keys("split", d, cls.KEYS)
        parts = d["parts"]
        if parts is not None:
            parts = _int("split.parts", parts, min_value=2)
        return cls(_choice("split.method", d["method"], SPLIT_METHODS),
                   _int("split.seed", d["seed"], min_value=0), parts)

    def check_against(self, ensemble: EnsembleParams, n_train: int) -> int | None:
        """Cross-check with the ensemble; returns K for disjoint splits, else None."""
        if self.method != "disjoint":
            return None
        k = self.parts if self.parts is not None else ensemble.n_draws
        max_draw = max(ensemble.members) // ensemble.seeds_per_draw
        if k < 2 or k <= max_draw:
            raise ParamError("split.parts", self.parts,
                             f"null or an integer >= {max(2, max_draw + 1)} (one part per draw)")
        if n_train // k < 1:
            raise ParamError("split.parts", self.parts,
                             f"at most {n_train} parts for {n_train} training examples")
        return k


@dataclass(frozen=True)
class ModelParams:
    """Architecture (``model.*``); the width comes from the sweep.

    ``depth`` is the number of hidden layers of ``mlp``; ``residual`` adds the
    skip connection ``h = h + relu(L h)`` on hidden-to-hidden layers (the
    MNIST-1D reference MLP is depth 2, residual, width 100).
    """

    arch: str
    depth: int
    residual: bool

    KEYS = ("arch", "depth", "residual")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelParams:
        _check_keys("model", d, cls.KEYS)
        return cls(_choice("model.arch", d["arch"], ARCHS),
                   _int("model.depth", d["depth"], min_value=1),
                   _bool("model.residual", d["residual"]))


@dataclass(frozen=True)
class TrainParams:
    """Optimization (``train.*``). ``batch_size: null`` means full batch."""

    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    steps: int
    batch_size: int | None
    seed: int
    log_every: int

    KEYS = ("optimizer", "lr", "momentum", "weight_decay", "steps", "batch_size", "seed",
            "log_every")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainParams:
        _check_keys("train", d, cls.KEYS)
        batch = d["batch_size"]
        if batch is not None:
            batch = _int("train.batch_size", batch, min_value=1)
        steps = _int("train.steps", d["steps"], min_value=1)
        log_every = _int("train.log_every", d["log_every"], min_value=1)
        if log_every > steps:
            raise ParamError("train.log_every", log_every, f"an integer in [1, steps = {steps}]")
        return cls(
            _choice("train.optimizer", d["optimizer"], OPTIMIZERS),
            _float("train.lr", d["lr"], low=0.0, high=math.inf, low_open=True, high_open=True,
                   what="a positive number"),
            _float("train.momentum", d["momentum"], low=0.0, high=1.0, low_open=False,
                   high_open=True, what="a number in [0, 1)"),
            _float("train.weight_decay", d["weight_decay"], low=0.0, high=math.inf,
                   low_open=False, high_open=True, what="a number >= 0"),
            steps, batch, _int("train.seed", d["seed"], min_value=0), log_every)

    def check_against(self, n_draw: int) -> int:
        """The effective batch size for a draw of ``n_draw`` examples."""
        if self.batch_size is None:
            return n_draw
        if self.batch_size > n_draw:
            raise ParamError("train.batch_size", self.batch_size,
                             f"null (full batch) or at most the {n_draw} examples of a draw")
        return self.batch_size


@dataclass(frozen=True)
class RuntimeParams:
    """Execution settings (``runtime.*``): never a stage dependency, never change results.

    ``threads: 0`` keeps PyTorch's default thread count.
    """

    device: str
    threads: int
    progress: bool

    KEYS = ("device", "threads", "progress")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuntimeParams:
        _check_keys("runtime", d, cls.KEYS)
        return cls(_choice("runtime.device", d["device"], DEVICES),
                   _int("runtime.threads", d["threads"], min_value=0),
                   _bool("runtime.progress", d["progress"]))


SECTIONS = {
    "data": DataParams,
    "split": SplitParams,
    "ensemble": EnsembleParams,
    "model": ModelParams,
    "train": TrainParams,
    "runtime": RuntimeParams,
}


# ---------------------------------------------------------------- loading
def read_yaml(path: str | Path) -> dict[str, Any]:
    """The whole params file as a dict; a missing or unparsable file is named."""
    import yaml

    from biasvar.errors import InputError

    path = Path(path)
    try:
        with path.open() as f:
            d = yaml.safe_load(f)
    except FileNotFoundError as e:
        raise InputError(f"{path}: params file not found") from e
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({e.__class__.__name__})") from e
    if not isinstance(d, dict):
        raise InputError(f"{path}: expected a mapping of sections")
    return d


class DeclaredParams:
    """The params a stage declared in dvc.yaml, and nothing else.

    ``get("train.lr")`` works only if ``train.lr`` (or its section ``train``)
    was declared, so a script cannot quietly depend on an undeclared key.
    """

    def __init__(self, raw: Mapping[str, Any], declared: Iterable[str], path: str | Path):
        self._raw, self._declared, self._path = raw, tuple(declared), str(path)

    def _allowed(self, key: str) -> bool:
        return any(key == d or key.startswith(d + ".") for d in self._declared)

    def get(self, key: str) -> Any:
        if not self._allowed(key):
            raise KeyError(f"params key {key!r} is not declared by this stage "
                           f"(declared: {', '.join(self._declared)})")
        node: Any = self._raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ParamError(key, None, "missing; it must be set")
            node = node[part]
        return node

    def section(self, name: str) -> Any:
        """Build the dataclass of a whole declared section."""
        return SECTIONS[name].from_dict(self.get(name))

    def subset(self, name: str, keys: Iterable[str]) -> dict[str, Any]:
        """A dict of some declared keys of one section (for stages that need a few keys)."""
        return {k: self.get(f"{name}.{k}") for k in keys}


def load_declared(declared: Iterable[str], path: str | Path = "params.yaml") -> DeclaredParams:
    """Open ``path`` for a stage that declared ``declared`` (dvc.yaml ``params:``)."""
    return DeclaredParams(read_yaml(path), declared, path)


def load_runtime(path: str | Path = "params.yaml") -> RuntimeParams:
    """The runtime section; defaults (auto, 0 threads, progress on) when absent."""
    raw = read_yaml(path).get("runtime", {"device": "auto", "threads": 0, "progress": True})
    return RuntimeParams.from_dict(raw)


def validate_all(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every section of a params file, including cross-section rules.

    Returns the dataclasses by section name. Used by ``python -m biasvar.params``
    (run before ``dvc repro`` by the Makefile) and by the tests.
    """
    out: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        if name not in raw:
            raise ParamError(name, None, "missing section; it must be set")
        out[name] = cls.from_dict(raw[name])
    data, ens = out["data"], out["ensemble"]
    n_train = n_train_examples(data.num_samples, data.train_split)
    k = out["split"].check_against(ens, n_train)
    n_draw = n_train // k if k else n_train
    out["train"].check_against(n_draw)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m biasvar.params [params.yaml]``: validate and exit 0, or print one line."""
    import sys

    from biasvar.errors import BiasvarError

    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "params.yaml"
    try:
        validate_all(read_yaml(path))
    except BiasvarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
