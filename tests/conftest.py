"""Shared fixtures: a small MNIST-1D dataset generated once per session; the bench scripts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from biasvar.data.dataset import generate


@pytest.fixture(scope="session")
def small_dataset():
    """1000 samples (800 train / 200 test), 15 % label noise."""
    return generate(num_samples=1000, train_split=0.8, seed=42, label_noise=0.15, noise_seed=0)


@pytest.fixture(scope="session")
def clean_dataset():
    """1000 samples (800 train / 200 test), clean labels."""
    return generate(num_samples=1000, train_split=0.8, seed=42, label_noise=0.0, noise_seed=0)


def load_bench(name: str):
    """``bench/<name>.py`` as a module (a script, not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def bench_train():
    """``bench/bench_train.py`` as a module."""
    return load_bench("bench_train")
