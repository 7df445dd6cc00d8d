"""The decompose stage's work: from the logits dataset to the decomposition tables.

``decompose_all`` reads each config of the logits dataset (both partitions),
runs ``summary.per_example`` and ``summary.summarize`` and returns three
Arrow tables (per example, per config summary, reliability bins).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biasvar.core.checks import require_finite_logits
from biasvar.core.errors import InputError
from biasvar.core.schema import (
    DECOMPOSITION,
    EXAMPLE_TERMS,
    PARTITIONS,
    RELIABILITY,
    SUMMARY,
    table_from_columns,
)


def decompose_all(logits_dir: str | Path, noisy_flags: dict, label_noise: list, widths: list,
                  intervals: bool, ci: float, n_bins: int,
                  in_bag: dict[int, np.ndarray] | None = None,
                  partitions: tuple[str, ...] = PARTITIONS):
    """Decompose every config; returns ``(examples, summary, reliability)`` Arrow tables.

    ``noisy_flags[p]`` is the training set's label-noise flag array at level ``p``
    (``None``: no flags). ``in_bag[d]`` holds draw d's training indices (the
    split files): on the train partition the out-of-bag ensemble of an example
    is the members whose draw does not hold it (``None``: unknown, -1 counts).
    ``partitions``: those the files hold (an imported ensemble: the test set only).
    Configs are processed in sorted order so the tables come out sorted as
    their schemas require.
    """
    from biasvar.analysis.decompose import out_of_bag_prediction
    from biasvar.analysis.summary import per_example, summarize
    from biasvar.ensemble.logits import config_file, read_config

    ex = {f.name: [] for f in DECOMPOSITION.arrow}
    sm = {f.name: [] for f in SUMMARY.arrow}
    rl = {f.name: [] for f in RELIABILITY.arrow}
    for p in sorted(label_noise, key=float):
        for w in sorted(widths):
            for part in (q for q in PARTITIONS if q in partitions):
                c = read_config(logits_dir, p, w, part)
                # No NaN/inf enters a table (read_config checks too; this guards
                # any other source of ConfigLogits): name file, config and member.
                require_finite_logits(c.logits, c.members, f"{config_file(logits_dir, p, w)} "
                                      f"(label_noise {p}, width {w})", part)
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
                if part == "test":  # no member trained on a test example
                    oob = np.ones(c.logits.shape[:2], dtype=bool)
                elif in_bag is not None:
                    oob = np.ones(c.logits.shape[:2], dtype=bool)  # (K, n_train)
                    for i, d in enumerate(c.draws):
                        if int(d) not in in_bag:
                            raise InputError(f"no split file holds draw {int(d)} of member "
                                             f"{int(c.members[i])} (label_noise {p}, "
                                             f"width {w})")
                        oob[i, in_bag[int(d)]] = False
                else:
                    oob = None
                if oob is None:
                    ex["oob_members"].append(np.full(n, -1, dtype=np.int32))
                    ex["oob_prediction"].append(np.full(n, -1, dtype=np.int16))
                else:
                    count, pred = out_of_bag_prediction(c.logits, oob)
                    ex["oob_members"].append(count)
                    ex["oob_prediction"].append(pred)
                s = summarize(c.logits, c.labels, c.draws, intervals=intervals, ci=ci,
                              n_bins=n_bins)
                order = np.argsort(s.quantities)  # schema sorts by quantity name
                q = len(order)
                sm["label_noise"].append(np.full(q, float(p)))
                sm["width"].append(np.full(q, w))
                sm["partition"].append(np.full(q, part, dtype=object))
                sm["quantity"].append(np.asarray(s.quantities, dtype=object)[order])
                sm["value"].append(s.value[order])
                sm["estimate"].append(s.estimate[order])
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
