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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biasvar.errors import ParamError
from biasvar.params import _check_keys, _choice, _float, _int
from biasvar.rng import numpy_generator, torch_generator
from biasvar.studies import StudyResult, check_int_list, check_positive

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


# Configuration names become DVC stage names (spectral@<name>) and file names.
CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class SpectralRun:
    """One configuration: ``spectral.base`` updated by ``spectral.configs.<name>``."""

    name: str
    amplitudes: str  # equal | increasing
    activation: str  # relu | tanh
    depth: int  # hidden layers
    width: int  # units per hidden layer
    optimizer: str  # adam | sgd, full batch
    lr: float
    momentum: float  # sgd only
    steps: int

    KEYS = ("amplitudes", "activation", "depth", "width", "optimizer", "lr", "momentum", "steps")

    @classmethod
    def from_dicts(cls, name: str, base: Mapping[str, Any], override: Any,
                   log_every: int) -> SpectralRun:
        where = f"spectral.configs.{name}"
        if not CONFIG_NAME.match(name):
            raise ParamError("spectral.configs", name,
                             "names of letters, digits, '-' and '_' (they name stages and files)")
        if not isinstance(override, Mapping):
            raise ParamError(where, override, "a mapping of spectral.base keys to override")
        for k in override:
            if k not in cls.KEYS:
                raise ParamError(f"{where}.{k}", override[k],
                                 "unknown key; allowed keys: " + ", ".join(cls.KEYS))
        d = {**base, **override}

        def key(k: str) -> str:  # name the mapping the value came from
            return f"{where}.{k}" if k in override else f"spectral.base.{k}"

        steps = _int(key("steps"), d["steps"], min_value=1)
        if log_every > steps:
            raise ParamError(key("steps"), steps,
                             f"an integer >= spectral.log_every = {log_every}")
        return cls(name,
                   _choice(key("amplitudes"), d["amplitudes"], AMPLITUDES),
                   _choice(key("activation"), d["activation"], ACTIVATIONS),
                   _int(key("depth"), d["depth"], min_value=1),
                   _int(key("width"), d["width"], min_value=1),
                   _choice(key("optimizer"), d["optimizer"], SPECTRAL_OPTIMIZERS),
                   check_positive(key("lr"), d["lr"]),
                   _float(key("momentum"), d["momentum"], low=0.0, high=1.0, low_open=False,
                          high_open=True, what="a number in [0, 1)"),
                   steps)


@dataclass(frozen=True)
class SpectralParams:
    """The ``spectral.*`` section of params.yaml.

    ``base`` holds every training setting; each entry of ``configs`` (one DVC
    stage ``spectral@<name>``) overrides some of them. Frequencies, grid,
    logging and seed are shared, so configurations are paired comparisons.
    """

    frequencies: tuple[int, ...]  # k_i, each below the Nyquist bin n_points / 2
    n_points: int  # the periodic grid arange(0, 1, 1 / n_points)
    log_every: int  # record the spectrum every this many steps
    seed: int  # phases and initial weights
    configs: tuple[SpectralRun, ...]

    KEYS = ("frequencies", "n_points", "log_every", "seed", "base", "configs")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpectralParams:
        """Validate the section; ``configs`` may hold only some entries (a stage reads its own)."""
        _check_keys("spectral", d, cls.KEYS)
        n_points = _int("spectral.n_points", d["n_points"], min_value=4)
        freqs = check_int_list("spectral.frequencies", d["frequencies"], 1)
        for i, k in enumerate(freqs):
            if 2 * k >= n_points:
                raise ParamError(f"spectral.frequencies[{i}]", k,
                                 f"an integer below n_points / 2 = {n_points / 2:g} (Nyquist)")
        log_every = _int("spectral.log_every", d["log_every"], min_value=1)
        base = _check_keys("spectral.base", d["base"], SpectralRun.KEYS)
        configs = d["configs"]
        if not isinstance(configs, Mapping) or not configs:
            raise ParamError("spectral.configs", configs,
                             "a non-empty mapping of name -> overrides of spectral.base")
        runs = tuple(SpectralRun.from_dicts(str(name), base, over, log_every)
                     for name, over in configs.items())
        return cls(freqs, n_points, log_every, _int("spectral.seed", d["seed"], min_value=0),
                   runs)


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

    from biasvar.errors import NonFiniteLossError

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
