"""MNIST-1D reference protocol: the published accuracies, through the pipeline's library.

Protocol (Greydanus 2020): 5000 samples (4000 train / 1000 test), clean
labels, every member on the full training set (``split.method: full``), Adam
lr 1e-2, batch 100, 6000 steps, cross-entropy. Models: logistic regression,
the residual MLP (width 100) and the CNN (25 channels). Each architecture
trains one block of ``--members`` members (different seeds) with
``train_block``, exactly as the ``train`` stage does.

Usage: python bench/reference_protocol.py [--members 4] [--steps 6000]
Prints a Markdown table: member test accuracy (mean, min..max) and the
published number.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

PUBLISHED = {"logistic": 32, "mlp": 68, "cnn": 94}  # % test accuracy, mnist1d README
WIDTH = {"logistic": 1, "mlp": 100, "cnn": 25}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6000)
    args = ap.parse_args()

    import numpy as np

    from biasvar.core.config import RuntimeParams
    from biasvar.data.dataset import generate
    from biasvar.data.splits import make_split
    from biasvar.ensemble.config import ModelParams, TrainParams
    from biasvar.ensemble.models import n_parameters
    from biasvar.ensemble.train import BlockSpec, train_block

    ds = generate(5000, 0.8, 42, 0.0, 0)
    split = make_split("full", ds.n_train, [0], seed=0)
    spec_members = tuple(range(args.members))
    rows = []
    for arch in ("logistic", "mlp", "cnn"):
        spec = BlockSpec(spec_members, (0,) * args.members, spec_members, WIDTH[arch])
        r = train_block(ds, split, spec, ModelParams(arch=arch, depth=2, residual=True),
                        TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0,
                                    steps=args.steps, batch_size=100, seed=0, log_every=500),
                        RuntimeParams(device="cpu", threads=0, progress=False))
        acc = 100 * np.array([m["test_accuracy"] for m in r.metrics])
        rows.append((arch, n_parameters(arch, WIDTH[arch], 2, True), acc, r.seconds))
        print(f"{arch}: {acc.round(1).tolist()} in {r.seconds:.0f}s", flush=True)
    print()
    print("| model | parameters | test accuracy, % (mean, min..max of "
          f"{args.members} seeds) | published, % | block time |")
    print("|---|---|---|---|---|")
    for arch, n, acc, sec in rows:
        print(f"| {arch} | {n:,} | {acc.mean():.1f} ({acc.min():.1f}..{acc.max():.1f}) | "
              f"≈ {PUBLISHED[arch]} | {sec:.0f} s |")


if __name__ == "__main__":
    main()
