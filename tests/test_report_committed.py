"""The committed default report agrees with the committed DVC metrics it was built from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _report_dir() -> Path:
    name = yaml.safe_load((ROOT / "params.yaml").read_text())["plot"]["report"]
    return ROOT / "reports" / name


def test_every_embedded_figure_is_committed():
    readme = (_report_dir() / "README.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme)
    assert len(figures) == 11
    for f in figures:
        assert (_report_dir() / f).stat().st_size > 10_000, f


def test_report_metrics_are_the_dvc_metrics():
    """``reports/<name>/metrics.json`` holds exactly what ``dvc metrics show`` reads."""
    report = json.loads((_report_dir() / "metrics.json").read_text())
    assert report["alignment"] == json.loads((ROOT / "metrics" / "alignment.json").read_text())
    for study in ("tradeoff", "ridgeless", "erank"):
        assert report[study] == json.loads((ROOT / "metrics" / f"{study}.json").read_text())


def test_key_numbers_table_matches_metrics():
    readme = (_report_dir() / "README.md").read_text()
    key = readme[readme.index("## Key numbers"):readme.index("## Population estimates")]
    metrics = json.loads((ROOT / "metrics" / "alignment.json").read_text())
    rows = [r for r in key.splitlines() if re.match(r"^\| [0-9.]+ \| \d+ \|", r)]
    assert len(rows) == sum(len(v) for v in metrics.values())
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        noise, width, slope, r2 = float(cells[0]), int(cells[1]), float(cells[2]), float(cells[3])
        m = metrics[f"noise-{noise:g}"][f"width-{width}"]
        assert slope == pytest.approx(m["slope"], rel=1e-3)
        assert r2 == pytest.approx(m["r2"], rel=1e-3)
        assert float(cells[-1]) == pytest.approx(m["test_error"], rel=1e-3)
