"""The committed ``biasvar analyze`` benchmark (bench/results/analyze.json) and the
Markdown made from it (in the README and the performance page)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from conftest import load_bench

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@pytest.fixture(scope="module")
def bench():
    """``bench/bench_analyze.py`` as a module."""
    return load_bench("bench_analyze")


def _run() -> dict:
    return json.loads((RESULTS / "analyze.json").read_text())


def test_markdown_is_rendered_from_the_committed_json(bench):
    """Regenerate with ``python bench/bench_analyze.py --render bench/results/analyze.json``."""
    assert (RESULTS / "analyze.md").read_text() == bench.render_markdown(_run())


def test_committed_run_is_consistent(bench):
    r = _run()
    assert r["median_seconds"] == statistics.median(r["seconds"])
    assert r["shape"] == list(bench.SHAPE) and r["draws"] * r["seeds"] == r["shape"][0]
    assert {"README.md", "examples.parquet", "summary.csv", "alignment_size.csv",
            "alignment.png"} <= set(r["outputs"])  # the whole analysis was timed


def test_the_synthetic_ensemble_has_the_declared_design(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "SHAPE", (8, 50, 3))
    monkeypatch.setattr(bench, "DRAWS", 4)
    bench.make_ensemble(tmp_path / "e.npz")
    with np.load(tmp_path / "e.npz") as z:
        assert z["logits"].shape == (8, 50, 3) and z["labels"].shape == (50,)
        np.testing.assert_array_equal(z["draw"], [0, 0, 1, 1, 2, 2, 3, 3])
        assert 0 <= z["labels"].min() and z["labels"].max() < 3
