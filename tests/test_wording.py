"""Captions follow the data: contrary synthetic tables change the words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biasvar.report import wording
from biasvar.report.config import Style
from biasvar.report.document import Report, add_studies
from biasvar.report.wording import alignment_words, spectral_words, terms_words

W = [4, 8, 16, 32, 64]


@pytest.mark.parametrize(("r2", "word"), [(0.95, "strong"), (0.9, "strong"), (0.8, "good"),
                                          (0.5, "moderate"), (0.2, "weak"),
                                          (0.0005, "no linear relation"),
                                          (float("nan"), "undefined")])
def test_fit_quality_thresholds(r2, word):
    assert wording.fit_quality(r2) == word


@pytest.mark.parametrize(("y", "kind"), [
    ([1, 2, 3, 4, 5], "rising"), ([5, 4, 3, 2, 1], "falling"), ([1, 3, 5, 3, 2], "peak"),
    ([5, 2, 1, 3, 4], "valley"), ([1, 1.01, 0.99, 1, 1.02], "flat"),
    ([1, 3, 2, 4, 1.5], "non-monotone"), ([3, 1, 4, 1, 5], "non-monotone"),
    ([1, 2, 4, 3.98, 3], "peak"),
])
def test_shape(y, kind):
    assert wording.shape(W, y)["kind"] == kind


def test_describe_names_the_peak_and_refuses_it_for_a_monotone_curve():
    assert wording.describe(W, [0.1, 0.3, 0.5, 0.2, 0.1], "the variance") == (
        "the variance peaks at 0.5 at width 16")
    text = wording.describe(W, [0.5, 0.4, 0.3, 0.2, 0.1], "the variance")
    assert "peak" not in text and text.startswith("the variance falls with width")


def test_ordering_words():
    assert wording.ordering(W, [2] * 5, [1] * 5, "a", "b") == "a is above b at every width"
    assert wording.ordering(W, [0] * 5, [1] * 5, "a", "b") == "a is nowhere above b"
    assert wording.ordering(W, [2, 0, 2, 0, 0], [1] * 5, "a", "b") == (
        "a is above b only at width 4, 16")


def _fits(slopes, r2s, level=0.0):
    return pd.DataFrame({"label_noise": level, "width": W, "subset": "correct",
                         "slope": slopes, "r2": r2s})


def test_alignment_caption_says_no_relation_for_a_flat_fit():
    good = alignment_words(_fits([0.9] * 5, [0.95] * 5), 0.0)
    flat = alignment_words(_fits([0.01] * 5, [0.0005] * 5), 0.0)
    assert "strong at width 4, 8, 16, 32, 64" in good
    assert "strong" not in flat and "no linear relation at width 4, 8, 16, 32, 64" in flat
    assert "power law" not in good + flat


def _summary(var_clean, var_noisy, bias2):
    rows = []
    for p, var in ((0.0, var_clean), (0.15, var_noisy)):
        for w, v, b in zip(W, var, bias2, strict=True):
            rows += [{"label_noise": p, "width": w, "partition": "test", "quantity": "mse_var",
                      "value": v},
                     {"label_noise": p, "width": w, "partition": "test",
                      "quantity": "mse_bias2", "value": b}]
    return pd.DataFrame(rows)


def test_terms_caption_follows_peak_and_ordering():
    peaked = terms_words(_summary([0.1, 0.3, 0.5, 0.2, 0.1], [0.2, 0.4, 0.6, 0.3, 0.2],
                                  [0.9, 0.7, 0.5, 0.3, 0.1]))
    assert "the variance peaks at 0.5 at width 16" in peaked
    assert "bias² falls with width" in peaked
    assert "above the clean one at every width" in peaked
    contrary = terms_words(_summary([0.1, 0.2, 0.3, 0.4, 0.5], [0.05, 0.1, 0.4, 0.5, 0.6],
                                    [0.1, 0.3, 0.5, 0.7, 0.9]))
    assert "peaks" not in contrary.split(";")[0]
    assert "the variance rises with width" in contrary and "bias² rises with width" in contrary
    assert "above the clean one only at width 16, 32, 64" in contrary


def _tradeoff(total):
    d = np.arange(1, 6)
    total = np.asarray(total, dtype=float)
    return pd.DataFrame({"hidden_units": d, "n_params": d + 1, "noise": 0.09,
                         "bias2": total * 0.6, "variance": total * 0.4 - 0.09 + 0.09,
                         "total": total, "test_loss": total, "test_loss_se": 0.01,
                         "train_loss": total / 2})


def _ridgeless(test, n=3):
    p = np.array([1, 2, 3, 4, 6])
    test = np.asarray(test, dtype=float)
    return pd.DataFrame({"n_features": p, "n_train": n, "train_mse_mean": 0.1,
                         "train_mse_median": 0.1, "test_mse_mean": test,
                         "test_mse_median": test, "test_mse_q25": test * 0.9,
                         "test_mse_q75": test * 1.1, "coef_norm_median": 1.0})


def _captions(**tables):
    rep = Report("t")
    args = {k: tables.get(k) for k in ("tradeoff", "ridgeless", "spectral", "erank")}
    add_studies(rep, args["tradeoff"], args["ridgeless"], args["spectral"], args["erank"],
                Style(max_points=50))
    return {f.name: f.caption for f in rep.figures}


def test_tradeoff_caption_says_u_shape_only_when_there_is_one():
    u = _captions(tradeoff=_tradeoff([1.0, 0.5, 0.3, 0.6, 1.2]))["tradeoff"]
    mono = _captions(tradeoff=_tradeoff([1.0, 0.8, 0.6, 0.4, 0.2]))["tradeoff"]
    assert "U-shaped, lowest at D = 3" in u
    assert "U-shaped" not in mono and "falling, lowest at D = 5" in mono


def test_ridgeless_caption_names_the_threshold_only_when_the_peak_is_there():
    at = _captions(ridgeless=_ridgeless([0.1, 0.5, 9.0, 0.8, 0.3]))["ridgeless"]
    off = _captions(ridgeless=_ridgeless([0.1, 9.0, 0.5, 0.8, 0.3]))["ridgeless"]
    assert "at the interpolation threshold P = N = 3" in at and "descends to 0.3" in at
    assert "at P = 2, not at the threshold P = N = 3" in off


def _spectral(order):
    """Frequency k reaches 1.0 at the step given by its position in ``order``."""
    rows = []
    for rank, k in enumerate(order):
        for step in range(0, 600, 100):
            rows.append({"config": "c", "step": step, "frequency": k, "amplitude": 1.0,
                         "magnitude": 1.0, "normalized_magnitude": float(step >= 100 * (rank + 1)),
                         "loss": 1.0})
    return pd.DataFrame(rows)


def test_spectral_caption_checks_that_the_lowest_frequency_comes_first():
    low_first = spectral_words(_spectral([1, 2, 3, 4]))
    high_first = spectral_words(_spectral([4, 3, 2, 1]))
    assert "k = 1 first (the lowest" in low_first and "ρ(k, step) = 1.00" in low_first
    assert "k = 4 first (not the lowest, 1" in high_first and "= -1.00" in high_first


def test_effective_rank_caption_follows_the_fraction():
    def erank(ratio):
        return pd.DataFrame({"label_noise": 0.0, "width": W, "erank_mean": np.multiply(W, ratio),
                             "erank_ratio_mean": ratio, "n_members": 2, "feature_dim": W,
                             "erank_sd": 0.1, "erank_min": 1.0, "erank_max": 2.0,
                             "rank_mean": W, "dead_units_mean": 0.0})
    falling = _captions(erank=erank([0.9, 0.8, 0.6, 0.5, 0.4]))["effective_rank"]
    rising = _captions(erank=erank([0.2, 0.3, 0.5, 0.6, 0.8]))["effective_rank"]
    assert "its fraction of the width falls with width" in falling
    assert "its fraction of the width rises with width" in rising


def _calibration(gap_after, ci=0.05):
    gap_before = np.array([1.0, 1.2, 1.4, 1.5, 1.45])
    gap_after = np.asarray(gap_after, dtype=float)
    return pd.DataFrame({
        "label_noise": 0.0, "width": W, "temperature_mean": 2.0,
        "member_ece_before": 0.4, "member_ece_after": 0.05,
        "ensemble_ece_before": 0.07, "ensemble_ece_after": 0.13,
        "slope_before": 0.9, "slope_after": 0.5,
        "gap_before": gap_before, "gap_after": gap_after,
        "gap_ci_low_before": gap_before - ci, "gap_ci_high_before": gap_before + ci,
        "gap_ci_low_after": gap_after - ci, "gap_ci_high_after": gap_after + ci})


def test_calibration_caption_says_where_the_gap_moved_toward_zero():
    from biasvar.report.wording import calibration_words

    toward = calibration_words(_calibration([0.2, 0.1, 1.4, 0.3, 0.0]))
    overshoot = calibration_words(_calibration([-1.5, -1.6, -1.8, -1.6, -1.5]))
    assert "the gap moved toward 0 at width 4, 8, 32, 64." in toward
    assert "the gap moved toward 0 at no width." in overshoot
    assert "gap 1.45 → -1.50" in overshoot and "member ECE 0.400 → 0.050" in overshoot


def test_calibration_caption_gives_no_verdict_without_intervals():
    """``calibration_intervention.bootstrap: 0`` (no intervals) must not read as "the gap
    moved toward 0 at no width" (a verdict the data never tested): it says untested."""
    from biasvar.report.wording import calibration_words

    text = calibration_words(_calibration([0.2, 0.1, 1.4, 0.3, 0.0], ci=np.nan))
    assert "at no width" not in text and "at width" not in text
    assert "untested" in text and "calibration_intervention.bootstrap = 0" in text


def _member_error(rows):
    """A summary table with the test member_error of (label_noise, width, value) rows."""
    return pd.DataFrame([{"label_noise": p, "width": w, "quantity": "member_error",
                          "partition": "test", "value": v} for p, w, v in rows])


def test_double_descent_words_locate_the_peak_against_the_threshold():
    from biasvar.report.wording import double_descent_words

    widths = [8, 16, 24, 32, 48, 64]
    noisy = [0.60, 0.55, 0.57, 0.60, 0.56, 0.50]  # min 0.55 at 16, peak 0.60 at 32
    clean = [0.50, 0.45, 0.43, 0.42, 0.41, 0.40]  # monotone: no interior peak
    summary = _member_error([(0.15, w, v) for w, v in zip(widths, noisy, strict=True)]
                            + [(0.0, w, v) for w, v in zip(widths, clean, strict=True)])
    text = double_descent_words(summary, threshold=30.7)
    assert ("label noise 0.15: peak 0.600 at width 32 at the grid point nearest the "
            "threshold, 5.0 points above the minimum 0.550 (width 16) before it and 10.0 "
            "points above the widest width's 0.500") in text
    assert "clean labels: no interior peak (test error 0.500 at width 8 to 0.400 at width 64)" \
        in text
    # the same curve with the threshold two grid points lower
    assert "2 grid steps above the grid point nearest the threshold" in \
        double_descent_words(summary, threshold=17.0)


def test_variance_peak_words_count_grid_steps_from_the_threshold():
    from biasvar.report.wording import variance_peak_words

    widths = [8, 16, 24, 32, 48]
    summary = pd.DataFrame([{"label_noise": 0.15, "width": w, "quantity": "mse_var",
                             "partition": "test", "value": v}
                            for w, v in zip(widths, [0.1, 0.2, 0.5, 0.3, 0.2], strict=True)])
    assert "label noise 0.15 at width 24 at the grid point nearest the threshold" in \
        variance_peak_words(summary, 25.0)
    assert "at width 24, 1 grid step below the grid point nearest the threshold" in \
        variance_peak_words(summary, 31.0)
    assert variance_peak_words(summary, None) == ""


def _size_tables(chi2: float, se: float):
    """An alignment-size table (MSE plug-in at K = 4, 8, 16) and its extrapolation row."""
    table = pd.DataFrame([{"label_noise": 0.0, "width": 64, "subset": "correct", "loss": "mse",
                           "estimator": "plugin", "n_members": k, "slope": s}
                          for k, s in ((4, 0.9), (8, 0.8), (16, 0.75))])
    extrap = pd.DataFrame([{"label_noise": 0.0, "width": 64, "subset": "correct",
                            "quantity": "slope", "loss": "mse", "estimator": "plugin",
                            "value_inf": 0.7, "value_inf_se": se, "chi2": chi2, "dof": 1}])
    return table, extrap


def test_size_words_give_the_1_over_k_verdict_only_with_a_chi2():
    """A fit without bootstrap standard errors has no chi² (NaN): the words say the model is
    not checked; before, NaN / dof <= 3 was False and the caption said "does not fit: χ² nan",
    and the unweighted residual sum it used to carry said "fits"."""
    from biasvar.report.wording import size_words

    assert "1/K model does not fit: χ² 82.3 on 1 dof" in size_words(
        *_size_tables(82.3, 0.01), 0.0)
    assert "(K → ∞: 0.70 ± 0.010, 1/K model fits: χ² 0.5 on 1 dof)" in size_words(
        *_size_tables(0.5, 0.01), 0.0)
    off = size_words(*_size_tables(float("nan"), float("nan")), 0.0)
    assert "(K → ∞: 0.70, unweighted; 1/K model not checked)" in off
    assert "fits" not in off and "χ²" not in off and "nan" not in off


def test_interval_wording_follows_the_decomposition():
    """The captions state the level the decomposition used (``decompose.ci``), and no
    intervals at all when it made none (``decompose.intervals: false``)."""
    from biasvar.report.wording import interval_text

    with_ci = pd.DataFrame({"ci_low": [0.1, 0.2]})
    without = pd.DataFrame({"ci_low": [np.nan, np.nan]})
    assert interval_text(with_ci, 0.9).startswith("with 90 % intervals")
    assert interval_text(with_ci, 0.95).startswith("with 95 % intervals")
    assert interval_text(without, 0.95) == "without intervals (decompose.intervals = false)"


def test_diversity_words_state_the_widest_widths_estimates():
    import pandas as pd

    from biasvar.report.wording import diversity_words

    rows = []
    for w, scale in ((8, 1.0), (32, 0.5)):
        for q, v in (("mse_loss", 0.4), ("mse_ensemble_loss", 0.3), ("mse_diversity", 0.1),
                     ("ce_loss", 1.2), ("ce_ensemble_loss", 0.9), ("ce_diversity", 0.3)):
            rows.append({"label_noise": 0.0, "width": w, "partition": "test", "quantity": q,
                         "estimate": v * scale, "seeds": 4})
    text = diversity_words(pd.DataFrame(rows))
    # the widest width's numbers (member → ensemble, diversity, its share), not width 8's
    for number in ("32", "4 seeds", "0.2 → 0.15", "0.05", "0.6 → 0.45", "0.15", "25 %"):
        assert number in text, (number, text)
    assert "width 8" not in text and "1.2" not in text
