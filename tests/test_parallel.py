"""The parallel runner's planning and the named configurations, without running DVC."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from biasvar.core.errors import ParamError
from biasvar.tools import overrides, parallel

ROOT = Path(__file__).resolve().parents[1]


def test_pool_order_runs_studies_then_widest_blocks_first():
    stages = ["generate@0.0", "split@0", "train@0.0-4-0", "train@0.15-128-0", "collect",
              "train@0.0-128-1", "spectral@relu-equal", "tradeoff", "plot"]
    assert parallel.pool_order(stages) == [
        "spectral@relu-equal", "tradeoff", "train@0.0-128-1", "train@0.15-128-0",
        "train@0.0-4-0"]


def test_slots_split_threads_and_give_each_job_one_gpu():
    slots = parallel.make_slots(3, threads=2, gpus=["0", "1"])
    assert [s.env["OMP_NUM_THREADS"] for s in slots] == ["2", "2", "2"]
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1", "0"]
    assert "CUDA_VISIBLE_DEVICES" not in parallel.make_slots(2, 1, [])[0].env
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        parallel.make_slots(0, 1, [])


def test_detect_gpus_respects_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert parallel.detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert parallel.detect_gpus() == []


def test_clean_output_keeps_the_last_state_of_progress_bars():
    text = "Running stage 'x':\n10%|#\r50%|###\r100%|#####\n\ntrain: done\n"
    assert parallel.clean_output(text) == "Running stage 'x':\n100%|#####\ntrain: done"


def test_pool_stages_read_only_upstream_outputs():
    """Every stage of POOL_GROUPS can start once generate and split are done."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

    def entry(name):
        return spec[name].get("do", spec[name])

    upstream_outs = [o.split("${")[0] for g in parallel.UPSTREAM for o in entry(g)["outs"]]
    for g in parallel.POOL_GROUPS:
        for dep in entry(g)["deps"]:
            if dep.startswith(("stages/", "src/")):
                continue
            assert any(dep.startswith(prefix) for prefix in upstream_outs), (g, dep)


# ---------------------------------------------------------------- named configurations
def test_flatten_and_merge():
    cfg = {"train": {"lr": 0.02}, "spectral": {"base": {"steps": 5}}, "ensemble": {"widths": [4]}}
    assert overrides.flatten(cfg) == [("train.lr", 0.02), ("spectral.base.steps", 5),
                                      ("ensemble.widths", [4])]
    params = {"train": {"lr": 0.01, "steps": 3}, "spectral": {"base": {"steps": 1, "lr": 1}},
              "ensemble": {"widths": [8, 16]}}
    merged = overrides.merge(params, cfg)
    assert merged == {"train": {"lr": 0.02, "steps": 3},
                      "spectral": {"base": {"steps": 5, "lr": 1}}, "ensemble": {"widths": [4]}}
    assert params["train"]["lr"] == 0.01  # not modified in place
    with pytest.raises(ParamError, match="train.lrr = 0.1 is invalid: a key that params.yaml"):
        overrides.merge(params, {"train": {"lrr": 0.1}})
    with pytest.raises(ParamError, match="nope = None is invalid"):
        overrides.merge(params, {"nope": {"x": 1}})


def test_hydra_values():
    hv = overrides.hydra_value
    assert [hv(None), hv(True), hv(3), hv(0.15), hv("adam"), hv("1e3"), hv("a b")] == [
        "null", "true", "3", "0.15", "adam", "'1e3'", "'a b'"]
    assert hv([0.0, 0.15]) == "[0.0,0.15]"


def test_a_configs_mapping_is_replaced_whole():
    """A study's configs name its stages: a config file sets the whole mapping (new names
    included), while other mappings still merge key by key."""
    params = {"pc_bias": {"seed": 0, "base": {"lr": 1, "depth": 3},
                          "configs": {"linear": {}, "relu": {"activation": "relu"}}}}
    cfg = {"pc_bias": {"base": {"lr": 2}, "configs": {"tanh": {"activation": "tanh"}}}}
    assert overrides.flatten(cfg) == [("pc_bias.base.lr", 2),
                                      ("pc_bias.configs", {"tanh": {"activation": "tanh"}})]
    assert overrides.merge(params, cfg)["pc_bias"] == {
        "seed": 0, "base": {"lr": 2, "depth": 3}, "configs": {"tanh": {"activation": "tanh"}}}


@pytest.mark.parametrize("name", ["paper", "biases"])
def test_printed_exp_run_sets_the_same_params_as_the_config(tmp_path, name):
    """`dvc exp run -S` with set_params() gives the params that merge() computes."""
    from dvc.utils.hydra import apply_overrides

    cfg = overrides.read_config(ROOT / "configs" / f"{name}.yaml")
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    apply_overrides(target, overrides.set_params(cfg))
    expected = overrides.merge(yaml.safe_load((ROOT / "params.yaml").read_text()), cfg)
    assert yaml.safe_load(target.read_text()) == expected


def test_apply_file_keeps_comments_and_validates_first(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    before = target.read_text()
    overrides.apply_file(target, {"ensemble": {"widths": [4, 12]}, "train": {"lr": 0.003}})
    text = target.read_text()
    assert "widths: [4, 12]" in text and "lr: 0.003" in text
    assert text.count("#") == before.count("#")  # every comment kept
    params = yaml.safe_load(text)
    assert params["ensemble"]["widths"] == [4, 12] and params["train"]["lr"] == 0.003
    # an invalid value fails with one line and writes nothing
    with pytest.raises(ParamError, match=r"ensemble.widths\[1\] = 0 is invalid"):
        overrides.apply_file(target, {"ensemble": {"widths": [4, 0]}})
    assert target.read_text() == text


def test_paper_config_is_valid_and_covers_the_interpolation_threshold():
    from biasvar.ensemble.models import n_parameters
    from biasvar.report.document import threshold_width

    cfg = overrides.read_config(ROOT / "configs" / "paper.yaml")
    merged = overrides.check(ROOT / "params.yaml", cfg)
    n_train = int(merged["data"]["num_samples"] * merged["data"]["train_split"])
    assert n_train == 8000 and merged["split"]["method"] == "half"
    # a half-sample holds n/2 distinct examples, each once
    n_fit = n_train // 2
    m = merged["model"]
    widths = merged["ensemble"]["widths"]
    thr = threshold_width(m["arch"], m["depth"], m["residual"], n_fit, widths)
    assert thr == pytest.approx(42.3, abs=0.1)  # log-interpolated between 42 and 43
    assert n_parameters(m["arch"], 42, m["depth"], m["residual"]) < n_fit \
        < n_parameters(m["arch"], 43, m["depth"], m["residual"])
    # a grid of step <= 4 from 3 points below to 2 points above the threshold
    below = [w for w in widths if w < thr][-3:]
    above = [w for w in widths if w > thr][:2]
    near = below + above
    assert len(near) == 5 and max(np.diff(near)) <= 4
    # >= 64 members per config, and wide members well past the threshold
    assert len(merged["ensemble"]["blocks"]) * merged["ensemble"]["block_size"] >= 64
    assert max(widths) >= 3 * thr


def test_overrides_cli_prints_the_exp_run_line(capsys):
    assert overrides.main([str(ROOT / "configs" / "paper.yaml"), str(ROOT / "params.yaml")]) == 0
    line = capsys.readouterr().out
    assert line.startswith("dvc exp run -n paper -S ") and "train.steps=20000" in line


def test_topological_puts_every_stage_after_its_inputs():
    from biasvar.tools.parallel import topological

    dot = """strict digraph {
"plot";
"collect";
"train@a";
"generate";
"generate" -> "train@a";
"train@a" -> "collect";
"collect" -> "plot";
"generate" -> "plot";
}"""
    assert topological(dot) == ["generate", "train@a", "collect", "plot"]
    with pytest.raises(ValueError, match="cycle"):
        topological('"a" -> "b";\n"b" -> "a";')


# ---------------------------------------------------------------- what the checks accept
def test_set_params_add_to_the_config_file_overrides():
    """-S changes a value the config file sets, merges a mapping into its section, and
    leaves the config's other keys as they are."""
    cfg = {"train": {"lr": 0.1, "steps": 5}, "pc_bias": {"base": {"lr": 1, "depth": 3}}}
    out = overrides.add_set_params(cfg, ["train.lr=0.2", "pc_bias.base={lr: 2}",
                                         "ensemble.widths=[4, 8]", "plot.report=paper"])
    assert out == {"train": {"lr": 0.2, "steps": 5}, "pc_bias": {"base": {"lr": 2, "depth": 3}},
                   "ensemble": {"widths": [4, 8]}, "plot": {"report": "paper"}}
    assert cfg["train"]["lr"] == 0.1  # not modified in place


def test_targets_may_be_stages_groups_or_dvc_yaml():
    names = ["generate@0.0", "split@0", "train@0.0-4-0", "collect", "plot"]
    parallel.check_targets(["plot", "train", "train@0.0-4-0", "dvc.yaml", "dvc.yaml:collect"],
                           names)
    with pytest.raises(overrides.ArgumentValueError, match="target 'train@0.0-8-0'"):
        parallel.check_targets(["train@0.0-8-0"], names)


def test_provenance_may_go_to_a_new_folder_in_or_out_of_the_project(tmp_path):
    from biasvar.tools.provenance import check_destination

    proj = tmp_path / "proj"
    (proj / "reports" / "default").mkdir(parents=True)
    for out in (proj / "reports" / "provenance" / "paper", tmp_path / "elsewhere" / "run"):
        check_destination(out, proj, report="default")
    with pytest.raises(ValueError, match="reports/default/"):
        check_destination(proj / "reports" / "default" / "prov", proj, report="default")


def test_dry_run_of_the_paper_configuration_passes_every_check(monkeypatch, capsys):
    """`make paper` with its targets, checked and planned in this checkout: writes nothing."""
    monkeypatch.chdir(ROOT)
    before = (ROOT / "params.yaml").read_text()
    assert parallel.main(["--dry-run", "-j", "2", "--gpus", "none", "--config",
                          "configs/paper.yaml", "--exp", "paper", "--provenance",
                          "reports/provenance/paper", "plot", "train"]) == 0
    out = capsys.readouterr().out
    assert "would set train.steps = 20000" in out and "job 1: OMP_NUM_THREADS" in out
    assert (ROOT / "params.yaml").read_text() == before
