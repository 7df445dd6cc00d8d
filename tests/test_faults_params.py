"""Strict params: every case ends in one line naming the file or key.

One loader (``biasvar.core.config.read_yaml``) serves ``python -m biasvar.tools.validate``
and every stage, so a file that one of them refuses the other refuses too: duplicate
keys at any depth, undecodable bytes, directories and binary files, unknown sections and
keys (with a suggestion). Every numeric param a user could mistype has an upper bound
stated in the message; an "off" value (``alignment_size.bootstrap: 0``) removes the
number it cannot give instead of changing a verdict; configurations that cannot produce
a report (one draw, no out-of-bag examples) fail before training. No test trains
anything.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from biasvar.core.config import load_declared, read_yaml
from biasvar.core.errors import BiasvarError, InputError, ParamError
from biasvar.tools.validate import validate_all

ROOT = Path(__file__).resolve().parents[1]
PARAMS_TEXT = (ROOT / "params.yaml").read_text()
LR_LINE = "  lr: 0.01              # Adam lr of the MNIST-1D reference training\n"
ENV = {"PYTHONPATH": str(ROOT / "src"), "PATH": ""}


def _line_of(text: str, line: str) -> int:
    """1-based number of the first line of ``text`` equal to ``line`` (without newline)."""
    return text.splitlines().index(line.rstrip("\n")) + 1


def _write(tmp_path: Path, content: str | bytes, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def raw():
    return read_yaml(ROOT / "params.yaml")


# ---------------------------------------------------------------- the loader
def test_duplicate_key_names_the_key_path_and_both_lines(tmp_path):
    """`train.lr` twice: validate said ok (YAML keeps the last) while `dvc repro` refused."""
    text = PARAMS_TEXT.replace(LR_LINE, "  lr: 0.02\n" + LR_LINE, 1)
    first = _line_of(text, "  lr: 0.02")
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        read_yaml(path)
    msg = _one_line(e)
    assert str(path) in msg and "train.lr" in msg
    assert f"line {first}" in msg and f"line {first + 1}" in msg


def test_duplicate_section_names_both_lines(tmp_path):
    text = PARAMS_TEXT + "\ntrain:\n  lr: 0.5\n"
    last = len(text.splitlines()) - 1
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        read_yaml(path)
    msg = _one_line(e)
    assert "train" in msg and f"line {_line_of(text, 'train:')}" in msg and f"line {last}" in msg


def test_key_set_then_used_as_a_section_is_one_line(tmp_path):
    text = PARAMS_TEXT.replace(LR_LINE, LR_LINE + "  lr:\n    value: 0.02\n", 1)
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        read_yaml(path)
    msg = _one_line(e)
    assert "train.lr" in msg and "section" in msg and str(path) in msg


def test_a_section_that_is_a_value_is_named_by_the_stage_loader(tmp_path):
    """`train: 5`: a stage reading `train.lr` said "train.lr = None: missing"."""
    path = _write(tmp_path, "train: 5\n")
    with pytest.raises(ParamError) as e:
        load_declared(["train.lr"], path).get("train.lr")
    msg = _one_line(e)
    assert "train = 5" in msg and "mapping" in msg


def test_undecodable_byte_names_the_byte_and_its_line(tmp_path):
    """An editor saving "µ" as Latin-1 (0xB5) in a comment: a UnicodeDecodeError traceback."""
    data = PARAMS_TEXT.encode().replace(b"# Adam lr of", b"# Adam lr (\xb5 = 0.01) of", 1)
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as e:
        read_yaml(path)
    msg = _one_line(e)
    assert str(path) in msg and "0xb5" in msg and f"line {_line_of(PARAMS_TEXT, LR_LINE)}" in msg
    assert "UTF-8" in msg


def test_binary_file_is_refused(tmp_path):
    path = _write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe")
    with pytest.raises(InputError) as e:
        read_yaml(path)
    msg = _one_line(e)
    assert str(path) in msg and "binary" in msg


def test_directory_is_refused(tmp_path):
    with pytest.raises(InputError) as e:
        read_yaml(tmp_path)
    msg = _one_line(e)
    assert str(tmp_path) in msg and "directory" in msg


def test_unknown_section_suggests_the_nearest_in_the_stage_loader(tmp_path):
    """`trian:` was ignored by the stages (and validate only said `train` was missing)."""
    path = _write(tmp_path, PARAMS_TEXT.replace("\ntrain:\n", "\ntrian:\n", 1))
    with pytest.raises(InputError) as e:
        load_declared(["data.num_samples"], path)
    msg = _one_line(e)
    assert str(path) in msg and "'trian'" in msg and "did you mean 'train'" in msg


def test_unknown_key_suggests_the_nearest(raw):
    bad = copy.deepcopy(raw)
    bad["model"]["depht"] = bad["model"].pop("depth")
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    msg = _one_line(e)
    assert "model.depht" in msg and "unknown key" in msg and "did you mean 'depth'" in msg


def test_unknown_section_in_a_merged_dict_is_refused(raw):
    """validate_all is also called on composed params (biasvar launch -S), not only on files."""
    bad = {**copy.deepcopy(raw), "runtim": {"threads": 1}}
    with pytest.raises(BiasvarError) as e:
        validate_all(bad)
    assert "did you mean 'runtime'" in _one_line(e)


def test_section_names_match_the_validated_sections():
    """The loader's list of sections (core) is the validator's list (tools)."""
    from biasvar.core.config import SECTION_NAMES
    from biasvar.tools.validate import SECTIONS

    assert tuple(m.SECTION for m in SECTIONS) == SECTION_NAMES


# ---------------------------------------------------------------- the CLIs
def _validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "biasvar.tools.validate", *args],
                          capture_output=True, text=True, env=ENV)


def _assert_one_error_line(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_validate_cli_on_a_directory_is_one_line(tmp_path):
    _assert_one_error_line(_validate(str(tmp_path)), str(tmp_path), "directory")


def test_validate_cli_on_a_latin1_byte_is_one_line(tmp_path):
    path = _write(tmp_path, PARAMS_TEXT.encode().replace(b"# Adam lr", b"# Adam \xb5", 1))
    _assert_one_error_line(_validate(str(path)), str(path), "0xb5")


def test_validate_cli_with_two_paths_is_one_line(tmp_path):
    """A second path was ignored (and the first validated): a typo went unnoticed."""
    other = _write(tmp_path, PARAMS_TEXT)
    _assert_one_error_line(_validate(str(ROOT / "params.yaml"), str(other)), "one params file")


def test_stage_uses_the_strict_loader(tmp_path):
    """The split stage (the first one `dvc repro` runs) refuses a duplicate key as validate
    does; before, it kept the last value and wrote its split."""
    _write(tmp_path, PARAMS_TEXT.replace("  block_size: 32", "  block_size: 32\n  block_size: 16",
                                         1))
    out = tmp_path / "block-0.npz"
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "split.py"), "--block", "0",
                        "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                       env=ENV)
    _assert_one_error_line(r, "ensemble.block_size", "params.yaml")
    assert not out.exists()


# ---------------------------------------------------------------- bounds
BOUNDS = [
    # (dotted key, a mistyped value, the upper bound the message states)
    ("ensemble.widths", [8, 100000], "<= 4096"),
    ("ensemble.block_size", 1_000_000, "<= 1024"),
    ("model.depth", 1000, "<= 100"),
    ("data.num_samples", 10**9, "<= 1000000"),
    ("data.seed", 2**32, "<= 4294967295"),
    ("train.steps", 10**9, "<= 1000000"),
    ("decompose.ece_bins", 10**6, "<= 1000"),
    ("regress.bootstrap", 10**7, "<= 100000"),
    ("alignment_size.bootstrap", 10**7, "<= 100000"),
    ("calibration_intervention.bootstrap", 10**7, "<= 100000"),
    ("calibration_intervention.ece_bins", 10**6, "<= 1000"),
    ("plot.dpi", 100000, "<= 600"),
    ("plot.max_points", 10**9, "<= 1000000"),
    ("runtime.threads", 10**6, "<= 1024"),
    ("tradeoff.n_datasets", 10**7, "<= 10000"),
    ("tradeoff.hidden_units", [1, 10**6], "<= 1000"),
    ("ridgeless.repeats", 10**7, "<= 100000"),
    ("ridgeless.n_test", 10**9, "<= 1000000"),
    ("spectral.n_points", 10**8, "<= 100000"),
    ("spectral.base.width", 100000, "<= 4096"),
    ("spectral.base.steps", 10**9, "<= 1000000"),
    ("pc_bias.base.members", 10**5, "<= 1024"),
    ("pc_bias.num_samples", 10**9, "<= 1000000"),
    ("spectral_cls.paths", 10**6, "<= 10000"),
    ("spectral_cls.points", 10**6, "<= 4096"),
    ("spectral_cls.base.width", 100000, "<= 4096"),
    ("erank_depth.depths", [1, 1000], "<= 100"),
    ("erank_depth.base.batch_size", 10**7, "<= 100000"),
    ("collapse.widths", [8, 100000], "<= 4096"),
    ("collapse.draws", 10**6, "<= 1024"),
    ("collapse.steps", 10**9, "<= 1000000"),
    ("train.checkpoints", 10**4, "<= 64"),
    ("dynamics.bootstrap", 10**7, "<= 100000"),
    ("shift.bootstrap", 10**7, "<= 100000"),
    ("shift.severities", [1, 9], "<= 5"),
]


@pytest.mark.parametrize(("key", "value", "bound"), BOUNDS,
                         ids=[f"{k}={v!r}" for k, v, _ in BOUNDS])
def test_a_mistyped_size_fails_with_its_bound(raw, key, value, bound):
    """Without a bound each would pass validation and end in an allocator traceback, a
    MemoryError (`plot.dpi: 100000`, late in the pipeline) or hours of work."""
    bad = copy.deepcopy(raw)
    *parents, last = key.split(".")
    node = bad
    for p in parents:
        node = node[p]
    node[last] = value
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    msg = _one_line(e)
    assert key in msg and bound in msg


def test_seeds_per_draw_has_a_bound(raw):
    bad = copy.deepcopy(raw)
    bad["ensemble"].update(blocks=[0, 1, 2, 3], block_size=1024, seeds_per_draw=2048)
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    assert "ensemble.seeds_per_draw = 2048" in _one_line(e) and "<= 1024" in str(e.value)


@pytest.mark.parametrize("name", ["..", ".", "provenance"])
def test_report_name_that_is_not_a_report_folder_is_refused(raw, name):
    """`plot.report: ..` named the repository root and `provenance` the run records: DVC
    deletes the report folder (a `cache: false` output) before plot runs."""
    bad = copy.deepcopy(raw)
    bad["plot"]["report"] = name
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    assert f"plot.report = {name!r}" in _one_line(e)


# ---------------------------------------------------------------- configurations without a report
def test_one_draw_fails_before_training(raw):
    """seeds_per_draw = block_size with one block: one draw; plot failed late on a missing
    `var_sampling` column and the committed report was lost."""
    bad = copy.deepcopy(raw)
    bad["ensemble"]["seeds_per_draw"] = 32
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    msg = _one_line(e)
    assert "ensemble.seeds_per_draw = 32" in msg and "2 draws" in msg


def test_full_split_fails_before_training(raw):
    """`split.method: full` leaves no out-of-bag example; calibration_intervention (a
    dependency of the report) refused it only after every member had trained."""
    bad = copy.deepcopy(raw)
    bad["split"]["method"] = "full"
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    msg = _one_line(e)
    assert "split.method = 'full'" in msg and "out-of-bag" in msg


def test_half_split_checks_the_batch_against_the_half_draw(raw):
    """A half-split draw holds n_train / 2 examples: batch 1500 of 2000 passed validation
    and failed in train, after the splits."""
    bad = copy.deepcopy(raw)
    bad["split"]["method"] = "half"
    bad["train"]["batch_size"] = 1500
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    assert "train.batch_size = 1500" in _one_line(e) and "1000" in str(e.value)


def test_split_stage_refuses_one_draw(tmp_path):
    """The first stage that reads the layout refuses it too (`dvc repro` without
    `make pipeline`), before writing a split."""
    _write(tmp_path, PARAMS_TEXT.replace("  seeds_per_draw: 4 ", "  seeds_per_draw: 32", 1))
    out = tmp_path / "block-0.npz"
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "split.py"), "--block", "0",
                        "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                       env=ENV)
    _assert_one_error_line(r, "ensemble.seeds_per_draw = 32", "2 draws")
    assert not out.exists()


def test_split_without_out_of_bag_examples_is_refused_exactly():
    """A bootstrap draw of one training example holds it: no out-of-bag example."""
    from biasvar.data.config import EnsembleParams, SplitParams

    ens = EnsembleParams(widths=(4,), blocks=(0,), block_size=4, seeds_per_draw=2)
    split = SplitParams(method="bootstrap", seed=0, parts=None)
    assert split.check_against(ens, 100) is None  # 100 examples: every draw leaves some out
    with pytest.raises(ParamError) as e:
        split.check_against(ens, 1)
    assert "out-of-bag" in _one_line(e)


# ---------------------------------------------------------------- an off value keeps verdicts
def test_alignment_size_without_bootstrap_gives_no_fit_verdict():
    """`alignment_size.bootstrap: 0` ("no intervals") made the K -> inf fit unweighted while
    it was still called weighted, and its verdict flipped to "1/K model fits: chi2 0.0"."""
    from test_ensemble_size import _ensemble

    from biasvar.analysis.ensemble_size import alignment_by_ensemble_size
    from biasvar.report.config import Style
    from biasvar.report.document import Figure, Report, add_alignment_size

    logits, labels, draws = _ensemble(8, 2, n=300, seed=1)
    res = alignment_by_ensemble_size(logits, labels, draws, n_boot=0)
    ex = res.extrapolation
    assert ex.chi2.isna().all()  # no lack-of-fit number without per-size standard errors
    assert ex.value_inf_se.isna().all() and ex.value_inf_ci_low.isna().all()
    assert not ex.method.str.contains("WLS").any()
    assert np.isfinite(ex.value_inf[ex.n_sizes >= 2]).all()  # the point estimate stays
    rep = Report("t")
    rep.figures.append(Figure("alignment", "a", "c", None))
    add_alignment_size(rep, res.table.assign(label_noise=0.0, width=32),
                       ex.assign(label_noise=0.0, width=32), Style(max_points=50))
    words = rep.figures[1].caption
    assert "fits" not in words and "χ²" not in words and "nan" not in words
    assert "alignment_size.bootstrap = 0" in words and "unweighted" in words
    assert "not checked" in words and "bootstrap intervals" not in words


def test_validate_names_the_file_it_was_given(tmp_path):
    """A params file under another name (``other.yaml``) is named in each message, not
    ``params.yaml``."""
    path = _write(tmp_path, PARAMS_TEXT.replace(LR_LINE, "  lr: -1\n"), name="other.yaml")
    r = _validate(str(path))
    _assert_one_error_line(r, f"{path}: train.lr = -1 is invalid")


# ---------------------------------------------------------------- a user's model factory
def _with_factory(raw, factory: str, widths=(4, 8)) -> dict:
    params = copy.deepcopy(raw)
    params["model"].update(arch="module", module=factory)
    params["ensemble"]["widths"] = list(widths)
    return params


@pytest.mark.parametrize(("factory", "says"), [
    ("no_such_package_xyz.models:net", "module 'no_such_package_xyz.models' cannot be imported"),
    ("generic_factories:not_a_module", "returning a torch.nn.Module, not dict"),
    ("generic_factories:ignores_shape", "takes inputs (batch, 40); at width 4 its forward "
                                        "failed (RuntimeError"),
    ("generic_factories:wrong_classes", "returning logits (batch, 10); at width 4 it returned "
                                        "(2, 3)"),
    ("generic_factories:breaks_at_width", "width 8 is not supported"),
])
def test_validate_builds_and_runs_the_factory_at_every_width(raw, factory, says):
    """``model.arch: module`` with a factory that cannot serve the data is one
    ``ParamError`` naming ``model.module`` from the params check that ``make pipeline``
    runs before ``dvc repro``: nothing is generated or trained."""
    with pytest.raises(ParamError) as e:
        validate_all(_with_factory(raw, factory))
    msg = _one_line(e)
    assert "model.module" in msg and factory in msg and says in msg, msg


def test_validate_cli_bad_factory_is_one_line(tmp_path, raw):
    import yaml

    path = tmp_path / "params.yaml"
    params = _with_factory(raw, "generic_factories:wrong_classes")
    params["import"] = {**params["import"], "path": str(ROOT / params["import"]["path"])}
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "biasvar.tools.validate", str(path)],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={**ENV, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tests'}"})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model.module" in lines[0]


@pytest.mark.parametrize("change, needle", [
    ({"source": "imported"}, "source = 'imported' is invalid: one of train, import"),
    ({"source": {"kind": "import"}}, "source = {'kind': 'import'} is invalid: one of train"),
    ({"import": {"path": "nowhere.npz", "label_noise": 0.0, "width": 1}},
     "import.path = 'nowhere.npz' is invalid: an existing .npz, .parquet or directory"),
    ({"import": {"path": "examples/ensemble.npz", "label_noise": 1.5, "width": 1}},
     "import.label_noise = 1.5 is invalid"),
    ({"import": {"path": "examples/ensemble.npz", "label_noise": 0.0}},
     "import.width = None is invalid: missing"),
])
def test_validate_cli_bad_source_or_import_is_one_line(tmp_path, raw, change, needle):
    """The source switch and the import section: each bad value one line naming the key
    (the path relative to the params file's folder, as the import stage reads it)."""
    import yaml

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**raw, **change}, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "biasvar.tools.validate", str(path)],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={**ENV, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and needle in lines[0], lines


def test_validate_accepts_a_factory_that_fits_the_data(raw):
    models = validate_all(_with_factory(raw, "biasvar.ensemble.examples:mlp", (4, 64)))
    assert models["model"].module == "biasvar.ensemble.examples:mlp"


# ---------------------------------------------------------------- shifted test sets
@pytest.mark.parametrize(("name", "kinds", "words"), [
    ("mnist1d", ["blur"], "noise, scale, shear for data.name mnist1d"),
    ("digits", ["noise"], "gaussian_noise, blur, contrast for data.name digits"),
])
def test_a_shift_kind_the_dataset_has_no_generator_for_fails_before_training(
        raw, name, kinds, words):
    """An image corruption asked of MNIST-1D (or MNIST-1D's noise of images) would fail in
    the shift stage, after every member had trained: validation refuses it first."""
    bad = copy.deepcopy(raw)
    bad["data"]["name"] = name
    if name == "digits":
        bad["data"]["num_samples"] = None
    bad["shift"]["kinds"] = kinds
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    msg = _one_line(e)
    assert f"shift.kinds = {kinds!r}" in msg and words in msg


@pytest.mark.parametrize(("key", "value", "words"), [
    ("shift.kinds", ["noise", "noise"], "distinct"),
    ("shift.kinds", ["fog"], "noise, scale, shear, gaussian_noise, blur, contrast"),
    ("shift.severities", [], "non-empty"),
    ("shift.severities", [0, 1], ">= 1"),
    ("train.checkpoints", -1, ">= 0"),
])
def test_a_bad_shift_or_checkpoint_value_is_one_line(raw, key, value, words):
    bad = copy.deepcopy(raw)
    section, k = key.split(".")
    bad[section][k] = value
    with pytest.raises(ParamError) as e:
        validate_all(bad)
    msg = _one_line(e)
    assert key in msg and words in msg
