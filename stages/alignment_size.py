"""alignment_size: alignment refitted on nested subsets of whole draws, per estimator and loss."""

import argparse

from _common import run

PARAMS = ("data.label_noise", "ensemble.widths", "alignment_size")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--logits", required=True, help="the collected logits dataset directory")
    ap.add_argument("--out", required=True, help="per-size fits (CSV)")
    ap.add_argument("--extrapolation", required=True, help="K -> infinity fits (CSV)")
    ap.add_argument("--metrics", required=True, help="headline numbers (JSON)")
    args = ap.parse_args()

    from biasvar.analysis.config import AlignmentSizeParams
    from biasvar.analysis.ensemble_size import ensemble_size_all, write_csv
    from biasvar.core.config import load_declared
    from biasvar.core.io import write_json
    from biasvar.data.config import sweep_axes

    prm = load_declared(PARAMS)
    cfg = prm.section(AlignmentSizeParams)
    noise, widths = sweep_axes(prm)  # raw values: they name the files
    table, extrap, metrics = ensemble_size_all(args.logits, noise, widths, cfg.bootstrap,
                                               cfg.seed, cfg.ci)
    write_csv(table, args.out)
    write_csv(extrap, args.extrapolation)
    write_json(args.metrics, metrics)
    print(f"alignment_size: {len(table)} fits, {len(extrap)} extrapolations -> {args.out}")


if __name__ == "__main__":
    run(main)
