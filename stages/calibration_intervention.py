"""calibration_intervention: temperature-scale each member on its out-of-bag examples and
measure calibration and alignment before and after (Chen et al., Section 4)."""

import argparse

from _common import run

PARAMS = ("data.label_noise", "ensemble.widths", "ensemble.blocks", "calibration_intervention")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--logits", required=True, help="the collected logits dataset directory")
    ap.add_argument("--splits", required=True, help="directory of split's block-<b>.npz; "
                    "only the blocks params list are read")
    ap.add_argument("--out", required=True, help="per-config table (CSV)")
    ap.add_argument("--bins", required=True, help="per-confidence-bin table (CSV)")
    ap.add_argument("--metrics", required=True, help="headline numbers (JSON)")
    args = ap.parse_args()

    from biasvar.analysis.calibration_intervention import calibration_all
    from biasvar.analysis.config import CalibrationInterventionParams
    from biasvar.analysis.ensemble_size import write_csv
    from biasvar.core.config import load_declared
    from biasvar.core.io import write_json
    from biasvar.data.config import sweep_axes
    from biasvar.data.splits import in_bag_indices, load_block_splits
    from biasvar.ensemble.logits import check_identity

    prm = load_declared(PARAMS)
    cfg = prm.section(CalibrationInterventionParams)
    noise, widths = sweep_axes(prm)
    blocks = prm.get("ensemble.blocks")
    splits = load_block_splits(args.splits, blocks)  # the listed blocks only
    for p in noise:
        for w in widths:
            check_identity(args.logits, p, w, blocks=blocks, splits=splits)
    in_bag = in_bag_indices(splits.values())
    table, bins, metrics = calibration_all(args.logits, noise, widths, in_bag, cfg.ece_bins,
                                           cfg.bootstrap, cfg.seed, cfg.ci)
    write_csv(table, args.out)
    write_csv(bins, args.bins)
    write_json(args.metrics, metrics)
    print(f"calibration_intervention: {len(table)} configs -> {args.out}")


if __name__ == "__main__":
    run(main)
