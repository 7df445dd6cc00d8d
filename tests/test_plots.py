"""Figures render from small synthetic tables (no training) with the right axes and series."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from biasvar.analysis.regress import regress_all
from biasvar.analysis.tables import decompose_all
from biasvar.ensemble.logits import logits_table, write_config
from biasvar.report import figures as plots
from biasvar.report import fragments
from biasvar.report.config import Style
from biasvar.report.document import (
    Report,
    main_report,
    markdown_table,
    threshold_width,
    write_report,
)

NOISE, WIDTHS = [0.0, 0.2], [4, 8, 16]


@pytest.fixture(autouse=True)
def _close_figures():
    """Reports built here without ``write_report`` (which closes each figure) would keep
    their figures open across tests."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Decomposition / fits tables of a synthetic sweep: 6 members (3 draws x 2 seeds)."""
    root = tmp_path_factory.mktemp("logits")
    rng = np.random.default_rng(0)
    n_test, n_train, c = 60, 40, 10
    y_test, y_train = rng.integers(0, c, n_test), rng.integers(0, c, n_train)
    members = np.arange(6)
    for p in NOISE:
        for w in WIDTHS:
            # wider = more confident and more right, so the sweep has a trend
            def logits(y, n, w=w):
                base = rng.normal(size=(1, n, c)) + np.eye(c)[y] * np.log2(w)
                return (base + rng.normal(scale=1.0, size=(6, n, c))).astype(np.float32)
            t = logits_table(p, w, members, members // 2, members % 2,
                             {"test": (logits(y_test, n_test), y_test),
                              "train": (logits(y_train, n_train), y_train)})
            write_config(root, p, w, t, {})
    noisy = {p: rng.uniform(size=n_train) < p for p in NOISE}
    in_bag = {d: np.unique(rng.integers(0, n_train, n_train)) for d in range(3)}
    ex, sm, rl = decompose_all(root, noisy, NOISE, WIDTHS, intervals=True, ci=0.9, n_bins=10,
                               in_bag=in_bag)
    fits, metrics = regress_all(ex, sm, "plugin", n_boot=20, seed=0, ci=0.9)
    steps = np.arange(10, 110, 10)
    curves = pd.DataFrame([
        {"label_noise": p, "width": w, "member": m, "step": s, "train_loss": 2.0 / s * w,
         "train_accuracy": 0.5, "test_loss": 1.0, "test_accuracy": 0.3 + 0.001 * s}
        for p in NOISE for w in WIDTHS for m in range(6) for s in steps])
    # in-bag error falls to 0 from width 8; 25 of the 40 training examples per draw
    members = pd.DataFrame([
        {"label_noise": p, "width": w, "member": m, "split_method": "bootstrap",
         "in_bag_error": 0.0 if w >= 8 else 0.2, "oob_error": 0.5, "n_in_bag": 25}
        for p in NOISE for w in WIDTHS for m in range(6)])
    return {"examples": ex.to_pandas(), "summary": sm.to_pandas(),
            "reliability": rl.to_pandas(), "fits": fits.to_pandas(), "metrics": metrics,
            "curves": curves, "members": members, "root": root}


STYLE = Style(max_points=50)


def _lines(ax):
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_alignment_figure(tables):
    fig = plots.alignment_figure(tables["examples"], tables["fits"], 0.0, STYLE)
    axes = fig.get_axes()
    assert len(axes) == len(WIDTHS)
    for ax, w in zip(axes, WIDTHS, strict=True):
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_xlabel() == "bias² (MSE on probabilities)"
        assert ax.get_ylabel() == "variance"
        assert ax.get_title() == f"width {w}"
        labels = {ln.get_label() for ln in _lines(ax)}
        assert {"y = x", "OLS fit, correct examples"} <= labels
        assert any("slope" in t.get_text() for t in ax.texts)


def test_terms_vs_width_figure(tables):
    fig = plots.terms_vs_width_figure(tables["summary"], STYLE)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == [name for _, name in plots.TERMS]
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.get_xlabel() == "width (hidden units)"
        assert len(_lines(ax)) == len(NOISE)  # one series per label-noise level
        np.testing.assert_array_equal(_lines(ax)[0].get_xdata(), WIDTHS)
        assert len(ax.collections) == len(NOISE)  # a CI band per series


def test_error_vs_width_figure_marks_the_threshold(tables):
    ex = tables["examples"]
    train = ex[(ex.partition == "train") & (ex.oob_members > 0)]
    oob = (train.assign(oob_error=train.oob_prediction != train.label)
           .groupby(["label_noise", "width"], as_index=False).oob_error.mean())
    fig = plots.error_vs_width_figure(tables["summary"], tables["members"], 6.0, STYLE, oob)
    axes = fig.get_axes()
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_ylabel() == "0-1 error (fraction)"
        labels = [ln.get_label() for ln in _lines(ax)]
        assert labels.count("parameters = distinct examples per draw") == 1
    # member panel: test, in-bag, out-of-bag per level; ensemble: test and train per level
    assert len(_lines(axes[0])) == 3 * len(NOISE) + 1
    assert len(_lines(axes[1])) == 3 * len(NOISE) + 1  # + the out-of-bag ensemble
    in_bag = [ln for ln in _lines(axes[0]) if ln.get_label().startswith("in-bag")][0]
    np.testing.assert_allclose(in_bag.get_ydata(), [0.2, 0.0, 0.0])


def test_calibration_and_curves_figures(tables):
    fig = plots.calibration_figure(tables["reliability"], tables["summary"], tables["fits"], 0.0,
                                   STYLE)
    a, b, c = fig.get_axes()
    assert a.get_xlabel() == "confidence (top probability)" and a.get_ylabel() == "accuracy"
    assert len(_lines(a)) == len(WIDTHS) + 1  # one diagram per width + diagonal
    assert b.get_ylabel() == "ECE" and len(_lines(b)) == 2 * len(NOISE)
    assert c.get_ylabel() == "mean log(variance / bias²)" and len(_lines(c)) == len(NOISE)
    fig = plots.curves_figure(tables["curves"], STYLE)
    axes = fig.get_axes()
    assert len(axes) == 2 * len(NOISE)
    assert axes[0].get_yscale() == "log" and axes[1].get_ylabel() == "test accuracy"
    assert all(len(_lines(ax)) == len(WIDTHS) for ax in axes)


def test_report_title_names_the_data_and_the_factory(tables):
    """The title names the dataset decompose recorded and a user's factory; the default
    (MNIST-1D, or a decomposition that records no data) keeps its title."""
    t = tables
    args = (t["examples"], t["summary"], t["reliability"], t["fits"], t["curves"],
            t["members"], t["metrics"], STYLE)
    assert main_report(*args, "mlp", 2, False).title == "biasvar report: mlp ensembles on MNIST-1D"
    digits = {"name": "digits", "input_shape": [1, 8, 8], "n_classes": 10, "source": "sklearn"}
    rep = main_report(*args, "module", 2, False, data=digits, module="pkg.nets:small")
    assert rep.title == ("biasvar report: pkg.nets:small ensembles on digits "
                         "(inputs 1×8×8, 10 classes)")


def test_report_readme_embeds_every_figure(tables, tmp_path):
    t = tables
    rep = main_report(t["examples"], t["summary"], t["reliability"], t["fits"], t["curves"],
                      t["members"], t["metrics"], STYLE, "mlp", 2, False)
    assert isinstance(rep, Report) and len(rep.figures) == 5
    metrics = {"alignment": t["metrics"]}  # as the plot stage passes them
    write_report(rep, tmp_path / "r", metrics, dpi=40)
    readme = (tmp_path / "r" / "README.md").read_text()
    for fg in rep.figures:
        assert (tmp_path / "r" / f"{fg.name}.png").stat().st_size > 1000
        # the template embeds each figure under its title, with its computed caption
        assert f"## {fg.title}\n\n![{fg.title}]({fg.name}.png)\n\n{fg.caption}\n" in readme
    assert "| label_noise | width | slope |" in readme
    assert readme.index("## Key numbers") < readme.index("## Population estimates")
    assert rep.sections["population"]["table"] in readme
    # metrics.json: the stages' metrics, and what the report computed under "report";
    # the fragments are rendered from that file
    written = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert written["alignment"] == json.loads(json.dumps(t["metrics"]))
    assert written["report"]["n_fit"] == 25 and written["report"]["n_train"] == 40
    pop = written["report"]["population"]["noise-0"]["width-8"]
    s = t["summary"]
    row = s[(s.partition == "test") & (s.label_noise == 0) & (s.width == 8)
            & (s.quantity == "var_optimization")].iloc[0]
    assert pop["var_optimization"]["estimate"] == pytest.approx(row.estimate, rel=1e-5)
    assert pop["var_optimization"]["plugin"] == pytest.approx(row.value, rel=1e-5)
    for name, text in fragments.render(written).items():
        assert (tmp_path / "r" / name).read_text() == text
    errors = {f.name: f.caption for f in rep.figures}["error_width"]
    # the threshold uses the 25 distinct examples per draw, not the 40 training examples
    assert "in-bag error 0 from width 8" in errors
    assert "25 distinct examples a member is fitted to" in errors
    assert "of the 40 training examples" in errors
    assert (tmp_path / "r" / "metrics.json").exists()


def test_threshold_width_solves_the_parameter_count():
    # MLP depth 2: h^2 + 52 h + 10 = 4000 (UDL's "h near 44"); the exact root is 42.30
    w = threshold_width("mlp", 2, False, 4000, [2, 400])
    assert w == pytest.approx((-52 + np.sqrt(52**2 + 4 * 3990)) / 2, abs=0.05)
    assert threshold_width("mlp", 2, False, 4000, [2, 30]) is None  # not in the sweep
    assert threshold_width("logistic", 1, False, 4000, [1, 10]) is None


def test_markdown_table_formats_nan():
    s = markdown_table(pd.DataFrame({"a": [1.23456, np.nan], "b": ["x", "y"]}))
    assert s.splitlines() == ["| a | b |", "|---|---|", "| 1.235 | x |", "| — | y |"]


def test_style_validation_names_the_key():
    from biasvar.core.errors import ParamError

    good = {"report": "default", "theme": "whitegrid", "context": "paper", "panel_size": 2.5,
            "dpi": 100, "max_points": 100}
    assert Style.from_dict(good).dpi == 100
    with pytest.raises(ParamError, match=r"plot\.theme = 'neon'"):
        Style.from_dict({**good, "theme": "neon"})
    with pytest.raises(ParamError, match=r"plot\.report = '\.\./x'"):
        Style.from_dict({**good, "report": "../x"})


def test_study_figures():
    d = np.arange(1, 7)
    trade = pd.DataFrame({"hidden_units": d, "noise": 0.09, "bias2": 0.3 / d,
                          "variance": 0.02 * d, "total": 0.09 + 0.3 / d + 0.02 * d,
                          "test_loss": 0.09 + 0.3 / d + 0.02 * d, "test_loss_se": 0.01})
    ax = plots.tradeoff_figure(trade, STYLE).get_axes()[0]
    assert ax.get_xlabel() == "hidden units D (fixed first layer)"
    assert {"bias²", "variance", "noise + bias² + variance"} <= {ln.get_label()
                                                                 for ln in _lines(ax)}
    p = np.array([1, 5, 10, 15, 20, 100])
    ridge = pd.DataFrame({"n_features": p, "n_train": 15, "train_mse_median": [1, .5, .1, 0, 0, 0],
                          "test_mse_median": [1, 2, 10, 1e5, 3, 1], "test_mse_q25": 0.5,
                          "test_mse_q75": 2.0})
    ax = plots.ridgeless_figure(ridge, STYLE).get_axes()[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "features = samples (P = N = 15)" in [ln.get_label() for ln in _lines(ax)]
    spec = pd.DataFrame([{"config": c, "step": s, "frequency": k,
                          "normalized_magnitude": min(1.0, s / (10 * k))}
                         for c in ("relu", "tanh") for s in range(0, 100, 10) for k in (5, 10)])
    axes = plots.spectral_figure(spec, STYLE).get_axes()
    assert [a.get_title() for a in axes[:2]] == ["relu", "tanh"]  # + the colorbar axis
    assert axes[0].get_ylabel() == "frequency k" and len(axes[0].images) == 1
    er = pd.DataFrame([{"label_noise": q, "width": w, "erank_mean": 0.7 * w, "erank_sd": 0.1,
                        "erank_ratio_mean": 0.7} for q in NOISE for w in WIDTHS])
    a, b = plots.erank_figure(er, STYLE).get_axes()
    assert a.get_yscale() == "log" and b.get_ylabel() == "effective rank / width"
    assert len(_lines(b)) == len(NOISE)


def test_alignment_size_figure_and_caption(tables, tmp_path):
    from biasvar.analysis.ensemble_size import ensemble_size_all
    from biasvar.report.document import Figure, add_alignment_size

    table, extrap, metrics = ensemble_size_all(tables["root"], NOISE, WIDTHS, n_boot=20, seed=0,
                                               ci=0.9)
    assert set(metrics) == {"noise-0", "noise-0.2"}
    assert metrics["noise-0"]["width"] == max(WIDTHS)
    fig = plots.alignment_size_figure(table, 0.0, STYLE)
    axes = fig.get_axes()
    assert len(axes) == len(WIDTHS)
    for ax, w in zip(axes, WIDTHS, strict=True):
        labels = [ln.get_label() for ln in _lines(ax)]
        # 3 draws x 2 seeds: plug-in and unbiased MSE and CE plug-in; split-half needs 4 draws
        assert labels == ["MSE plug-in", "MSE unbiased", "CE plug-in"], labels
        d = table[(table.label_noise == 0) & (table.width == w) & (table.subset == "correct")
                  & (table.loss == "mse") & (table.estimator == "plugin")]
        np.testing.assert_allclose(_lines(ax)[0].get_ydata(), d.sort_values("n_members").slope)
    rep = Report("t")
    rep.figures += [Figure("alignment", "a", "c", None), Figure("other", "o", "c", None)]
    add_alignment_size(rep, table, extrap, STYLE)
    assert rep.figures[1].name == "alignment_size"
    caption = rep.figures[1].caption
    last = table[(table.label_noise == 0) & (table.width == max(WIDTHS))
                 & (table.subset == "correct") & (table.loss == "mse")
                 & (table.estimator == "plugin")].sort_values("n_members").iloc[-1]
    assert "MSE plug-in" in caption and f"{last.slope:.2f} at K = {int(last.n_members)}" in caption



def test_calibration_intervention_figure(tables):
    from biasvar.analysis.calibration_intervention import calibration_all

    in_bag = {d: np.arange(0, 40, d + 2) for d in range(3)}
    table, bins, metrics = calibration_all(tables["root"], NOISE, WIDTHS, in_bag, n_bins=5,
                                           n_boot=20, seed=0, ci=0.9)
    assert len(table) == len(NOISE) * len(WIDTHS) and set(metrics) == {"noise-0", "noise-0.2"}
    fig = plots.calibration_intervention_figure(table, STYLE)
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == [
        "member ECE", "ensemble ECE", "alignment gap, mean log(var / bias²)"]
    for ax in axes:
        assert len(_lines(ax)) == 2 * len(NOISE)  # before and after per level
    before = [ln for ln in _lines(axes[2]) if ln.get_label() == "before, clean labels"][0]
    np.testing.assert_allclose(before.get_ydata(),
                               table[table.label_noise == 0].sort_values("width").gap_before)


def test_width_tick_labels_never_collide_and_keep_the_ends():
    """On the paper's fine grid every width keeps a tick, labels are at least a tenth
    of the log span apart, the ends and powers of two are labelled first."""
    fine = [8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 64, 128]
    labels = plots.tick_labels(fine)
    assert labels == ["8", "12", "16", "", "24", "", "32", "", "", "48", "64", "128"]
    kept = np.log2([w for w, lab in zip(fine, labels, strict=True) if lab])
    assert np.diff(kept).min() >= 0.1 * np.log2(128 / 8)
    # a coarse grid is labelled in full
    assert plots.tick_labels([4, 8, 16, 32, 64, 128]) == ["4", "8", "16", "32", "64", "128"]
    # the widest width keeps its label; a width next to it loses its own
    assert plots.tick_labels([8, 16, 32, 34]) == ["8", "16", "", "34"]


def test_the_report_needs_only_the_declared_csv_columns(tables):
    """The plot stage reads each CSV through ``schema.read_csv`` with a declared format:
    the report must build from those columns alone (a figure that starts to use another
    column must declare it, so a file without it is refused with one line, not a
    ``KeyError`` mid-report)."""
    from biasvar.analysis.calibration_intervention import calibration_all
    from biasvar.analysis.ensemble_size import ensemble_size_all
    from biasvar.core.schema import (
        ALIGNMENT_SIZE_CSV,
        ALIGNMENT_SIZE_INF_CSV,
        CALIBRATION_INTERVENTION_CSV,
        CURVES_CSV,
        ERANK_CSV,
        MEMBERS_CSV,
        RIDGELESS_CSV,
        SPECTRAL_CSV,
        TRADEOFF_CSV,
    )
    from biasvar.report.document import (
        add_alignment_size,
        add_calibration_intervention,
        add_studies,
    )

    def only(table, fmt):
        return table[list(fmt.columns)].copy()

    import matplotlib.pyplot as plt

    plt.close("all")  # the earlier tests' figures: this one opens a dozen more
    t = tables
    rep = main_report(t["examples"], t["summary"], t["reliability"], t["fits"],
                      only(t["curves"], CURVES_CSV), only(t["members"], MEMBERS_CSV),
                      t["metrics"], STYLE, "mlp", 2, False)
    size, extrap, _ = ensemble_size_all(t["root"], NOISE, WIDTHS, n_boot=5, seed=0, ci=0.9)
    add_alignment_size(rep, only(size, ALIGNMENT_SIZE_CSV), only(extrap, ALIGNMENT_SIZE_INF_CSV),
                       STYLE)
    in_bag = {d: np.arange(0, 40, d + 2) for d in range(3)}
    calib, _, _ = calibration_all(t["root"], NOISE, WIDTHS, in_bag, n_bins=5, n_boot=5, seed=0,
                                  ci=0.9)
    add_calibration_intervention(rep, only(calib, CALIBRATION_INTERVENTION_CSV), STYLE)
    d = np.arange(1, 7)
    trade = pd.DataFrame({"hidden_units": d, "n_params": 3 * d, "noise": 0.09,
                          "bias2": 0.3 / d, "variance": 0.02 * d,
                          "total": 0.09 + 0.3 / d + 0.02 * d, "test_loss": 0.1 + 0.3 / d,
                          "test_loss_se": 0.01, "train_loss": 0.05})
    ridge = pd.DataFrame({"n_features": [1, 5, 15, 20], "n_train": 15,
                          "train_mse_mean": 0.1, "train_mse_median": [1, .5, 0, 0],
                          "test_mse_mean": 1.0, "test_mse_median": [1, 2, 1e5, 3],
                          "test_mse_q25": 0.5, "test_mse_q75": 2.0, "coef_norm_median": 1.0})
    spec = pd.DataFrame([{"config": "relu", "step": s, "frequency": k, "amplitude": 1.0,
                          "magnitude": 0.5, "normalized_magnitude": min(1.0, s / (10 * k)),
                          "loss": 0.1} for s in range(0, 100, 10) for k in (5, 10)])
    er = pd.DataFrame([{"label_noise": q, "width": w, "n_members": 6, "feature_dim": w,
                        "erank_mean": 0.7 * w, "erank_sd": 0.1, "erank_min": 0.6 * w,
                        "erank_max": 0.8 * w, "erank_ratio_mean": 0.7, "rank_mean": w,
                        "dead_units_mean": 0.0} for q in NOISE for w in WIDTHS])
    add_studies(rep, only(trade, TRADEOFF_CSV), only(ridge, RIDGELESS_CSV),
                only(spec, SPECTRAL_CSV), only(er, ERANK_CSV), STYLE)
    assert [f.name for f in rep.figures][-4:] == ["tradeoff", "ridgeless", "spectral",
                                                  "effective_rank"]
    assert {"alignment_size", "calibration_intervention"} <= {f.name for f in rep.figures}
    assert set(ALIGNMENT_SIZE_CSV.columns) <= set(size.columns)  # the writer's columns
    assert set(CALIBRATION_INTERVENTION_CSV.columns) <= set(calib.columns)
    plt.close("all")


def test_readme_template_puts_sections_after_the_figures_in_a_fixed_order():
    """The template renders figures in the report's order, then the sections it knows in
    its own order, whatever order the report filled them in; Markdown verbatim."""
    from biasvar.report.document import Figure, render_readme

    rep = Report("T <x> & y")
    rep.figures += [Figure("a", "A", "caption with <b> & 0.5 < 1", None),
                    Figure("b", "B", "second", None)]
    rep.sections["simplicity"] = {"rho_cut": 0.5, "words": "w.", "table": "| s |"}
    rep.sections["key_numbers"] = {"table": "| k |"}
    text = render_readme(rep)
    assert text.startswith("# T <x> & y\n\nGenerated by the `plot` stage")
    assert "## A\n\n![A](a.png)\n\ncaption with <b> & 0.5 < 1\n\n## B\n" in text
    assert text.index("## Key numbers") < text.index("## Simplicity biases")
    assert "## Population estimates" not in text
    assert "at least 0.5 in the direction" in text and text.endswith("| s |\n")
    assert render_readme(Report("T")).endswith("do not edit by hand.\n")
