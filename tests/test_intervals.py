"""Coverage of the summary intervals, measured by simulation with known truth.

Synthetic nested ensembles: member (draw d, seed s) has logits
``mu[n] + A_d[n] + B_ds[n]`` over N examples and C = 3 classes, with a draw
effect ``A`` (sd ``SD_DRAW``) and a seed effect ``B`` (sd ``SD_SEED``), each half
shared by all examples (a per-draw / per-seed shift of the classes, so the
examples are *not* independent) and half per example. The population values
are computed without Monte Carlo where possible: Gauss-Hermite quadrature over
the 2-D softmax-relevant subspace for the moments of p and log p (nested for
Neal's split), a 1-D integral for the probability of each predicted class.
The expected ECE of one member and the finite-ensemble targets of the argmax /
binned statistics (``summary.FINITE_ENSEMBLE``) are means over independent
simulated members / ensembles. Each design is repeated ``REPS`` times; the
empirical coverage at nominal 95 % must be >= 90 % for every interval the
summary reports (binomial sd at 400 repetitions: 1.5 points at 90 %, so 90 %
and 70 % are 13 sd apart). The bias-variance-diversity terms target an ensemble of
one draw's S seeds (``S_ENSEMBLE``): in closed form for the squared error
(bias² + sampling variance + optimization variance / S, and diversity =
optimization variance x (S-1)/S), by the mean over simulated designs for CE.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import log_softmax, ndtr, softmax

from biasvar.analysis.calibration import ece_batched
from biasvar.analysis.summary import FINITE_ENSEMBLE, QUANTITIES, summarize

N, C = 100, 3
SD_DRAW, SD_SEED, SHARED = 0.8, 0.6, 0.5
REPS = 400
DESIGNS = [(8, 4), (32, 4), (16, 1)]
NEAL = ("var_optimization", "var_sampling", "var_optimization_unbiased",
        "var_sampling_unbiased")
# Targets that depend on the number of seeds S (the ensemble of one draw).
S_ENSEMBLE = ("mse_ensemble_loss", "mse_diversity", "ce_ensemble_loss", "ce_diversity")


def ensemble_truth(truth: dict[str, float], s: int) -> dict[str, float]:
    """Population values of the squared-error diversity terms for S-seed ensembles."""
    opt = truth["var_optimization"]
    return {"mse_ensemble_loss": truth["mse_bias2"] + truth["var_sampling"] + opt / s,
            "mse_diversity": opt * (s - 1) / s}


class Nested:
    """Known example effects and labels; ``sample`` draws a D x S ensemble (draw-major)."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.mu = rng.normal(scale=1.5, size=(N, C))
        self.labels = (rng.uniform(size=(N, 1)) > softmax(self.mu, -1).cumsum(-1)).sum(-1)

    def sample(self, rng: np.random.Generator, d: int, s: int) -> np.ndarray:
        sh, ind = np.sqrt(SHARED), np.sqrt(1 - SHARED)
        a = SD_DRAW * (sh * rng.normal(size=(d, 1, 1, C)) + ind * rng.normal(size=(d, 1, N, C)))
        b = SD_SEED * (sh * rng.normal(size=(d, s, 1, C)) + ind * rng.normal(size=(d, s, N, C)))
        return (self.mu + a + b).reshape(d * s, N, C)


def _gauss(g: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of E f(Z), Z ~ N(0, I_2), on a g x g Gauss-Hermite grid."""
    x, w = hermegauss(g)
    w = w / w.sum()
    return (np.stack(np.meshgrid(x, x, indexing="ij"), -1).reshape(-1, 2),
            np.outer(w, w).ravel())


def population(model: Nested, g: int = 12) -> dict[str, float]:
    """Population values of the non-ensemble quantities (infinite draws and seeds).

    Per example, the draw and seed effects are isotropic Gaussians; softmax
    ignores the (1, 1, 1) direction, so expectations are 2-D integrals over an
    orthonormal basis ``u`` of its complement.
    """
    mu, y = model.mu, model.labels
    u = np.linalg.qr(np.column_stack([np.ones(C), np.eye(C)[:, :C - 1]]))[0][:, 1:]  # (C, 2)
    z, wz = _gauss(g)
    e = z @ u.T  # (G, C) standard normal logit perturbations
    sd = np.hypot(SD_DRAW, SD_SEED)
    logp = log_softmax(mu[None] + sd * e[:, None], -1)  # (G, N, C)
    p = np.exp(logp)
    mean_p = np.einsum("g,gnc->nc", wz, p)
    mean_sq = np.einsum("g,gn->n", wz, (p**2).sum(-1))
    mean_logp = np.einsum("g,gnc->nc", wz, logp)
    # E_draw ||E_seed[p | draw]||^2, nested quadrature
    draw = mu[None] + SD_DRAW * e[:, None]  # (G, N, C)
    seed_mean = np.stack([np.einsum("g,gnc->nc", wz, softmax(x + SD_SEED * e[:, None], -1))
                          for x in draw])
    mean_draw_sq = np.einsum("g,gn->n", wz, (seed_mean**2).sum(-1))
    # P(member predicts k) = E_t prod_{j != k} Phi(t + (mu_k - mu_j) / sd), t ~ N(0, 1)
    t, wt = hermegauss(64)
    cdf = ndtr(t[:, None, None, None] + (mu[:, :, None] - mu[:, None, :])[None] / sd)
    cdf[..., np.arange(C), np.arange(C)] = 1.0
    p_pred = np.einsum("t,tnk->nk", wt / wt.sum(), cdf.prod(-1))
    rows = np.arange(N)
    onehot = np.eye(C)[y]
    total = mean_sq - (mean_p**2).sum(-1)
    sampling = mean_draw_sq - (mean_p**2).sum(-1)
    out = {
        "mse_bias2": ((mean_p - onehot) ** 2).sum(-1).mean(),
        "mse_var": total.mean(),
        "var_optimization": (total - sampling).mean(),
        "var_sampling": sampling.mean(),
        "ce_loss": -mean_logp[rows, y].mean(),
        "ce_var": -np.log(np.exp(mean_logp).sum(-1)).mean(),
        "member_error": 1.0 - p_pred[rows, y].mean(),
    }
    out["mse_loss"] = out["mse_bias2"] + out["mse_var"]
    out["ce_bias"] = out["ce_loss"] - out["ce_var"]
    out["zero_one_error"] = out["member_error"]
    for q in ("mse_bias2", "mse_var", "var_optimization", "var_sampling"):
        out[f"{q}_unbiased"] = out[q]
    # expected ECE of one member (members with their own draw and seed): Monte Carlo
    rng = np.random.default_rng(99)
    members = softmax(model.sample(rng, 20_000, 1), -1)
    out["member_ece"] = float(ece_batched(members, y, 15).mean())
    return out


@pytest.fixture(scope="module")
def model() -> Nested:
    return Nested()


@pytest.fixture(scope="module")
def truth(model) -> dict[str, float]:
    return population(model)


def test_quadrature_truth_matches_monte_carlo(model, truth):
    """The quadrature truth is what a very large nested ensemble converges to."""
    rng = np.random.default_rng(7)
    d, s = 400, 50  # 20,000 members
    p = softmax(model.sample(rng, d, s), -1).reshape(d, s, N, C)
    draw_mean = p.mean(1)
    total = ((p - p.mean((0, 1))) ** 2).sum(-1).mean((0, 1)).mean()
    opt = ((p - draw_mean[:, None]) ** 2).sum(-1).mean((0, 1)).mean() * s / (s - 1)
    err = (p.argmax(-1) != model.labels).mean()
    onehot = np.eye(C)[model.labels]
    ens_loss = ((draw_mean - onehot) ** 2).sum(-1).mean()  # draws' 50-seed ensembles
    assert ens_loss == pytest.approx(ensemble_truth(truth, s)["mse_ensemble_loss"], abs=4e-3)
    # Monte Carlo sd: about 2e-3 (the shared effects move all examples together)
    assert total == pytest.approx(truth["mse_var"], abs=4e-3)
    assert opt == pytest.approx(truth["var_optimization"], abs=2e-3)
    assert err == pytest.approx(truth["member_error"], abs=1e-2)


def _coverage(model: Nested, truth: dict[str, float], d: int, s: int) -> dict:
    draws = np.repeat(np.arange(d), s)
    # finite-ensemble targets: mean over independent ensembles of the same design
    rng = np.random.default_rng(1000 + d * s)
    fin = np.array([summarize(model.sample(rng, d, s), model.labels, draws, intervals=False).value
                    for _ in range(200)])
    exact = truth | ensemble_truth(truth, s)
    target = np.array([fin[:, j].mean() if q in FINITE_ENSEMBLE or q.startswith("ce_")
                       and q in S_ENSEMBLE else exact[q] for j, q in enumerate(QUANTITIES)])
    rng = np.random.default_rng(d * s)
    hit = np.zeros(len(QUANTITIES))
    finite = np.zeros(len(QUANTITIES))
    value_inside = np.zeros(len(QUANTITIES))
    for _ in range(REPS):
        sm = summarize(model.sample(rng, d, s), model.labels, draws)
        ok = np.isfinite(sm.ci_low) & np.isfinite(sm.ci_high)
        finite += ok
        hit += ok & (sm.ci_low <= target) & (target <= sm.ci_high)
        value_inside += ok & (sm.ci_low <= sm.value) & (sm.value <= sm.ci_high)
    return {q: (hit[j] / REPS, finite[j] / REPS, value_inside[j] / REPS)
            for j, q in enumerate(QUANTITIES)}


@pytest.fixture(scope="module", params=DESIGNS, ids=[f"{d}x{s}" for d, s in DESIGNS])
def coverage(request, model, truth):
    d, s = request.param
    return d, s, _coverage(model, truth, d, s)


def test_coverage_of_every_reported_interval(coverage):
    d, s, cov = coverage
    claimed = [q for q in QUANTITIES if not (s == 1 and q in NEAL)]
    table = "\n".join(f"{q:26s} {c:.3f}" for q, (c, _, _) in cov.items())
    print(f"\ncoverage at nominal 95 %, {d} draws x {s} seeds, {REPS} repetitions\n{table}")
    for q in claimed:
        c, fin, _ = cov[q]
        assert fin == 1.0, f"{q}: interval NaN in {1 - fin:.0%} of repetitions"
        assert c >= 0.90, f"{q}: coverage {c:.3f} < 0.90 ({d} x {s})\n{table}"
    for q in set(QUANTITIES) - set(claimed):  # Neal's split with one seed: no interval
        assert cov[q][1] == 0.0, q


def test_plugin_bias_is_visible_not_hidden(coverage):
    """The plug-in optimization variance is low by (S-1)/S: it lies outside the interval
    of the population value in most repetitions; unbiased estimates always lie inside."""
    d, s, cov = coverage
    if s == 1:
        return
    assert cov["var_optimization"][2] < 0.5
    for q in ("var_optimization_unbiased", "mse_var_unbiased", "mse_bias2_unbiased",
              "mse_loss", "member_error", "ensemble_error"):
        assert cov[q][2] == 1.0, q


def test_one_draw_has_no_intervals(model):
    rng = np.random.default_rng(3)
    sm = summarize(model.sample(rng, 1, 6), model.labels, np.zeros(6, int))
    assert np.isnan(sm.ci_low).all() and np.isnan(sm.ci_high).all()
    est = dict(zip(sm.quantities, sm.estimate, strict=True))
    for q in ("mse_var", "mse_var_unbiased", "mse_bias2_unbiased", "var_sampling", "ce_var"):
        assert np.isnan(est[q]), q
    for q in ("mse_loss", "var_optimization_unbiased", "member_error", "member_ece"):
        assert np.isfinite(est[q]), q


def test_two_draws_leave_variance_intervals_undefined(model):
    """Leave-one-out grids of one draw cannot estimate a total variance: NaN, not 0."""
    rng = np.random.default_rng(4)
    sm = summarize(model.sample(rng, 2, 3), model.labels, np.repeat([0, 1], 3))
    j = {q: i for i, q in enumerate(sm.quantities)}
    assert np.isnan(sm.ci_low[j["mse_var_unbiased"]])
    assert np.isnan(sm.ci_low[j["var_sampling"]])
    assert np.isfinite(sm.ci_low[j["mse_loss"]]) and np.isfinite(sm.ci_low[j["ce_loss"]])
