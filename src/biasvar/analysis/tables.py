"""The decompose stage's work: from the logits dataset to the decomposition tables.

``decompose_all`` reads each config of the logits dataset (both partitions),
runs ``summary.per_example`` and ``summary.summarize`` and returns three
Arrow tables (per example, per config summary, reliability bins).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biasvar.core.schema import (
    DECOMPOSITION,
    EXAMPLE_TERMS,
    PARTITIONS,
    RELIABILITY,
    SUMMARY,
    table_from_columns,
)


def decompose_all(logits_dir: str | Path, noisy_flags: dict, label_noise: list, widths: list,
                  n_boot: int, seed: int, ci: float, n_bins: int):
    """Decompose every config; returns ``(examples, summary, reliability)`` Arrow tables.

    ``noisy_flags[p]`` is the training set's label-noise flag array at level ``p``
    (``None``: no flags). Configs are processed in sorted order so the tables
    come out sorted as their schemas require.
    """
    from biasvar.analysis.summary import per_example, summarize
    from biasvar.ensemble.logits import read_config

    ex = {f.name: [] for f in DECOMPOSITION.arrow}
    sm = {f.name: [] for f in SUMMARY.arrow}
    rl = {f.name: [] for f in RELIABILITY.arrow}
    for p in sorted(label_noise, key=float):
        for w in sorted(widths):
            for part in PARTITIONS:
                c = read_config(logits_dir, p, w, part)
                noisy = noisy_flags.get(p) if part == "train" else None
                cols = per_example(c.logits, c.labels, c.draws, noisy)
                n = len(c.labels)
                config = {"label_noise": np.full(n, float(p)), "width": np.full(n, w),
                          "partition": np.full(n, part, dtype=object)}
                for k, v in config.items():
                    ex[k].append(v)
                for k in ("example", "label", "noisy", "ensemble_prediction", "correct",
                          *EXAMPLE_TERMS):
                    ex[k].append(cols[k])
                s = summarize(c.logits, c.labels, c.draws, n_boot=n_boot, seed=seed, ci=ci,
                              n_bins=n_bins)
                order = np.argsort(s.quantities)  # schema sorts by quantity name
                q = len(order)
                sm["label_noise"].append(np.full(q, float(p)))
                sm["width"].append(np.full(q, w))
                sm["partition"].append(np.full(q, part, dtype=object))
                sm["quantity"].append(np.asarray(s.quantities, dtype=object)[order])
                sm["value"].append(s.value[order])
                sm["ci_low"].append(s.ci_low[order])
                sm["ci_high"].append(s.ci_high[order])
                for k, v in (("members", s.n_members), ("draws", s.n_draws),
                             ("seeds", s.n_seeds)):
                    sm[k].append(np.full(q, v))
                for name, rel in (("ensemble", s.reliability_ensemble),
                                  ("members", s.reliability_members)):
                    b = len(rel.count)
                    rl["label_noise"].append(np.full(b, float(p)))
                    rl["width"].append(np.full(b, w))
                    rl["partition"].append(np.full(b, part, dtype=object))
                    rl["predictor"].append(np.full(b, name, dtype=object))
                    rl["bin"].append(np.arange(b))
                    for k in ("lower", "upper", "count", "confidence", "accuracy"):
                        rl[k].append(getattr(rel, k))
    # 'ensemble' < 'members': the loop order above already sorts predictors
    return (table_from_columns(DECOMPOSITION, ex), table_from_columns(SUMMARY, sm),
            table_from_columns(RELIABILITY, rl))
