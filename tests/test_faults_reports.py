"""Fault cases of the report: the CSV tables the plot stage reads, the names
params give to files and folders, and the headline writer. (To be merged into
tests/test_faults.py.) Each asserts one ``BiasvarError`` line naming the file, the column
and the line, or the key and the value, and, where something is written, that nothing
else is touched. Inputs are tiny synthetic files: the module runs in seconds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from biasvar.core.errors import BiasvarError, InputError, ParamError
from biasvar.core.schema import (
    ALIGNMENT_SIZE_CSV,
    COLLAPSE_CSV,
    COLLAPSE_EXAMPLES_CSV,
    COLLAPSE_MODEL_CSV,
    CURVES_CSV,
    ERANK_CSV,
    ERANK_DEPTH_CSV,
    MEMBERS_CSV,
    PC_BIAS_CSV,
    RIDGELESS_CSV,
    SPECTRAL_CLS_CSV,
    SPECTRAL_CSV,
    TRADEOFF_CSV,
    read_csv,
)

ROOT = Path(__file__).resolve().parents[1]


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert isinstance(e.value, BiasvarError) and "\n" not in msg, msg
    return msg


# ------------------------------------------------------------------ CSV tables of the plot stage
CURVES = ("label_noise,width,member,step,train_loss,train_accuracy,test_loss,test_accuracy\n"
          "0.0,4,0,10,2.1,0.2,2.2,0.25\n"
          "0.0,4,0,20,1.9,0.3,2.0,0.3\n")


def _write(tmp_path: Path, text: str | bytes, name: str = "curves.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_a_good_csv_is_read_whole(tmp_path):
    t = read_csv(_write(tmp_path, CURVES), CURVES_CSV)
    assert list(t.columns) == CURVES.splitlines()[0].split(",") and len(t) == 2


@pytest.mark.parametrize("text, message", [
    # plot ended in pandas' EmptyDataError: "No columns to parse from file"
    ("", "empty (not even a header line: a half-written file?)"),
    (CURVES.splitlines()[0] + "\n", "no rows (only a header line)"),
    # a writer killed (or a disk filled) mid-line: the last row has too few fields
    (CURVES[:-12], "the last line is cut short (a half-written file?)"),
    (CURVES.replace("test_accuracy", "test_acc"),
     "column 'test_accuracy' missing (a training curves table needs label_noise, width, "
     "member, step, train_loss, test_accuracy)"),
    (CURVES.replace(",1.9,", ",1.9x,"),
     "column 'train_loss' holds '1.9x' on line 3, not a number"),
    (CURVES.replace("0.0,4,0,20,", "0.0,,0,20,"),
     "column 'width' has 1 empty or non-finite values (NaN or inf), the first on line 3"),
    (CURVES.replace(",1.9,", ",inf,"),
     "column 'train_loss' has 1 empty or non-finite values (NaN or inf), the first on line 3"),
    (CURVES + "0.0,4,0,30,1.8,0.3,2.0,0.3,7,8\n",
     "not a valid CSV table (Error tokenizing data. C error: Expected 8 fields in line 4, "
     "saw 10)"),
    (b"label_noise,width\n\xb5,4\n", "not a CSV table (not UTF-8 text: byte 0xb5 on line 2)"),
])
def test_a_bad_csv_is_one_line_naming_the_file(tmp_path, text, message):
    """Before: ``pd.read_csv`` in the plot stage: EmptyDataError, KeyError or a figure of
    NaN, as a traceback, after DVC had deleted the committed report."""
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as e:
        read_csv(path, CURVES_CSV)
    assert _one_line(e) == f"{path}: {message}"


def test_a_missing_csv_or_a_folder_is_one_line(tmp_path):
    with pytest.raises(InputError) as e:
        read_csv(tmp_path / "members.csv", MEMBERS_CSV)
    assert _one_line(e) == f"{tmp_path / 'members.csv'}: not found"
    with pytest.raises(InputError) as e:
        read_csv(tmp_path, MEMBERS_CSV)
    assert _one_line(e).startswith(f"{tmp_path}: not readable (")


def test_a_word_column_may_hold_words_and_a_value_column_nan(tmp_path):
    """``text`` columns are not numbers; a column outside ``finite`` may hold NaN (the
    out-of-bag error of a member whose draw holds every example)."""
    path = _write(tmp_path, "label_noise,width,member,split_method,n_in_bag,in_bag_error,"
                  "oob_error\n0.0,4,0,full,200,0.1,\n", "members.csv")
    t = read_csv(path, MEMBERS_CSV)
    assert t.split_method.tolist() == ["full"] and t.oob_error.isna().all()


def test_the_declared_columns_are_written_by_the_study_writers():
    """The reader's formats agree with the writers' column constants (the pipeline test
    checks every CSV on disk as well)."""
    from biasvar.ensemble.blocks import CURVE_COLUMNS
    from biasvar.studies.collapse import (
        COLLAPSE_EXAMPLE_COLUMNS,
        COLLAPSE_SUMMARY_COLUMNS,
        model_curve,
    )
    from biasvar.studies.effective_rank import ERANK_SUMMARY_COLUMNS
    from biasvar.studies.erank_depth import ERANK_DEPTH_COLUMNS
    from biasvar.studies.pc_bias import PC_BIAS_COLUMNS
    from biasvar.studies.ridgeless import RIDGELESS_COLUMNS
    from biasvar.studies.spectral import SPECTRAL_COLUMNS
    from biasvar.studies.spectral_cls import SPECTRAL_CLS_COLUMNS
    from biasvar.studies.tradeoff import TRADEOFF_COLUMNS

    written = {CURVES_CSV: ("label_noise", "width", *CURVE_COLUMNS),
               TRADEOFF_CSV: TRADEOFF_COLUMNS, RIDGELESS_CSV: RIDGELESS_COLUMNS,
               SPECTRAL_CSV: SPECTRAL_COLUMNS, ERANK_CSV: ERANK_SUMMARY_COLUMNS,
               COLLAPSE_CSV: COLLAPSE_SUMMARY_COLUMNS,
               COLLAPSE_EXAMPLES_CSV: COLLAPSE_EXAMPLE_COLUMNS,
               COLLAPSE_MODEL_CSV: tuple(model_curve(1.0).columns),
               PC_BIAS_CSV: PC_BIAS_COLUMNS, SPECTRAL_CLS_CSV: SPECTRAL_CLS_COLUMNS,
               ERANK_DEPTH_CSV: ERANK_DEPTH_COLUMNS}
    for fmt, columns in written.items():
        assert set(fmt.columns) <= set(columns), (fmt.name, set(fmt.columns) - set(columns))
        for col in (*fmt.text, *fmt.finite):
            assert col in fmt.columns, (fmt.name, col)
    assert set(ALIGNMENT_SIZE_CSV.finite) <= set(ALIGNMENT_SIZE_CSV.columns)


# ------------------------------------------------------------------ names that become paths
@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "-x", "x\n", "x" * 65, "",
                                  "a.b"])
@pytest.mark.parametrize("section", ["pc_bias", "spectral_cls", "erank_depth"])
def test_a_study_config_key_that_is_not_a_plain_name_is_refused(section, name):
    """A config key becomes ``data/studies/<section>/<key>.csv``: ``x\\n`` (a quoted YAML
    key) and a 65-character key passed (``re.match`` with ``$`` accepts a final newline;
    no length bound)."""
    import yaml

    from biasvar.studies.erank_depth import ErankDepthParams
    from biasvar.studies.pc_bias import PCBiasParams
    from biasvar.studies.spectral_cls import SpectralClsParams

    model = {"pc_bias": PCBiasParams, "spectral_cls": SpectralClsParams,
             "erank_depth": ErankDepthParams}[section]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())[section]
    with pytest.raises(ParamError) as e:
        model.from_dict({**raw, "configs": {name: {}}})
    # the value is shown as Python writes it: a newline in the name stays on one line
    assert _one_line(e).startswith(f"params.yaml: {section}.configs = {name!r} is invalid: "
                                   "names of 1 to 64 letters, digits, '-' and '_'")


@pytest.mark.parametrize("name", ["../x", "a/b", "x\n", "x" * 65])
def test_a_spectral_config_key_that_is_not_a_plain_name_is_refused(name):
    from biasvar.studies.spectral import SpectralRun

    with pytest.raises(ParamError) as e:
        SpectralRun.from_dicts(name, {}, {}, 1)
    assert _one_line(e).startswith(f"params.yaml: spectral.configs = {name!r} is invalid: "
                                   "names of 1 to 64 letters")


def test_a_config_key_of_64_characters_is_allowed():
    from biasvar.core.schema import check_config_name

    assert check_config_name("pc_bias", "a" * 64) == "a" * 64
    assert check_config_name("pc_bias", "mlp-relu_2") == "mlp-relu_2"


def test_validate_names_the_bad_config_key():
    """``python -m biasvar.tools.validate``: one line for the key, before any stage runs."""
    import copy

    import yaml

    from biasvar.tools.validate import problems

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad = copy.deepcopy(raw)
    bad["pc_bias"]["configs"]["x" * 65] = {}
    msgs = [str(e) for e in problems(bad)]
    assert msgs == [f"params.yaml: pc_bias.configs = {'x' * 65!r} is invalid: names of 1 to "
                    "64 letters, digits, '-' and '_', starting with a letter or digit (they "
                    "name stages and files)"], msgs


def test_a_report_name_over_64_characters_is_refused():
    from biasvar.report.config import Style

    assert Style.from_dict({"report": "r" * 64}).report == "r" * 64
    with pytest.raises(ParamError) as e:
        Style.from_dict({"report": "r" * 65})
    assert _one_line(e).startswith(f"params.yaml: plot.report = {'r' * 65!r} is invalid: "
                                   "a folder name of 1 to 64 letters")


# ------------------------------------------------------------------ the headline's width curves
FIT = {"slope": 0.5, "r2": 0.9, "member_test_error": 0.5, "test_error": 0.4, "bias2": 0.3,
       "var": 0.1}


def test_bad_width_curves_touch_nothing(tmp_path):
    """A NaN in the curves: the committed folder stays as it was and nothing is left
    beside it (no ``width_curves.tmp`` folder)."""
    from biasvar.report.headline import width_curves, write_width_curves

    out = tmp_path / "metrics" / "width_curves"
    write_width_curves(width_curves({"noise-0.0": {"width-8": FIT}}), out)
    before = (out / "n0.csv").read_bytes()
    with pytest.raises(ValueError, match="n0"):
        write_width_curves(width_curves({"noise-0.0": {"width-8": {**FIT, "var": float("nan")}}}),
                           out)
    assert (out / "n0.csv").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["width_curves"]


def test_width_curves_left_by_a_killed_writer_are_swept(tmp_path):
    """The curves folder is replaced through ``atomic_dir``: the temporary of a writer that
    was killed is removed by the next one, and a level no longer listed disappears."""
    from biasvar.report.headline import width_curves, write_width_curves

    out = tmp_path / "width_curves"
    write_width_curves(width_curves({"noise-0.0": {"width-8": FIT},
                                     "noise-0.2": {"width-8": FIT}}), out)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f".width_curves.tmp-{dead.pid}").mkdir()
    (tmp_path / f".width_curves.tmp-{dead.pid}" / "n0.csv").write_text("half")
    write_width_curves(width_curves({"noise-0.0": {"width-8": FIT}}), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["width_curves"]
    assert sorted(p.name for p in out.iterdir()) == ["n0.csv"]
    assert pd.read_csv(out / "n0.csv").width.tolist() == [8]


def test_headline_on_a_nan_in_the_alignment_file_is_one_line_and_writes_nothing(tmp_path):
    """The headline stage checks both outputs before it writes either (so it cannot write
    metrics/headline.json and then fail on the width curves with a traceback)."""
    import json
    import sys

    fits = {f"width-{w}": {**FIT, "var": float("nan") if w == 8 else 0.1} for w in (4, 8)}
    (tmp_path / "alignment.json").write_text(json.dumps({"noise-0.0": fits}))
    r = subprocess.run([sys.executable, str(ROOT / "stages" / "headline.py"), "--alignment",
                        "alignment.json", "--out", "metrics/headline.json", "--curves",
                        "metrics/width_curves"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr == ("error: alignment.json: not an alignment metrics file (ValueError: "
                        "width curves of n0: missing values or unsorted widths)\n")
    assert not (tmp_path / "metrics").exists()
