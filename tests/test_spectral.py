"""Spectral bias: the DFT read-out on the periodic grid, the fit loop, and params."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from biasvar.core.errors import ParamError
from biasvar.studies.spectral import (
    SPECTRAL_COLUMNS,
    SpectralParams,
    amplitudes,
    dft_magnitudes,
    fit_spectral,
    periodic_grid,
    phases,
    target,
)

K = list(range(5, 55, 5))


@pytest.mark.parametrize("kind", ["equal", "increasing"])
@pytest.mark.parametrize("seed", [0, 7])
def test_dft_of_target_is_exactly_the_amplitudes(kind, seed):
    grid = periodic_grid(200)
    amps = amplitudes(kind, len(K))
    y = target(grid, K, amps, phases(seed, len(K)))
    np.testing.assert_allclose(dft_magnitudes(y, K), amps, rtol=0, atol=1e-12)
    # and nothing anywhere else: every other bin is empty
    others = [k for k in range(1, 100) if k not in K]
    np.testing.assert_allclose(dft_magnitudes(y, others), 0, atol=1e-12)


def test_amplitudes_and_phases():
    np.testing.assert_allclose(amplitudes("increasing", 10), np.arange(1, 11) / 10)
    np.testing.assert_array_equal(amplitudes("equal", 3), [1, 1, 1])
    phi = phases(0, 10)
    assert ((phi >= 0) & (phi < 2 * np.pi)).all()
    np.testing.assert_array_equal(phi, phases(0, 10))
    assert not np.array_equal(phi, phases(1, 10))


def test_closed_grid_leaks():
    """With linspace(0, 1, N) (endpoint included) the read-out is no longer exact."""
    amps = amplitudes("equal", len(K))
    y = target(np.linspace(0, 1, 200), K, amps, phases(0, len(K)))
    assert np.abs(dft_magnitudes(y, K) - amps).max() > 1e-3


def test_nyquist_is_refused():
    with pytest.raises(ValueError, match="Nyquist"):
        dft_magnitudes(np.zeros(20), [10])


def _tiny(**kw):
    args = dict(name="tiny", frequencies=[2, 6], n_points=32, amplitude_kind="equal",
                activation="relu", depth=2, width=16, optimizer="adam", lr=0.01, momentum=0.9,
                steps=30, log_every=10, seed=0, threads=1)
    args.update(kw)
    return fit_spectral(**args)


def test_fit_spectral_table_and_determinism():
    res = _tiny()
    t = res.table
    assert list(t.columns) == list(SPECTRAL_COLUMNS)
    assert list(t["step"].unique()) == [0, 10, 20, 30]
    assert list(t["frequency"][:2]) == [2, 6] and len(t) == 8
    np.testing.assert_allclose(t["normalized_magnitude"], t["magnitude"] / t["amplitude"])
    assert (t["config"] == "tiny").all()
    losses = t.groupby("step")["loss"].first()
    assert losses.iloc[-1] < losses.iloc[0]
    assert res.metrics["steps"] == 30 and set(res.metrics["first_step_learned"]) == {"2", "6"}
    assert _tiny().table.equals(t)
    sgd = _tiny(optimizer="sgd", lr=0.05, activation="tanh")
    assert not sgd.table.equals(t)


def test_low_frequency_is_learned_first():
    res = _tiny(frequencies=[1, 12], n_points=64, depth=3, width=64, steps=400, log_every=20,
                lr=0.003)
    first = res.metrics["first_step_learned"]
    assert res.metrics["first_learned"] == 1
    assert first["12"] is None or first["12"] > first["1"]


def _raw():
    return {"frequencies": [5, 10], "n_points": 200, "log_every": 10, "seed": 0,
            "base": {"amplitudes": "equal", "activation": "relu", "depth": 2, "width": 8,
                     "optimizer": "adam", "lr": 0.001, "momentum": 0.9, "steps": 100},
            "configs": {"a": {"activation": "tanh"}, "b-2": {"steps": 50, "amplitudes":
                                                              "increasing"}}}


def test_params_merge_base_and_overrides():
    p = SpectralParams.from_dict(_raw())
    a, b = p.runs
    assert (a.name, a.activation, a.steps) == ("a", "tanh", 100)
    assert (b.name, b.activation, b.steps, b.amplitudes) == ("b-2", "relu", 50, "increasing")


@pytest.mark.parametrize(("path", "value", "words"), [
    (("configs", "a", "widht"), 3, r"spectral.configs.a.widht = 3 is invalid: unknown key"),
    (("configs", "a", "activation"), "gelu", r"spectral.configs.a.activation.*one of relu, tanh"),
    (("base", "lr"), 0, r"spectral.base.lr = 0 is invalid: a positive number"),
    (("configs", "b-2", "steps"), 5, r"spectral.configs.b-2.steps = 5.*spectral.log_every = 10"),
    (("configs", "a b"), {}, r"spectral.configs = 'a b'"),
    (("frequencies",), [5, 100], r"spectral.frequencies\[1\] = 100.*Nyquist"),
])
def test_bad_params_name_the_key(path, value, words):
    raw = copy.deepcopy(_raw())
    node = raw
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(ParamError, match=words):
        SpectralParams.from_dict(raw)
