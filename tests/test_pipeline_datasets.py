"""A second dataset and family through the pipeline: digits (1×8×8 images) with ``cnn2d``.

A tiny temporary git repo copy of the project (``test_pipeline.make_project``) runs
``dvc repro`` up to every stage the main report reads (generate, split, train, collect,
decompose, regress, alignment_size, calibration_intervention), then the ``plot`` stage's
script on those tables, without the companion studies (they ignore ``data.name``; the
whole pipeline takes ~2.5 min on 2 cores, this ~45 s). It checks
that the data's name, input shape and class count and the family are recorded in the
collected logits and the decomposition, and that the report's title names them. Then the
same members, exported to an ``.npz``, go through ``biasvar analyze`` and through the
pipeline's import source (``source: import``): both reproduce the trained source's
test-set numbers, and the import runs no stage of the train chain.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
import yaml
from test_pipeline import make_project, sh

pytestmark = pytest.mark.pipeline

TINY = {
    "data": {"name": "digits", "root": None, "label_noise": [0.0], "num_samples": None,
             "train_split": 0.5},
    "model": {"arch": "cnn2d", "depth": 2, "residual": False},
    "ensemble": {"widths": [2, 4], "blocks": [0, 1], "block_size": 4, "seeds_per_draw": 2},
    "train": {"steps": 20, "log_every": 10, "batch_size": 50},
    "regress": {"bootstrap": 10},
    "alignment_size": {"bootstrap": 10},
    "calibration_intervention": {"bootstrap": 10},
    "runtime": {"progress": False, "threads": 1},
}


def plot_main_report(proj, out, report: str, title: str, source: str = "train",
                     figures=("alignment", "alignment_size", "calibration_intervention")
                     ) -> str:
    """The plot script on the main report's tables, outside DVC and the tree (no studies);
    checks the report's title and that its main figures were drawn; returns the README."""
    sh(proj, sys.executable, "stages/plot.py", "--decomposition", "data/decomposition",
       "--fits", "data/regress/fits.parquet", "--metrics", "data/metrics/alignment.json",
       "--source", f"data/sources/{source}",
       "--alignment-size", "data/regress/alignment_size.csv,data/regress/alignment_size_inf.csv",
       "--calibration", "data/regress/calibration_intervention.csv", "--out", str(out))
    readme = (out / report / "README.md").read_text()
    assert readme.startswith(f"# biasvar report: {title}\n"), readme[:200]
    for fig in figures:
        assert (out / report / f"{fig}.png").stat().st_size > 0
    return readme


def test_digits_cnn2d_to_the_report(tmp_path):
    from biasvar.core.schema import read_params
    from biasvar.ensemble.logits import config_file, read_config

    proj = make_project(tmp_path / "proj", TINY)
    r = sh(proj, sys.executable, "-m", "dvc", "repro", "regress", "alignment_size",
           "calibration_intervention")
    assert "train@0.0-4-1" in r.stdout
    logits = proj / "data" / "sources" / "train" / "logits"
    assert read_config(logits, 0.0, 4, "test").logits.shape == (8, 899, 10)  # 1797 - 898
    meta = read_params(config_file(logits, 0.0, 4))
    assert meta["model"]["arch"] == "cnn2d"
    assert {k: meta["dataset"][k] for k in ("name", "input_shape", "n_classes")} == {
        "name": "digits", "input_shape": [1, 8, 8], "n_classes": 10}
    assert read_params(proj / "data" / "decomposition" / "summary.parquet")["data"]["name"] \
        == "digits"
    plot_main_report(proj, tmp_path / "reports", "default",
                     "cnn2d ensembles on digits (inputs 1×8×8, 10 classes)")

    # biasvar analyze on the same members, exported as a user would: the pipeline's numbers
    import numpy as np
    import pandas as pd

    from biasvar.cli.main import main

    c = read_config(logits, 0.0, 4, "test")
    np.savez(tmp_path / "export.npz", logits=c.logits, labels=c.labels, draw=c.draws,
             seed=c.seeds)
    assert main(["analyze", str(tmp_path / "export.npz"), "--out", str(tmp_path / "an"),
                 "--bootstrap", "0"]) == 0
    mine = pd.read_parquet(tmp_path / "an" / "examples.parquet")
    ref = pd.read_parquet(proj / "data" / "decomposition" / "examples.parquet")
    ref = ref[(ref.label_noise == 0) & (ref.width == 4) & (ref.partition == "test")]
    from biasvar.core.schema import EXAMPLE_TERMS

    for col in EXAMPLE_TERMS:
        np.testing.assert_allclose(mine[col], ref.sort_values("example")[col], rtol=1e-10,
                                   atol=1e-12, err_msg=col)
    s_mine = pd.read_csv(tmp_path / "an" / "summary.csv").set_index("quantity")
    s_ref = pd.read_parquet(proj / "data" / "decomposition" / "summary.parquet")
    s_ref = s_ref[(s_ref.width == 4) & (s_ref.partition == "test")].set_index("quantity")
    np.testing.assert_allclose(s_mine.loc[s_ref.index, "estimate"], s_ref.estimate,
                               rtol=1e-10, atol=1e-12)
    ref_all = pd.read_parquet(proj / "data" / "decomposition" / "examples.parquet")
    fits = ref_fits_all = pd.read_parquet(proj / "data" / "regress" / "fits.parquet")
    fits = fits[(fits.width == 4) & (fits.partition == "test")]
    a = pd.read_csv(tmp_path / "an" / "alignment.csv")
    a = a[a.estimator.isin(set(fits.estimator))]  # regress fits one estimator (params)
    assert len(a) == 2  # correct and all
    for row in a.itertuples():
        r = fits[(fits.estimator == row.estimator) & (fits.subset == row.subset)].iloc[0]
        assert row.slope == pytest.approx(r.slope, rel=1e-10) and row.n == r.n

    # ---- the same members through the pipeline's import source: every term of the
    # decomposition and the alignment fits equal the trained source's on the test set
    arrays = {"labels": c.labels, "draw": c.draws, "seed": c.seeds}
    for w in (2, 4):
        arrays[f"logits__noise-0.0_width-{w}"] = read_config(logits, 0.0, w, "test").logits
    np.savez(proj / "mine.npz", **arrays)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["source"] = "import"
    params["import"]["path"] = "mine.npz"
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    r = sh(proj, sys.executable, "-m", "dvc", "repro", "regress", "alignment_size",
           "calibration_intervention")
    ran = set(re.findall(r"Running stage '([^']+)'", r.stdout))
    assert ran == {"import", "decompose", "regress", "alignment_size",
                   "calibration_intervention"}, ran  # nothing of the train chain
    got = pd.read_parquet(proj / "data" / "decomposition" / "examples.parquet")
    want = ref_all[ref_all.partition == "test"].reset_index(drop=True)
    assert set(got.partition) == {"test"} and len(got) == len(want)
    for col in EXAMPLE_TERMS:
        np.testing.assert_array_equal(got[col], want[col], err_msg=col)
    f = pd.read_parquet(proj / "data" / "regress" / "fits.parquet")
    np.testing.assert_array_equal(f.slope, ref_fits_all[ref_fits_all.partition == "test"].slope)
    assert "skipped" in json.loads(
        (proj / "data" / "metrics" / "calibration_intervention.json").read_text())
    readme = plot_main_report(proj, tmp_path / "reports-import", "default",
                              "an imported ensemble (mine.npz, 10 classes)", source="import",
                              figures=("alignment", "alignment_size", "calibration"))
    assert "Training curves" not in readme and "Calibration as a cause" not in readme
    # content-hashed: the same file name with other bytes makes the import stage stale
    arrays["logits__noise-0.0_width-4"] = arrays["logits__noise-0.0_width-4"][::-1].copy()
    np.savez(proj / "mine.npz", **arrays)
    status = json.loads(sh(proj, sys.executable, "-m", "dvc", "status", "--json",
                           "import").stdout)
    assert "import" in status
