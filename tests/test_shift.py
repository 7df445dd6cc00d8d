"""Shifted test sets: severity 0 is the clean test set bit for bit; the shift grows with
severity; labels and examples stay paired with the clean set."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.data.providers.mnist1d import load
from biasvar.data.shift import (
    IMAGE_KINDS,
    MNIST1D_KINDS,
    corrupt_images,
    mnist1d_shifted,
)

N, SPLIT, SEED = 400, 0.5, 42


@pytest.fixture(scope="module")
def clean():
    return load(N, SPLIT, SEED)


@pytest.mark.parametrize("kind", MNIST1D_KINDS)
def test_mnist1d_severity_0_is_the_clean_test_set(clean, kind):
    x, y = mnist1d_shifted(N, SPLIT, SEED, kind, 0)
    assert x.dtype == clean.x_test.dtype and np.array_equal(x, clean.x_test)
    assert np.array_equal(y, clean.y_test)


@pytest.mark.parametrize("kind", MNIST1D_KINDS)
def test_mnist1d_shift_grows_with_severity_on_the_same_examples(clean, kind):
    dist = []
    for s in range(4):
        x, y = mnist1d_shifted(N, SPLIT, SEED, kind, s)
        assert np.array_equal(y, clean.y_test)  # the same examples, in the same order
        dist.append(float(np.sqrt(((x - clean.x_test) ** 2).mean())))
    assert dist[0] == 0.0 and all(b > a for a, b in zip(dist, dist[1:], strict=False)), dist


def test_mnist1d_noise_severity_raises_the_input_spread(clean):
    """Noise adds variance the clean normalization does not remove (make_dataset's own
    per-set normalization would bring the spread back to 1)."""
    x3, _ = mnist1d_shifted(N, SPLIT, SEED, "noise", 3)
    assert x3.std() > 1.2 * clean.x_test.std()


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_image_severity_0_is_identity(kind):
    x = np.random.default_rng(0).random((3, 3, 8, 8))
    assert np.array_equal(corrupt_images(x, kind, 0), x)


def test_gaussian_noise_has_its_sd_and_is_seeded():
    x = np.full((4, 3, 16, 16), 0.5)
    a = corrupt_images(x, "gaussian_noise", 3, seed=1)
    assert np.array_equal(a, corrupt_images(x, "gaussian_noise", 3, seed=1))
    assert (a - x).std() == pytest.approx(0.08, rel=0.05)  # no clipping at 0.5 +- 5 sd


def test_contrast_shrinks_each_image_around_its_mean():
    x = np.random.default_rng(0).random((5, 3, 8, 8))
    for s, c in ((1, 0.4), (5, 0.05)):
        out = corrupt_images(x, "contrast", s)
        np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)))
        np.testing.assert_allclose(out.std(axis=(1, 2, 3)), c * x.std(axis=(1, 2, 3)))


def test_blur_keeps_a_constant_image_and_the_mean_and_smooths():
    flat = np.full((1, 1, 9, 9), 0.3)
    np.testing.assert_allclose(corrupt_images(flat, "blur", 3), flat)
    x = np.random.default_rng(0).random((2, 3, 16, 16))
    out = [corrupt_images(x, "blur", s) for s in (1, 3, 5)]
    # total variation falls with severity; a Gaussian blur keeps the mean up to edges
    tv = [np.abs(np.diff(o, axis=3)).mean() for o in out]
    assert tv[0] < np.abs(np.diff(x, axis=3)).mean() and tv[0] > tv[1] > tv[2]
    np.testing.assert_allclose(out[0].mean(), x.mean(), atol=0.01)


@pytest.mark.parametrize("kind, severity", [("nope", 1), ("noise", 6), ("noise", -1)])
def test_bad_kind_or_severity_is_named(kind, severity):
    with pytest.raises(ValueError, match="is not allowed"):
        mnist1d_shifted(N, SPLIT, SEED, kind, severity)
