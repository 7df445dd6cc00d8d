"""``biasvar launch`` (``biasvar.cli.launch``): the checks before any work, the local
executor's CPU split, and the pool's retry logic on a fake executor. The runs through
DVC, locally and on SLURM, are pipeline tests (tests/test_pipeline.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from biasvar.cli import launch as L
from biasvar.core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_pool_order_puts_studies_first_then_wide_blocks():
    stages = ["collect", "train@0.0-4-0", "train@0.15-64-1", "tradeoff", "generate@0.0",
              "train@0.0-64-0", "spectral@relu-equal"]
    assert L.pool_order(stages) == ["spectral@relu-equal", "tradeoff", "train@0.0-64-0",
                                    "train@0.15-64-1", "train@0.0-4-0"]


def test_local_slots_split_the_cores_and_give_each_task_a_gpu(monkeypatch):
    monkeypatch.setattr(L.os, "cpu_count", lambda: 8)
    assert L.local_slots(2, 0, 0) == (2, 4, [])
    assert L.local_slots(3, 0, 0) == (3, 2, [])  # never more threads than cores
    assert L.local_slots(0, 0, 0) == (8, 1, [])  # default: one task per core
    assert L.local_slots(2, 3, 0) == (2, 3, [])  # --cpus-per-task wins
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert L.local_slots(0, 0, 1) == (2, 4, ["2", "5"])  # one task per GPU


def test_pool_stages_read_only_upstream_outputs():
    """Every stage of POOL_GROUPS can start once generate and split are done: a task
    restores only their outputs."""
    import yaml

    spec = yaml.safe_load((Path(L.__file__).resolve().parents[3] / "dvc.yaml").read_text())

    def entry(name):
        return spec["stages"][name].get("do", spec["stages"][name])

    upstream_outs = [o.split("${")[0] for g in L.UPSTREAM for o in entry(g)["outs"]]
    for g in L.POOL_GROUPS:
        for dep in entry(g)["deps"]:
            if dep.startswith(("stages/", "src/")):
                continue
            assert any(dep.startswith(prefix) for prefix in upstream_outs), (g, dep)


def test_detect_gpus_respects_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert L.detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert L.detect_gpus() == []


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@e"],
                ["git", "config", "user.name", "t"]):
        subprocess.run(cmd, cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "params.yaml").write_text("a: 1\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, check=True)
    return repo


def test_uncommitted_pipeline_files_are_refused_in_one_line(tmp_path):
    repo = _repo(tmp_path)
    commit = L.check_committed(repo)
    assert len(commit) == 40
    (repo / "params.yaml").write_text("a: 2\n")  # travels to the tasks: may differ
    assert L.check_committed(repo) == commit
    (repo / "dvc.yaml").write_text("stages: {x: {cmd: echo}}\n")
    with pytest.raises(InputError, match=r"^dvc.yaml: not committed; every task checks "
                       rf"out the commit {commit[:8]}, so commit dvc.yaml, stages, src"):
        L.check_committed(repo)


def test_a_remote_that_is_a_file_is_refused_before_any_work(tmp_path):
    repo = _repo(tmp_path)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (tmp_path / "afile").write_text("x")
    r = subprocess.run([sys.executable, "-m", "biasvar.cli.main", "launch", "--remote",
                        str(tmp_path / "afile")], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: --remote {tmp_path / 'afile'}: not a directory nor "
                               "a remote's name (remotes: none)"), r.stderr
    assert r.stderr.count("\n") == 1
    assert not (repo / ".dvc" / "tmp" / "launch").exists()  # nothing started


def test_without_a_remote_the_tasks_share_the_repository_cache(tmp_path):
    repo = _repo(tmp_path)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    assert L.cache_dir(repo) == str((repo / ".dvc" / "cache").resolve())
    subprocess.run([sys.executable, "-m", "dvc", "cache", "dir", "--local",
                    str(tmp_path / "elsewhere")], cwd=repo, check=True)
    assert L.cache_dir(repo) == str((tmp_path / "elsewhere").resolve())


class FakeJob:
    def __init__(self, task, fail: bool):
        self.task, self.fail, self.cancelled = task, fail, False

    def done(self):
        return True

    def result(self):
        if self.fail:
            raise RuntimeError(f"{self.task.stage}: dvc repro exited -9")
        return L.StageRun(self.task.stage, 1.0, 100.0, self.task.index)

    def cancel(self, check=True):
        self.cancelled = True


class FakeExecutor:
    """Fails each stage's first ``fails[stage]`` attempts."""

    def __init__(self, fails: dict[str, int]):
        self.fails, self.calls = dict(fails), []

    def _job(self, task):
        self.calls.append(task.stage)
        n = self.fails.get(task.stage, 0)
        self.fails[task.stage] = n - 1
        return FakeJob(task, n > 0)

    def submit(self, fn, task):
        return self._job(task)

    def map_array(self, fn, tasks):
        return [self._job(t) for t in tasks]


def _tasks(tmp_path, *stages):
    return [L.Task(stage=s, repo=str(tmp_path), commit="c", remote_url="r",
                   workdir=str(tmp_path / s), log=str(tmp_path / f"{s}.log"), threads=1)
            for s in stages]


@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_a_failed_task_is_retried_then_named_with_its_log(tmp_path, monkeypatch, executor):
    fake = FakeExecutor({"train@0.0-8-1": 1})
    monkeypatch.setattr(L, "_executor", lambda *a: fake)
    lines = []
    opts = L.Options(executor=executor, retries=1)
    L.run_pool(_tasks(tmp_path, "train@0.0-8-0", "train@0.0-8-1"), opts, tmp_path, 2,
               lines.append, poll_s=0)
    assert fake.calls.count("train@0.0-8-1") == 2 and fake.calls.count("train@0.0-8-0") == 1
    assert any("train@0.0-8-1 failed (train@0.0-8-1: dvc repro exited -9); retrying" in x
               for x in lines)
    assert lines[-1] == "launch: 2/2 done, 0 running, 0 waiting"
    fake = FakeExecutor({"train@0.0-8-1": 5})
    monkeypatch.setattr(L, "_executor", lambda *a: fake)
    with pytest.raises(InputError, match=r"^task train@0.0-8-1 failed 2 times \(.*exited -9\); "
                       rf"its log: {tmp_path / 'train@0.0-8-1.log'}$"):
        L.run_pool(_tasks(tmp_path, "train@0.0-8-1"), opts, tmp_path, 2, lines.append,
                   poll_s=0)


def test_the_local_executor_never_runs_more_than_jobs_at_once(tmp_path, monkeypatch):
    running, peak = set(), [0]

    class Slow(FakeJob):
        def __init__(self, task):
            super().__init__(task, False)
            running.add(task.stage)
            peak[0] = max(peak[0], len(running))
            self.polls = 0

        def done(self):
            self.polls += 1
            if self.polls > 2:
                running.discard(self.task.stage)
                return True
            return False

    class Ex(FakeExecutor):
        def submit(self, fn, task):
            return Slow(task)

    monkeypatch.setattr(L, "_executor", lambda *a: Ex({}))
    L.run_pool(_tasks(tmp_path, *[f"train@0.0-{w}-0" for w in range(7)]),
               L.Options(executor="local"), tmp_path, 3, lambda _: None, poll_s=0)
    assert peak[0] == 3


def test_the_committed_benchmark_page_is_its_record():
    """bench/results/launch.md is the rendering of launch.json (the docs include it), and
    the record says both runs produced the same logits."""
    import json

    from conftest import load_bench

    bench = load_bench("bench_launch")
    rec = json.loads((ROOT / "bench" / "results" / "launch.json").read_text())
    assert (ROOT / "bench" / "results" / "launch.md").read_text() == bench.render(rec)
    assert rec["identical"] is True and rec["jobs"] == 2
    assert f"**{rec['launch_s'] / rec['parallel_s']:.2f}**" in bench.render(rec)


def test_provenance_may_go_to_a_new_folder_in_or_out_of_the_project(tmp_path):
    from biasvar.tools.provenance import check_destination

    proj = tmp_path / "proj"
    (proj / "reports" / "default").mkdir(parents=True)
    for out in (proj / "reports" / "provenance" / "paper", tmp_path / "elsewhere" / "run"):
        check_destination(out, proj, report="default")
    with pytest.raises(ValueError, match="reports/default/"):
        check_destination(proj / "reports" / "default" / "prov", proj, report="default")


def test_provenance_rows_say_which_task_ran_each_stage(tmp_path, monkeypatch):
    """RUN.md's table: one row per measured stage with its task (0: launch itself)."""
    from biasvar.tools import provenance

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "params.yaml").write_text("a: 1\n")
    (proj / "dvc.lock").write_text("schema: '2.0'\n")
    monkeypatch.setattr(provenance, "machine", lambda: {
        "cpu": "c", "cores": 2, "memory_gib": 1.0, "os": "o", "python": "3", "torch": "t",
        "gpu": None})
    rows = [L.StageRun("generate@0.0", 2.0, 150.0, 0), L.StageRun("train@0.0-8-0", 9.5,
                                                                   700.0, 3)]
    out = provenance.write_provenance(tmp_path / "prov", proj, "biasvar launch -j 2", 60.0,
                                      2, 1, [], rows)
    text = (out / "RUN.md").read_text()
    assert "| train@0.0-8-0 | 9.5 | 0.68 | 3 |" in text and "2 parallel task(s)" in text
    info = json.loads((out / "run.json").read_text())
    assert [r["job"] for r in info["stages"]] == [0, 3]
