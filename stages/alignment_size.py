"""alignment_size: alignment refitted on nested subsets of whole draws, per estimator and loss."""

import argparse

from _common import run

PARAMS = ("alignment_size",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", required=True,
                    help="the source folder (data/sources/<source>: collect's or import's)")
    ap.add_argument("--out", required=True, help="per-size fits (CSV)")
    ap.add_argument("--extrapolation", required=True, help="K -> infinity fits (CSV)")
    ap.add_argument("--metrics", required=True, help="headline numbers (JSON)")
    args = ap.parse_args()

    from biasvar.analysis.config import AlignmentSizeParams
    from biasvar.analysis.ensemble_size import ensemble_size_all, write_csv
    from biasvar.core.config import load_declared
    from biasvar.core.io import write_json
    from biasvar.ensemble.source import read_source

    prm = load_declared(PARAMS)
    cfg = prm.section(AlignmentSizeParams)
    src = read_source(args.source)
    table, extrap, metrics = ensemble_size_all(src.logits, src.label_noise, src.widths,
                                               cfg.bootstrap, cfg.seed, cfg.ci)
    write_csv(table, args.out)
    write_csv(extrap, args.extrapolation)
    write_json(args.metrics, metrics)
    print(f"alignment_size: {len(table)} fits, {len(extrap)} extrapolations -> {args.out}")


if __name__ == "__main__":
    run(main)
