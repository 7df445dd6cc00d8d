"""Shifted test sets, generated (never downloaded): the clean test set pushed off the
training distribution at increasing severities.

- MNIST-1D (``mnist1d_shifted``): the same examples as ``make_dataset``'s test set (the
  same seed, so the same templates, labels and random draws in the same order), with one
  of the generator's own transformations scaled beyond its training range: ``noise``
  (correlated and i.i.d. noise scales x 2^severity), ``scale`` (the random rescaling's
  range x (1 + severity)), ``shear`` (the shear's range x (1 + severity)). Inputs are
  normalized with the *clean* dataset's mean and standard deviation, as a model trained
  on it sees them (``make_dataset`` normalizes each generated set by its own, which
  would hide part of the shift).
- Images (``corrupt_images``), in the style of Hendrycks & Dietterich's CIFAR-10-C:
  ``gaussian_noise``, ``blur`` (a Gaussian kernel per channel) and ``contrast`` (each
  image pulled towards its own mean), at severities 1..``MAX_SEVERITY``.

Severity 0 is the clean test set itself, bit for bit (tests/test_shift.py checks it).
Like ``make_dataset``, ``mnist1d_shifted`` reseeds numpy's and Python's global random
state. No stage reads this module: the pipeline does not run a distribution-shift
study.
"""

from __future__ import annotations

import numpy as np

MAX_SEVERITY = 5
MNIST1D_KINDS = ("noise", "scale", "shear")
IMAGE_KINDS = ("gaussian_noise", "blur", "contrast")
# Per severity 1..5 (0: none). Noise sd in units of the pixel range [0, 1]; blur sd in
# pixels; contrast factor c (x -> mean + c (x - mean)). CIFAR-10-C's own ladders are of
# the same order (noise 0.04-0.10 of [0, 1], contrast 0.4-0.05).
_NOISE_SD = (0.0, 0.04, 0.06, 0.08, 0.09, 0.10)
_BLUR_SD = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5)
_CONTRAST = (1.0, 0.4, 0.3, 0.2, 0.1, 0.05)


def _check(kind: str, kinds: tuple[str, ...], severity: int) -> None:
    if kind not in kinds:
        raise ValueError(f"shift kind {kind!r} is not allowed: one of {', '.join(kinds)}")
    if not (isinstance(severity, (int, np.integer)) and 0 <= severity <= MAX_SEVERITY):
        raise ValueError(f"severity {severity!r} is not allowed: an integer from 0 to "
                         f"{MAX_SEVERITY}")


def _mnist1d_raw(num_samples: int, train_split: float, seed: int, kind: str,
                 severity: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``make_dataset``'s examples before normalization (its own loop and shuffle), with
    ``kind`` scaled by ``severity``; (xs, ys, index of the first test example)."""
    from mnist1d.data import get_dataset_args, get_templates, set_seed, transform

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    if kind == "noise":
        args.corr_noise_scale *= 2.0 ** severity
        args.iid_noise_scale *= 2.0 ** severity
    elif kind == "scale":
        args.scale_coeff *= 1 + severity
    elif kind == "shear":
        args.shear_scale *= 1 + severity
    templates = get_templates()
    set_seed(args.seed)
    xs, ys = [], []
    for label_ix in range(len(templates["y"])):
        for _ in range(args.num_samples // len(templates["y"])):
            x, _t = transform(templates["x"][label_ix], templates["t"], args)
            xs.append(x)
            ys.append(templates["y"][label_ix])
    # make_dataset's shuffle: the same draw from the global state it seeded
    order = np.random.permutation(len(ys))  # noqa: NPY002
    xs, ys = np.stack(xs)[order], np.stack(ys)[order]
    return xs, ys, int(len(ys) * args.train_split)


def mnist1d_shifted(num_samples: int, train_split: float, seed: int, kind: str,
                    severity: int) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST-1D test set (``x_test`` (n_test, 40) float64, ``y_test`` int64) of
    ``biasvar.data.providers.mnist1d.load(num_samples, train_split, seed)`` shifted by
    ``kind`` at ``severity`` (module docstring); severity 0 returns that test set."""
    _check(kind, MNIST1D_KINDS, severity)
    clean, _, split = _mnist1d_raw(num_samples, train_split, seed, kind, 0)
    mean, sd = clean.mean(), clean.std()  # what make_dataset divides the clean set by
    xs, ys, split = _mnist1d_raw(num_samples, train_split, seed, kind, severity)
    return (xs[split:] - mean) / sd, ys[split:].astype(np.int64)


def _blur(x: np.ndarray, sd: float) -> np.ndarray:
    """Separable Gaussian blur of (n, channels, h, w) images, edges reflected."""
    radius = max(1, int(np.ceil(3 * sd)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sd) ** 2)
    k /= k.sum()
    out = x.astype(np.float64)
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        n = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(i, i + n), axis=axis)
                  for i, w in enumerate(k))
    return out


def corrupt_images(x: np.ndarray, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """``x`` (n, channels, h, w), values in [0, 1], corrupted by ``kind`` at ``severity``
    and clipped to [0, 1]; float64. Severity 0 returns ``x`` as float64, unchanged.
    ``seed`` fixes the noise (the same for every call with the same arguments)."""
    _check(kind, IMAGE_KINDS, severity)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"images of shape {x.shape} are not allowed: (n, channels, h, w)")
    if severity == 0:
        return x.copy()
    if kind == "gaussian_noise":
        noise = np.random.default_rng(seed).normal(0.0, _NOISE_SD[severity], x.shape)
        out = x + noise
    elif kind == "blur":
        out = _blur(x, _BLUR_SD[severity])
    else:  # contrast: each image towards its own mean over channels and pixels
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        out = mean + _CONTRAST[severity] * (x - mean)
    return np.clip(out, 0.0, 1.0)
