"""The public API: bias, variance and diversity of any ensemble you bring.

Every function takes one config's member outputs as an array of shape
``(members, examples, classes)`` (numpy or torch, logits or probabilities), the
labels ``(examples,)`` and, optionally, each member's training-set ``draw`` and
optimization ``seed`` ``(members,)``. Members that share a draw were trained on
the same training set (a bootstrap resample, a split, or simply the same data);
without ``draw`` every member is its own draw (independent training sets). A
deep ensemble of seeds on one training set is ``draw = np.zeros(members)``: its
sampling variance and the intervals, which need two draws or more, are then NaN.

``import biasvar`` gives these names (``biasvar.decompose``, ...) without importing
the pipeline. The numbers are those of the pipeline's ``decompose`` stage, computed
by the same functions (``biasvar.analysis.summary``)::

    >>> import numpy as np, biasvar
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(8, 100, 3))        # 8 members, 100 examples, 3 classes
    >>> labels = rng.integers(0, 3, 100)
    >>> draw = np.repeat(np.arange(4), 2)            # 4 training sets x 2 seeds
    >>> table = biasvar.decompose(logits, labels=labels, draw=draw)
    >>> bool(np.allclose(table.mse_loss, table.mse_bias2 + table.mse_var))
    True
    >>> s = biasvar.summarize(logits, labels=labels, draw=draw).set_index("quantity")
    >>> bool(s.loc["mse_var", "ci_low"] <= s.loc["mse_var", "estimate"])
    True
"""

from __future__ import annotations

from typing import Any

from biasvar.analysis.inputs import ensemble_inputs
from biasvar.core.errors import InputError

__all__ = ["decompose", "diversity", "ensemble_inputs", "fit_alignment", "fit_table",
           "summarize"]

# The per-example columns of ``decompose`` besides the terms (biasvar.core.schema.EXAMPLE_TERMS).
_ID_COLUMNS = ("example", "label", "ensemble_prediction", "correct")


def decompose(logits: Any = None, probs: Any = None, *, labels: Any, draw: Any = None,
              seed: Any = None):
    """Every per-example term of one ensemble: a ``pandas.DataFrame``, one row per example.

    Columns: ``example``, ``label``, ``ensemble_prediction``, ``correct``,
    ``ensemble_confidence``; squared error on probabilities ``mse_loss = mse_bias2 +
    mse_var`` (plug-in) with the finite-ensemble unbiased ``mse_bias2_unbiased``,
    ``mse_var_unbiased``; Neal's split ``var_optimization + var_sampling`` (and
    ``_unbiased``; NaN with one seed per draw); cross-entropy ``ce_loss = ce_bias +
    ce_var`` (Bregman, around the normalized geometric mean); 0-1 loss
    ``zero_one_error = zero_one_bias + zero_one_net_var`` (Domingos); and the
    bias-variance-diversity terms ``mse_ensemble_loss = mse_bias2 + mse_var -
    mse_diversity`` and ``ce_ensemble_loss = ce_bias + ce_var - ce_diversity`` (the
    ensemble of one draw's seeds). Shapes: logits or probs ``(members, examples,
    classes)``, labels ``(examples,)``, draw and seed ``(members,)``.

    >>> import numpy as np, biasvar
    >>> t = biasvar.decompose(np.zeros((2, 3, 4)), labels=[0, 1, 2])
    >>> float(t.mse_var.max()), round(float(t.mse_bias2[0]), 4)  # equal members, p = 1/4
    (0.0, 0.75)
    """
    import pandas as pd

    from biasvar.analysis.summary import per_example

    a, y, d, _ = ensemble_inputs(logits, probs, labels, draw, seed)
    cols = per_example(a, y, d)
    cols.pop("noisy")
    return pd.DataFrame(cols)


def summarize(logits: Any = None, probs: Any = None, *, labels: Any, draw: Any = None,
              seed: Any = None, ci: float = 0.95, intervals: bool = True):
    """Per-ensemble values, population estimates and delete-one-draw jackknife intervals.

    A ``pandas.DataFrame`` with one row per quantity (``biasvar.analysis.summary.
    QUANTITIES``): ``value`` (the example mean of the per-example term, plug-in where
    the name says nothing else), ``estimate`` (of the infinite-ensemble value, or for
    the ensemble and diversity terms of an ensemble of one draw's seeds), ``ci_low``,
    ``ci_high`` (NaN with fewer than 2 draws), ``members``, ``draws``, ``seeds``. The
    intervals' coverage is tested by simulation (docs: concepts, intervals).

    >>> import numpy as np, biasvar
    >>> rng = np.random.default_rng(1)
    >>> s = biasvar.summarize(rng.normal(size=(6, 50, 3)), labels=rng.integers(0, 3, 50))
    >>> list(s.columns[:5]), int(s.draws[0]), int(s.seeds[0])
    (['quantity', 'value', 'estimate', 'ci_low', 'ci_high'], 6, 1)
    """
    import pandas as pd

    from biasvar.analysis.summary import summarize as _summarize

    a, y, d, _ = ensemble_inputs(logits, probs, labels, draw, seed)
    if a.shape[0] < 2:
        raise InputError(f"logits: {a.shape[0]} member; a summary needs at least 2")
    sm = _summarize(a, y, d, intervals=intervals, ci=ci)
    return pd.DataFrame({"quantity": list(sm.quantities), "value": sm.value,
                         "estimate": sm.estimate, "ci_low": sm.ci_low, "ci_high": sm.ci_high,
                         "members": sm.n_members, "draws": sm.n_draws, "seeds": sm.n_seeds})


ESTIMATORS = {"plugin": ("mse_bias2", "mse_var"),
              "unbiased": ("mse_bias2_unbiased", "mse_var_unbiased")}


def fit_alignment(logits: Any = None, probs: Any = None, *, labels: Any, draw: Any = None,
                  seed: Any = None, estimator: str = "plugin", subset: str = "correct",
                  n_boot: int = 1000, ci: float = 0.95) -> dict:
    """Bias-variance alignment (Chen et al. 2024): OLS of log variance on log bias².

    ``estimator``: ``plugin`` (the MSE terms of all members; bias² carries variance /
    K) or ``unbiased`` (the finite-ensemble corrected terms; examples whose unbiased
    bias² or variance is not positive are excluded and counted, never dropped
    silently). ``subset``: ``correct`` (examples the ensemble classifies correctly, as
    the paper fits) or ``all``. Returns a dict: ``slope``, ``intercept``, ``r2``,
    ``pearson``, ``spearman``, ``n``, the exclusion counts and percentile bootstrap
    intervals over examples (``n_boot`` replicates, seeded). Alignment means slope ≈ 1
    with a high R².

    >>> import numpy as np, biasvar
    >>> rng = np.random.default_rng(2)
    >>> fit = biasvar.fit_alignment(rng.normal(size=(8, 200, 3)), labels=np.zeros(200, int),
    ...                             subset="all", n_boot=0)
    >>> sorted(k for k in fit if k.startswith("excluded"))
    ['excluded_negative', 'excluded_nonfinite', 'excluded_zero']
    """
    _check_fit(estimator, subset)  # before the decomposition
    table = decompose(logits, probs, labels=labels, draw=draw, seed=seed)
    return fit_table(table, estimator, subset, n_boot, ci)


def _check_fit(estimator: str, subset: str) -> None:
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator = {estimator!r}; expected one of {', '.join(ESTIMATORS)}")
    if subset not in ("correct", "all"):
        raise InputError(f"subset = {subset!r}; expected correct or all")


def fit_table(table, estimator: str = "plugin", subset: str = "correct", n_boot: int = 1000,
              ci: float = 0.95) -> dict:
    """``fit_alignment`` on a ``decompose`` table already computed (one decomposition for
    several fits)."""
    from biasvar.analysis.alignment import fit_alignment as _fit

    _check_fit(estimator, subset)
    b, v = ESTIMATORS[estimator]
    mask = table.correct.to_numpy() if subset == "correct" else None
    out = _fit(table[b].to_numpy(), table[v].to_numpy(), mask, subset=subset,
               n_boot=n_boot, ci=ci).as_dict()
    out["estimator"] = estimator
    return out


def diversity(logits: Any = None, probs: Any = None, *, labels: Any, draw: Any = None,
              seed: Any = None):
    """Bias-variance-diversity (Wood et al. 2023) per example: a ``pandas.DataFrame``.

    The members that share a draw form one ensemble trained on that draw, combined by
    the mean probabilities (squared error) or the normalized geometric mean
    (cross-entropy). Columns, for ``mse`` and ``ce``: ``*_member_loss`` (mean member
    loss), ``*_ensemble_loss`` (mean over draws of the ensemble's loss), ``*_bias``,
    ``*_variance`` (of one member, plug-in, around the central prediction of all
    members) and ``*_diversity``, with ``ensemble_loss = bias + variance - diversity``
    exactly. With one seed per draw (the default without ``draw``) every ensemble is
    one member and the diversity is 0; a deep ensemble on one training set is
    ``draw = np.zeros(members)``. Summaries with intervals: ``summarize``.

    >>> import numpy as np, biasvar
    >>> rng = np.random.default_rng(3)
    >>> t = biasvar.diversity(rng.normal(size=(6, 20, 4)), labels=rng.integers(0, 4, 20),
    ...                       draw=np.repeat([0, 1], 3))
    >>> bool(np.allclose(t.ce_ensemble_loss, t.ce_bias + t.ce_variance - t.ce_diversity))
    True
    """
    import pandas as pd

    t = decompose(logits, probs, labels=labels, draw=draw, seed=seed)
    return pd.DataFrame({
        "example": t.example, "label": t.label,
        "mse_member_loss": t.mse_loss, "mse_ensemble_loss": t.mse_ensemble_loss,
        "mse_bias": t.mse_bias2, "mse_variance": t.mse_var, "mse_diversity": t.mse_diversity,
        "ce_member_loss": t.ce_loss, "ce_ensemble_loss": t.ce_ensemble_loss,
        "ce_bias": t.ce_bias, "ce_variance": t.ce_var, "ce_diversity": t.ce_diversity,
    })
