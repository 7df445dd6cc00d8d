"""The probe stage under DVC: effective rank of tiny trained members, and its reruns."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from test_pipeline import make_project, sh
from test_studies_pipeline import TINY, _set_params, _status

from biasvar.studies.effective_rank import ERANK_MEMBER_COLUMNS, ERANK_SUMMARY_COLUMNS


@pytest.mark.pipeline
def test_probe_stage_reads_the_trained_members(tmp_path):
    proj = make_project(tmp_path / "probe", TINY)
    r = sh(proj, sys.executable, "-m", "dvc", "repro", "probe")
    assert "Running stage 'train@0.0-4-0'" in r.stdout
    studies = proj / "data" / "studies"
    members = pd.read_csv(studies / "erank_members.csv")
    assert list(members.columns) == list(ERANK_MEMBER_COLUMNS)
    assert list(members["member"]) == [0, 1] and (members["n_examples"] == 100).all()
    assert ((members["erank"] >= 1) & (members["erank"] <= 4)).all()
    summary = pd.read_csv(studies / "erank.csv")
    assert list(summary.columns) == list(ERANK_SUMMARY_COLUMNS)
    assert summary["n_members"].tolist() == [2]
    metrics = json.loads((proj / "data" / "metrics" / "erank.json").read_text())
    assert set(metrics["erank_mean"]["noise-0.0"]) == {"4"}
    # the probe reruns on its own params, and retrains nothing
    baseline = _status(proj)
    assert not baseline & {"generate@0.0", "split@0", "train@0.0-4-0", "probe"}
    _set_params(proj, lambda p: p["probe"].update(center=True))
    assert _status(proj) - baseline == {"probe"}
