"""Fault catalogue of ``biasvar analyze``: a bad ensemble file is one ``error:`` line
naming the file and the array or column and what was expected, exit code 2, no
traceback, and an existing output folder is left as it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
K, N, C = 4, 6, 3


def _good() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"logits": rng.normal(size=(K, N, C)), "labels": np.arange(N) % C}


def _run(tmp_path: Path, target: Path) -> subprocess.CompletedProcess:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "keep.txt").write_text("an earlier analysis")
    r = subprocess.run([sys.executable, "-m", "biasvar.cli.main", "analyze", str(target),
                        "--out", str(out), "--bootstrap", "0"], capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert (out / "keep.txt").read_text() == "an earlier analysis"  # nothing lost
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    return r


def _one_error(r: subprocess.CompletedProcess, *parts: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for p in parts:
        assert p in lines[0], (p, lines[0])
    return lines[0]


def _bad_nan():
    a = _good()
    a["logits"][2, 1, 0] = np.nan
    return a


CASES = {
    "no logits": ({"labels": np.arange(N) % C}, ["no 'logits' or 'probs' array"]),
    "no labels": ({"logits": np.zeros((K, N, C))}, ["no 'labels' array"]),
    "unknown array": ({**_good(), "weights": np.ones(3)}, ["unknown array 'weights'"]),
    "2-D logits": ({**_good(), "logits": np.zeros((K, N))},
                   ["[logits]", "shape (4, 6); expected (members, examples, classes)"]),
    "NaN logits": (_bad_nan(), ["[logits]", "1 values are NaN or inf (first in member 2)"]),
    "labels out of range": ({**_good(), "labels": np.full(N, 3)},
                            ["labels: values 3..3; expected 0..2"]),
    "labels wrong length": ({**_good(), "labels": np.zeros(N + 1, int)},
                            ["labels: shape (7,); expected (6,)"]),
    "probs off the simplex": ({"probs__b": np.full((K, N, C), 0.2), "labels": np.arange(N) % C},
                              ["[probs__b]", "rows sum to 1 within"]),
    "logits and probs of one config": ({**_good(), "probs": np.full((K, N, C), 1 / C)},
                                       ["config 'ensemble' has both logits and probs"]),
    "unbalanced draws": ({**_good(), "draw": np.array([0, 0, 0, 1])},
                         ["draw: draws have [1, 3] members"]),
    "draw of the wrong length": ({**_good(), "draw": np.array([0, 1])},
                                 ["draw: shape (2,); expected (4,)"]),
    "float draw": ({**_good(), "draw": np.array([0.0, 0.0, 1.0, 1.0])},
                   ["draw: dtype float64; expected integers"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_npz_is_one_line_naming_the_array(tmp_path, case):
    arrays, parts = CASES[case]
    np.savez(tmp_path / "e.npz", **arrays)
    _one_error(_run(tmp_path, tmp_path / "e.npz"), str(tmp_path / "e.npz"), *parts)


def test_object_array_is_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "e.npz", logits=np.array([{"a": 1}], dtype=object), labels=np.arange(N))
    _one_error(_run(tmp_path, tmp_path / "e.npz"), "e.npz", "object array")


def test_not_an_npz_and_missing_and_unknown_type(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"not a zip file")
    _one_error(_run(tmp_path, tmp_path / "e.npz"), "e.npz", "not a readable .npz")
    _one_error(_run(tmp_path, tmp_path / "none.npz"), "none.npz", "does not exist")
    (tmp_path / "e.txt").write_text("x")
    _one_error(_run(tmp_path, tmp_path / "e.txt"), "e.txt", "unknown file type '.txt'")


def test_npy_directory_faults(tmp_path):
    d = tmp_path / "members"
    d.mkdir()
    _one_error(_run(tmp_path, d), "no member .npy files")
    np.save(d / "m0.npy", np.zeros((N, C)))
    np.save(d / "m1.npy", np.zeros((N + 1, C)))
    _one_error(_run(tmp_path, d), "no labels.npy")
    np.save(d / "labels.npy", np.arange(N) % C)
    _one_error(_run(tmp_path, d), "m1.npy", "shape (7, 3), but m0.npy has (6, 3)")


def test_a_parquet_that_is_not_a_logits_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "t.parquet")
    _one_error(_run(tmp_path, tmp_path / "t.parquet"), "t.parquet")


def test_bad_level_is_refused(tmp_path):
    np.savez(tmp_path / "e.npz", **_good())
    r = subprocess.run([sys.executable, "-m", "biasvar.cli.main", "analyze",
                        str(tmp_path / "e.npz"), "--out", str(tmp_path / "o"), "--ci", "1.5"],
                       capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    _one_error(r, "--ci 1.5", "[0.5, 1)")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- the import stage
def _configs(*names: str, draw: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    out = {f"logits__{n}": rng.normal(size=(K, N, C)) for n in names}
    out["labels"] = np.arange(N) % C
    if draw:
        out["draw"] = np.arange(K)
    return out


IMPORT_CASES = {
    "unplaced config": (_configs("width-8", "resnet"),
                        ["config 'resnet' does not name its place in the sweep"]),
    "grid with a hole": (_configs("noise-0_width-8", "noise-0.2_width-8", "noise-0_width-16"),
                         ["no config at label noise 0.2, width 16 (noise-0.2_width-16)"]),
    "two configs at one place": (_configs("width-8", "noise-0_width-8"),
                                 ["configs 'noise-0_width-8' and 'width-8' both sit at label "
                                  "noise 0, width 8"]),
    "level out of range": (_configs("noise-1.5_width-8"),
                           ["config 'noise-1.5_width-8': label-noise level 1.5 is outside"]),
    "one draw": ({**_configs("width-8"), "draw": np.zeros(K, int)},
                 ["config 'width-8' has 1 draw; the pipeline's report needs 2 or more"]),
    "not an ensemble file": ({"labels": np.arange(N) % C}, ["no 'logits' or 'probs' array"]),
}


@pytest.mark.parametrize("case", sorted(IMPORT_CASES))
def test_import_stage_refuses_in_one_line_and_writes_nothing(tmp_path, case):
    """The pipeline's import stage (``source: import``) reads what ``biasvar analyze``
    reads and refuses, in one line naming the file, what the report cannot place or
    estimate; its output folder is not created."""
    import yaml

    arrays, parts = IMPORT_CASES[case]
    np.savez(tmp_path / "mine.npz", **arrays)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["import"]["path"] = "mine.npz"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "import.py"), "--path", "mine.npz",
                        "--out", "src"], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    line = _one_error(r, *parts)
    assert line.startswith("error: mine.npz"), line
    assert not (tmp_path / "src").exists()
