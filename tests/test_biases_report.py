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
    grid = yaml.safe_load((ROOT / "configs" / "experiment" / "biases.yaml").read_text())
    m = _metrics()
    for study in ("pc_bias", "spectral_cls", "erank_depth"):
        assert set(_pick(m, study)) == set(grid[study]["configs"]), study
        for name, over in grid[study]["configs"].items():
            assert m[f"{study}-{name}"]["overrides"] == over, (study, name)


def test_run_params_are_the_grid_config():
    grid = yaml.safe_load((ROOT / "configs" / "experiment" / "biases.yaml").read_text())
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


def test_provenance_memory():
    """Every stage of the grid run is in the run record, and none took 4 GiB."""
    run = json.loads((PROV / "run.json").read_text())
    lock = yaml.safe_load((PROV / "dvc.lock").read_text())["stages"]
    measured = {r["stage"] for r in run["stages"]}
    assert len(measured) >= 22 and measured <= set(lock)
    assert max(r["max_rss_mib"] for r in run["stages"]) < 4096
