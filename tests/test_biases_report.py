"""The committed simplicity-bias grid report (reports/biases) and its provenance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "biases"
PROV = ROOT / "reports" / "provenance" / "biases"


def _metrics() -> dict:
    return json.loads((REPORT / "metrics.json").read_text())


def _pick(m: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in m.items() if k.startswith(prefix + "-")}


def test_figures_committed_and_every_grid_config_reported():
    readme = (REPORT / "README.md").read_text()
    for f in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme):
        assert (REPORT / f).stat().st_size > 10_000, f
    grid = yaml.safe_load((ROOT / "configs" / "biases.yaml").read_text())
    m = _metrics()
    for study in ("pc_bias", "spectral_cls", "erank_depth"):
        assert set(_pick(m, study)) == set(grid[study]["configs"]), study
        for name, over in grid[study]["configs"].items():
            assert m[f"{study}-{name}"]["overrides"] == over, (study, name)


def test_run_params_are_the_grid_config():
    grid = yaml.safe_load((ROOT / "configs" / "biases.yaml").read_text())
    run = yaml.safe_load((PROV / "params.yaml").read_text())
    for study in ("pc_bias", "spectral_cls", "erank_depth"):
        assert run[study]["configs"] == grid[study]["configs"]
    assert run["plot"]["report"] == "biases"
    lock = yaml.safe_load((PROV / "dvc.lock").read_text())["stages"]
    for study in ("pc_bias", "spectral_cls", "erank_depth"):
        assert {f"{study}@{c}" for c in grid[study]["configs"]} <= set(lock), study


def test_summary_table_is_recomputed_from_the_metrics():
    from biasvar.report.document import simplicity_table

    m = _metrics()
    table = simplicity_table(_pick(m, "pc_bias"), _pick(m, "spectral_cls"),
                             _pick(m, "erank_depth"), _pick(m, "spectral"))
    assert table.holds.tolist() == [r["holds"] for r in m["simplicity"]]
    np.testing.assert_allclose(table.value.to_numpy(dtype=float),
                               [r["value"] for r in m["simplicity"]], equal_nan=True)


def test_readme_grid_sentences_are_the_committed_verdicts():
    rows = _metrics()["simplicity"]

    def count(bias):
        d = [r for r in rows if r["bias"] == bias]
        return sum(r["holds"] is True for r in d), len(d)
    text = (ROOT / "README.md").read_text().replace("\n  ", " ")
    assert count("low rank (init)") == count("low rank (trained)") == (9, 9)
    assert "**low rank holds in 9 of 9 configs**" in text
    h, n = count("principal-component")
    assert f"**principal-component bias holds in {h} of {n}**" in text
    h, n = count("spectral (classification)")
    assert f"**spectral bias on classification holds in {h} of {n}**" in text
    undecided = {r["config"] for r in rows if r["holds"] is None}
    assert undecided == {"linear-small-init", "relu-whitened"}  # "undecided for small init"


def test_provenance_time_and_memory():
    run = json.loads((PROV / "run.json").read_text())
    text = (PROV / "RUN.md").read_text()
    assert "5 min 22 s" in text and "5 min 22 s" in (ROOT / "README.md").read_text()
    peaks = [float(r) for r in re.findall(r"\| [\w@.-]+ \| [0-9.]+ \| ([0-9.]+) \|", text)]
    assert len(peaks) >= 22 and max(peaks) < 4
    assert run
