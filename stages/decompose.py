"""decompose: per-example bias/variance of every config, per-config summaries, reliability bins."""

import argparse

from _common import run

PARAMS = ("data.label_noise", "ensemble.widths", "decompose")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--logits", required=True, help="the collected logits dataset directory")
    ap.add_argument("--datasets", required=True, help="directory of generate's noise-<p>.npz")
    ap.add_argument("--splits", required=True,
                    help="directory of split's block-<b>.npz (for out-of-bag predictions)")
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
    from biasvar.data.splits import in_bag_indices

    prm = load_declared(PARAMS)
    cfg = prm.section(DecomposeParams)
    noise, widths = sweep_axes(prm)  # raw values: they name the files
    noisy = {p: load_dataset(Path(args.datasets) / f"noise-{p}.npz").noisy for p in noise}
    # each draw's distinct training examples: its members are out of bag elsewhere
    in_bag = in_bag_indices(sorted(Path(args.splits).glob("block-*.npz")))
    examples, summary, rel = decompose_all(args.logits, noisy, noise, widths, cfg.intervals,
                                           cfg.ci, cfg.ece_bins, in_bag)
    meta = {"data.label_noise": noise, "ensemble.widths": widths, "decompose": prm.get(
        "decompose")}
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "examples.parquet", examples, DECOMPOSITION, meta)
        write_table(tmp / "summary.parquet", summary, SUMMARY, meta)
        write_table(tmp / "reliability.parquet", rel, RELIABILITY, meta)
    print(f"decompose: {len(noise) * len(widths)} configs, {examples.num_rows} example rows "
          f"-> {args.out}")


if __name__ == "__main__":
    run(main)
