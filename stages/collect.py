"""collect: merge the members that params list into the train source folder
(data/sources/train: logits, member tables, label-noise flags, in-bag indices)."""

import argparse

from _common import run

PARAMS = ("data.label_noise", "ensemble")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", required=True, help="root of the train stages' outputs")
    ap.add_argument("--datasets", required=True, help="directory of generate's noise-<p>.npz")
    ap.add_argument("--splits", required=True, help="directory of split's block-<b>.npz; "
                    "only the blocks params list are read")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from pathlib import Path

    from biasvar.core.config import load_declared
    from biasvar.data.config import EnsembleParams, check_label_noise
    from biasvar.data.dataset import load_dataset
    from biasvar.data.splits import load_block_splits
    from biasvar.ensemble.logits import collect

    prm = load_declared(PARAMS)
    # Raw values (not floats) so directory names match dvc.yaml's ${item.noise} rendering.
    noise = prm.get("data.label_noise")
    for v in noise:
        check_label_noise("data.label_noise", v)
    ens = prm.section(EnsembleParams)
    datasets = {p: load_dataset(Path(args.datasets) / f"noise-{p}.npz", label_noise=p)
                for p in noise}
    # the split files of the listed blocks only (never a glob: a file an earlier variant
    # left must not change the in-bag indices)
    splits = load_block_splits(args.splits, ens.blocks)
    summary = collect(args.members, args.out, noise, list(ens.widths), list(ens.blocks),
                      ens.block_members, seeds_per_draw=ens.seeds_per_draw,
                      datasets=datasets, splits=splits)
    print(f"collect: {summary['members']} members in {summary['configs']} configs -> {args.out}")


if __name__ == "__main__":
    run(main)
