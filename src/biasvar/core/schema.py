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

_F64 = pa.float64()
_CONFIG = [("label_noise", pa.float32()), ("width", pa.int32()), ("partition", pa.string())]

# Per-example terms of every decomposition (see biasvar.analysis.decompose / summary).
EXAMPLE_TERMS = (
    "ensemble_confidence",
    "mse_loss", "mse_bias2", "mse_var", "mse_bias2_unbiased", "mse_var_unbiased",
    "var_optimization", "var_sampling", "var_optimization_unbiased", "var_sampling_unbiased",
    "ce_loss", "ce_bias", "ce_var",
    "zero_one_error", "zero_one_bias", "zero_one_var", "zero_one_net_var",
)

DECOMPOSITION = TableSchema(
    name="decomposition",
    version=2,
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
    version=2,
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


def require_finite_logits(logits: np.ndarray, members, where: str, partition: str) -> None:
    """Raise ``InputError`` if ``logits`` ``(members, ...)`` hold NaN or inf.

    ``where`` names the file and config; the message names the first affected
    member, how many of its values are bad, and every affected member.
    """
    finite = np.isfinite(logits).reshape(len(members), -1)  # (M, values)
    if finite.all():
        return
    bad = (~finite).sum(axis=1)  # (M,)
    hit = np.flatnonzero(bad)
    m = int(hit[0])
    others = f"; members affected: {[int(members[i]) for i in hit]}" if len(hit) > 1 else ""
    raise InputError(f"{where}: member {int(members[m])} has {int(bad[m])} non-finite "
                     f"{partition} logits (NaN or inf) of {finite.shape[1]}{others}")


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
