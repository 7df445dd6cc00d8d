"""Stages started side by side share the cores (biasvar.core.jobs)."""

from __future__ import annotations

import os
import subprocess

import pytest

from biasvar.core import jobs


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "_registry", lambda: tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    return tmp_path


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def test_alone_a_stage_uses_every_core(registry):
    assert jobs.register() == 0
    assert jobs.live_jobs() == 1
    assert jobs.fair_threads(0) == _cores()
    assert "OMP_WAIT_POLICY" not in os.environ


def test_a_second_stage_splits_the_cores_and_sleeps_when_idle(registry):
    (registry / str(os.getppid())).touch()  # another live stage
    assert jobs.register() == 1
    assert jobs.fair_threads(0) == max(1, _cores() // 2)
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_dead_stages_do_not_count_and_are_removed(registry):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (registry / str(dead.pid)).touch()
    assert jobs.live_jobs() == 0
    assert not (registry / str(dead.pid)).exists()


def test_an_explicit_thread_count_wins(registry, monkeypatch):
    (registry / str(os.getppid())).touch()
    assert jobs.fair_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the parallel runner's setting
    assert jobs.fair_threads(0) == 1
