"""Double-descent search: mean-member test error against width, at every logged step.

One block of members per width is trained with the pipeline's own
``train_block`` (same data, noise, bootstrap draws and seeds as the pipeline
would use for the first ``--members`` members), and the block's training
curves give the test and in-bag error at every ``--log-every`` step. So one run
of S steps also shows the curve a run of S/2 or S/4 steps would have given
(constant learning rate: a shorter run is a prefix of a longer one).

For each checkpoint step it prints the curve and the double-descent numbers the
report computes (``biasvar.report.headline.interior_peak``): the interior peak,
the rise above the preceding local minimum and the fall to the widest width.

Usage (docs/paper.md records what was run):
    python bench/dd_search.py --widths 12 16 20 24 28 32 40 64 --steps 40000 \
        --optimizer sgd --lr 0.01 --members 32 --json out.json
Not a test: it trains real ensembles and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", required=True)
    p.add_argument("--num-samples", type=int, default=8000)
    p.add_argument("--train-split", type=float, default=0.5)
    p.add_argument("--label-noise", type=float, default=0.15)
    p.add_argument("--split", default="bootstrap", choices=["bootstrap", "full", "half"])
    p.add_argument("--members", type=int, default=32)
    p.add_argument("--seeds-per-draw", type=int, default=4)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--log-every", type=int, default=2500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="write all curves here")
    a = p.parse_args(argv)

    import numpy as np

    from biasvar.core.config import RuntimeParams
    from biasvar.data.dataset import generate
    from biasvar.data.splits import make_split
    from biasvar.ensemble.config import ModelParams, TrainParams
    from biasvar.ensemble.train import BlockSpec, train_block
    from biasvar.report.headline import interior_peak

    ds = generate(a.num_samples, a.train_split, 42, a.label_noise, 0)
    members = tuple(range(a.members))
    draws = tuple(m // a.seeds_per_draw for m in members)
    seeds = tuple(m % a.seeds_per_draw for m in members)
    split = make_split(a.split, ds.n_train, sorted(set(draws)), seed=0)
    model = ModelParams(arch="mlp", depth=a.depth, residual=False)
    train = TrainParams(optimizer=a.optimizer, lr=a.lr, momentum=a.momentum,
                        weight_decay=0.0, steps=a.steps, batch_size=a.batch_size, seed=0,
                        log_every=a.log_every)
    runtime = RuntimeParams(device="cpu", threads=a.threads, progress=False)

    test_err, in_bag_err, seconds = {}, {}, {}
    for w in a.widths:
        r = train_block(ds, split, BlockSpec(members, draws, seeds, w), model, train, runtime)
        steps = r.curves["step"]
        test_err[w] = 1 - r.curves["test_accuracy"].mean(1)  # (logs,) mean member
        in_bag_err[w] = r.curves["in_bag_error"].mean(1)
        seconds[w] = r.seconds
        print(f"width {w}: {r.seconds:.0f} s, test error {test_err[w][-1]:.4f}, "
              f"in-bag {in_bag_err[w][-1]:.4f}", flush=True)

    print(f"\n{a.optimizer} lr {a.lr}, {a.members} members, noise {a.label_noise}, "
          f"split {a.split}, n_train {ds.n_train}")
    print("step   | " + " ".join(f"{w:>6d}" for w in a.widths) + " | peak rise fall")
    for i, s in enumerate(steps):
        curve = np.array([test_err[w][i] for w in a.widths])
        w_peak, rise, fall = interior_peak(a.widths, curve.tolist())
        print(f"{s:6d} | " + " ".join(f"{e:6.3f}" for e in curve)
              + f" | {w_peak or '-'} {100 * rise:.1f} {100 * fall:.1f}")
        print("in-bag | " + " ".join(f"{in_bag_err[w][i]:6.3f}" for w in a.widths))
    if a.json:
        a.json.write_text(json.dumps({
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
            "step": steps.tolist(),
            "test_error": {w: v.tolist() for w, v in test_err.items()},
            "in_bag_error": {w: v.tolist() for w, v in in_bag_err.items()},
            "seconds": seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))


if __name__ == "__main__":
    main()
