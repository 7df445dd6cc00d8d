"""Per-config summary: point estimates equal the per-example means; bootstrap CIs cover them."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.analysis.summary import QUANTITIES, per_example, summarize


@pytest.fixture(params=[(4, 3), (6, 1), (1, 5)], ids=["4draws-3seeds", "6draws-1seed", "1draw"])
def ensemble(request):
    d, s = request.param
    rng = np.random.default_rng(0)
    n, c = 60, 4
    draw_effect = rng.normal(size=(d, 1, n, c))
    logits = (draw_effect + 0.5 * rng.normal(size=(d, s, n, c))).reshape(d * s, n, c)
    draws = np.repeat(np.arange(d), s)
    perm = rng.permutation(d * s)  # members need not come draw-major
    return logits[perm], rng.integers(0, c, n), draws[perm]


def test_point_estimates_equal_per_example_means(ensemble):
    logits, labels, draws = ensemble
    cols = per_example(logits, labels, draws)
    s = summarize(logits, labels, draws, n_boot=50)
    got = dict(zip(s.quantities, s.value, strict=True))
    for q in QUANTITIES:
        if q in cols:
            np.testing.assert_allclose(got[q], cols[q].mean(), rtol=1e-9, atol=1e-12,
                                       err_msg=q)
    assert got["member_error"] == pytest.approx(cols["zero_one_error"].mean())
    assert got["ensemble_error"] == pytest.approx(1 - cols["correct"].mean())
    # identities on the means
    assert got["mse_loss"] == pytest.approx(got["mse_bias2"] + got["mse_var"], abs=1e-12)
    assert got["ce_loss"] == pytest.approx(got["ce_bias"] + got["ce_var"], abs=1e-12)


def test_bootstrap_intervals(ensemble):
    logits, labels, draws = ensemble
    s = summarize(logits, labels, draws, n_boot=200)
    j = s.quantities.index("mse_var")
    if s.n_draws == 1:
        assert np.isnan(s.ci_low[j])  # nothing to resample
        return
    assert s.ci_low[j] <= s.value[j] * 1.2 and s.ci_high[j] >= s.value[j] * 0.8
    assert s.ci_low[j] < s.ci_high[j]
    k = s.quantities.index("var_sampling")
    assert np.isnan(s.value[k]) == (s.n_seeds == 1)
