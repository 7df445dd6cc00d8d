"""dynamics: bias, variance, errors and alignment at every checkpoint step of training."""

import argparse

from _common import run

PARAMS = ("dynamics", "decompose.ece_bins")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", required=True, help="the source folder (data/sources/<source>)")
    ap.add_argument("--out", required=True, help="folder for summary.csv and fits.csv")
    ap.add_argument("--metrics", required=True, help="per-config curves over steps (JSON)")
    args = ap.parse_args()

    from biasvar.analysis.config import DynamicsParams
    from biasvar.core.config import load_declared

    prm = load_declared(PARAMS)
    cfg = prm.section(DynamicsParams)
    ece_bins = prm.get("decompose.ece_bins")

    from biasvar.analysis.dynamics import curves, dynamics_all
    from biasvar.core.io import atomic_dir, write_json
    from biasvar.ensemble.source import read_source

    src = read_source(args.source)
    # an imported ensemble has no checkpoints: empty tables, and the report says so
    summary, fits = dynamics_all(args.source, src.label_noise, src.widths, cfg.ci, ece_bins,
                                 cfg.bootstrap, cfg.seed)
    with atomic_dir(args.out) as tmp:
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.8g")
        fits.to_csv(tmp / "fits.csv", index=False, float_format="%.8g")
    steps = sorted(set(summary.step.tolist())) if len(summary) else []
    write_json(args.metrics, {"steps": [int(s) for s in steps],
                              "curves": curves(summary, fits) if len(summary) else {}})
    print(f"dynamics: {len(fits)} (config, step) fits at steps {steps} -> {args.out}")


if __name__ == "__main__":
    run(main)
