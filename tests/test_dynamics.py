"""The decomposition over training time: per-step rows, the draw-mean interval, the
report's epoch-wise and model-wise peak calls and captions."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.analysis.dynamics import draw_mean_interval, step_rows


def _logits(rng, k=8, n=300, c=5, spread=1.0):
    base = rng.normal(size=(1, n, c))
    return (base + spread * rng.normal(size=(k, n, c))).astype(np.float32)


def test_step_rows_hold_every_identity_and_equal_summarize():
    from biasvar.analysis.summary import summarize

    rng = np.random.default_rng(0)
    lg = _logits(rng)
    labels = rng.integers(0, 5, 300)
    draws = np.repeat(np.arange(4), 2)
    rows, fit = step_rows(lg, labels, draws, 0.95, 15, 200, 0)
    v = {r["quantity"]: r["value"] for r in rows}
    assert v["mse_bias2"] + v["mse_var"] == pytest.approx(v["mse_loss"], rel=1e-12)
    assert v["ce_bias"] + v["ce_var"] == pytest.approx(v["ce_loss"], rel=1e-12)
    assert v["mse_loss"] - v["mse_diversity"] == pytest.approx(v["mse_ensemble_loss"])
    assert v["var_optimization"] + v["var_sampling"] == pytest.approx(v["mse_var"])
    s = summarize(lg, labels, draws, ci=0.95, n_bins=15)
    np.testing.assert_array_equal([r["value"] for r in rows], s.value)
    np.testing.assert_array_equal([r["ci_low"] for r in rows], s.ci_low)
    assert fit["slope_ci_low"] <= fit["slope"] <= fit["slope_ci_high"]
    assert 0 < fit["n"] <= 300


def test_draw_mean_interval_covers_the_mean_at_its_level():
    """Members share their draw's effect: the t-interval over draw means covers the true
    mean about 95 % of the time (a member-level interval would undercover)."""
    rng = np.random.default_rng(1)
    draws = np.repeat(np.arange(8), 4)
    hits, n = 0, 2000
    for _ in range(n):
        v = 0.3 + rng.normal(0, 0.05, 8)[draws] + rng.normal(0, 0.02, 32)
        _, lo, hi = draw_mean_interval(v, draws, 0.95)
        hits += lo <= 0.3 <= hi
    assert 0.93 <= hits / n <= 0.97, hits / n
    m, lo, hi = draw_mean_interval(np.array([0.1, np.nan]), np.array([0, 1]), 0.95)
    assert np.isnan(lo) and np.isnan(hi)


def test_epochwise_peak_is_called_only_above_one_point():
    from biasvar.report.dynamics import epochwise

    steps = [10, 20, 40, 80, 160]
    ew = epochwise(steps, [0.5, 0.3, 0.36, 0.32, 0.28])
    assert ew == {"step": 40, "error": 0.36, "min_step": 20, "min_error": 0.3,
                  "final_error": 0.28, "rise": pytest.approx(0.06), "fall": pytest.approx(0.08)}
    assert epochwise(steps, [0.5, 0.3, 0.305, 0.29, 0.28]) is None  # rise 0.5 point
    assert epochwise(steps, [0.5, 0.4, 0.3, 0.25, 0.2]) is None  # monotone
    assert epochwise(steps, [0.5, 0.3, 0.4, 0.395, 0.395]) is None  # no fall after the peak


def _curves(errors: dict[int, list[float]], steps=(10, 100, 1000)) -> dict:
    def curve(err):
        return {"step": list(steps), "member_test_error": err, "ensemble_test_error": err,
                "bias2": [0.5, 0.4, 0.3], "variance": [0.01, 0.05, 0.04],
                "in_bag_error": [0.6, 0.2, 0.0], "slope": [0.5, 0.8, 1.1]}
    return {"noise-0.15": {f"width-{w}": curve(e) for w, e in errors.items()}}


def test_model_wise_peak_and_the_captions_state_the_curves():
    from biasvar.report.dynamics import dynamics_words, heatmap_words, modelwise, slope_words

    curves = _curves({4: [0.6, 0.5, 0.45], 16: [0.6, 0.55, 0.6], 64: [0.6, 0.4, 0.5]})
    by_w = {int(k.split("-")[1]): v for k, v in curves["noise-0.15"].items()}
    mw = modelwise(by_w)
    assert [m["width"] for m in mw] == [None, 16, 16]
    assert mw[2]["rise"] == pytest.approx(0.15) and mw[2]["fall"] == pytest.approx(0.1)
    h = heatmap_words(curves)
    assert "first appears at step 100 (width 16, 5.0 points" in h
    assert "at the last step lies at width 16 (15.0 points)" in h
    assert "no width has an epoch-wise peak" in h  # none falls again after its peak
    assert "ends at least 1 point above its lowest checkpoint at widths 16, 64" in h
    d = dynamics_words(curves)  # widest width 64: 0.6 -> 0.4 -> 0.5, no second descent
    assert "width 64: no epoch-wise double descent" in d and "does not show it" in d
    assert "falls from 0.600 to its minimum 0.400 at step 100, then rises 10.0 points to " \
           "0.500 at step 1000 without falling again" in d
    flat = _curves({4: [0.6, 0.5, 0.45]})
    assert "no epoch-wise peak: the mean-member test error falls" in dynamics_words(flat)
    assert "in-bag error 0.600 at step 10 and 0.000 at the last step" in d
    s = slope_words(curves)
    assert "width 4 0.50 at step 10 → 1.10 at step 1000" in s


def test_the_committed_cost_record_is_within_the_budget():
    """bench/results/cost.md is the rendering of cost.json (the docs include it), and the
    default run with checkpoints, dynamics and shift took at most 1.5x the time and the
    memory of the run without them (the issue's budget)."""
    import json
    from pathlib import Path

    from conftest import load_bench

    root = Path(__file__).resolve().parents[1] / "bench" / "results"
    bench = load_bench("bench_cost")
    rec = json.loads((root / "cost.json").read_text())
    assert (root / "cost.md").read_text() == bench.render(rec)
    b, h = rec["baseline"], rec["head"]
    assert h["wall_s"] <= 1.5 * b["wall_s"]
    assert h["peak_rss_mib"] <= 1.5 * b["peak_rss_mib"]
    assert h["stages"] > b["stages"]  # the new stages ran


def test_a_source_without_checkpoints_gives_empty_tables(tmp_path):
    """An imported ensemble (or train.checkpoints: 0 before collect wrote the file) has
    no checkpoint_members.csv: the dynamics tables are empty, with their columns."""
    from biasvar.analysis.dynamics import FITS_COLUMNS, SUMMARY_COLUMNS, dynamics_all

    for header_only in (False, True):
        if header_only:  # collect with train.checkpoints: 0
            (tmp_path / "checkpoint_members.csv").write_text(
                "label_noise,width,step,member,draw,seed,test_loss,test_accuracy,"
                "in_bag_error,oob_error\n")
        summary, fits = dynamics_all(tmp_path, [0.0], [4], 0.95, 15, 10, 0)
        assert len(summary) == 0 and tuple(summary.columns) == SUMMARY_COLUMNS
        assert len(fits) == 0 and tuple(fits.columns) == FITS_COLUMNS
