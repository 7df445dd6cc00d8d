"""Data providers (``data.name``): each provider's arrays, shapes and class counts, label
noise over any class count, and one fault per malformed file (one line naming the path
and what was expected). Every file a test needs is written under ``tmp_path``."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from biasvar.core.errors import InputError, ParamError
from biasvar.data.config import DataParams
from biasvar.data.dataset import (
    Dataset,
    add_label_noise,
    generate,
    load_dataset,
    save_dataset,
)
from biasvar.data.providers import load_source, train_size

ROOT = Path(__file__).resolve().parents[1]
BASE = {"label_noise": [0.0], "num_samples": None, "train_split": 0.5, "seed": 0,
        "noise_seed": 0}


# ---------------------------------------------------------------- file writers
def write_cifar(root: Path, name: str, n_train: int = 30, n_test: int = 20,
                seed: int = 0) -> Path:
    """A CIFAR-10 (5 training batches) or CIFAR-100 (train/test) directory in the
    python-pickle layout: dicts with b"data" uint8 (N, 3072) and the label key."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    c, key = (10, b"labels") if name == "cifar10" else (100, b"fine_labels")
    if name == "cifar10":
        files = [(f"data_batch_{i}", n_train // 5) for i in range(1, 6)] + [("test_batch", n_test)]
    else:
        files = [("train", n_train), ("test", n_test)]
    for fname, n in files:
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             key: [int(v) for v in rng.integers(0, c, n)]}
        if name == "cifar100":
            d[b"coarse_labels"] = [int(v) % 20 for v in d[key]]
        with open(root / fname, "wb") as f:
            pickle.dump(d, f)
    return root


def write_arrays(path: Path, shape=(3, 5, 7), c: int = 3, n_train: int = 24, n_test: int = 12,
                 **replace) -> Path:
    """A user's .npz with x_train, y_train, x_test, y_test (``replace`` edits a field,
    or drops it when the value is None)."""
    rng = np.random.default_rng(1)
    a = {"x_train": rng.normal(size=(n_train, *shape)), "y_train": np.arange(n_train) % c,
         "x_test": rng.normal(size=(n_test, *shape)), "y_test": np.arange(n_test) % c}
    for k, v in replace.items():
        if v is None:
            a.pop(k)
        else:
            a[k] = v
    np.savez(path, **a)
    return path


# ---------------------------------------------------------------- providers
def test_mnist1d_is_make_dataset():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = 400, 0.5, 42
    raw = make_dataset(args)
    src = load_source("mnist1d", 400, 0.5, 42)
    for mine, theirs in (("x_train", "x"), ("y_train", "y"), ("x_test", "x_test"),
                         ("y_test", "y_test")):
        got, want = getattr(src, mine), np.asarray(raw[theirs])
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert (src.input_shape, src.n_classes, src.name) == ((40,), 10, "mnist1d")
    assert train_size("mnist1d", 400, 0.5) == len(src.y_train)
    # generate's clean labels are the provider's, noise as before (10 classes)
    ds = generate(400, 0.5, 42, 0.2, 3)
    np.testing.assert_array_equal(ds.y_train_clean, raw["y"])
    np.testing.assert_array_equal(ds.y_train, add_label_noise(np.asarray(raw["y"]), 0.2, 3)[0])


def test_digits():
    src = load_source("digits", None, 0.7, 5)
    assert src.input_shape == (1, 8, 8) and src.n_classes == 10
    assert len(src.y_train) + len(src.y_test) == 1797
    assert len(src.y_train) == int(1797 * 0.7) == train_size("digits", None, 0.7)
    assert src.x_train.min() >= 0 and src.x_train.max() <= 1  # 0 ... 16 / 16
    again = load_source("digits", None, 0.7, 5)
    np.testing.assert_array_equal(src.x_train, again.x_train)  # seeded split
    other = load_source("digits", None, 0.7, 6)
    assert not np.array_equal(src.y_train, other.y_train)
    small = load_source("digits", 200, 0.5, 5)
    assert (len(small.y_train), len(small.y_test)) == (100, 100)


@pytest.mark.parametrize("name,c", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_layout(tmp_path, name, c):
    root = write_cifar(tmp_path / name, name)
    src = load_source(name, None, 0.5, 0, str(root))
    assert src.input_shape == (3, 32, 32) and src.n_classes == c and src.name == name
    assert (len(src.y_train), len(src.y_test)) == (30, 20)
    assert src.x_train.dtype == np.float32
    assert 0 <= src.x_train.min() and src.x_train.max() <= 1
    # channel-major: pixel (channel 1, row 2, col 3) is byte 1*1024 + 2*32 + 3 / 255
    first = "data_batch_1" if name == "cifar10" else "train"
    with open(root / first, "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert src.x_train[0, 1, 2, 3] == np.float32(raw[b"data"][0, 1024 + 64 + 3]) / np.float32(255)
    key = b"labels" if name == "cifar10" else b"fine_labels"
    assert src.y_train[0] == raw[key][0]
    assert train_size(name, None, 0.5, 0, str(root)) == 30
    # subsampling: int(num_samples x train_split) train, the rest test, seeded
    sub = load_source(name, 20, 0.6, 3, str(root))
    assert (len(sub.y_train), len(sub.y_test)) == (12, 8) == (train_size(name, 20, 0.6), 8)
    np.testing.assert_array_equal(sub.x_train, load_source(name, 20, 0.6, 3, str(root)).x_train)
    # a changed file changes the fingerprint
    write_cifar(root, name, seed=1)
    assert load_source(name, None, 0.5, 0, str(root)).fingerprint != src.fingerprint


def test_arrays_odd_shape(tmp_path):
    path = write_arrays(tmp_path / "mine.npz")
    ds = generate(None, 0.5, 0, 0.5, 0, name="arrays", root=str(path))
    assert ds.input_shape == (3, 5, 7) and ds.n_classes == 3 and ds.name == "arrays"
    assert ds.source == str(path) and len(ds.fingerprint) == 64
    assert set(np.unique(ds.y_train)) <= {0, 1, 2}
    save_dataset(ds, tmp_path / "ds.npz")
    back = load_dataset(tmp_path / "ds.npz")
    assert (back.input_shape, back.n_classes, back.name, back.fingerprint) == (
        (3, 5, 7), 3, "arrays", ds.fingerprint)
    np.testing.assert_array_equal(back.x_train, ds.x_train)
    assert train_size("arrays", None, 0.5, 0, str(path)) == 24
    assert back.metadata() == {"name": "arrays", "input_shape": [3, 5, 7], "n_classes": 3,
                               "source": str(path), "fingerprint": ds.fingerprint}


@pytest.mark.parametrize("c", [2, 3, 100])
def test_label_noise_any_class_count(c):
    y = np.zeros(20000, dtype=np.int64)
    y_noisy, noisy = add_label_noise(y, 0.5, 0, c)
    assert y_noisy.min() >= 0 and y_noisy.max() == c - 1
    replaced = y_noisy[noisy]
    # replacement uniform over C: a changed label is any of the C - 1 other classes, and
    # about p (C - 1) / C of the labels change
    assert abs(noisy.mean() - 0.5 * (c - 1) / c) < 0.02
    counts = np.bincount(replaced, minlength=c)[1:]
    assert counts.min() > 0.6 * counts.mean()


def test_legacy_dataset_loads_as_mnist1d(tmp_path):
    """A dataset written before providers (no metadata) loads as MNIST-1D (40,), 10."""
    ds = generate(200, 0.5, 42, 0.1, 0)
    keys = ("x_train", "y_train", "y_train_clean", "noisy", "x_test", "y_test")
    np.savez(tmp_path / "old.npz", label_noise=np.float64(0.1),
             **{k: getattr(ds, k) for k in keys})
    old = load_dataset(tmp_path / "old.npz", 0.1)
    assert (old.input_shape, old.n_classes, old.name) == ((40,), 10, "mnist1d")


def test_dataset_checks_recorded_metadata(tmp_path):
    ds = generate(200, 0.5, 42, 0.0, 0)
    save_dataset(Dataset(ds.x_train, ds.y_train, ds.y_train_clean, ds.noisy, ds.x_test,
                         ds.y_test, 0.0, n_classes=3, name="arrays"), tmp_path / "d.npz")
    with pytest.raises(InputError, match=r"d\.npz: array y_train has labels outside \[0, 3\)"):
        load_dataset(tmp_path / "d.npz")


# ---------------------------------------------------------------- faults: one line each
def _one_line(exc, path) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    return msg


ARRAY_FAULTS = [
    ("missing key", {"y_test": None}, "lacks array y_test"),
    ("shape mismatch", {"y_train": np.zeros(5, dtype=np.int64)},
     r"y_train has shape \(5,\), expected \(24,\)"),
    ("labels out of range", {"y_test": np.full(12, -1)}, r"labels outside \[0, 3\)"),
    ("non-integer labels", {"y_train": np.zeros(24)}, "dtype float64, expected integer labels"),
    ("NaN inputs", {"x_test": np.full((12, 3, 5, 7), np.nan)}, "x_test holds NaN"),
    ("unequal input shapes", {"x_test": np.zeros((12, 3, 5, 8))}, "expected equal input shapes"),
    ("not numeric", {"x_train": np.array(["a"] * 24).reshape(24, 1)}, "expected numeric inputs"),
]


@pytest.mark.parametrize("case,replace,expect", ARRAY_FAULTS, ids=[c[0] for c in ARRAY_FAULTS])
def test_arrays_faults(tmp_path, case, replace, expect):
    path = write_arrays(tmp_path / "bad.npz", **replace)
    with pytest.raises(InputError, match=expect) as e:
        load_source("arrays", None, 0.5, 0, str(path))
    _one_line(e, path)


def test_arrays_missing_and_unreadable(tmp_path):
    with pytest.raises(InputError, match="file not found, expected an .npz") as e:
        load_source("arrays", None, 0.5, 0, str(tmp_path / "nope.npz"))
    _one_line(e, tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .npz") as e:
        train_size("arrays", None, 0.5, 0, str(tmp_path / "junk.npz"))
    _one_line(e, tmp_path / "junk.npz")
    path = write_arrays(tmp_path / "few.npz")
    with pytest.raises(InputError, match="at least 40 / 10") as e:
        load_source("arrays", 50, 0.8, 0, str(path))
    _one_line(e, path)


def _corrupt(path: Path, edit) -> None:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    with open(path, "wb") as f:
        pickle.dump(edit(d), f)


CIFAR_FAULTS = [
    ("missing file", None, "CIFAR file not found"),
    ("missing key", lambda d: {k: v for k, v in d.items() if k != b"labels"},
     "lacks key b'labels'"),
    ("shape mismatch", lambda d: {**d, b"data": d[b"data"][:, :100]},
     r"expected uint8 of shape \(6, 3072\)"),
    ("labels out of range", lambda d: {**d, b"labels": [10] * 6}, r"labels outside \[0, 10\)"),
    ("non-integer labels", lambda d: {**d, b"labels": [0.5] * 6}, "integer labels"),
    ("not a dict", lambda d: [d], "expected a pickled dict"),
]


@pytest.mark.parametrize("case,edit,expect", CIFAR_FAULTS, ids=[c[0] for c in CIFAR_FAULTS])
def test_cifar_faults(tmp_path, case, edit, expect):
    root = write_cifar(tmp_path / "c10", "cifar10")
    target = root / "data_batch_3"
    if edit is None:
        target.unlink()
    else:
        _corrupt(target, edit)
    with pytest.raises(InputError, match=expect) as e:
        load_source("cifar10", None, 0.5, 0, str(root))
    _one_line(e, root)


def test_cifar_missing_directory(tmp_path):
    with pytest.raises(InputError, match="directory not found") as e:
        train_size("cifar100", None, 0.5, 0, str(tmp_path / "none"))
    _one_line(e, tmp_path / "none")


# ---------------------------------------------------------------- params
@pytest.mark.parametrize("extra,key", [
    ({"name": "cifar10"}, "data.root"),
    ({"name": "arrays"}, "data.root"),
    ({"name": "digits", "root": "x"}, "data.root"),
    ({"name": "cifar100", "root": "-rf"}, "data.root"),
    ({"name": "cifar100", "root": "a\nb"}, "data.root"),
    ({"name": "digits", "num_samples": 2000}, "data.num_samples"),
    ({"name": "digits", "train_split": 0.0001}, "data.train_split"),
    ({"name": "digits", "num_samples": 10, "train_split": 0.05}, "data.train_split"),
    ({"name": "mnist1d"}, "data.num_samples"),
    ({"name": "imagenet"}, "data.name"),
])
def test_data_params_cross_rules(extra, key):
    with pytest.raises(ParamError) as e:
        DataParams.from_dict({**BASE, **extra})
    assert e.value.key == key and "\n" not in str(e.value)


def test_data_params_defaults_and_train_size(tmp_path):
    cfg = DataParams.from_dict({**BASE, "num_samples": 4000})
    assert (cfg.name, cfg.root, cfg.train_size()) == ("mnist1d", None, 2000)
    path = write_arrays(tmp_path / "a.npz")
    cfg = DataParams.from_dict({**BASE, "name": "arrays", "root": str(path)})
    assert cfg.train_size() == 24


def test_validate_cifar_without_root(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(name="cifar10", root=None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = subprocess.run([sys.executable, "-m", "biasvar.tools.validate",
                        str(tmp_path / "params.yaml")], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.root" in lines[0] and "cifar10" in lines[0], r.stderr
