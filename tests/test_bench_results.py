"""The committed benchmark run (bench/results/bench.json) and the Markdown made from it.

``bench/results/bench.md`` (included by the docs' performance page) is what
``bench_train.render_markdown`` makes of the committed JSON; its derived numbers
(which widths reach 60 % of the sgemm peak, the matmul ceilings and the budget
left for everything else) are recomputed here from the JSON, and the JSON's own
numbers are checked for consistency.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _run() -> dict:
    return json.loads((RESULTS / "bench.json").read_text())


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_bench_markdown_is_rendered_from_the_committed_json(bench_train):
    """Regenerate with ``python bench/bench_train.py --render bench/results/bench.json``."""
    assert (RESULTS / "bench.md").read_text() == bench_train.render_markdown(_run())


def test_bench_json_is_consistent():
    run = _run()
    peaks = run["sgemm_peaks_gflops"]  # before the first width, between widths, after the last
    assert len(peaks) == len(run["anatomy"]) + 1
    for i, r in enumerate(run["anatomy"]):
        # each width's percentages are of the larger of the two measurements around it
        assert r["sgemm_peak_gflops"] == max(peaks[i], peaks[i + 1])
        assert r["fraction_of_peak_hand"] * r["sgemm_peak_gflops"] == pytest.approx(
            r["gflops_hand"])
        # a block (matmuls + everything else) is slower than its matmuls alone
        assert r["fraction_of_peak_hand"] < r["fraction_of_peak_matmuls_alone"], r["width"]
    s = run["speedup"]
    assert s["speedup"] == pytest.approx(s["plain_s_per_member"] / s["block_s_per_member"])
    assert s["block_s_per_member"] == pytest.approx(s["block_s"] / s["members"])


def test_bench_markdown_states_the_recomputed_numbers(bench_train):
    run = _run()
    md = (RESULTS / "bench.md").read_text()
    flat = _flat(md)
    peaks = run["sgemm_peaks_gflops"]
    assert f"measured {len(peaks)} times in the run, {min(peaks):.0f} to {max(peaks):.0f}" in flat
    for r in run["anatomy"]:
        assert bench_train.anatomy_row(r) in md.splitlines(), r["width"]
        gain = r["member_steps_per_s_hand"] / r["member_steps_per_s_autograd"]
        assert f"{gain:.2f}× at width {r['width']}" in flat
    wide = [r for r in run["anatomy"] if r["width"] >= 128]
    over = [r["width"] for r in wide if r["fraction_of_peak_hand"] >= 0.6]
    worst = min(wide, key=lambda r: r["fraction_of_peak_hand"])
    assert (f"≥ 60 % of the sgemm peak at width(s): {', '.join(map(str, over)) or 'none'}; "
            f"lowest at width {worst['width']} "
            f"({100 * worst['fraction_of_peak_hand']:.0f} %)") in flat
    # where a block falls short of 60 %: the ceiling of its matmuls, the non-matmul share
    # that would still allow 60 %, the share measured, and how far it would have to shrink
    short = [r for r in wide if r["fraction_of_peak_hand"] < 0.6]
    for r in short:
        mm, hand = r["fraction_of_peak_matmuls_alone"], r["fraction_of_peak_hand"]
        assert f"{100 * mm:.0f} % at width {r['width']}" in flat
        assert f"{100 * (mm / 0.6 - 1):.0f} % at width {r['width']}" in flat
        assert f"{100 * (mm / hand - 1):.0f} %" in flat
        assert f"{100 * (mm / 0.6 - 1) / (mm / hand - 1):.0f} %" in flat
    s = run["speedup"]
    assert f"| plain DataLoader loop, per member ({s['steps']} steps) | " \
           f"{s['plain_s_per_member']:.2f} s |" in md
    assert f"| **per-member speed-up** | **{s['speedup']:.1f}×** |" in md


def test_render_command_writes_the_markdown_beside_the_json(bench_train, tmp_path):
    (tmp_path / "bench.json").write_text((RESULTS / "bench.json").read_text())
    out = bench_train.write_markdown(tmp_path / "bench.json")
    assert out == tmp_path / "bench.md"
    assert out.read_text() == (RESULTS / "bench.md").read_text()
