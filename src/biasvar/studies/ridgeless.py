"""Double descent of min-norm ("ridgeless") least squares on Legendre features.

Protocol (Schaeffer et al., ICLR 2024 blogpost; ``shared/REFERENCES.md``):
target ``y = 2x + cos(25x)`` (plus optional Gaussian noise), ``n_train``
inputs ``x ~ U(-1, 1)``, features the Legendre polynomials of degree 1..P
(no constant column), fit ``beta = X^+ y`` with the pseudo-inverse, which is
the ordinary least-squares solution for P <= N and the minimum-norm
interpolant for P > N. The test error, on an evenly spaced grid of [-1, 1],
peaks at the interpolation threshold P = N, where the smallest non-zero
singular value of the design is smallest, and falls again beyond it.

Repeat r draws its training inputs (and noise) from ``(seed, "ridgeless", r)``:
every P sees the same repeats (paired comparisons across P).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from biasvar.core.config import (
    MAX_BOOTSTRAP,
    MAX_SAMPLES,
    Int,
    Ints,
    NonNegativeFloat,
    Section,
    Seed,
)
from biasvar.core.rng import numpy_generator
from biasvar.studies.common import StudyResult

# Columns of the ridgeless table, one row per number of features P. MSEs are in
# squared target units; the summaries are over repeats.
RIDGELESS_COLUMNS = (
    "n_features",  # P: Legendre degrees 1..P
    "n_train",  # N, so that the threshold P = N can be drawn from the table alone
    "train_mse_mean",
    "train_mse_median",
    "test_mse_mean",
    "test_mse_median",
    "test_mse_q25",  # 25 % quantile of the test MSE over repeats
    "test_mse_q75",  # 75 % quantile
    "coef_norm_median",  # median over repeats of ||beta||_2
)


class RidgelessParams(Section):
    """The ``ridgeless.*`` section of params.yaml."""

    SECTION: ClassVar[str] = "ridgeless"
    # Bounds: a design matrix of n_train x P float64 per repeat; far above the blogpost's
    # 15 points and 200 features.
    n_features: Ints(1, "integers", 10_000)  # P values of the sweep (Legendre degrees 1..P)
    n_train: Int(1, "an integer", 100_000)  # N: the interpolation threshold is P = N
    n_test: Int(2, "an integer", MAX_SAMPLES)  # evenly spaced test points on [-1, 1]
    repeats: Int(1, "an integer", MAX_BOOTSTRAP)  # training draws per P (same for every P)
    noise_std: NonNegativeFloat  # noise on the training targets (0: noiseless, as the blogpost)
    seed: Seed


def target_function(x: np.ndarray) -> np.ndarray:
    """``2x + cos(25x)``."""
    x = np.asarray(x, dtype=np.float64)
    return 2 * x + np.cos(25 * x)


def legendre_features(x: np.ndarray, n_features: int) -> np.ndarray:
    """``(N, P)``: Legendre polynomials of degree 1..P at ``x`` (in [-1, 1])."""
    return np.polynomial.legendre.legvander(np.asarray(x, dtype=np.float64), n_features)[:, 1:]


def pinv_cutoff(shape: tuple[int, int]) -> float:
    """Relative singular-value cutoff: machine epsilon x max(N, P), as ``numpy.linalg.lstsq``."""
    return float(np.finfo(np.float64).eps * max(shape))


def min_norm_fit(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``beta = X^+ y`` via the SVD pseudo-inverse, shape (P,).

    Singular values below ``pinv_cutoff * sigma_max`` are treated as zero, the
    same rule as ``numpy.linalg.lstsq(rcond=None)``, so both return the same
    minimum-norm least-squares solution.
    """
    u, s, vt = np.linalg.svd(np.asarray(features, np.float64), full_matrices=False)
    keep = s > pinv_cutoff(features.shape) * (s[0] if len(s) else 0.0)
    inv = np.zeros_like(s)
    inv[keep] = 1.0 / s[keep]
    return vt.T @ (inv * (u.T @ np.asarray(y, np.float64)))


def run_ridgeless(n_features: Sequence[int], n_train: int, n_test: int, repeats: int,
                  noise_std: float, seed: int) -> StudyResult:
    """Train and test MSE per number of features P (columns ``RIDGELESS_COLUMNS``), and metrics.

    Metrics: ``peak_n_features`` (P maximizing the median test MSE; the mean is
    dominated by a few near-singular repeats, so ``peak_n_features_mean`` is
    reported beside it), ``n_train`` (the threshold), and the best P below and
    above the threshold with their median test MSE.
    """
    import pandas as pd

    grid = np.linspace(-1.0, 1.0, n_test)  # (T,)
    f_grid = target_function(grid)
    draws = []
    for r in range(repeats):
        rng = numpy_generator(seed, "ridgeless", r)
        x = rng.uniform(-1.0, 1.0, n_train)  # (N,)
        draws.append((x, target_function(x) + noise_std * rng.standard_normal(n_train)))
    max_p = max(n_features)
    train_all = [legendre_features(x, max_p) for x, _ in draws]  # each (N, max P)
    test_all = legendre_features(grid, max_p)  # (T, max P)

    rows = []
    for p in n_features:
        train_mse, test_mse, norms = [], [], []
        for (_, y), feats in zip(draws, train_all, strict=True):
            beta = min_norm_fit(feats[:, :p], y)  # (P,)
            train_mse.append(np.mean((feats[:, :p] @ beta - y) ** 2))
            test_mse.append(np.mean((test_all[:, :p] @ beta - f_grid) ** 2))
            norms.append(np.linalg.norm(beta))
        test_mse = np.asarray(test_mse)
        rows.append({
            "n_features": p, "n_train": n_train,
            "train_mse_mean": float(np.mean(train_mse)),
            "train_mse_median": float(np.median(train_mse)),
            "test_mse_mean": float(test_mse.mean()),
            "test_mse_median": float(np.median(test_mse)),
            "test_mse_q25": float(np.quantile(test_mse, 0.25)),
            "test_mse_q75": float(np.quantile(test_mse, 0.75)),
            "coef_norm_median": float(np.median(norms)),
        })
    table = pd.DataFrame(rows, columns=list(RIDGELESS_COLUMNS))
    metrics = {
        "n_train": n_train,
        "peak_n_features": int(table.loc[table["test_mse_median"].idxmax(), "n_features"]),
        "peak_test_mse_median": float(table["test_mse_median"].max()),
        "peak_n_features_mean": int(table.loc[table["test_mse_mean"].idxmax(), "n_features"]),
    }
    for side, part in (("under", table[table["n_features"] < n_train]),
                       ("over", table[table["n_features"] > n_train])):
        if len(part):
            best = part.loc[part["test_mse_median"].idxmin()]
            metrics[f"best_n_features_{side}"] = int(best["n_features"])
            metrics[f"best_test_mse_median_{side}"] = float(best["test_mse_median"])
    return StudyResult(table, metrics)
