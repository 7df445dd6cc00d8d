"""split@<block>: the training indices of every draw that a block's members use.

Besides the keys it needs, this stage declares the sweep axes
(``data.label_noise``, ``ensemble.widths``) and validates them: every train
stage depends on a split, so a bad value anywhere in the sweep fails here,
before any training. When an axis changes, the splits rerun in a second with
identical outputs, which leaves training untouched.

It is also the first stage that knows data, split and ensemble together, so it
refuses, as ``python -m biasvar.tools.validate`` does and before any training, the
configurations that cannot produce a report (``SplitParams.check_against``): fewer
than 2 draws across the listed blocks, and a split that leaves a draw no
out-of-bag example (``split.method: full``).
"""

import argparse

from _common import run

PARAMS = ("data.num_samples", "data.train_split", "data.label_noise", "data.name", "data.root",
          "split", "ensemble")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--block", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from biasvar.core.config import load_declared
    from biasvar.core.errors import ParamError
    from biasvar.data.config import (
        DataParams,
        EnsembleParams,
        SplitParams,
        check_label_noise,
    )
    from biasvar.data.splits import make_split, save_split

    prm = load_declared(PARAMS)
    for v in prm.get("data.label_noise") or [None]:
        check_label_noise("data.label_noise", v)
    # The training-set size depends on the provider, its size and split (a file provider
    # with num_samples null counts its file's labels), never on the seeds.
    data = DataParams.from_dict({**prm.subset("data", ("num_samples", "train_split",
                                                       "label_noise", "name", "root")),
                                 "seed": 0, "noise_seed": 0})
    ens = prm.section(EnsembleParams)
    cfg = prm.section(SplitParams)
    if args.block not in ens.blocks:
        raise ParamError("ensemble.blocks", list(ens.blocks), f"a list containing {args.block}")
    n_train = data.train_size()  # the provider's training-set size
    parts = cfg.check_against(ens, n_train)  # >= 2 draws, out-of-bag examples, parts
    draws = sorted({ens.draw(m) for m in ens.block_members(args.block)})
    split = make_split(cfg.method, n_train, draws, cfg.seed, parts)
    save_split(split, args.out)
    print(f"split: block {args.block}: {cfg.method} draws {draws} of "
          f"{split.indices.shape[1]} / {n_train} examples -> {args.out}")


if __name__ == "__main__":
    run(main)
