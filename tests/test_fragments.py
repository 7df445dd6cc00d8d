"""Numbers that README and docs show come from generated fragments, and are right.

- Each committed report's fragments (``key_numbers.md``, ``headline.md``) are what
  ``biasvar.report.fragments.render`` makes of its committed ``metrics.json``: a
  fragment can never disagree with its metrics.
- The numbers in them are the right ones, recomputed here from the metrics by other
  code (argmax of the variance curve, interior maxima of the error curve, counts of
  the simplicity verdicts), not copied from the renderer.
- README's ``<!-- fragment: PATH -->`` blocks hold exactly the files they name (the
  check of ``python -m biasvar.tools.fragments``), and a rerun report's new numbers
  flow into them by the sync alone.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from biasvar.core.errors import InputError
from biasvar.report import fragments
from biasvar.tools import fragments as sync

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted(d.name for d in (ROOT / "reports").iterdir() if (d / "metrics.json").is_file())


def _metrics(report: str) -> dict:
    return json.loads((ROOT / "reports" / report / "metrics.json").read_text())


def _fragment(report: str, name: str) -> str:
    return (ROOT / "reports" / report / name).read_text()


def _rows(md: str) -> dict[str, list[str]]:
    """A Markdown table's rows by their first cell (every table of the fragment)."""
    out = {}
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            out[cells[0]] = cells[1:]
    return out


def _floats(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?", text)]


def _curve(m: dict, level: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    per_width = m["alignment"][level]
    widths = np.array(sorted(int(k.split("-")[1]) for k in per_width))
    return widths, np.array([per_width[f"width-{w}"][key] for w in widths])


def _levels(m: dict) -> list[str]:
    return sorted(m["alignment"], key=lambda k: float(k.split("-")[1]))


def test_every_committed_report_is_checked():
    assert {"default", "paper", "biases", "cnn"} <= set(REPORTS)


@pytest.mark.parametrize("report", REPORTS)
def test_fragments_are_rendered_from_the_committed_metrics(report):
    """(a) A report's fragments are ``render(metrics.json)``: regenerate them with
    ``python -m biasvar.report.fragments reports/<name>`` (plot does for its report)."""
    for name, text in fragments.render(_metrics(report)).items():
        path = ROOT / "reports" / report / name
        assert path.exists(), f"{path} missing: python -m biasvar.report.fragments {path.parent}"
        assert path.read_text() == text, f"{path} differs from its metrics.json"


@pytest.mark.parametrize("report", REPORTS)
def test_key_number_table_states_the_metrics(report):
    """(b) Each level's alignment fit at the widest width, variance peak (argmax of the
    variance curve), member and ensemble error, double-descent peak (highest interior
    local maximum, found here), K -> infinity slopes, per level column."""
    m = _metrics(report)
    rows = _rows(_fragment(report, "key_numbers.md"))
    levels = _levels(m)
    assert len(rows["number"]) == len(levels)
    for i, level in enumerate(levels):
        w, slope = _curve(m, level, "slope")
        _, r2 = _curve(m, level, "r2")
        fit = next(v for k, v in rows.items() if k.startswith("alignment slope (R²)"))
        got = _floats(fit[i])
        assert got[:2] == pytest.approx([slope[-1], r2[-1]], abs=0.0051), (level, fit[i])
        _, var = _curve(m, level, "var")
        value, width = _floats(rows["variance peak (plug-in MSE)"][i])
        assert width == w[np.argmax(var)] and value == pytest.approx(var.max(), abs=6e-4)
        _, member = _curve(m, level, "member_test_error")
        _, ensemble = _curve(m, level, "test_error")
        err = next(v for k, v in rows.items() if k.startswith("member / ensemble test error"))
        assert _floats(err[i])[:2] == pytest.approx([member[-1], ensemble[-1]], abs=6e-4)
        interior = [j for j in range(1, len(w) - 1)
                    if member[j] > member[j - 1] and member[j] >= member[j + 1]]
        dd = rows["double-descent peak of the member test error"][i]
        if not interior:
            assert dd == "no interior peak"
        else:
            j = max(interior, key=lambda j: member[j])
            peak, at, rise, fall = _floats(dd)[:4]
            assert (at, peak) == (w[j], pytest.approx(member[j], abs=6e-4))
            assert rise == pytest.approx(100 * (member[j] - member[:j].min()), abs=0.051)
            assert fall == pytest.approx(100 * (member[j] - member[-1]), abs=0.051)
        size = m.get("alignment_size", {}).get(level)
        if size:
            inf = next(v for k, v in rows.items() if k.startswith("slope at K → ∞"))
            want = [size[f"{e}_slope_inf"] for e in ("plugin", "unbiased", "split_half")]
            assert _floats(inf[i]) == pytest.approx(want, abs=0.0051)
            at_k = next(v for k, v in rows.items() if k.startswith(f"slope at K = "
                                                                   f"{size['n_members']}"))
            want = [size[f"{e}_slope"] for e in ("plugin", "unbiased", "split_half")]
            assert _floats(at_k[i]) == pytest.approx(want, abs=0.0051)


@pytest.mark.parametrize("report", REPORTS)
def test_study_rows_state_the_metrics(report):
    """(b) Trade-off minimum, ridgeless peak and where each simplicity bias holds (counted
    here from the verdicts in metrics.json)."""
    m = _metrics(report)
    rows = _rows(_fragment(report, "key_numbers.md"))
    if "tradeoff" in m:
        d, total, noise = _floats(rows["classical trade-off (toy regression)"][0])
        assert (d, total, noise) == (m["tradeoff"]["argmin_total"],
                                     pytest.approx(m["tradeoff"]["min_total"], abs=6e-4),
                                     pytest.approx(m["tradeoff"]["noise"], abs=0.006))
    if "ridgeless" in m:
        text = rows["double descent (min-norm least squares)"][0]
        assert _floats(text)[0] == m["ridgeless"]["peak_n_features"]
        assert f"N = {m['ridgeless']['n_train']}" in text
    verdicts: dict[str, list] = {}
    for r in m.get("simplicity", []):
        verdicts.setdefault(r["bias"], []).append(r)
    for bias, rs in verdicts.items():
        text = rows[f"simplicity bias: {bias}"][0]
        holds = sum(r["holds"] is True for r in rs)
        assert text.startswith(f"holds in {holds} of {len(rs)} configs"), (bias, text)
        for r in rs:
            if r["holds"] is None:
                assert r["config"] in text.split("undecided in ")[1], (bias, r["config"])
            elif r["holds"] is False:
                assert r["config"] in text.split("not in ")[1].split(";")[0], (bias, r["config"])


@pytest.mark.parametrize("report", REPORTS)
def test_headline_sentences_state_the_metrics(report):
    """(b) The alignment sentence gives each level's widest-width slope and R², and the
    double-descent sentence each level's peak (or none), as recomputed here."""
    m = _metrics(report)
    lines = _fragment(report, "headline.md").splitlines()
    alignment = next(x for x in lines if x.startswith("- **Bias-variance alignment**"))
    dd = next(x for x in lines if x.startswith("- **Classical trade-off and double descent**"))
    for level in _levels(m):
        w, slope = _curve(m, level, "slope")
        _, r2 = _curve(m, level, "r2")
        found = re.findall(rf"slope (-?[0-9.]+) \(R² ([0-9.]+), [a-z ]+\) at width {w[-1]}",
                           alignment)
        assert any(abs(float(a) - slope[-1]) <= 0.0051 and abs(float(b) - r2[-1]) <= 0.0051
                   for a, b in found), (level, found)
        _, member = _curve(m, level, "member_test_error")
        interior = [j for j in range(1, len(w) - 1)
                    if member[j] > member[j - 1] and member[j] >= member[j + 1]]
        if interior:
            j = max(interior, key=lambda j: member[j])
            assert f"peak {member[j]:.3f} at width {w[j]}" in dd
    assert dd.count("no interior peak") == sum(
        not any(e[j] > e[j - 1] and e[j] >= e[j + 1] for j in range(1, len(e) - 1))
        for e in (_curve(m, lv, "member_test_error")[1] for lv in _levels(m)))


def test_readme_blocks_are_the_fragment_files():
    """(c) README's generated blocks hold the files they name; after a report is rerun,
    ``make fragments`` (``python -m biasvar.tools.fragments``) makes this pass again."""
    readme = ROOT / "README.md"
    assert sync.blocks(readme), "README.md includes no generated fragment"
    stale = sync.stale(ROOT)
    assert not stale, "stale: " + ", ".join(f"{b.page.name}:{b.line} ({b.path})" for b in stale)


def test_docs_include_only_files_that_exist():
    """Every ``--8<-- "PATH"`` of the docs names a file of the repository (a generated
    one: the plot stage, ``python -m biasvar.report.fragments`` or the bench writes it)."""
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for path in re.findall(r'^-{2}8<-{2} "([^"]+)"', page.read_text(), re.MULTILINE):
            assert (ROOT / path).is_file(), f"{page.relative_to(ROOT)} includes {path}"


# ---------------------------------------------------------------- the sync tool
def _repo(tmp_path: Path, body: str = "old\n") -> Path:
    (tmp_path / "reports" / "r").mkdir(parents=True)
    (tmp_path / "reports" / "r" / "key_numbers.md").write_text("| a |\n|---|\n| 1 |\n")
    (tmp_path / "README.md").write_text(
        "# t\n\n<!-- fragment: reports/r/key_numbers.md -->\n" + body
        + "<!-- end fragment -->\n\ntail\n")
    return tmp_path


def test_sync_fills_a_stale_block_and_check_names_it(tmp_path, capsys):
    root = _repo(tmp_path)
    assert [b.path for b in sync.stale(root)] == ["reports/r/key_numbers.md"]
    assert sync.main(["--check", "--root", str(root)]) == 1
    assert "README.md:3: the block of reports/r/key_numbers.md differs" in capsys.readouterr().err
    assert sync.main(["--root", str(root)]) == 0
    assert (root / "README.md").read_text() == (
        "# t\n\n<!-- fragment: reports/r/key_numbers.md -->\n| a |\n|---|\n| 1 |\n"
        "<!-- end fragment -->\n\ntail\n")
    assert sync.main(["--check", "--root", str(root)]) == 0
    assert sync.sync(root) == []  # idempotent: nothing rewritten


def test_sync_fills_docs_pages_and_skips_fenced_examples(tmp_path):
    root = _repo(tmp_path, body="")
    (root / "docs").mkdir()
    example = ("```markdown\n<!-- fragment: PATH -->\n<!-- end fragment -->\n```\n")
    (root / "docs" / "page.md").write_text(
        example + "<!-- fragment: reports/r/key_numbers.md -->\n<!-- end fragment -->\n")
    assert len(sync.stale(root)) == 2  # README and the page, not the example
    sync.sync(root)
    assert (root / "docs" / "page.md").read_text().startswith(example)
    assert "| 1 |" in (root / "docs" / "page.md").read_text()
    assert sync.stale(root) == []


def test_sync_refuses_a_missing_file_or_an_open_block(tmp_path):
    root = _repo(tmp_path)
    (root / "reports" / "r" / "key_numbers.md").unlink()
    with pytest.raises(InputError, match="reports/r/key_numbers.md does not exist"):
        sync.stale(root)
    (root / "README.md").write_text("<!-- fragment: reports/r/x.md -->\ntext\n")
    with pytest.raises(InputError, match=r"README.md:1: .*x.md has no"):
        sync.stale(root)


def test_a_rerun_reports_numbers_flow_into_the_readme(tmp_path):
    """Changing a committed result needs no hand edit: new metrics -> ``fragments.write``
    (what plot does) -> the README block is stale -> the sync fills in the new number."""
    report = tmp_path / "reports" / "default"
    report.mkdir(parents=True)
    shutil.copy(ROOT / "reports" / "default" / "metrics.json", report)
    fragments.write(report)
    (tmp_path / "README.md").write_text("<!-- fragment: reports/default/key_numbers.md -->\n"
                                        "<!-- end fragment -->\n")
    sync.sync(tmp_path)
    assert sync.stale(tmp_path) == []
    m = json.loads((report / "metrics.json").read_text())
    level = _levels(m)[0]
    widest = max(m["alignment"][level], key=lambda k: int(k.split("-")[1]))
    m["alignment"][level][widest]["slope"] = 0.123
    (report / "metrics.json").write_text(json.dumps(m))
    assert [p.name for p in fragments.write(report, check=True)] == list(fragments.FRAGMENTS)
    fragments.write(report)
    assert [b.path for b in sync.stale(tmp_path)] == ["reports/default/key_numbers.md"]
    sync.sync(tmp_path)
    assert "| 0.12 (" in (tmp_path / "README.md").read_text()


def test_fragments_command_writes_and_checks(tmp_path, capsys):
    shutil.copy(ROOT / "reports" / "cnn" / "metrics.json", tmp_path)
    assert fragments.main(["--check", str(tmp_path)]) == 1
    assert fragments.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["metrics.json",
                                                                 *fragments.FRAGMENTS])
    assert fragments.main(["--check", str(tmp_path)]) == 0
    capsys.readouterr()
    assert fragments.main([str(tmp_path / "none")]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    (tmp_path / "metrics.json").write_text("{}")
    assert fragments.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.json" in err


def test_render_tolerates_missing_numbers_and_sections():
    """A width without a fit (NaN, stored as null) and a report without the companion
    studies still render; a missing number is a dash, never 'nan' or 'None'."""
    m = _metrics("default")
    level = _levels(m)[0]
    for row in m["alignment"][level].values():
        row["var"] = None
        break
    first = next(iter(m["alignment"][level]))
    m["alignment"][level][first]["slope"] = None
    lean = {k: m[k] for k in ("alignment", "alignment_size")}
    for metrics in (m, lean):
        out = fragments.render(json.loads(json.dumps(metrics)))
        extra = {"dynamics_shift.md"} if "dynamics" in metrics else set()
        assert set(out) == set(fragments.FRAGMENTS) | extra
        for text in out.values():
            assert "nan" not in text and "None" not in text
    with pytest.raises(ValueError, match="alignment"):
        fragments.render({"tradeoff": m["tradeoff"]})


# ---------------------------------------------------------------- reports side by side
COMPARED = ("default", "digits")


def test_comparison_is_rendered_from_the_committed_reports():
    """``reports/comparison.md`` is what ``python -m biasvar.report.fragments --compare
    reports/default reports/digits`` writes from the committed metrics."""
    assert fragments.write_comparison([ROOT / "reports" / r for r in COMPARED],
                                      check=True) == []


def test_comparison_states_each_reports_fits():
    text = (ROOT / "reports" / fragments.COMPARISON).read_text()
    rows = [r.strip("|").split(" | ") for r in text.splitlines()
            if r.startswith("| ") and not r.startswith("| report")]
    assert len(rows) == sum(len(_levels(_metrics(r))) for r in COMPARED)
    for report in COMPARED:
        m = _metrics(report)
        label = fragments.report_label(ROOT / "reports" / report)
        mine = [r for r in rows if r[0].strip() == label]
        for level, row in zip(_levels(m), mine, strict=True):
            fits = m["alignment"][level]
            widths = sorted(fits, key=lambda k: int(k.split("-")[1]))
            expect = ", ".join(f"{k.split('-')[1]}: {fits[k]['slope']:.2f} ({fits[k]['r2']:.2f})"
                               for k in widths)
            assert row[2] == expect
            # the verdict, recomputed from its definition
            holds = [k.split("-")[1] for k in widths
                     if abs(fits[k]["slope"] - 1) <= 0.1 and fits[k]["r2"] >= 0.9]
            assert row[3] == (", ".join(holds) or "none")
            size = m["alignment_size"][level]
            assert row[4].strip().startswith(
                f"{size['plugin_slope']:.2f} / {size['unbiased_slope']:.2f} "
                f"(K = {size['n_members']}); {size['plugin_slope_inf']:.2f} / "
                f"{size['unbiased_slope_inf']:.2f}")


@pytest.mark.parametrize(("slope", "r2", "holds"), [
    (0.95, 0.95, True), (1.09, 0.9, True), (0.85, 0.99, False), (1.15, 0.99, False),
    (1.0, 0.85, False), (float("nan"), 0.99, False), (1.0, float("nan"), False)])
def test_alignment_holds_is_slope_near_one_with_a_strong_fit(slope, r2, holds):
    from biasvar.report import wording

    assert wording.alignment_holds(slope, r2) is holds


def test_compare_needs_two_reports(capsys):
    assert fragments.main(["--compare", str(ROOT / "reports" / "default")]) == 2
    assert "two report folders" in capsys.readouterr().err


def test_an_undefined_calibration_gap_has_no_verdict():
    """Too few correctly classified examples leave the gap undefined (null in metrics.json):
    the sentence says so instead of failing (it raised a TypeError)."""
    m = _metrics("default")
    level = _levels(m)[0]
    m["calibration_intervention"][level]["gap_after"] = None
    text = fragments.alignment_sentence(m)
    assert "no verdict" in text
