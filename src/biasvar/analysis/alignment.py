"""Bias-variance alignment (Chen et al. 2024): OLS of log variance on log bias^2.

Per config, over the examples the ensemble classifies correctly (and over all
examples): slope, intercept, R^2, Pearson r, Spearman rho, n, percentile
bootstrap CIs over examples, and the examples left out because a term is zero
or negative (its log is undefined): those are counted and reported, never
dropped silently. Alignment means slope ~ 1 and high R^2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class AlignmentFit:
    subset: str  # 'correct' | 'all'
    n: int  # examples in the fit
    n_subset: int  # examples in the subset before exclusions
    excluded_zero: int  # bias2 == 0 or var == 0
    excluded_negative: int  # bias2 < 0 or var < 0 (unbiased estimates)
    excluded_nonfinite: int  # NaN / inf terms
    slope: float
    intercept: float
    r2: float
    pearson: float
    spearman: float
    slope_ci: tuple[float, float]
    intercept_ci: tuple[float, float]
    r2_ci: tuple[float, float]
    mean_log_ratio: float  # mean(log var - log bias2): 0 when aligned on y = x
    median_ratio: float  # median(var / bias2)

    def as_dict(self) -> dict:
        return asdict(self)


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope, intercept and R^2 of y on x along the last axis (batched)."""
    xm, ym = x.mean(-1, keepdims=True), y.mean(-1, keepdims=True)
    dx, dy = x - xm, y - ym
    sxx, syy, sxy = (dx * dx).sum(-1), (dy * dy).sum(-1), (dx * dy).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sxy / sxx
        r2 = sxy**2 / (sxx * syy)
    return slope, ym[..., 0] - slope * xm[..., 0], r2


def fit_alignment(bias2: np.ndarray, var: np.ndarray, subset_mask: np.ndarray | None = None,
                  subset: str = "all", n_boot: int = 1000, seed: int = 0,
                  ci: float = 0.95) -> AlignmentFit:
    """Fit ``log var = slope * log bias2 + intercept`` over ``subset_mask`` examples."""
    from scipy import stats

    from biasvar.core.rng import numpy_generator

    bias2 = np.asarray(bias2, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    mask = np.ones(len(bias2), bool) if subset_mask is None else np.asarray(subset_mask, bool)
    b, v = bias2[mask], var[mask]
    nonfinite = ~(np.isfinite(b) & np.isfinite(v))
    negative = ~nonfinite & ((b < 0) | (v < 0))
    zero = ~nonfinite & ~negative & ((b == 0) | (v == 0))
    keep = ~(nonfinite | negative | zero)
    x, y = np.log(b[keep]), np.log(v[keep])
    n = len(x)
    nan2 = (float("nan"), float("nan"))
    if n < 3:
        return AlignmentFit(subset, n, int(mask.sum()), int(zero.sum()), int(negative.sum()),
                            int(nonfinite.sum()), *(float("nan"),) * 5, nan2, nan2, nan2,
                            float("nan"), float("nan"))
    slope, intercept, r2 = (float(a) for a in _ols(x, y))
    pearson = float(np.corrcoef(x, y)[0, 1])
    spearman = float(stats.spearmanr(x, y).statistic)
    # Percentile bootstrap over examples, all replicates at once: (n_boot, n) indices.
    rng = numpy_generator(seed, "alignment-bootstrap")
    cis = []
    if n_boot > 0:
        idx = rng.integers(0, n, size=(n_boot, n))
        bs = _ols(x[idx], y[idx])
        lo, hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
        cis = [tuple(float(q) for q in np.nanpercentile(a, [lo, hi])) for a in bs]
    else:
        cis = [nan2] * 3
    return AlignmentFit(subset, n, int(mask.sum()), int(zero.sum()), int(negative.sum()),
                        int(nonfinite.sum()), slope, intercept, r2, pearson, spearman,
                        cis[0], cis[1], cis[2], float((y - x).mean()),
                        float(np.median(np.exp(y - x))))
