"""README's Speed tables state the committed benchmark run (bench/results/bench.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_step_anatomy_table_is_the_committed_bench_run(bench_train):
    run = json.loads((ROOT / "bench" / "results" / "bench.json").read_text())
    text = (ROOT / "README.md").read_text()
    flat = " ".join(text.split())
    peaks = run["sgemm_peaks_gflops"]  # before the first width, between widths, after the last
    assert len(peaks) == len(run["anatomy"]) + 1
    assert f"measured {len(peaks)} times in the run, {min(peaks):.0f} to {max(peaks):.0f}" in flat
    for i, r in enumerate(run["anatomy"]):
        # each width's percentages are of the larger of the two measurements around it
        assert r["sgemm_peak_gflops"] == max(peaks[i], peaks[i + 1])
        assert r["fraction_of_peak_hand"] * r["sgemm_peak_gflops"] == pytest.approx(
            r["gflops_hand"])
        row = bench_train.anatomy_row(r)  # the row the bench prints for this width
        assert row in text, row
        gain = r["member_steps_per_s_hand"] / r["member_steps_per_s_autograd"]
        assert f"{gain:.2f}× at" in text, r["width"]
    wide = [r for r in run["anatomy"] if r["width"] >= 128]
    over = [r["width"] for r in wide if r["fraction_of_peak_hand"] >= 0.6]
    worst = min(wide, key=lambda r: r["fraction_of_peak_hand"])
    assert (f"whole block ≥ 60 % at width(s): {', '.join(map(str, over))}; lowest at width "
            f"{worst['width']} ({100 * worst['fraction_of_peak_hand']:.0f} %)") in flat
    # the ceiling: where a whole block falls short of 60 %, the README says how far the
    # step's matmuls alone get; a block (matmuls + everything else) must be slower
    short = [r for r in wide if r["fraction_of_peak_hand"] < 0.6]
    for r in short:
        assert r["fraction_of_peak_hand"] < r["fraction_of_peak_matmuls_alone"], r["width"]
    assert ("the matmuls of a step alone reach " + ", ".join(
        f"{100 * r['fraction_of_peak_matmuls_alone']:.0f} % at width {r['width']}"
        for r in short)) in flat
    # the budget: the non-matmul share of the matmul time that would still allow 60 %,
    # against the share measured (block time / matmul time - 1)
    budget = [f"{100 * (r['fraction_of_peak_matmuls_alone'] / 0.6 - 1):.0f} % at width "
              f"{r['width']}" for r in short]
    assert f"at most {' and '.join(budget)}" in flat
    spent = [f"{100 * (r['fraction_of_peak_matmuls_alone'] / r['fraction_of_peak_hand'] - 1):.0f} %"
             for r in short]
    assert f"it takes {' and '.join(spent)} (block against matmuls alone)" in flat
    shrink = []
    for r in short:
        mm = r["fraction_of_peak_matmuls_alone"]
        shrink.append(f"{100 * (mm / 0.6 - 1) / (mm / r['fraction_of_peak_hand'] - 1):.0f} %")
    assert f"would have to shrink to {' and '.join(shrink)} of what it is" in flat
    # the same blocks against the run's extreme sgemm measurements
    by_w = {r["width"]: r for r in run["anatomy"]}
    assert (f"largest sgemm measurement of the whole run ({max(peaks):.0f} GFLOP/s) width 512 "
            f"would be at {100 * by_w[512]['gflops_hand'] / max(peaks):.0f} %") in flat
    assert (f"smallest ({min(peaks):.0f} GFLOP/s) width 256 would be at "
            f"{100 * by_w[256]['gflops_hand'] / min(peaks):.0f} %") in flat
    assert f"width 512 ({by_w[512]['gflops_hand']:.0f} GFLOP/s;" in flat
    assert (f"steady-state steps {100 * by_w[512]['fraction_of_peak_hand_steady']:.0f} %, the "
            f"step alone {100 * by_w[512]['fraction_of_peak_step_alone']:.0f} %") in flat


def test_readme_speedup_table_is_the_committed_bench_run():
    r = json.loads((ROOT / "bench" / "results" / "bench.json").read_text())["speedup"]
    text = (ROOT / "README.md").read_text()
    assert r["speedup"] == pytest.approx(r["plain_s_per_member"] / r["block_s_per_member"])
    assert f"{r['steps']} steps | {r['plain_s_per_member']:.2f} s |" in text
    assert f"per member | {r['block_s_per_member']:.2f} s |" in text
    assert f"| **per-member speed-up** | **{r['speedup']:.1f}×** |" in text
