"""The committed default report agrees with the committed DVC metrics it was built from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _report_dir() -> Path:
    name = yaml.safe_load((ROOT / "params.yaml").read_text())["plot"]["report"]
    return ROOT / "reports" / name


def test_every_embedded_figure_is_committed():
    readme = (_report_dir() / "README.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme)
    assert len(figures) == 20
    for f in figures:
        assert (_report_dir() / f).stat().st_size > 10_000, f


def _report_metrics() -> dict:
    return json.loads((_report_dir() / "metrics.json").read_text())


def test_headline_is_computed_from_the_report_metrics():
    """``metrics/headline.json`` (the one DVC metric) is the headline of the committed run."""
    from biasvar.report.headline import headline

    committed = json.loads((ROOT / "metrics" / "headline.json").read_text())
    assert committed == headline(_report_metrics()["alignment"])
    assert sum(len(v) for v in committed.values()) <= 15


def test_width_curves_are_the_committed_per_config_numbers():
    """``metrics/width_curves/<level>.csv`` (the DVC plots ``dvc plots diff`` overlays)
    hold, per level and width, exactly the committed fits and errors."""
    import pandas as pd

    from biasvar.report.headline import WIDTH_CURVE_COLUMNS

    alignment = _report_metrics()["alignment"]
    files = sorted((ROOT / "metrics" / "width_curves").glob("*.csv"))
    headline_levels = json.loads((ROOT / "metrics" / "headline.json").read_text())
    assert [f.stem for f in files] == sorted(headline_levels)
    for level_key, per_width in alignment.items():
        pct = float(level_key.split("-")[1]) * 100
        t = pd.read_csv(ROOT / "metrics" / "width_curves" / f"n{pct:g}.csv")
        assert tuple(t.columns) == WIDTH_CURVE_COLUMNS
        assert t.width.tolist() == sorted(int(k.split("-")[1]) for k in per_width)
        for row in t.itertuples():
            fit = per_width[f"width-{row.width}"]
            for col, key in [("member_test_error", "member_test_error"),
                             ("ensemble_test_error", "test_error"), ("bias2", "bias2"),
                             ("variance", "var"), ("slope", "slope"), ("r2", "r2")]:
                assert getattr(row, col) == pytest.approx(fit[key], rel=1e-5), (level_key, col)


def test_write_width_curves_replaces_the_folder(tmp_path):
    """A level dropped from the params leaves no stale file behind; NaN is refused."""
    from biasvar.report.headline import width_curves, write_width_curves

    fit = {"slope": 0.5, "r2": 0.9, "member_test_error": 0.5, "test_error": 0.4,
           "bias2": 0.3, "var": 0.1}
    out = tmp_path / "curves"
    write_width_curves(width_curves({"noise-0.0": {"width-8": fit},
                                     "noise-0.2": {"width-8": fit}}), out)
    assert sorted(p.name for p in out.iterdir()) == ["n0.csv", "n20.csv"]
    write_width_curves(width_curves({"noise-0.0": {"width-8": fit, "width-4": fit}}), out)
    assert sorted(p.name for p in out.iterdir()) == ["n0.csv"]
    assert (out / "n0.csv").read_text().splitlines()[1].startswith("4,0.5,0.4,0.3,0.1,0.5,0.9")
    with pytest.raises(ValueError, match="n0"):
        write_width_curves(width_curves({"noise-0.0": {"width-8": {**fit, "var": float("nan")}}}),
                           out)


def test_report_metrics_are_the_stage_metrics_on_disk():
    """``reports/<name>/metrics.json`` holds exactly the stages' ``data/metrics/*.json``."""
    report = _report_metrics()
    d = ROOT / "data" / "metrics"
    if not (d / "alignment.json").exists():
        pytest.skip("no run on disk (dvc repro or dvc pull)")
    assert report["alignment"] == json.loads((d / "alignment.json").read_text())
    names = ["tradeoff", "ridgeless", "erank", "collapse", "alignment_size",
             "calibration_intervention"]
    names += [f.stem for f in d.glob("spectral-*.json")]
    # the configs params.yaml declares (a grid run can leave other configs' files behind)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for study in ("pc_bias", "spectral_cls", "erank_depth"):
        names += [f"{study}-{c}" for c in params[study]["configs"]]
    for study in names:
        assert report[study] == json.loads((d / f"{study}.json").read_text()), study


def test_key_numbers_table_matches_metrics():
    readme = (_report_dir() / "README.md").read_text()
    key = readme[readme.index("## Key numbers"):readme.index("## Population estimates")]
    metrics = _report_metrics()["alignment"]
    rows = [r for r in key.splitlines() if re.match(r"^\| [0-9.]+ \| \d+ \|", r)]
    assert len(rows) == sum(len(v) for v in metrics.values())
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        noise, width, slope, r2 = float(cells[0]), int(cells[1]), float(cells[2]), float(cells[3])
        m = metrics[f"noise-{noise:g}"][f"width-{width}"]
        assert slope == pytest.approx(m["slope"], rel=1e-3)
        # metrics keep 6 decimals: R² 0.0003885 is stored as 0.000389
        assert r2 == pytest.approx(m["r2"], rel=1e-3, abs=1e-6)
        assert float(cells[-1]) == pytest.approx(m["test_error"], rel=1e-3)


def test_collapse_caption_is_the_collapse_metrics():
    readme = (_report_dir() / "README.md").read_text()
    cap = readme[readme.index("## Neural collapse, binary"):]
    cap = cap[:cap.index("\n## ", 5)]
    col = _report_metrics()["collapse"]["per_width"]
    widths = sorted(col, key=int)
    for w in (widths[0], widths[-1]):
        assert f"{col[w]['slope']:.2f} (R² {col[w]['r2']:.2f}) at width {w}" in cap
    assert f"NC1 falls with width ({col[widths[0]]['nc1_train']:.3g}" in cap


def test_headline_keys_have_no_dots_and_levels_in_percent():
    from biasvar.report.headline import headline

    fit = {"slope": 1.0, "r2": 1.0, "member_test_error": 0.5, "var": 0.1}
    fits = {f"noise-{p}": {"width-4": fit, "width-8": fit} for p in ("0.0", "0.2", "0.125")}
    out = headline(fits)
    assert set(out) == {"n0", "n20", "n12_5"}
    assert all("." not in k for v in out.values() for k in v)
    # no interior peak: 0, not None (DVC drops null metrics from exp show)
    assert all(v["dd_w"] == 0 for v in out.values())


def test_interior_peak():
    from biasvar.report.headline import interior_peak

    assert interior_peak([4, 8, 16, 32], [0.6, 0.5, 0.55, 0.4]) == (
        16, pytest.approx(0.05), pytest.approx(0.15))
    assert interior_peak([4, 8, 16], [0.6, 0.5, 0.4]) == (None, 0.0, 0.0)  # monotone: none
    # the highest interior maximum, its rise over the lowest error before it, and
    # its fall to the widest width (negative when the widest width is worse)
    w, rise, fall = interior_peak([1, 2, 3, 4, 5, 6], [0.5, 0.3, 0.35, 0.2, 0.45, 0.1])
    assert w == 5 and rise == pytest.approx(0.25) and fall == pytest.approx(0.35)
    assert interior_peak([1, 2, 3, 4], [0.5, 0.6, 0.4, 0.7])[2] == pytest.approx(-0.1)


def test_simplicity_summary_is_recomputed_from_the_study_metrics():
    """The report's simplicity-bias table (and metrics["simplicity"]) is what
    ``simplicity_table`` gives for the study metrics in the same metrics.json."""
    from biasvar.report.document import simplicity_table

    m = _report_metrics()
    def pick(prefix):
        return {k[len(prefix) + 1:]: v for k, v in m.items() if k.startswith(prefix + "-")}
    table = simplicity_table(pick("pc_bias"), pick("spectral_cls"), pick("erank_depth"),
                             pick("spectral"))
    assert len(table) == len(m["simplicity"]) > 0
    assert table.holds.tolist() == [r["holds"] for r in m["simplicity"]]
    np.testing.assert_allclose(table.value.to_numpy(dtype=float),
                               [r["value"] for r in m["simplicity"]], equal_nan=True)
    readme = (_report_dir() / "README.md").read_text()
    sec = readme[readme.index("## Simplicity biases"):]
    rows = [r for r in sec.splitlines() if r.startswith("| ") and not r.startswith("| bias")]
    assert len(rows) == len(table)
    for r, t in zip(rows, table.itertuples(), strict=True):
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[:3] == [t.bias, t.config, t.changed]
        assert cells[5] == ("undecided" if t.holds is None else ("yes" if t.holds else "no"))


def _caption(title: str) -> str:
    readme = (_report_dir() / "README.md").read_text()
    cap = readme[readme.index(f"## {title}"):]
    return cap[:cap.index("\n## ", 5)]


def test_dynamics_captions_are_the_dynamics_metrics():
    """Each dynamics caption is what its words give for the committed metrics, and states
    the widest width's errors at the first and last checkpoint and the model-wise peak."""
    from biasvar.report import dynamics as dyn

    m = _report_metrics()["dynamics"]
    curves = m["curves"]
    cap = _caption("Bias and variance over training time")
    assert dyn.dynamics_words(curves) in cap
    assert ", ".join(str(s) for s in m["steps"]) in cap
    for per_width in curves.values():
        w = max(per_width, key=lambda k: int(k.split("-")[1]))
        c = per_width[w]
        assert c["step"] == m["steps"]
        ib = c["in_bag_error"]
        assert f"in-bag error {ib[0]:.3f} at step {c['step'][0]} and {ib[-1]:.3f}" in cap
        ew = dyn.epochwise(c["step"], c["member_test_error"])
        if ew:
            assert f"rises {100 * ew['rise']:.1f} points to {ew['error']:.3f}" in cap
    heat = _caption("Model-wise and epoch-wise double descent in one picture")
    assert dyn.heatmap_words(curves) in heat
    slope = _caption("Alignment over training time")
    assert dyn.slope_words(curves) in slope
    # the last checkpoint is the final step: its numbers are the final fits'
    final = _report_metrics()["alignment"]
    for level, per_width in curves.items():
        for w, c in per_width.items():
            assert c["member_test_error"][-1] == pytest.approx(
                final[level][w]["member_test_error"], abs=1e-5)


def test_shift_captions_are_the_shift_metrics():
    from biasvar.report import shift

    m = _report_metrics()["shift"]
    cap = _caption("Bias and variance under distribution shift")
    assert shift.shift_words(m["curves"]) in cap and shift.yang_words(m["curves"]) in cap
    for per_width in m["curves"].values():
        w = max(per_width, key=lambda k: int(k.split("-")[1]))
        for c in per_width[w].values():
            assert c["severity"] == [0, *m["severities"]]
            e = c["member_test_error"]
            assert f"mean-member test error {e[0]:.3f} → {e[-1]:.3f}" in cap
            assert f"bias² {c['bias2'][0]:.3f} → {c['bias2'][-1]:.3f}" in cap
    al = _caption("Alignment off the training distribution")
    scatter = _report_metrics()["report"]["shift_alignment"]
    assert shift.alignment_words(m["curves"], scatter) in al
    for per_kind in scatter.values():
        for sc in per_kind.values():
            assert sc["severity"] == [0, m["severities"][-1]]
            assert f"Spearman ρ {sc['spearman'][0]:.2f} → {sc['spearman'][-1]:.2f}" in al


def test_dynamics_shift_fragment_is_rendered_from_the_metrics():
    from biasvar.report.fragments import dynamics_shift

    text = (_report_dir() / "dynamics_shift.md").read_text()
    assert text == dynamics_shift(_report_metrics())
