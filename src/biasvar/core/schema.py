"""The one module that defines every Parquet format of the project.

Writers and readers both call ``validate``: a table whose columns, order or
types differ from the schema, or that holds NaN/inf in a column the schema
declares finite (the logits), fails with the file and the column named (and,
for a non-finite value, the key columns of its first row: config and member).
Each
file carries in its key-value metadata the schema name and version and the
params that produced it (JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from biasvar.core.errors import InputError
from biasvar.core.io import atomic_path, check_complete

META_SCHEMA = b"biasvar.schema"
META_VERSION = b"biasvar.schema_version"
META_PARAMS = b"biasvar.params"


@dataclass(frozen=True)
class TableSchema:
    """A named, versioned Arrow schema with the sort order its files must follow."""

    name: str
    version: int
    arrow: pa.Schema
    sort_by: tuple[str, ...]
    # Allowed values of categorical string columns.
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Float columns that must hold no NaN or infinity.
    finite: tuple[str, ...] = ()


LOGITS = TableSchema(
    name="logits",
    version=1,
    arrow=pa.schema([
        ("label_noise", pa.float32()),
        ("width", pa.int32()),
        ("member", pa.int32()),
        ("draw", pa.int32()),
        ("seed", pa.int32()),
        ("partition", pa.string()),  # 'test' | 'train'
        ("example", pa.int32()),  # row index in that partition of the dataset
        ("label", pa.int16()),  # label the member was scored against (clean on test)
        ("class", pa.int16()),
        ("logit", pa.float32()),
    ]),
    sort_by=("label_noise", "width", "member", "partition", "example", "class"),
    categories=(("partition", ("test", "train")),),
    finite=("logit",),
)

PARTITIONS = ("test", "train")  # sorted order, as in files

# Test logits at the checkpoint steps of training (``train.checkpoints``): the logits
# contract with the step after the seed; one file per config under
# ``data/sources/train/checkpoints/`` (``biasvar.ensemble.logits.collect``). The last
# checkpoint is the last step: its logits equal the final ones of ``LOGITS``.
CHECKPOINT_LOGITS = TableSchema(
    name="checkpoint_logits",
    version=1,
    arrow=pa.schema([
        *[f for f in LOGITS.arrow if f.name in ("label_noise", "width", "member", "draw",
                                                "seed")],
        ("step", pa.int32()),  # training steps taken when the logits were computed
        *[f for f in LOGITS.arrow if f.name in ("partition", "example", "label", "class",
                                                "logit")],
    ]),
    sort_by=("label_noise", "width", "step", "member", "partition", "example", "class"),
    categories=(("partition", ("test",)),),
    finite=("logit",),
)

_F64 = pa.float64()
_CONFIG = [("label_noise", pa.float32()), ("width", pa.int32()), ("partition", pa.string())]

# Per-example terms of every decomposition (see biasvar.analysis.decompose / summary).
EXAMPLE_TERMS = (
    "ensemble_confidence",
    "mse_loss", "mse_bias2", "mse_var", "mse_bias2_unbiased", "mse_var_unbiased",
    "var_optimization", "var_sampling", "var_optimization_unbiased", "var_sampling_unbiased",
    "ce_loss", "ce_bias", "ce_var",
    "zero_one_error", "zero_one_bias", "zero_one_var", "zero_one_net_var",
    "mse_ensemble_loss", "mse_diversity", "ce_ensemble_loss", "ce_diversity",
)

DECOMPOSITION = TableSchema(
    name="decomposition",
    version=3,
    arrow=pa.schema([
        *_CONFIG,
        ("example", pa.int32()),
        ("label", pa.int16()),  # label the members were scored against
        ("noisy", pa.bool_()),  # training label was changed by label noise (train only)
        ("ensemble_prediction", pa.int16()),  # argmax of the mean probabilities
        ("correct", pa.bool_()),  # ensemble_prediction == label
        # out-of-bag ensemble: the members whose draw does not hold the example (every
        # member on test rows); their mean-probability argmax, -1 when there is none
        ("oob_members", pa.int32()),
        ("oob_prediction", pa.int16()),
        *[(t, _F64) for t in EXAMPLE_TERMS],  # NaN where undefined (e.g. one draw)
    ]),
    sort_by=("label_noise", "width", "partition", "example"),
    categories=(("partition", PARTITIONS),),
)

SUMMARY = TableSchema(
    name="summary",
    version=3,
    arrow=pa.schema([
        *_CONFIG,
        ("quantity", pa.string()),  # see biasvar.analysis.summary.QUANTITIES
        ("value", _F64),  # mean over examples (NaN where undefined)
        ("estimate", _F64),  # of the population value (biasvar.analysis.summary)
        ("ci_low", _F64),  # delete-one-draw jackknife interval for the population value
        ("ci_high", _F64),
        ("members", pa.int32()),
        ("draws", pa.int32()),
        ("seeds", pa.int32()),
    ]),
    sort_by=("label_noise", "width", "partition", "quantity"),
    categories=(("partition", PARTITIONS),),
)

RELIABILITY = TableSchema(
    name="reliability",
    version=1,
    arrow=pa.schema([
        *_CONFIG,
        ("predictor", pa.string()),  # 'ensemble' | 'members' (all members pooled)
        ("bin", pa.int32()),
        ("lower", _F64),
        ("upper", _F64),
        ("count", pa.int64()),
        ("confidence", _F64),  # mean top probability in the bin (NaN if empty)
        ("accuracy", _F64),  # fraction correct in the bin (NaN if empty)
    ]),
    sort_by=("label_noise", "width", "partition", "predictor", "bin"),
    categories=(("partition", PARTITIONS), ("predictor", ("ensemble", "members"))),
)

FITS = TableSchema(
    name="alignment_fits",
    version=1,
    arrow=pa.schema([
        *_CONFIG,
        ("subset", pa.string()),  # 'all' | 'correct' (ensemble classifies correctly)
        ("estimator", pa.string()),  # 'plugin' | 'unbiased' MSE terms
        ("n", pa.int64()),
        ("n_subset", pa.int64()),
        ("excluded_zero", pa.int64()),
        ("excluded_negative", pa.int64()),
        ("excluded_nonfinite", pa.int64()),
        *[(c, _F64) for c in ("slope", "slope_ci_low", "slope_ci_high", "intercept",
                               "intercept_ci_low", "intercept_ci_high", "r2", "r2_ci_low",
                               "r2_ci_high", "pearson", "spearman", "mean_log_ratio",
                               "median_ratio")],
    ]),
    sort_by=("label_noise", "width", "partition", "subset"),
    categories=(("partition", PARTITIONS), ("subset", ("all", "correct")),
                ("estimator", ("plugin", "unbiased"))),
)


def validate(table: pa.Table, schema: TableSchema, path: str | Path,
             check_sorted: bool = True) -> None:
    """Raise ``InputError`` naming ``path`` and the column if ``table`` breaks ``schema``."""
    want = schema.arrow
    got_names = table.schema.names
    for f in want:
        if f.name not in got_names:
            raise InputError(f"{path}: column {f.name!r} is missing (schema {schema.name} "
                             f"v{schema.version})")
    for name in got_names:
        if name not in want.names:
            raise InputError(f"{path}: column {name!r} is not in schema {schema.name} "
                             f"v{schema.version}")
    if got_names != want.names:
        raise InputError(f"{path}: columns are in order {got_names}, expected {want.names}")
    for f in want:
        t = table.schema.field(f.name).type
        if t != f.type:
            raise InputError(f"{path}: column {f.name!r} has type {t}, expected {f.type}")
        if table.column(f.name).null_count:
            raise InputError(f"{path}: column {f.name!r} has null values")
    for col, allowed in schema.categories:
        values = set(table.column(col).unique().to_pylist())
        if not values <= set(allowed):
            raise InputError(f"{path}: column {col!r} has values {sorted(values - set(allowed))}"
                             f", allowed {list(allowed)}")
    for col in schema.finite:
        _require_finite_column(table, col, schema.sort_by, path)
    if check_sorted and table.num_rows > 1 and not _is_sorted(table, schema.sort_by):
        raise InputError(f"{path}: rows are not sorted by {', '.join(schema.sort_by)}")


def _require_finite_column(table: pa.Table, col: str, keys: tuple[str, ...],
                           path: str | Path) -> None:
    """Raise naming ``path``, the column, the count and the first bad row's keys."""
    import pyarrow.compute as pc

    finite = pc.is_finite(table.column(col))
    n_bad = table.num_rows - pc.sum(finite).as_py() if table.num_rows else 0
    if not n_bad:
        return
    row = pc.index(finite, False).as_py()
    where = ", ".join(f"{k} {_short(table.column(k)[row].as_py())}" for k in keys
                      if k in table.column_names)
    members = ""
    if "member" in table.column_names:
        bad = pc.unique(pc.filter(table.column("member"), pc.invert(finite))).to_pylist()
        members = f"; members affected: {sorted(bad)}"
    raise InputError(f"{path}: column {col!r} has {n_bad} non-finite values (NaN or inf), "
                     f"first at {where}{members}")


def _short(v: Any) -> Any:
    """A float32 value as its shortest decimal (0.15, not 0.15000000596046448)."""
    return f"{v:.7g}" if isinstance(v, float) else v


def _is_sorted(table: pa.Table, keys: tuple[str, ...]) -> bool:
    """Lexicographic non-decreasing check, vectorized over rows.

    Row i <= row i+1 iff at the first key where they differ, row i's is smaller.
    """
    n = table.num_rows
    undecided = np.ones(n - 1, dtype=bool)  # rows equal on all keys so far
    for key in keys:
        col = table.column(key).to_numpy()
        a, b = col[:-1], col[1:]
        if undecided.any() and np.any(undecided & (a > b)):
            return False
        undecided &= a == b
    return True


def write_table(path: str | Path, table: pa.Table, schema: TableSchema,
                params: dict[str, Any] | None = None) -> None:
    """Validate ``table`` against ``schema`` and write it atomically with metadata."""
    validate(table, schema, path)
    meta = {META_SCHEMA: schema.name.encode(), META_VERSION: str(schema.version).encode(),
            META_PARAMS: json.dumps(params or {}, sort_keys=True).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    with atomic_path(path) as tmp:
        # Dictionary-encoded repeated columns compress to almost nothing; the
        # logits themselves dominate the file.
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: str | Path, schema: TableSchema, columns: list[str] | None = None,
               filters=None) -> pa.Table:
    """Read and validate a file written with ``schema``; corrupted files are named."""
    path = Path(path)
    check_complete(path)
    try:
        file_schema = pq.read_schema(path)
    except FileNotFoundError as e:
        raise InputError(f"{path}: not found") from e
    except Exception as e:
        raise InputError(f"{path}: not a readable Parquet file ({e})") from e
    meta = file_schema.metadata or {}
    if meta.get(META_SCHEMA) != schema.name.encode():
        raise InputError(f"{path}: not a {schema.name!r} table (metadata says "
                         f"{meta.get(META_SCHEMA)!r})")
    if meta.get(META_VERSION) != str(schema.version).encode():
        raise InputError(f"{path}: schema {schema.name} version {meta.get(META_VERSION)!r}, "
                         f"this code reads version {schema.version}")
    try:
        table = pq.read_table(path, filters=filters)
    except Exception as e:
        raise InputError(f"{path}: cannot read ({e})") from e
    validate(table, schema, path, check_sorted=filters is None)
    return table.select(columns) if columns else table


def read_params(path: str | Path) -> dict[str, Any]:
    """The producing params (and identity) stored in a file's metadata; a missing or
    unreadable file, or metadata that is not a JSON object, is named."""
    path = Path(path)
    try:
        meta = pq.read_schema(path).metadata or {}
    except FileNotFoundError as e:
        raise InputError(f"{path}: not found") from e
    except Exception as e:
        raise InputError(f"{path}: not a readable Parquet file ({e})") from e
    try:
        params = json.loads(meta.get(META_PARAMS, b"{}"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: metadata {META_PARAMS.decode()} is not JSON ({e})") from e
    if not isinstance(params, dict):
        raise InputError(f"{path}: metadata {META_PARAMS.decode()} is not a JSON object")
    return params


def table_from_columns(schema: TableSchema, cols: dict[str, list[np.ndarray]]) -> pa.Table:
    """An Arrow table of ``schema`` from per-column lists of arrays (concatenated in order)."""
    arrays = [pa.array(np.concatenate(cols[f.name]), type=f.type) for f in schema.arrow]
    return pa.Table.from_arrays(arrays, schema=schema.arrow)


# ---------------------------------------------------------------- JSON files
@dataclass(frozen=True)
class JsonFormat:
    """The fields of a JSON object and the types each may hold (``None`` allowed where
    ``type(None)`` is listed); ``version`` is the format's current version."""

    name: str
    version: int
    fields: tuple[tuple[str, tuple[type, ...]], ...]


# A source folder's description (biasvar.ensemble.source): data/sources/<source>/source.json
SOURCE_JSON = JsonFormat("source", 1, (
    ("version", (int,)),
    ("source", (str,)),  # 'train' | 'import'
    ("label_noise", (list,)),  # raw levels: they name the logits files
    ("widths", (list,)),
    ("partitions", (list,)),  # 'test' and, for train, 'train'
    ("data", (dict,)),  # Dataset.metadata() (train) or name / n_classes (import)
    ("blocks", (list, type(None))),  # train: the blocks collected
    ("file", (dict, type(None))),  # import: {'path', 'sha256'} of the user's file
))


def check_json(obj: Any, fmt: JsonFormat, path: str | Path) -> dict[str, Any]:
    """``obj`` if it is an object with every field of ``fmt`` of an allowed type and the
    current version; else one ``InputError`` naming ``path`` and the field."""
    from biasvar.core.errors import InputError

    if not isinstance(obj, dict):
        raise InputError(f"{path}: holds {type(obj).__name__}; expected a JSON object "
                         f"({fmt.name})")
    for key, types in fmt.fields:
        if key not in obj:
            raise InputError(f"{path}: no field {key!r} ({fmt.name}, version {fmt.version})")
        v = obj[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise InputError(f"{path}: field {key!r} is {_short(v)!r}; expected {allowed}")
    if obj["version"] != fmt.version:
        raise InputError(f"{path}: {fmt.name} version {obj['version']}; this biasvar reads "
                         f"version {fmt.version} (rerun the stage that wrote it)")
    return obj


# ---------------------------------------------------------------- CSV tables and names
@dataclass(frozen=True)
class CsvFormat:
    """The columns a reader of a CSV table needs (its writer writes these and maybe more).

    ``text``: the columns that hold words (every other required column must hold
    numbers); ``finite``: the numeric columns that may hold no NaN, inf or empty field
    (the keys of a row: a level, a width, a step), so that a row cut short by a
    half-written file is refused instead of plotted.
    """

    name: str
    columns: tuple[str, ...]
    text: tuple[str, ...] = ()
    finite: tuple[str, ...] = ()


# What the plot stage reads from each CSV; the pipeline test checks every writer's header
# against these (tests/test_report_safety.py), the unit tests the writers' column constants.
CURVES_CSV = CsvFormat(  # collect: data/sources/train/curves.csv
    "training curves", ("label_noise", "width", "member", "step", "train_loss", "test_accuracy"),
    finite=("label_noise", "width", "member", "step", "train_loss", "test_accuracy"))
MEMBERS_CSV = CsvFormat(  # collect: data/sources/train/members.csv
    "members", ("label_noise", "width", "member", "split_method", "n_in_bag", "in_bag_error",
                "oob_error"),
    text=("split_method",), finite=("label_noise", "width", "member", "n_in_bag", "in_bag_error"))
CHECKPOINT_MEMBERS_CSV = CsvFormat(  # collect: data/sources/train/checkpoint_members.csv
    "checkpoint members", ("label_noise", "width", "step", "member", "draw", "seed",
                           "test_loss", "test_accuracy", "in_bag_error", "oob_error"),
    finite=("label_noise", "width", "step", "member", "draw", "seed", "test_accuracy",
            "in_bag_error"))
DYNAMICS_SUMMARY_CSV = CsvFormat(  # dynamics: data/dynamics/summary.csv
    "dynamics summary", ("label_noise", "width", "step", "quantity", "value", "estimate",
                         "ci_low", "ci_high"),
    text=("quantity",), finite=("label_noise", "width", "step"))
DYNAMICS_FITS_CSV = CsvFormat(  # dynamics: data/dynamics/fits.csv
    "dynamics fits", ("label_noise", "width", "step", "n", "slope", "slope_ci_low",
                      "slope_ci_high", "intercept", "r2"),
    finite=("label_noise", "width", "step", "n"))
SHIFT_SUMMARY_CSV = CsvFormat(  # shift: data/shift/summary.csv
    "shift summary", ("label_noise", "width", "kind", "severity", "quantity", "value",
                      "estimate", "ci_low", "ci_high"),
    text=("kind", "quantity"), finite=("label_noise", "width", "severity"))
SHIFT_FITS_CSV = CsvFormat(  # shift: data/shift/fits.csv
    "shift fits", ("label_noise", "width", "kind", "severity", "n", "slope", "slope_ci_low",
                   "slope_ci_high", "intercept", "r2"),
    text=("kind",), finite=("label_noise", "width", "severity", "n"))
SHIFT_EXAMPLES_CSV = CsvFormat(  # shift: data/shift/examples.csv
    "shift examples", ("label_noise", "width", "kind", "severity", "example", "correct",
                       "bias2", "var"),
    text=("kind", "correct"), finite=("label_noise", "width", "severity", "example"))
ALIGNMENT_SIZE_CSV = CsvFormat(  # alignment_size: data/regress/alignment_size.csv
    "alignment-size", ("label_noise", "width", "loss", "estimator", "subset", "n_members",
                       "slope", "slope_ci_low", "slope_ci_high"),
    text=("loss", "estimator", "subset"), finite=("label_noise", "width", "n_members"))
ALIGNMENT_SIZE_INF_CSV = CsvFormat(  # alignment_size: data/regress/alignment_size_inf.csv
    "K -> infinity", ("label_noise", "width", "loss", "estimator", "subset", "quantity",
                      "value_inf", "value_inf_se", "chi2", "dof"),
    text=("loss", "estimator", "subset", "quantity"), finite=("label_noise", "width"))
CALIBRATION_INTERVENTION_CSV = CsvFormat(  # data/regress/calibration_intervention.csv
    "calibration-intervention",
    ("label_noise", "width", "temperature_mean",
     *(f"{q}_{state}" for state in ("before", "after")
       for q in ("member_ece", "ensemble_ece", "gap", "gap_ci_low", "gap_ci_high", "slope"))),
    finite=("label_noise", "width"))
TRADEOFF_CSV = CsvFormat(  # tradeoff: data/studies/tradeoff.csv
    "trade-off", ("hidden_units", "noise", "bias2", "variance", "total", "test_loss",
                  "test_loss_se"),
    finite=("hidden_units", "total"))
RIDGELESS_CSV = CsvFormat(  # ridgeless: data/studies/ridgeless.csv
    "ridgeless", ("n_features", "n_train", "train_mse_median", "test_mse_median",
                  "test_mse_q25", "test_mse_q75"),
    finite=("n_features", "n_train"))
SPECTRAL_CSV = CsvFormat(  # spectral@<config>: data/studies/spectral/<config>.csv
    "spectral", ("config", "step", "frequency", "normalized_magnitude"),
    text=("config",), finite=("step", "frequency"))
ERANK_CSV = CsvFormat(  # probe: data/studies/erank.csv
    "effective-rank", ("label_noise", "width", "erank_mean", "erank_sd", "erank_ratio_mean"),
    finite=("label_noise", "width"))
COLLAPSE_CSV = CsvFormat(  # collapse: data/studies/collapse.csv
    "collapse summary", ("width", "member_train_error", "member_test_error", "nc1_train",
                         "nc1_test", "margin_train", "margin_sd_median", "slope", "r2",
                         "ratio_median", "ratio_in_range", "chen_log_var_error",
                         "chen_log_bias2_error", "scaled_slope"),
    finite=("width",))
COLLAPSE_EXAMPLES_CSV = CsvFormat(  # collapse: data/studies/collapse_examples.csv
    "collapse examples", ("width", "correct", "bias2", "var", "scaled_log_bias2",
                          "scaled_log_var"),
    text=("correct",), finite=("width",))  # correct: True / False
COLLAPSE_MODEL_CSV = CsvFormat(  # collapse: data/studies/collapse_model.csv
    "collapse model", ("c", "log_bias2", "log_var"), finite=("c",))
PC_BIAS_CSV = CsvFormat(  # pc_bias@<config>: data/studies/pc_bias/<config>.csv
    "pc_bias", ("step", "pc", "eigenvalue", "sd_ratio"), finite=("step", "pc"))
SPECTRAL_CLS_CSV = CsvFormat(  # spectral_cls@<config>: data/studies/spectral_cls/<config>.csv
    "spectral_cls", ("step", "k", "energy", "log_ratio"), finite=("step", "k"))
ERANK_DEPTH_CSV = CsvFormat(  # erank_depth@<config>: data/studies/erank_depth/<config>.csv
    "erank_depth", ("depth", "phase", "erank"), text=("phase",), finite=("depth",))


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(size - 1, 0))
        return f.read(1)


def _bad_byte(path: Path) -> str:
    # pandas' decode error counts from the start of a parser chunk, not of the file
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return f"byte 0x{raw[e.start]:02x} on line {line}"
    return "an undecodable byte"


def read_csv(path: str | Path, fmt: CsvFormat):
    """Read a CSV table (a pandas DataFrame) that must hold ``fmt``'s columns and a row.

    A missing, empty, unreadable or unparsable file, a last line cut short, a missing
    column, a word in a numeric column, no rows, or a NaN / inf / empty field in a
    ``finite`` column is one ``InputError`` naming the file (and the column and line):
    a half-written or hand-edited table never reaches a figure as pandas'
    ``EmptyDataError`` or a ``KeyError``.
    """
    import pandas as pd

    path = Path(path)
    check_complete(path)
    try:
        table = pd.read_csv(path)
        last = _last_byte(path)
    except FileNotFoundError as e:
        raise InputError(f"{path}: not found") from e
    except pd.errors.EmptyDataError as e:
        raise InputError(f"{path}: empty (not even a header line: a half-written file?)") from e
    except pd.errors.ParserError as e:
        detail = " ".join(str(e).split())  # pandas' message spans lines
        raise InputError(f"{path}: not a valid CSV table ({detail})") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a CSV table (not UTF-8 text: {_bad_byte(path)})") from e
    except OSError as e:
        raise InputError(f"{path}: not readable ({e.strerror or e})") from e
    if last != b"\n":  # every writer ends its last line: one cut short is a half-written file
        raise InputError(f"{path}: the last line is cut short (a half-written file?)")
    missing = [c for c in fmt.columns if c not in table.columns]
    if missing:
        raise InputError(f"{path}: column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))} missing (a {fmt.name} table "
                         f"needs {', '.join(fmt.columns)})")
    if not len(table):
        raise InputError(f"{path}: no rows (only a header line)")
    for col in fmt.columns:
        if col in fmt.text:
            continue
        values = table[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
            i = int(bad.to_numpy().argmax())
            raise InputError(f"{path}: column {col!r} holds {values.iloc[i]!r} on line {i + 2},"
                             " not a number")
        if col in fmt.finite:
            bad = ~np.isfinite(values.to_numpy(dtype=float))
            if bad.any():
                raise InputError(f"{path}: column {col!r} has {int(bad.sum())} empty or "
                                 f"non-finite values (NaN or inf), the first on line "
                                 f"{int(bad.argmax()) + 2}")
    return table


# A study config's key names its stage (`spectral@<key>`) and its files
# (`data/studies/<study>/<key>.csv`, `data/metrics/<study>-<key>.json`): only a plain name
# that cannot climb out of its folder (`..`, `a/b`), hide (`.x`) or read as an option (`-x`).
CONFIG_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"  # the whole name (re.fullmatch)
CONFIG_NAME_RULE = ("names of 1 to 64 letters, digits, '-' and '_', starting with a letter or "
                    "digit (they name stages and files)")


def check_config_name(section: str, name: Any) -> str:
    """``name`` if it is a valid key of ``<section>.configs``, else one ``ParamError``."""
    import re

    from biasvar.core.errors import ParamError

    if not isinstance(name, str) or not re.fullmatch(CONFIG_NAME, name):
        raise ParamError(f"{section}.configs", name, CONFIG_NAME_RULE)
    return name
