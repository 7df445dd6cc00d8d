"""Parquet logits: schema validation, round trip, dense reads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from biasvar.core.errors import InputError
from biasvar.core.schema import LOGITS, read_table
from biasvar.ensemble.logits import dense, logits_table, read_config, write_config


def _table(m=3, n_test=5, n_train=4, c=10, seed=0):
    rng = np.random.default_rng(seed)
    test = rng.normal(size=(m, n_test, c)).astype(np.float32)
    train = rng.normal(size=(m, n_train, c)).astype(np.float32)
    members = np.array([2, 3, 7])[:m]
    t = logits_table(0.15, 32, members, members // 2, members % 2, {
        "test": (test, rng.integers(0, c, n_test)), "train": (train, rng.integers(0, c, n_train))})
    return t, test, train


def test_round_trip_dense(tmp_path):
    t, test, train = _table()
    write_config(tmp_path, 0.15, 32, t, {"model": {"arch": "mlp"}})
    got = read_config(tmp_path, 0.15, 32, "test")
    np.testing.assert_array_equal(got.logits, test)
    np.testing.assert_array_equal(got.members, [2, 3, 7])
    np.testing.assert_array_equal(got.draws, [1, 1, 3])
    np.testing.assert_array_equal(got.seeds, [0, 1, 1])
    np.testing.assert_array_equal(read_config(tmp_path, 0.15, 32, "train").logits, train)
    assert got.width == 32 and got.label_noise == pytest.approx(0.15)


@pytest.mark.parametrize("label_noise", [0.0, 0.1, 0.15, 0.3, 0.999])
def test_requested_config_is_found_despite_float32(tmp_path, label_noise):
    """The file's float32 label_noise matches the float64 params value it was written for."""
    t, test, _ = _table()
    t = t.set_column(0, "label_noise", pa.array(np.full(t.num_rows, label_noise, np.float32)))
    write_config(tmp_path, label_noise, 32, t, {})
    got = read_config(tmp_path, label_noise, 32, "test")
    np.testing.assert_array_equal(got.logits, test)
    assert got.label_noise == pytest.approx(label_noise)


def test_rows_sorted_and_typed_per_contract():
    t, _, _ = _table()
    assert t.schema == LOGITS.arrow
    assert t.num_rows == 3 * (5 + 4) * 10
    df = t.to_pandas()
    key = list(LOGITS.sort_by)
    assert df.equals(df.sort_values(key, kind="stable").reset_index(drop=True))
    # one slow, obviously-correct spot check: row of (member 3, train, example 2, class 7)
    row = df[(df.member == 3) & (df.partition == "train") & (df.example == 2) & (df["class"] == 7)]
    assert len(row) == 1


def test_wrong_type_is_named(tmp_path):
    t, _, _ = _table()
    bad = t.set_column(t.schema.get_field_index("logit"), "logit",
                       t.column("logit").cast(pa.float64()))
    path = tmp_path / "bad.parquet"
    pq.write_table(bad.replace_schema_metadata({b"biasvar.schema": b"logits",
                                                b"biasvar.schema_version": b"1"}), path)
    with pytest.raises(InputError, match=r"bad\.parquet: column 'logit' has type double"):
        read_table(path, LOGITS)


def test_missing_column_and_unsorted_are_named(tmp_path):
    t, _, _ = _table()
    meta = {b"biasvar.schema": b"logits", b"biasvar.schema_version": b"1"}
    path = tmp_path / "nolabel.parquet"
    pq.write_table(t.drop_columns(["label"]).replace_schema_metadata(meta), path)
    with pytest.raises(InputError, match=r"nolabel\.parquet: column 'label' is missing"):
        read_table(path, LOGITS)
    shuffled = t.take(np.random.default_rng(0).permutation(t.num_rows))
    from biasvar.core.schema import write_table

    with pytest.raises(InputError, match="not sorted"):
        write_table(tmp_path / "x.parquet", shuffled, LOGITS)
    assert not (tmp_path / "x.parquet").exists()


def test_corrupted_file_is_named(tmp_path):
    path = tmp_path / "noise-0.15_width-32.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=str(path)):
        read_config(tmp_path, 0.15, 32)


def test_incomplete_grid_is_refused():
    t, _, _ = _table()
    with pytest.raises(InputError, match="grid"):
        dense(t.slice(0, t.num_rows - 10), "train")
