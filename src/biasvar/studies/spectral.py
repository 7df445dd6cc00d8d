"""Spectral bias of MLPs (Rahaman et al., ICML 2019): low frequencies are learned first.

Protocol (``shared/REFERENCES.md`` § Spectral bias): the target
``lambda(x) = sum_i A_i sin(2 pi k_i x + phi_i)`` with ``k = 5, 10, ..., 50``
and phases ``phi_i ~ U(0, 2 pi)`` is sampled on the *periodic* grid
``arange(0, 1, 1/N)`` (N = 200), where each sinusoid is exactly one DFT bin,
so ``|DFT(lambda)(k_i)| * 2 / N = A_i`` with no leakage. An MLP with scalar
input is fitted to it full batch (MSE), and every ``log_every`` steps we
record, for each k_i, the normalized magnitude ``|DFT(f)(k_i)| * 2 / N / A_i``
of the network's output f on the grid: 0 before the component is learned, 1
once it is. Amplitudes are all 1 (``equal``) or increase from 0.1 to 1.0
with frequency (``increasing``), the harder case for high frequencies.

Phases come from ``(seed, "spectral-phases")`` and the initial weights from
``(seed, "spectral-init")``: every configuration with the same depth and
width starts from the same network and fits the same phases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from biasvar.core.config import (
    Choice,
    Depth,
    Int,
    Ints,
    PositiveFloat,
    Section,
    Seed,
    Steps,
    UnitInterval,
    Width,
)
from biasvar.core.errors import ParamError
from biasvar.core.rng import numpy_generator, torch_generator
from biasvar.studies.common import StudyResult

ACTIVATIONS = ("relu", "tanh")
AMPLITUDES = ("equal", "increasing")
SPECTRAL_OPTIMIZERS = ("adam", "sgd")

# A frequency counts as learned once its normalized magnitude reaches this.
LEARNED_AT = 0.9

# Columns of a configuration's table, one row per (logged step, frequency).
SPECTRAL_COLUMNS = (
    "config",  # configuration name (the foreach key)
    "step",  # optimizer steps taken (0 = at initialization)
    "frequency",  # k_i, cycles per unit interval (= DFT bin on the grid)
    "amplitude",  # A_i of the target
    "magnitude",  # |DFT(f)(k_i)| * 2 / N, in target units
    "normalized_magnitude",  # magnitude / A_i: 1 = component fully learned
    "loss",  # full-batch MSE at that step (same for every frequency of a step)
)


class SpectralSettings(Section):
    """The training settings of a configuration (``spectral.base``, overridden per config)."""

    SECTION: ClassVar[str] = "spectral.base"
    amplitudes: Choice(*AMPLITUDES)  # equal (all 1) | increasing (0.1 ... 1.0 with k)
    activation: Choice(*ACTIVATIONS)
    depth: Depth  # hidden layers
    width: Width  # units per hidden layer
    optimizer: Choice(*SPECTRAL_OPTIMIZERS)  # full batch
    lr: PositiveFloat
    momentum: UnitInterval  # sgd only
    steps: Steps


@dataclass(frozen=True)
class SpectralRun:
    """One configuration: ``spectral.base`` updated by ``spectral.configs.<name>``."""

    name: str
    amplitudes: str
    activation: str
    depth: int
    width: int
    optimizer: str
    lr: float
    momentum: float
    steps: int

    @classmethod
    def from_dicts(cls, name: str, base: Mapping[str, Any], override: Any,
                   log_every: int) -> SpectralRun:
        """Validate ``base`` (errors name ``spectral.base.*``), then the override
        (errors name ``spectral.configs.<name>.*``)."""
        from biasvar.core.schema import check_config_name

        where = f"spectral.configs.{name}"
        check_config_name("spectral", name)  # it names a stage and files
        if not isinstance(override, Mapping):
            raise ParamError(where, override, "a mapping of spectral.base keys to override")
        SpectralSettings.from_dict(base)
        s = SpectralSettings.from_dict({**base, **override}, where=where)
        if log_every > s.steps:
            key = f"{where}.steps" if "steps" in override else "spectral.base.steps"
            raise ParamError(key, s.steps, f"an integer >= spectral.log_every = {log_every}")
        return cls(name, **s.model_dump())


class SpectralParams(Section):
    """The ``spectral.*`` section of params.yaml.

    ``base`` holds every training setting; each entry of ``configs`` (one DVC
    stage ``spectral@<name>``) overrides some of them. Frequencies, grid,
    logging and seed are shared, so configurations are paired comparisons.
    ``configs`` may hold only some entries (a stage validates its own).
    """

    SECTION: ClassVar[str] = "spectral"
    frequencies: Ints(1, "integers")  # k_i, each below the Nyquist bin n_points / 2
    n_points: Int(4, "an integer", 100_000)  # the periodic grid arange(0, 1, 1 / n_points)
    log_every: Steps  # record the spectrum every this many steps
    seed: Seed  # phases and initial weights
    base: dict[str, Any]
    configs: Annotated[dict[str, Any], Field(min_length=1, description=(
        "a non-empty mapping of name -> overrides of spectral.base"))]

    @model_validator(mode="after")
    def _check(self) -> SpectralParams:
        for i, k in enumerate(self.frequencies):
            if 2 * k >= self.n_points:
                raise ParamError(f"spectral.frequencies[{i}]", k,
                                 f"an integer below n_points / 2 = {self.n_points / 2:g} "
                                 "(Nyquist)")
        _ = self.runs  # validates base and every configuration
        return self

    @property
    def runs(self) -> tuple[SpectralRun, ...]:
        """Every configuration, ``base`` updated by its overrides."""
        return tuple(SpectralRun.from_dicts(str(name), self.base, over, self.log_every)
                     for name, over in self.configs.items())


def periodic_grid(n_points: int) -> np.ndarray:
    """``(N,)`` the periodic grid ``arange(0, 1, 1/N)`` (endpoint 1 excluded: no leakage)."""
    return np.arange(n_points) / n_points


def amplitudes(kind: str, n_frequencies: int) -> np.ndarray:
    """``(F,)``: all 1 (``equal``) or evenly spaced 0.1..1.0 (``increasing``)."""
    if kind == "equal":
        return np.ones(n_frequencies)
    if kind == "increasing":
        return np.linspace(0.1, 1.0, n_frequencies)
    raise ValueError(f"unknown amplitudes {kind!r}; allowed: {', '.join(AMPLITUDES)}")


def phases(seed: int, n_frequencies: int) -> np.ndarray:
    """``(F,)`` phases uniform in [0, 2 pi) from ``(seed, "spectral-phases")``."""
    return numpy_generator(seed, "spectral-phases").uniform(0.0, 2 * np.pi, n_frequencies)


def target(grid: np.ndarray, frequencies: Sequence[int], amps: np.ndarray,
           phis: np.ndarray) -> np.ndarray:
    """``(N,)`` the target ``sum_i A_i sin(2 pi k_i x + phi_i)`` at ``grid``."""
    k = np.asarray(frequencies, dtype=np.float64)
    return (amps[:, None] * np.sin(2 * np.pi * k[:, None] * grid[None, :] + phis[:, None])).sum(0)


def dft_magnitudes(values: np.ndarray, frequencies: Sequence[int]) -> np.ndarray:
    """``(..., F)``: ``|DFT(values)(k_i)| * 2 / N`` over the last axis ``(..., N)``.

    For a sinusoid of amplitude A at integer frequency 0 < k < N/2 on the
    periodic grid this is exactly A.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[-1]
    if max(frequencies) >= n / 2:
        raise ValueError(f"frequency {max(frequencies)} is not below the Nyquist bin {n / 2}")
    return np.abs(np.fft.rfft(values, axis=-1)[..., list(frequencies)]) * 2 / n


def make_mlp(depth: int, width: int, activation: str, generator):
    """Scalar-input MLP: ``depth`` hidden layers of ``width`` units, then a linear output.

    Weights and biases are drawn like PyTorch's default ``nn.Linear`` init,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), but from ``generator`` (no global RNG).
    """
    import torch
    from torch import nn

    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers: list[nn.Module] = []
    fan_in = 1
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), act()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for mod in model:
            if isinstance(mod, nn.Linear):
                bound = 1.0 / math.sqrt(mod.in_features)
                for p in (mod.weight, mod.bias):
                    p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * bound)
    return model


def fit_spectral(name: str, frequencies: Sequence[int], n_points: int, amplitude_kind: str,
                 activation: str, depth: int, width: int, optimizer: str, lr: float,
                 momentum: float, steps: int, log_every: int, seed: int,
                 threads: int = 0) -> StudyResult:
    """Fit one configuration; table ``SPECTRAL_COLUMNS`` (one row per logged step x frequency).

    Metrics: per frequency the first logged step whose normalized magnitude
    reaches ``LEARNED_AT`` (``None``: not within ``steps``), the final normalized
    magnitudes, ``first_learned`` (the frequency that reached it first; ties go to
    the lower frequency) and the final loss.
    """
    import pandas as pd
    import torch

    from biasvar.core.errors import NonFiniteLossError

    if threads > 0:
        torch.set_num_threads(threads)
    grid = periodic_grid(n_points)  # (N,)
    amps = amplitudes(amplitude_kind, len(frequencies))  # (F,)
    y = target(grid, frequencies, amps, phases(seed, len(frequencies)))  # (N,)
    x_t = torch.as_tensor(grid, dtype=torch.float32).unsqueeze(1)  # (N, 1)
    y_t = torch.as_tensor(y, dtype=torch.float32).unsqueeze(1)  # (N, 1)
    model = make_mlp(depth, width, activation, torch_generator(seed, "spectral-init"))
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    logged_steps, outputs, losses = [], [], []
    for step in range(steps + 1):
        pred = model(x_t)  # (N, 1)
        loss = torch.mean((pred - y_t) ** 2)
        if step % log_every == 0 or step == steps:
            if not math.isfinite(loss.item()):
                # one "member": the single network of this configuration
                raise NonFiniteLossError(0, step, loss.item())
            logged_steps.append(step)
            outputs.append(pred.detach().squeeze(1).double().numpy())
            losses.append(loss.item())
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    mags = dft_magnitudes(np.stack(outputs), frequencies)  # (S, F)
    norm = mags / amps[None, :]
    s, f = norm.shape
    table = pd.DataFrame({
        "config": name,
        "step": np.repeat(logged_steps, f),
        "frequency": np.tile(np.asarray(frequencies), s),
        "amplitude": np.tile(amps, s),
        "magnitude": mags.reshape(-1),
        "normalized_magnitude": norm.reshape(-1),
        "loss": np.repeat(losses, f),
    }, columns=list(SPECTRAL_COLUMNS))
    first = {}
    for i, k in enumerate(frequencies):
        hit = np.nonzero(norm[:, i] >= LEARNED_AT)[0]
        first[str(k)] = int(logged_steps[hit[0]]) if len(hit) else None
    learned = [(v, int(k)) for k, v in first.items() if v is not None]
    metrics = {
        "config": name,
        "learned_at": LEARNED_AT,
        "first_learned": min(learned)[1] if learned else None,
        "first_step_learned": first,
        "final_normalized_magnitude": {str(k): round(float(v), 6)
                                       for k, v in zip(frequencies, norm[-1], strict=True)},
        "final_loss": losses[-1],
        "steps": steps,
    }
    return StudyResult(table, metrics)
