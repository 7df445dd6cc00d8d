"""decompose: per-example bias/variance of every config, per-config summaries, reliability bins."""

import argparse

from _common import run

PARAMS = ("decompose",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", required=True,
                    help="the source folder (data/sources/<source>: collect's or import's)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from biasvar.analysis.config import DecomposeParams
    from biasvar.analysis.tables import decompose_all
    from biasvar.core.config import load_declared
    from biasvar.core.io import atomic_dir
    from biasvar.core.schema import DECOMPOSITION, RELIABILITY, SUMMARY, write_table
    from biasvar.ensemble.source import read_source

    prm = load_declared(PARAMS)
    cfg = prm.section(DecomposeParams)
    # the configs, the label-noise flags and each draw's in-bag indices, as the stage
    # that wrote the folder checked them against the files the members came from
    src = read_source(args.source)
    examples, summary, rel = decompose_all(src.logits, src.noisy, src.label_noise, src.widths,
                                           cfg.intervals, cfg.ci, cfg.ece_bins, src.in_bag,
                                           src.partitions)
    # what the data is (name, input shape, class count: the same at every level), for the
    # report's title and parameter counts; plot reads it here rather than params
    meta = {"source": src.kind, "data.label_noise": src.label_noise,
            "ensemble.widths": src.widths, "ensemble.blocks": src.blocks,
            "decompose": prm.get("decompose"), "data": src.data, "file": src.file}
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "examples.parquet", examples, DECOMPOSITION, meta)
        write_table(tmp / "summary.parquet", summary, SUMMARY, meta)
        write_table(tmp / "reliability.parquet", rel, RELIABILITY, meta)
    print(f"decompose: {len(src.label_noise) * len(src.widths)} configs, {examples.num_rows} "
          f"example rows -> {args.out}")


if __name__ == "__main__":
    run(main)
