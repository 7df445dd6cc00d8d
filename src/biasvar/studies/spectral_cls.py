"""Spectral bias on a classification task (Rahaman et al. 2019; Fridovich-Keil et al.
2022): along straight paths between inputs, the logits of a network in training gain
low frequencies first and high frequencies later, more so when it memorizes noisy
labels.

Protocol (one config):

1. MNIST-1D (``num_samples`` examples, half train / half test), inputs in one
   of the versions of ``nets.input_version``; each training label is replaced
   by a uniform random class with probability ``label_noise``
   (``add_label_noise`` with ``seed``; test labels stay clean).
2. ``paths`` pairs (a, b) of distinct training inputs, drawn once per config
   from ``seed``; on each path the ``points + 1`` inputs
   ``x(t) = (1 - t) a + t b`` at ``t = i / points``, i = 0 .. points.
3. An ensemble of ``members`` networks (``nets.build``: MLP or the MNIST-1D
   CNN) trained with minibatch cross-entropy. At step 0 and every
   ``log_every`` steps, every member's logits on every path point,
   ``f`` (members, paths, points + 1, classes).
4. Per member, path and class, the straight line between the path's end values
   is subtracted, ``g(t) = f(t) - [(1 - t) f(0) + t f(1)]``, and the last point
   dropped (``g(1) = g(0) = 0``): ``g`` is then one period of a continuous
   periodic sequence of ``points`` samples. Without this, the jump between
   ``f(1)`` and ``f(0)`` leaks energy proportional to 1/k^2 into every
   frequency and the spectrum would mostly measure the logits' endpoint gap.
   ``A_k = mean |DFT(g)_k|^2`` over members, paths and classes, k = 1 ..
   points / 2 (cycles per path), and ``R_k = log(A_k / sum_j A_j)``.
5. The bias holds when the spectrum moves up over training: the frequency
   centroid ``kbar(t) = sum_k k A_k / sum_k A_k`` rises with the step (Spearman
   rank correlation of step and kbar over the logged steps after
   initialization > 0, and kbar at the end above kbar at the first logged
   step). Initialization is left out of the trend: the initial function is
   tiny (logits ~1e-2) and the first updates, low-frequency, swamp it, so
   kbar first falls from its initial value (measured: 1.10 -> 1.07 for the
   default MLP) and then rises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from biasvar.core.config import (
    BatchSize,
    Choice,
    Depth,
    Int,
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
from biasvar.studies.nets import ACTIVATIONS, ARCHS, INPUT_VERSIONS

# The tidy table: one row per (logged step, frequency).
SPECTRAL_CLS_COLUMNS = (
    "step",  # optimization step (0 = initialization)
    "k",  # frequency, cycles per path (1 .. points / 2)
    "energy",  # A_k: mean squared DFT magnitude of the detrended logits
    "log_ratio",  # R_k = log(A_k / sum_j A_j)
    "train_error",  # mean member error on the (possibly noisy) training labels at this step
    "test_error",  # mean member error on the clean test labels at this step
)


class SpectralClsSettings(Section):
    """One config's settings (``spectral_cls.base`` updated by a config entry)."""

    SECTION: ClassVar[str] = "spectral_cls.base"
    arch: Choice(*ARCHS)
    activation: Choice(*ACTIVATIONS)  # mlp only (the cnn is ReLU)
    depth: Depth  # hidden layers (mlp only)
    width: Width  # hidden units (mlp) or channels (cnn)
    label_noise: UnitInterval
    members: Members()
    optimizer: Choice("adam", "sgd")  # sgd with momentum 0.9
    lr: PositiveFloat
    steps: Steps
    batch_size: BatchSize
    init_scale: PositiveFloat
    data: Choice(*INPUT_VERSIONS)


@dataclass(frozen=True)
class SpectralClsRun:
    """One config with the section's shared settings."""

    name: str
    arch: str
    activation: str
    depth: int
    width: int
    label_noise: float
    members: int
    optimizer: str
    lr: float
    steps: int
    batch_size: int
    init_scale: float
    data: str
    paths: int = 8
    points: int = 16
    log_every: int = 10
    seed: int = 0


class SpectralClsParams(Section):
    """The ``spectral_cls.*`` section: data, paths, logging and the configs (one DVC stage
    ``spectral_cls@<name>`` each)."""

    SECTION: ClassVar[str] = "spectral_cls"
    num_samples: NumSamples(20)  # make_dataset's size: half train, half test
    data_seed: Seed
    paths: Int(1, "an integer", 10_000)  # pairs of training inputs
    points: Int(4, "an integer", 4096)  # samples per path; frequencies 1 .. points // 2
    log_every: Steps
    seed: Seed  # paths, label noise, initializations and minibatches
    base: dict[str, Any]
    configs: Annotated[dict[str, Any], Field(min_length=1, description=(
        "a non-empty mapping of name -> overrides of spectral_cls.base"))]

    @model_validator(mode="after")
    def _check(self) -> SpectralClsParams:
        _ = self.runs
        return self

    @property
    def runs(self) -> tuple[SpectralClsRun, ...]:
        out = []
        for name, s in expand_configs("spectral_cls", self.base, self.configs,
                                      SpectralClsSettings):
            if self.log_every > s.steps:
                raise ParamError("spectral_cls.log_every", self.log_every,
                                 f"an integer <= the steps of config {name} ({s.steps})")
            out.append(SpectralClsRun(name, **s.model_dump(), paths=self.paths,
                                      points=self.points, log_every=self.log_every,
                                      seed=self.seed))
        return tuple(out)


def path_inputs(a: np.ndarray, b: np.ndarray, points: int) -> np.ndarray:
    """``(paths, points + 1, d)``: ``(1 - t) a + t b`` at ``t = i / points``, i = 0 .. points."""
    t = np.arange(points + 1, dtype=np.float64)[None, :, None] / points  # (1, P+1, 1)
    return (1 - t) * a[:, None, :] + t * b[:, None, :]


def path_spectrum(values: np.ndarray) -> np.ndarray:
    """Energy per frequency of functions sampled along paths.

    ``values``: (..., points + 1, classes), the samples at ``t = i / points``
    including both ends. Returns ``A`` (points // 2,): the mean over all
    leading axes and classes of ``|DFT(g)_k|^2 / points^2`` for k = 1 ..
    points // 2, where ``g`` is ``values`` minus the straight line between its
    end values, last sample dropped. With this normalization
    ``sum_j c_j sin(2 pi j t)`` gives ``A_j = c_j^2 / 4``.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[-2] - 1  # samples per period
    t = np.arange(n + 1, dtype=np.float64)[:, None] / n  # (P+1, 1)
    line = (1 - t) * v[..., :1, :] + t * v[..., -1:, :]
    g = (v - line)[..., :n, :]  # (..., P, C)
    spec = np.abs(np.fft.rfft(g, axis=-2)) ** 2 / n**2  # (..., P//2 + 1, C)
    spec = spec[..., 1:n // 2 + 1, :]  # k = 1 .. P//2
    return spec.reshape(-1, *spec.shape[-2:]).mean(axis=(0, 2))


def centroid(energy: np.ndarray) -> float:
    """``sum_k k A_k / sum_k A_k`` for k = 1 .. len(energy) (NaN when all A_k are 0)."""
    e = np.asarray(energy, dtype=np.float64)
    total = e.sum()
    return float((np.arange(1, len(e) + 1) * e).sum() / total) if total > 0 else float("nan")


def spectral_trend(table: Any) -> dict[str, Any]:
    """The metrics of one config's table: the frequency centroid at initialization, at the
    first logged step, at the end, its change since the first logged step and its
    rank correlation with the step (logged steps after initialization)."""
    from scipy.stats import spearmanr

    per_step = table.groupby("step").energy.apply(lambda e: centroid(e.to_numpy()))
    trained = per_step[per_step.index > 0]
    rho = (float(spearmanr(trained.index, trained.to_numpy()).statistic)
           if len(trained) > 2 and np.ptp(trained.to_numpy()) > 0 else float("nan"))
    return {
        "centroid_init": float(per_step.iloc[0]),
        "centroid_first": float(trained.iloc[0]) if len(trained) else float("nan"),
        "centroid_final": float(per_step.iloc[-1]),
        "centroid_change": float(per_step.iloc[-1] - trained.iloc[0]) if len(trained)
        else float("nan"),
        "centroid_spearman": rho,
    }


def spectral_cls(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, cfg: SpectralClsRun, threads: int = 0) -> StudyResult:
    """Train one config's ensemble and measure the spectrum of its logits along paths."""
    import pandas as pd
    import torch

    from biasvar.core.rng import numpy_generator
    from biasvar.data.dataset import add_label_noise
    from biasvar.studies import nets

    if threads:
        torch.set_num_threads(threads)
    xtr, xte = nets.input_version(x_train, x_test, cfg.data, cfg.seed)
    ytr, _ = add_label_noise(np.asarray(y_train), cfg.label_noise, cfg.seed, 10)  # MNIST-1D
    rng = numpy_generator(cfg.seed, "spectral_cls_paths")
    ends = np.stack([rng.choice(len(xtr), size=2, replace=False) for _ in range(cfg.paths)])
    px = path_inputs(xtr[ends[:, 0]], xtr[ends[:, 1]], cfg.points)  # (paths, P+1, 40)
    flat = px.reshape(-1, px.shape[-1]).astype(np.float32)
    net = nets.build(cfg.arch, cfg.members, cfg.depth, cfg.width, cfg.activation,
                     cfg.init_scale, cfg.seed, "spectral_cls")
    rows = []

    def log(step: int) -> None:
        logits = nets.predict(net, flat)  # (M, paths * (P+1), C)
        energy = path_spectrum(logits.reshape(cfg.members, cfg.paths, cfg.points + 1, -1))
        tr = (nets.predict(net, xtr).argmax(-1) != ytr).mean()
        te = (nets.predict(net, xte).argmax(-1) != y_test).mean()
        rows.append(pd.DataFrame({
            "step": step, "k": np.arange(1, len(energy) + 1), "energy": energy,
            "log_ratio": np.log(energy / energy.sum()), "train_error": tr, "test_error": te}))

    nets.train(net, xtr, ytr, optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.steps,
               batch_size=cfg.batch_size, seed=cfg.seed, purpose="spectral_cls",
               log_every=cfg.log_every, on_log=log)
    table = pd.concat(rows, ignore_index=True)[list(SPECTRAL_CLS_COLUMNS)]
    last = table[table.step == table.step.max()]
    metrics = {**spectral_trend(table),
               "final_train_error": float(last.train_error.iloc[0]),
               "final_test_error": float(last.test_error.iloc[0])}
    return StudyResult(table, metrics)
