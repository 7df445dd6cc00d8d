"""decompose: per-example bias/variance of every config, per-config summaries, reliability bins."""

import argparse

from _common import run

PARAMS = ("data.label_noise", "ensemble.widths", "ensemble.blocks", "decompose")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--logits", required=True, help="the collected logits dataset directory")
    ap.add_argument("--datasets", required=True, help="directory of generate's noise-<p>.npz")
    ap.add_argument("--splits", required=True,
                    help="directory of split's block-<b>.npz (for out-of-bag predictions); "
                    "only the blocks params list are read")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from pathlib import Path

    from biasvar.analysis.config import DecomposeParams
    from biasvar.analysis.tables import decompose_all
    from biasvar.core.config import load_declared
    from biasvar.core.io import atomic_dir
    from biasvar.core.schema import DECOMPOSITION, RELIABILITY, SUMMARY, write_table
    from biasvar.data.config import sweep_axes
    from biasvar.data.dataset import load_dataset
    from biasvar.data.splits import in_bag_indices, load_block_splits
    from biasvar.ensemble.logits import check_identity

    prm = load_declared(PARAMS)
    cfg = prm.section(DecomposeParams)
    noise, widths = sweep_axes(prm)  # raw values: they name the files
    blocks = prm.get("ensemble.blocks")
    datasets = {p: load_dataset(Path(args.datasets) / f"noise-{p}.npz", label_noise=p)
                for p in noise}
    # the split files of the listed blocks only: each draw's distinct training
    # examples (its members are out of bag elsewhere)
    splits = load_block_splits(args.splits, blocks)
    for p in noise:  # every file is what it claims to be before anything is computed
        for w in widths:
            check_identity(args.logits, p, w, blocks=blocks, dataset=datasets[p],
                           splits=splits)
    noisy = {p: datasets[p].noisy for p in noise}
    in_bag = in_bag_indices(splits.values())
    examples, summary, rel = decompose_all(args.logits, noisy, noise, widths, cfg.intervals,
                                           cfg.ci, cfg.ece_bins, in_bag)
    # what the data is (name, input shape, class count: the same at every level), for the
    # report's title and parameter counts; plot reads it here rather than params
    meta = {"data.label_noise": noise, "ensemble.widths": widths, "ensemble.blocks": blocks,
            "decompose": prm.get("decompose"), "data": datasets[noise[0]].metadata()}
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "examples.parquet", examples, DECOMPOSITION, meta)
        write_table(tmp / "summary.parquet", summary, SUMMARY, meta)
        write_table(tmp / "reliability.parquet", rel, RELIABILITY, meta)
    print(f"decompose: {len(noise) * len(widths)} configs, {examples.num_rows} example rows "
          f"-> {args.out}")


if __name__ == "__main__":
    run(main)
