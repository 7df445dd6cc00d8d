"""The classical bias-variance trade-off on a 1-D toy regression (UDL ch. 8, notebook 8.2).

Protocol (``shared/REFERENCES.md`` § Toy regression):

- true function ``f(x) = exp(sin(2 pi x))`` on [0, 1];
- a dataset is ``n_train`` points, point i drawn uniformly from
  ``[i / n_train, (i + 1) / n_train)`` (one per stratum), with targets
  ``y = f(x) + N(0, sigma^2)``;
- the model with D hidden units has a *fixed* first layer, unit c computing
  ``ReLU(x - c / D)`` for c = 0..D-1, and a second layer ``beta + sum_c w_c h_c``
  fitted in closed form by least squares (the minimum-norm solution when the
  design is rank deficient, i.e. when D + 1 exceeds the number of points);
- for each D, ``n_datasets`` independent datasets give ``n_datasets`` fits,
  evaluated on ``n_grid`` evenly spaced points of [0, 1];
- per D: noise = sigma^2, bias^2 = mean over x of (mean fit - f)^2, variance =
  mean over x of the across-fit variance (``regression_decomposition``),
  their sum (the expected test loss), and the *measured* test loss of the fits
  on fresh noisy targets at the grid points (a Monte Carlo check of the sum).

Dataset k is the same for every D (its generator depends on ``(seed, k)`` only):
the curves over D are paired comparisons, which keeps their shape free of
between-D sampling noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from biasvar.core.config import Int, Ints, NonNegativeFloat, Section, Seed
from biasvar.core.rng import numpy_generator
from biasvar.studies.common import StudyResult

# Columns of the trade-off table, one row per number of hidden units D.
TRADEOFF_COLUMNS = (
    "hidden_units",  # D
    "n_params",  # D + 1 (second-layer weights and the intercept beta)
    "noise",  # sigma^2, in squared target units
    "bias2",  # mean over the grid of (mean fit - f)^2
    "variance",  # mean over the grid of the across-dataset variance of the fit
    "total",  # noise + bias2 + variance: the expected test loss
    "test_loss",  # measured: mean squared error of the fits on fresh noisy targets
    "test_loss_se",  # standard error of test_loss over datasets
    "train_loss",  # mean squared error on the training points, mean over datasets
)


class TradeoffParams(Section):
    """The ``tradeoff.*`` section of params.yaml."""

    SECTION: ClassVar[str] = "tradeoff"
    # Bounds: generous for a 1-D toy (15 points, 100 datasets, D <= 12 by default).
    hidden_units: Ints(1, "integers", 1000)  # D values of the sweep
    n_datasets: Int(2, "an integer", 10_000)  # fits per D (>= 2: a variance needs two)
    n_train: Int(2, "an integer", 10_000)  # points per dataset, one per stratum of [0, 1]
    noise_std: NonNegativeFloat  # sigma of the Gaussian target noise
    n_grid: Int(2, "an integer", 10_000)  # evaluation points, evenly spaced on [0, 1]
    test_draws: Int(1, "an integer", 1000)  # fresh noisy targets per grid point (test loss)
    seed: Seed


@dataclass(frozen=True)
class RegressionTerms:
    """Squared-error decomposition against a known truth, averaged per input point."""

    noise: float  # sigma^2
    bias2: np.ndarray  # (N,) (mean_k f_k - f)^2
    var: np.ndarray  # (N,) mean_k (f_k - mean f)^2
    expected_loss: np.ndarray  # (N,) noise + bias2 + var


def regression_decomposition(preds: np.ndarray, f_true: np.ndarray,
                             noise_var: float) -> RegressionTerms:
    """Decompose fits ``preds`` ``(K, N)`` (K datasets) against the true ``f_true`` ``(N,)``.

    For a fresh target y = f(x) + eps, Var eps = noise_var, independent of the
    fit: E[(f_k(x) - y)^2] = noise_var + bias^2(x) + var(x) (plug-in over K fits).
    """
    preds = np.asarray(preds, dtype=np.float64)
    if preds.shape[0] < 2:
        raise ValueError(f"the regression variance needs at least 2 fits, got {preds.shape[0]}")
    # mean shifted by the first fit: exactly preds[0] when all fits agree (variance 0, not 1e-33)
    mean = preds[0] + (preds - preds[0]).mean(axis=0)
    bias2 = (mean - np.asarray(f_true, dtype=np.float64)) ** 2
    var = ((preds - mean) ** 2).mean(axis=0)
    return RegressionTerms(float(noise_var), bias2, var, noise_var + bias2 + var)


def true_function(x: np.ndarray) -> np.ndarray:
    """``exp(sin(2 pi x))``, the toy's true regression function."""
    return np.exp(np.sin(2 * np.pi * np.asarray(x, dtype=np.float64)))


def stratified_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n,)`` inputs, point i uniform in ``[i / n, (i + 1) / n)``."""
    return (np.arange(n) + rng.random(n)) / n


def relu_features(x: np.ndarray, hidden_units: int) -> np.ndarray:
    """``(N, D + 1)`` design: a column of ones (intercept), then ``ReLU(x - c / D)``, c = 0..D-1."""
    x = np.asarray(x, dtype=np.float64)
    knots = np.arange(hidden_units) / hidden_units  # (D,)
    h = np.maximum(x[:, None] - knots[None, :], 0.0)  # (N, D)
    return np.concatenate([np.ones((len(x), 1)), h], axis=1)


def fit_second_layer(x: np.ndarray, y: np.ndarray, hidden_units: int) -> np.ndarray:
    """Least-squares ``(beta, w_0, ..., w_{D-1})`` of the fixed-first-layer model, shape (D + 1,).

    ``numpy.linalg.lstsq`` returns the minimum-norm solution when the design
    is rank deficient (more parameters than distinct points, or empty strata).
    """
    coef, *_ = np.linalg.lstsq(relu_features(x, hidden_units), np.asarray(y, np.float64),
                               rcond=None)
    return coef


def predict(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The fitted model at ``x``; ``coef`` is ``(D + 1,)`` or a stack ``(K, D + 1)``."""
    coef = np.asarray(coef, dtype=np.float64)
    return coef @ relu_features(x, coef.shape[-1] - 1).T  # (N,) or (K, N)


@dataclass(frozen=True)
class Datasets:
    """``n_datasets`` toy datasets: inputs, noisy targets, and fresh test noise on the grid."""

    x: np.ndarray  # (K, n_train) inputs in [0, 1)
    y: np.ndarray  # (K, n_train) noisy training targets
    grid: np.ndarray  # (N,) evaluation inputs, evenly spaced on [0, 1]
    test_noise: np.ndarray  # (K, T, N) fresh N(0, sigma^2) noise for the measured test loss


def make_datasets(n_datasets: int, n_train: int, noise_std: float, n_grid: int,
                  test_draws: int, seed: int, truth=true_function) -> Datasets:
    """Dataset k from ``(seed, "tradeoff", k)``, its test noise from ``(seed, "tradeoff-test", k)``.

    ``truth`` maps inputs to the noiseless target (the toy's ``exp(sin(2 pi x))``
    by default; tests pass functions inside the model class).
    """
    xs, ys, noise = [], [], []
    grid = np.linspace(0.0, 1.0, n_grid)  # (N,)
    for k in range(n_datasets):
        rng = numpy_generator(seed, "tradeoff", k)
        x = stratified_inputs(rng, n_train)
        xs.append(x)
        ys.append(truth(x) + noise_std * rng.standard_normal(n_train))
        test_rng = numpy_generator(seed, "tradeoff-test", k)
        noise.append(noise_std * test_rng.standard_normal((test_draws, n_grid)))
    return Datasets(np.stack(xs), np.stack(ys), grid, np.stack(noise))


@dataclass(frozen=True)
class TradeoffRow:
    """The decomposition at one D, averaged over the grid (see ``TRADEOFF_COLUMNS``)."""

    hidden_units: int
    n_params: int
    noise: float
    bias2: float
    variance: float
    total: float
    test_loss: float
    test_loss_se: float
    train_loss: float


def decompose_hidden_units(data: Datasets, hidden_units: int, noise_std: float,
                           truth=true_function) -> TradeoffRow:
    """Fit every dataset with D = ``hidden_units`` and decompose the fits' test loss."""
    coefs = np.stack([fit_second_layer(x, y, hidden_units)
                      for x, y in zip(data.x, data.y, strict=True)])  # (K, D + 1)
    preds = predict(coefs, data.grid)  # (K, N)
    f = truth(data.grid)  # (N,)
    terms = regression_decomposition(preds, f, noise_std ** 2)
    # Measured loss on fresh targets y = f(x) + eps at the grid points: per
    # dataset, mean over test draws and grid points.
    resid = preds[:, None, :] - (f[None, None, :] + data.test_noise)  # (K, T, N)
    per_dataset = (resid ** 2).mean(axis=(1, 2))  # (K,)
    k = len(per_dataset)
    train_fit = np.einsum("kp,knp->kn", coefs,
                          np.stack([relu_features(x, hidden_units) for x in data.x]))  # (K, n)
    return TradeoffRow(
        hidden_units=hidden_units, n_params=hidden_units + 1, noise=terms.noise,
        bias2=float(terms.bias2.mean()), variance=float(terms.var.mean()),
        total=float(terms.expected_loss.mean()), test_loss=float(per_dataset.mean()),
        test_loss_se=float(per_dataset.std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan"),
        train_loss=float(((train_fit - data.y) ** 2).mean()))


def run_tradeoff(hidden_units: Sequence[int], n_datasets: int, n_train: int, noise_std: float,
                 n_grid: int, test_draws: int, seed: int) -> StudyResult:
    """The whole trade-off study: one row per D (columns ``TRADEOFF_COLUMNS``) and metrics.

    Metrics: ``argmin_total`` (D minimizing noise + bias^2 + variance),
    ``argmin_test_loss`` (D minimizing the measured test loss), the minima, and
    the settings.
    """
    import pandas as pd

    data = make_datasets(n_datasets, n_train, noise_std, n_grid, test_draws, seed)
    rows = [decompose_hidden_units(data, d, noise_std) for d in hidden_units]
    table = pd.DataFrame([r.__dict__ for r in rows], columns=list(TRADEOFF_COLUMNS))
    best = table.loc[table["total"].idxmin()]
    best_test = table.loc[table["test_loss"].idxmin()]
    metrics = {
        "argmin_total": int(best["hidden_units"]),
        "min_total": float(best["total"]),
        "argmin_test_loss": int(best_test["hidden_units"]),
        "min_test_loss": float(best_test["test_loss"]),
        "noise": float(noise_std ** 2),
        "n_datasets": n_datasets,
        "n_train": n_train,
    }
    return StudyResult(table, metrics)
