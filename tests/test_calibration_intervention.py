"""Calibration intervention: per-member temperatures on out-of-bag data, before/after tables.

Every number is checked against an independent computation: a brute-force
grid search of the NLL, scipy's softmax / logsumexp / linregress, slow loops
over examples and bins, and explicit bootstrap resamples.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from biasvar.analysis.alignment import fit_alignment
from biasvar.analysis.calibration import ece, ece_batched, reliability
from biasvar.analysis.calibration_intervention import (
    BIN_COLUMNS,
    BOOTSTRAP_PURPOSE,
    COLUMNS,
    calibration_all,
    calibration_intervention,
    confidence_bins,
    fit_temperatures,
    oob_nll,
)
from biasvar.analysis.decompose import DecompositionError, mse_decomposition
from biasvar.core.errors import InputError
from biasvar.core.rng import numpy_generator
from biasvar.ensemble.logits import logits_table, read_config, write_config


def _sample_labels(rng, logits):
    """One label per row of ``logits`` ``(N, C)``, drawn from softmax(logits)."""
    p = special.softmax(logits, axis=-1)
    u = rng.uniform(size=(len(p), 1))
    return np.minimum((p.cumsum(-1) < u).sum(-1), p.shape[1] - 1)


def _ensemble(rng, k, n, c, scale=1.0, noise=0.3, signal=2.5):
    """Synthetic ensemble: labels ~ softmax(true logits); member k = scale * (true + noise)."""
    true = signal * rng.normal(size=(n, c))
    y = _sample_labels(rng, true)
    z = scale * (true[None] + noise * rng.normal(size=(k, n, c)))
    return z, y


def _slow_nll(z, y, oob, t):
    """Mean OOB NLL of one member ``z`` ``(N, C)`` at temperature t, by scipy."""
    s = z[oob] / t
    return float(np.mean(special.logsumexp(s, axis=-1) - s[np.arange(len(s)), y[oob]]))


# ------------------------------------------------------------------ (a) the fit


@pytest.mark.parametrize("n", [1000, 16000])
def test_fit_recovers_a_known_temperature_within_its_standard_error(n):
    rng = np.random.default_rng(n)
    k, c = 6, 10
    t_true = np.array([0.4, 0.7, 1.0, 1.5, 2.5, 4.0])
    true = 2.0 * rng.normal(size=(n, c))
    y = _sample_labels(rng, true)
    z = true[None] * t_true[:, None, None]  # z / t_true = true: the calibrated logits
    oob = rng.uniform(size=(k, n)) < 0.37
    t = fit_temperatures(z, y, oob)
    # MLE of beta = 1/T: se = 1 / sqrt(n_oob * Fisher), Fisher = mean Var_p(z) at the truth
    p = special.softmax(true, axis=-1)
    var_true = (p * true**2).sum(-1) - ((p * true).sum(-1)) ** 2  # Var_p(true) per example
    for i in range(k):
        fisher = var_true[oob[i]].mean() * t_true[i] ** 2  # Var_p(z) = T^2 Var_p(true)
        se_log_t = 1.0 / np.sqrt(oob[i].sum() * fisher) * t_true[i]  # se(beta) / beta
        assert abs(np.log(t[i] / t_true[i])) < 5 * se_log_t, (i, t[i], se_log_t)
    if n >= 16000:
        np.testing.assert_allclose(t, t_true, rtol=0.05)


def test_fit_equals_a_grid_search_of_the_nll():
    rng = np.random.default_rng(1)
    k, n, c = 5, 400, 7
    z, _ = _ensemble(rng, k, n, c, scale=2.0, noise=1.0)
    y = rng.integers(0, c, n)  # noisy labels, unrelated to some logits: any optimum
    y[: n // 2] = z[0, : n // 2].argmax(-1)
    oob = rng.uniform(size=(k, n)) < 0.4
    t = fit_temperatures(z, y, oob)
    grid = np.exp(np.linspace(np.log(0.05), np.log(50.0), 3001))
    step = np.log(grid[1] / grid[0])
    for i in range(k):
        s = z[i][oob[i]][None] / grid[:, None, None]  # (grid, OOB examples, C)
        yi = y[oob[i]]
        nll = (special.logsumexp(s, axis=-1) - s[:, np.arange(len(yi)), yi]).mean(-1)
        j = int(nll.argmin())
        assert 0 < j < len(grid) - 1  # an interior optimum
        assert abs(np.log(t[i] / grid[j])) <= step
        assert _slow_nll(z[i], y, oob[i], t[i]) <= nll[j] + 1e-12
    np.testing.assert_allclose(oob_nll(z, y, oob, t),
                               [_slow_nll(z[i], y, oob[i], t[i]) for i in range(k)], rtol=1e-12)


def test_fit_is_never_worse_than_a_bounded_scalar_minimizer():
    """Many small random problems (where Newton often lands on g == 0 exactly)."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(11)
    for trial in range(40):
        k, n, c = 3, int(rng.integers(20, 300)), int(rng.integers(2, 12))
        z, y = _ensemble(rng, k, n, c, scale=float(rng.uniform(0.2, 5)),
                         noise=float(rng.uniform(0, 2)))
        oob = rng.uniform(size=(k, n)) < 0.5
        oob[:, 0] = True
        t = fit_temperatures(z, y, oob)
        for i in range(k):
            ref = minimize_scalar(lambda u, zi=z[i], y=y, oi=oob[i]: _slow_nll(zi, y, oi,
                                                                                np.exp(u)),
                                  bounds=(np.log(0.01), np.log(100.0)), method="bounded",
                                  options={"xatol": 1e-10})
            assert _slow_nll(z[i], y, oob[i], t[i]) <= ref.fun + 1e-10, (trial, i)


def test_fit_returns_the_bound_when_the_nll_is_monotone():
    rng = np.random.default_rng(2)
    n, c = 200, 5
    z = rng.normal(size=(2, n, c))
    y = z[0].argmax(-1)  # member 0: every example right, so sharper is always better
    z[1] = -z[0]  # member 1: every example's label is its least likely class
    oob = np.ones((2, n), bool)
    t = fit_temperatures(z, y, oob, t_min=0.02, t_max=50.0)
    assert t.tolist() == [0.02, 50.0]


def test_fit_names_a_member_without_out_of_bag_examples():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 30, 3))
    oob = np.ones((4, 30), bool)
    oob[2] = False
    with pytest.raises(DecompositionError, match="member 12 has no out-of-bag"):
        fit_temperatures(z, rng.integers(0, 3, 30), oob, members=np.arange(10, 14))
    with pytest.raises(DecompositionError, match="bool"):
        fit_temperatures(z, rng.integers(0, 3, 30), oob.astype(int))


# ------------------------------------------------------------------ (b), (c) ECE


def _split(z, y, n_test):
    return z[:, :n_test], y[:n_test], z[:, n_test:], y[n_test:]


def test_a_calibrated_ensemble_keeps_t_near_one_and_its_ece():
    rng = np.random.default_rng(4)
    k, n_test, n_train, c = 4, 4000, 12000, 10
    z, y = _ensemble(rng, k, n_test + n_train, c, scale=1.0, noise=0.05)
    zt, yt, ztr, ytr = _split(z, y, n_test)
    oob = rng.uniform(size=(k, n_train)) < 0.37
    r = calibration_intervention(zt, yt, ztr, ytr, oob, n_boot=0)
    assert np.all(np.abs(r.temperatures - 1) < 0.06), r.temperatures
    assert r.row["member_ece_before"] < 0.03
    assert abs(r.row["member_ece_after"] - r.row["member_ece_before"]) < 0.01
    assert abs(r.row["ensemble_ece_after"] - r.row["ensemble_ece_before"]) < 0.01


def test_temperature_scaling_repairs_an_overconfident_ensemble():
    rng = np.random.default_rng(5)
    k, n_test, n_train, c = 8, 2000, 3000, 10
    z, y = _ensemble(rng, k, n_test + n_train, c, scale=3.0, noise=0.3, signal=1.5)
    zt, yt, ztr, ytr = _split(z, y, n_test)
    oob = rng.uniform(size=(k, n_train)) < 0.37
    r = calibration_intervention(zt, yt, ztr, ytr, oob, n_boot=200)
    row = r.row
    assert row["temperature_min"] > 2.0  # the logits were multiplied by 3
    # regression: with these data Newton once hit g == 0 exactly on member 3 and stopped
    # at a bracket midpoint (T = 1.84 instead of 3.38): every member at scipy's optimum
    from scipy.optimize import minimize_scalar

    for i in range(k):
        ref = minimize_scalar(lambda u, i=i: _slow_nll(ztr[i], ytr, oob[i], np.exp(u)),
                              bounds=(0.0, np.log(10.0)), method="bounded",
                              options={"xatol": 1e-8})
        assert abs(np.log(r.temperatures[i]) - ref.x) < 1e-4, i
    assert row["member_ece_before"] > 0.1
    assert row["member_ece_after"] < 0.3 * row["member_ece_before"]
    assert row["ensemble_ece_after"] < 0.5 * row["ensemble_ece_before"]
    assert row["ensemble_ece_change_ci_high"] < 0 and row["member_ece_change_ci_high"] < 0
    assert row["oob_nll_after"] < row["oob_nll_before"]


# ------------------------------------------------------------------ (d) per-config numbers


@pytest.fixture(scope="module")
def aligned():
    rng = np.random.default_rng(6)
    k, n_test, n_train, c = 6, 300, 500, 10
    z, y = _ensemble(rng, k, n_test + n_train, c, scale=2.0, noise=0.8)
    zt, yt, ztr, ytr = _split(z, y, n_test)
    ytr = np.where(rng.uniform(size=n_train) < 0.15, rng.integers(0, c, n_train), ytr)
    oob = rng.uniform(size=(k, n_train)) < 0.37
    n_boot, seed = 60, 3
    r = calibration_intervention(zt, yt, ztr, ytr, oob, n_bins=10, n_boot=n_boot, seed=seed)
    return {"r": r, "zt": zt, "yt": yt, "ztr": ztr, "ytr": ytr, "oob": oob, "n_boot": n_boot,
            "seed": seed, "n_bins": 10}


def _plain(z, y, temps, n_bins):
    probs = special.softmax(z / temps[:, None, None], axis=-1)
    mse = mse_decomposition(probs, y)
    correct = mse.mean_prob.argmax(-1) == y
    return probs, mse, correct


def test_per_config_numbers_equal_the_plain_functions(aligned):
    a, row = aligned, aligned["r"].row
    assert list(row) == [c for c in COLUMNS if c not in ("label_noise", "width")]
    temps = fit_temperatures(a["ztr"], a["ytr"], a["oob"])
    np.testing.assert_array_equal(aligned["r"].temperatures, temps)
    assert row["temperature_mean"] == pytest.approx(temps.mean())
    assert (row["temperature_min"], row["temperature_max"]) == (temps.min(), temps.max())
    assert row["oob_min"] == a["oob"].sum(1).min()
    k = len(temps)
    correct_by_state = {}
    for s, t in (("before", np.ones(k)), ("after", temps)):
        probs, mse, correct = _plain(a["zt"], a["yt"], t, a["n_bins"])
        correct_by_state[s] = correct
        f = fit_alignment(mse.bias2, mse.var, correct, n_boot=a["n_boot"], seed=a["seed"])
        keep = correct & (mse.bias2 > 0) & (mse.var > 0)
        lr = stats.linregress(np.log(mse.bias2[keep]), np.log(mse.var[keep]))
        assert row[f"slope_{s}"] == pytest.approx(lr.slope, rel=1e-9)
        assert row[f"r2_{s}"] == pytest.approx(lr.rvalue**2, rel=1e-9)
        assert row[f"intercept_{s}"] == pytest.approx(lr.intercept, rel=1e-9, abs=1e-12)
        assert row[f"slope_ci_low_{s}"] == pytest.approx(f.slope_ci[0], rel=1e-9)
        assert row[f"slope_ci_high_{s}"] == pytest.approx(f.slope_ci[1], rel=1e-9)
        gap = np.mean(np.log(mse.var[keep] / mse.bias2[keep]))
        assert row[f"gap_{s}"] == pytest.approx(gap, rel=1e-9)
        assert row[f"n_{s}"] == keep.sum() and row[f"n_correct_{s}"] == correct.sum()
        assert row[f"ensemble_error_{s}"] == pytest.approx(1 - correct.mean())
        assert row[f"member_ece_{s}"] == pytest.approx(
            ece_batched(probs, a["yt"], a["n_bins"]).mean(), rel=1e-9)
        assert row[f"ensemble_ece_{s}"] == pytest.approx(
            ece(mse.mean_prob, a["yt"], a["n_bins"]), rel=1e-9)
        assert row[f"bias2_{s}"] == pytest.approx(mse.bias2.mean(), rel=1e-9)
        assert row[f"var_{s}"] == pytest.approx(mse.var.mean(), rel=1e-9)
    assert row["n_flipped"] == (correct_by_state["before"] != correct_by_state["after"]).sum()
    _, mse_a, _ = _plain(a["zt"], a["yt"], temps, a["n_bins"])
    same = fit_alignment(mse_a.bias2, mse_a.var, correct_by_state["before"], n_boot=0)
    assert row["slope_after_same"] == pytest.approx(same.slope, rel=1e-9)
    assert row["gap_after_same"] == pytest.approx(same.mean_log_ratio, rel=1e-9)
    assert row["gap_change"] == pytest.approx(row["gap_after"] - row["gap_before"])


def test_bootstrap_intervals_equal_explicit_resamples(aligned):
    """Paired percentile intervals, recomputed by resampling the arrays themselves."""
    a, row = aligned, aligned["r"].row
    temps = aligned["r"].temperatures
    n = len(a["yt"])
    idx = numpy_generator(a["seed"], BOOTSTRAP_PURPOSE).integers(0, n, size=(a["n_boot"], n))
    reps = {}
    for s, t in (("before", np.ones(len(temps))), ("after", temps)):
        probs, mse, correct = _plain(a["zt"], a["yt"], t, a["n_bins"])
        keep = correct & (mse.bias2 > 0) & (mse.var > 0)
        lr = np.log(mse.var / mse.bias2)
        reps[s] = {"gap": [], "ensemble_ece": [], "member_ece": []}
        for ii in idx:
            reps[s]["gap"].append(lr[ii][keep[ii]].mean())
            reps[s]["ensemble_ece"].append(ece(mse.mean_prob[ii], a["yt"][ii], a["n_bins"]))
            reps[s]["member_ece"].append(
                ece_batched(probs[:, ii], a["yt"][ii], a["n_bins"]).mean())
        lo, hi = np.percentile(reps[s]["gap"], [2.5, 97.5])
        assert (row[f"gap_ci_low_{s}"], row[f"gap_ci_high_{s}"]) == pytest.approx((lo, hi))
    for q in ("gap", "ensemble_ece", "member_ece"):
        d = np.array(reps["after"][q]) - np.array(reps["before"][q])
        lo, hi = np.percentile(d, [2.5, 97.5])
        assert (row[f"{q}_change_ci_low"], row[f"{q}_change_ci_high"]) == pytest.approx(
            (lo, hi), abs=1e-12)


# ------------------------------------------------------------------ (e) the per-bin table


def test_bin_table_counts_and_gaps_equal_a_slow_loop(aligned):
    a, bins = aligned, aligned["r"].bins
    nb = a["n_bins"]
    assert list(bins.columns) == [c for c in BIN_COLUMNS if c not in ("label_noise", "width")]
    assert bins.state.tolist() == ["before"] * nb + ["after"] * nb
    temps = aligned["r"].temperatures
    for s, t in (("before", np.ones(len(temps))), ("after", temps)):
        b = bins[bins.state == s].reset_index(drop=True)
        assert b["count"].sum() == len(a["yt"])
        _, mse, correct = _plain(a["zt"], a["yt"], t, nb)
        conf = mse.mean_prob.max(-1)
        rel = reliability(mse.mean_prob, a["yt"], nb)
        np.testing.assert_array_equal(b["count"], rel.count)
        for j in range(nb):
            lower, upper = j / nb, (j + 1) / nb
            members = [i for i in range(len(conf))
                       if (lower < conf[i] <= upper) or (j == 0 and conf[i] == 0)]
            assert b["count"][j] == len(members)
            if not members:
                assert np.isnan(b["gap"][j]) and np.isnan(b["calibration_error"][j])
                continue
            acc = np.mean([correct[i] for i in members])
            cf = np.mean([conf[i] for i in members])
            assert b["calibration_error"][j] == pytest.approx(abs(acc - cf), abs=1e-12)
            logs = [np.log(mse.var[i] / mse.bias2[i]) for i in members
                    if mse.var[i] > 0 and mse.bias2[i] > 0]
            logs_c = [np.log(mse.var[i] / mse.bias2[i]) for i in members
                      if mse.var[i] > 0 and mse.bias2[i] > 0 and correct[i]]
            assert b["n_fit"][j] == len(logs) and b["n_fit_correct"][j] == len(logs_c)
            assert b["gap"][j] == pytest.approx(np.mean(logs), rel=1e-9, abs=1e-12)
            if logs_c:
                assert b["gap_correct"][j] == pytest.approx(np.mean(logs_c), rel=1e-9,
                                                            abs=1e-12)
            else:
                assert np.isnan(b["gap_correct"][j])


def test_confidence_bins_follow_reliability_at_the_edges():
    nb = 10
    q = np.concatenate([np.arange(nb + 1) / nb, np.linspace(0, 1, 997)])
    probs = np.stack([q, 1 - q], -1)  # top probability max(q, 1-q): use q >= 0.5 only
    probs = probs[q >= 0.5]
    b = confidence_bins(probs.max(-1), nb)
    np.testing.assert_array_equal(np.bincount(b, minlength=nb),
                                  reliability(probs, np.zeros(len(probs), int), nb).count)
    assert confidence_bins(np.array([0.0, 0.1, 0.1000001, 1.0]), nb).tolist() == [0, 0, 1, 9]


# ------------------------------------------------------------------ (f) the driver


NOISE, WIDTHS = [0.0, 0.2], [4, 8]


@pytest.fixture(scope="module")
def logits_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("logits")
    rng = np.random.default_rng(7)
    n_test, n_train, c = 60, 40, 10
    y_test, y_train = rng.integers(0, c, n_test), rng.integers(0, c, n_train)
    members = np.arange(6)
    for p in NOISE:
        for w in WIDTHS:
            def logits(y, n, w=w):
                base = rng.normal(size=(1, n, c)) + np.eye(c)[y] * np.log2(w)
                return (w / 2 * (base + rng.normal(size=(6, n, c)))).astype(np.float32)
            t = logits_table(p, w, members, members // 2, members % 2,
                             {"test": (logits(y_test, n_test), y_test),
                              "train": (logits(y_train, n_train), y_train)})
            write_config(root, p, w, t, {})
    in_bag = {d: rng.integers(0, n_train, n_train) for d in range(3)}  # with duplicates
    return root, in_bag


def test_driver_returns_one_row_per_config(logits_dir):
    root, in_bag = logits_dir
    table, bins, metrics = calibration_all(root, NOISE, WIDTHS, in_bag, n_bins=5, n_boot=20,
                                           seed=0)
    assert len(table) == len(NOISE) * len(WIDTHS)
    assert list(table.columns) == list(COLUMNS)
    assert table[["label_noise", "width"]].values.tolist() == [
        [p, w] for p in NOISE for w in WIDTHS]
    assert list(bins.columns) == list(BIN_COLUMNS) and len(bins) == len(table) * 2 * 5
    assert bins.groupby(["label_noise", "width", "state"])["count"].sum().eq(60).all()
    assert set(metrics) == {"noise-0", "noise-0.2"}
    assert all(m["width"] == max(WIDTHS) for m in metrics.values())
    # temperatures from the OOB mask built by hand from the draws
    test = read_config(root, 0.2, 8, "test")
    train = read_config(root, 0.2, 8, "train")
    oob = np.ones(train.logits.shape[:2], bool)
    for i, d in enumerate(train.draws):
        oob[i, np.unique(in_bag[int(d)])] = False
    r = calibration_intervention(test.logits, test.labels, train.logits, train.labels, oob,
                                 n_bins=5, n_boot=20, seed=0)
    got = table[(table.label_noise == 0.2) & (table.width == 8)].iloc[0]
    assert got["temperature_mean"] == pytest.approx(r.row["temperature_mean"], rel=1e-12)
    assert got["oob_mean"] == oob.sum(1).mean()
    assert metrics["noise-0.2"]["gap_after"] == pytest.approx(r.row["gap_after"], abs=1e-6)


def test_driver_names_a_draw_without_a_split(logits_dir):
    root, in_bag = logits_dir
    with pytest.raises(InputError, match="draw 2 of member 4"):
        calibration_all(root, NOISE, WIDTHS, {0: in_bag[0], 1: in_bag[1]}, n_boot=0)
