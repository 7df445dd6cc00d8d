"""``biasvar analyze``: every input layout gives the library's numbers, and the output
folder holds tables, a figure and a README whose numbers are the metrics'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import biasvar
from biasvar.analysis.decompose import softmax
from biasvar.analysis.imported import load_ensemble
from biasvar.cli.main import main
from biasvar.report.analyze import README_QUANTITIES

ROOT = Path(__file__).resolve().parents[1]


def _ensemble(seed=0, k=8, n=80, c=4):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=2.0, size=(k, n, c)), rng.integers(0, c, n)


def test_npz_with_two_configs_to_every_output(tmp_path, capsys):
    a, labels = _ensemble(0)
    b, _ = _ensemble(1)
    draw = np.repeat(np.arange(4), 2)
    np.savez(tmp_path / "ens.npz", logits__narrow=a, probs__wide=softmax(b), labels=labels,
             draw=draw)
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "ens.npz"), "--out", str(out), "--bootstrap",
                 "20"]) == 0
    said = capsys.readouterr().out
    assert "narrow: 8 members (4 draws x 2 seeds), 80 examples, 4 classes" in said
    names = {p.name for p in out.iterdir()}
    assert names == {"README.md", "alignment.png", "alignment.csv", "alignment_size.csv",
                     "alignment_size_inf.csv", "examples.parquet", "metrics.json",
                     "summary.csv"}
    ex = pd.read_parquet(out / "examples.parquet")
    ref = biasvar.decompose(b, labels=labels, draw=draw)  # probs -> the same terms
    got = ex[ex.config == "wide"].reset_index(drop=True)
    np.testing.assert_allclose(got.ce_diversity, ref.ce_diversity, rtol=1e-10, atol=1e-13)
    summary = pd.read_csv(out / "summary.csv")
    ref_s = biasvar.summarize(a, labels=labels, draw=draw).set_index("quantity")
    mine = summary[summary.config == "narrow"].set_index("quantity")
    np.testing.assert_allclose(mine.estimate, ref_s.estimate, rtol=1e-12)
    # the README states the metrics' numbers (3 significant digits)
    m = json.loads((out / "metrics.json").read_text())
    text = (out / "README.md").read_text()
    for name in ("narrow", "wide"):
        v = m["configs"][name]["summary"]["mse_diversity"]
        assert f"| {README_QUANTITIES['mse_diversity']} | {v['value']:.3g} |" in text
        assert f"slope {m['configs'][name]['alignment']['plugin-correct']['slope']:.3g}" in text


def test_parquet_input_is_the_pipelines_logits(tmp_path):
    from biasvar.ensemble.logits import logits_table, write_config

    a, labels = _ensemble(2, k=6)
    t = logits_table(0.1, 16, np.arange(6), np.repeat([0, 1, 2], 2), np.tile([0, 1], 3),
                     {"test": (a, labels), "train": (a[:, :10], labels[:10])})
    path = write_config(tmp_path, 0.1, 16, t, {"model": {"arch": "mlp"}})
    (cfg,) = load_ensemble(path)
    assert cfg.name == "noise-0.1_width-16" and cfg.logits.shape == (6, 80, 4)
    np.testing.assert_array_equal(cfg.draw, [0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(cfg.logits, a.astype(np.float32), rtol=0)


def test_npy_directory_in_natural_member_order(tmp_path):
    a, labels = _ensemble(3, k=11)
    d = tmp_path / "members"
    d.mkdir()
    for m in range(11):
        np.save(d / f"member{m}.npy", a[m])
    np.save(d / "labels.npy", labels)
    (cfg,) = load_ensemble(d)
    np.testing.assert_array_equal(cfg.logits, a)  # member2 before member10
    assert cfg.name == "members" and (cfg.draw == np.arange(11)).all()


def test_one_draw_has_no_size_curve_and_says_so(tmp_path):
    a, labels = _ensemble(4)
    np.savez(tmp_path / "deep.npz", logits=a, labels=labels, draw=np.zeros(8, int))
    out = tmp_path / "o"
    assert main(["analyze", str(tmp_path / "deep.npz"), "--out", str(out),
                 "--bootstrap", "0"]) == 0
    assert not (out / "alignment_size.csv").exists()
    m = json.loads((out / "metrics.json").read_text())["configs"]["ensemble"]
    assert m["draws"] == 1 and m["seeds"] == 8
    assert m["summary"]["mse_var"]["ci_low"] is None  # one draw: no interval
    assert m["summary"]["mse_diversity"]["value"] > 0  # one ensemble of 8 seeds
    assert "One draw" in (out / "README.md").read_text()


def test_console_script_is_declared_and_runs(tmp_path):
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"biasvar": "biasvar.cli.main:main"}
    r = subprocess.run([sys.executable, "-m", "biasvar.cli.main", "analyze", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "ENSEMBLE" in r.stdout.upper()


@pytest.mark.parametrize("c", [2, 100])
def test_two_and_a_hundred_classes(tmp_path, c):
    a, labels = _ensemble(5, k=6, n=50, c=c)
    np.savez(tmp_path / "e.npz", logits=a, labels=labels, draw=np.repeat([0, 1, 2], 2))
    assert main(["analyze", str(tmp_path / "e.npz"), "--out", str(tmp_path / "o"),
                 "--bootstrap", "0"]) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())[
        "configs"]["ensemble"]["classes"] == c
