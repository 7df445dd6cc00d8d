"""Shared fixtures: a small MNIST-1D dataset generated once per session; the bench script."""

from __future__ import annotations

import importlib.util
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


@pytest.fixture(scope="session")
def bench_train():
    """``bench/bench_train.py`` as a module (a script, not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
