"""The public API (``biasvar.decompose``, ``summarize``, ``fit_alignment``, ``diversity``):
the same numbers as the library's decompositions, any input type, and one clear error
per bad input (naming the array and what was expected)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import biasvar
from biasvar.analysis import api
from biasvar.analysis.decompose import softmax
from biasvar.analysis.summary import QUANTITIES, per_example
from biasvar.analysis.summary import summarize as lib_summarize
from biasvar.core.errors import InputError


@pytest.fixture()
def ens():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(12, 60, 5))
    labels = rng.integers(0, 5, 60)
    draw = np.repeat(np.arange(4), 3)
    return logits, labels, draw


def test_docstring_examples_run():
    assert doctest.testmod(api, raise_on_error=False).failed == 0


def test_import_biasvar_loads_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, biasvar; assert biasvar.__version__; "
            "print(sorted(m for m in ('torch', 'pandas', 'biasvar.analysis.api') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        biasvar.nope  # noqa: B018


def test_decompose_is_the_librarys_per_example_table(ens):
    logits, labels, draw = ens
    t = biasvar.decompose(logits, labels=labels, draw=draw)
    ref = per_example(logits, labels, draw)
    for col in t.columns:
        np.testing.assert_array_equal(t[col].to_numpy(), ref[col], err_msg=col)
    assert "noisy" not in t.columns and len(t) == 60


def test_summarize_is_the_librarys_summary(ens):
    logits, labels, draw = ens
    s = biasvar.summarize(logits, labels=labels, draw=draw, ci=0.9)
    ref = lib_summarize(logits, labels, draw, ci=0.9)
    assert list(s.quantity) == list(QUANTITIES)
    np.testing.assert_array_equal(s.estimate.to_numpy(), ref.estimate)
    np.testing.assert_array_equal(s.ci_high.to_numpy(), ref.ci_high)
    assert (s.draws == 4).all() and (s.seeds == 3).all() and (s.members == 12).all()


def test_probs_torch_and_member_order_give_the_same_numbers(ens):
    import torch

    logits, labels, draw = ens
    base = biasvar.decompose(logits, labels=labels, draw=draw)
    from_probs = biasvar.decompose(probs=softmax(logits), labels=labels, draw=draw)
    from_torch = biasvar.decompose(torch.as_tensor(logits, dtype=torch.float64),
                                   labels=torch.as_tensor(labels), draw=torch.as_tensor(draw))
    perm = np.random.default_rng(5).permutation(12)
    shuffled = biasvar.decompose(logits[perm], labels=labels, draw=draw[perm])
    for other in (from_probs, from_torch, shuffled):
        for col in ("mse_bias2_unbiased", "var_sampling", "ce_bias", "ce_diversity"):
            np.testing.assert_allclose(other[col], base[col], rtol=1e-10, atol=1e-12)


def test_without_draw_every_member_is_its_own_draw(ens):
    logits, labels, _ = ens
    t = biasvar.decompose(logits, labels=labels)
    assert t.var_optimization.isna().all()  # one seed per draw: no Neal split
    assert (t.mse_diversity == 0).all()
    np.testing.assert_allclose(t.mse_var_unbiased, t.mse_var * 12 / 11, rtol=1e-12)


@pytest.mark.parametrize("c", [2, 100])
def test_two_and_a_hundred_classes(c):
    rng = np.random.default_rng(c)
    logits, labels = rng.normal(size=(6, 40, c)), rng.integers(0, c, 40)
    s = biasvar.summarize(logits, labels=labels, draw=np.repeat([0, 1, 2], 2))
    v = s.set_index("quantity").value
    assert v.mse_loss == pytest.approx(v.mse_bias2 + v.mse_var, abs=1e-12)
    assert v.ce_ensemble_loss == pytest.approx(v.ce_bias + v.ce_var - v.ce_diversity,
                                               abs=1e-12)


def test_diversity_identity_and_columns(ens):
    logits, labels, draw = ens
    t = biasvar.diversity(logits, labels=labels, draw=draw)
    for loss in ("mse", "ce"):
        np.testing.assert_allclose(
            t[f"{loss}_ensemble_loss"],
            t[f"{loss}_bias"] + t[f"{loss}_variance"] - t[f"{loss}_diversity"], atol=1e-12)
        np.testing.assert_allclose(t[f"{loss}_member_loss"],
                                   t[f"{loss}_bias"] + t[f"{loss}_variance"], atol=1e-12)
        assert (t[f"{loss}_ensemble_loss"] <= t[f"{loss}_member_loss"] + 1e-12).all()


def test_fit_alignment_estimators(ens):
    logits, labels, draw = ens
    t = biasvar.decompose(logits, labels=labels, draw=draw)
    plug = biasvar.fit_alignment(logits, labels=labels, draw=draw, subset="all", n_boot=0)
    unb = biasvar.fit_alignment(logits, labels=labels, draw=draw, estimator="unbiased",
                                subset="all", n_boot=0)
    x, y = np.log(t.mse_bias2), np.log(t.mse_var)
    assert plug["slope"] == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-10)
    bad = ((t.mse_bias2_unbiased <= 0) | (t.mse_var_unbiased <= 0)).sum()
    assert unb["n"] == 60 - bad and unb["excluded_negative"] + unb["excluded_zero"] == bad
    assert unb["estimator"] == "unbiased"


C = 3
GOOD = {"logits": np.zeros((4, 5, C)), "labels": np.array([0, 1, 2, 0, 1])}


@pytest.mark.parametrize(("change", "says"), [
    ({"logits": np.zeros((4, 5))}, "logits: shape (4, 5); expected (members, examples, classes)"),
    ({"logits": np.full((4, 5, C), np.nan)}, "logits: 60 values are NaN or inf"),
    ({"logits": np.zeros((4, 5, C), dtype=complex)}, "expected real numbers"),
    ({"logits": np.zeros((4, 5, 1))}, "1 class; expected at least 2"),
    ({"logits": None, "probs": np.full((4, 5, C), 0.5)}, "probs: rows sum to 1 within"),
    ({"logits": None, "probs": np.full((4, 5, C), -1.0)}, "probs: values outside [0, 1]"),
    ({"probs": np.full((4, 5, C), 1 / C)}, "exactly one of logits and probs"),
    ({"labels": np.array([0, 1, 2])}, "labels: shape (3,); expected (5,)"),
    ({"labels": np.array([0, 1, 3, 0, 1])}, "labels: values 0..3; expected 0..2"),
    ({"labels": np.array([0.5, 1, 2, 0, 1])}, "labels: dtype float64; expected integers"),
    ({"draw": np.array([0, 0, 0, 1])}, "draw: draws have [1, 3] members"),
    ({"draw": np.array([0, 0, 1])}, "draw: shape (3,); expected (4,)"),
    ({"draw": np.array([0, 0, 1, 1]), "seed": np.array([0, 0, 0, 1])},
     "seed: 1 (draw, seed) pairs occur twice"),
])
def test_bad_inputs_are_one_line_naming_the_array(change, says):
    kw = {**GOOD, **change}
    with pytest.raises(InputError) as e:
        biasvar.decompose(kw.pop("logits", None), kw.pop("probs", None), **kw)
    assert "\n" not in str(e.value) and says in str(e.value), str(e.value)


@pytest.mark.parametrize(("kw", "says"), [({"estimator": "split"}, "estimator = 'split'"),
                                          ({"subset": "wrong"}, "subset = 'wrong'")])
def test_fit_alignment_refuses_unknown_choices(ens, kw, says):
    logits, labels, draw = ens
    with pytest.raises(InputError, match=says):
        biasvar.fit_alignment(logits, labels=labels, draw=draw, **kw)
