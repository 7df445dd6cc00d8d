"""MNIST-1D generation and label noise."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.core.errors import InputError
from biasvar.data.dataset import add_label_noise, generate, load_dataset, save_dataset


def test_clean_data_equals_make_dataset():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split = 1000, 0.8
    ref = make_dataset(args)
    ds = generate(1000, 0.8, 42, label_noise=0.0, noise_seed=0)
    np.testing.assert_array_equal(ds.x_train, ref["x"])
    np.testing.assert_array_equal(ds.x_test, ref["x_test"])
    np.testing.assert_array_equal(ds.y_train, ref["y"])
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    assert ds.x_train.dtype == np.float64
    assert not ds.noisy.any()


def test_noise_rate_and_flags():
    y = np.random.default_rng(1).integers(0, 10, size=100_000)
    p = 0.3
    y_noisy, noisy = add_label_noise(y, p, noise_seed=7)
    # A replaced label is a uniform class, so it stays right 1/10 of the time:
    # P(changed) = p * 9/10.
    rate = noisy.mean()
    se = np.sqrt(0.27 * 0.73 / len(y))
    assert abs(rate - p * 0.9) < 4 * se
    np.testing.assert_array_equal(noisy, y_noisy != y)
    # Changed labels are uniform over the other 9 classes: no class is favoured.
    counts = np.bincount(y_noisy[noisy], minlength=10) / noisy.sum()
    assert np.all(np.abs(counts - 0.1) < 0.01)


def test_noise_is_nested_across_levels_and_seeded():
    y = np.random.default_rng(2).integers(0, 10, size=5000)
    _, lo = add_label_noise(y, 0.1, 0)
    _, hi = add_label_noise(y, 0.3, 0)
    assert np.all(hi[lo])  # noisy at 0.1 => noisy at 0.3
    a, _ = add_label_noise(y, 0.3, 0)
    b, _ = add_label_noise(y, 0.3, 1)
    np.testing.assert_array_equal(a, add_label_noise(y, 0.3, 0)[0])
    assert not np.array_equal(a, b)


def test_test_labels_stay_clean(small_dataset):
    clean = generate(1000, 0.8, 42, 0.0, 0)
    np.testing.assert_array_equal(small_dataset.y_test, clean.y_test)
    np.testing.assert_array_equal(small_dataset.y_train_clean, clean.y_train)
    assert 0.05 < small_dataset.noisy.mean() < 0.2


def test_round_trip_and_corrupted_file(small_dataset, tmp_path):
    path = tmp_path / "ds.npz"
    save_dataset(small_dataset, path)
    back = load_dataset(path)
    np.testing.assert_array_equal(back.x_train, small_dataset.x_train)
    np.testing.assert_array_equal(back.noisy, small_dataset.noisy)
    assert back.label_noise == 0.15
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match=str(path)):
        load_dataset(path)
