"""regress: alignment fit (log variance on log bias^2) per config, metrics for DVC."""

import argparse

from _common import run

PARAMS = ("regress",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--decomposition", required=True)
    ap.add_argument("--fits", required=True)
    ap.add_argument("--metrics", required=True)
    args = ap.parse_args()

    from pathlib import Path

    from biasvar.analysis.config import RegressParams
    from biasvar.analysis.regress import regress_all
    from biasvar.core.config import load_declared
    from biasvar.core.io import write_json
    from biasvar.core.schema import DECOMPOSITION, FITS, SUMMARY, read_table, write_table

    prm = load_declared(PARAMS)
    cfg = prm.section(RegressParams)
    d = Path(args.decomposition)
    examples = read_table(d / "examples.parquet", DECOMPOSITION)
    summary = read_table(d / "summary.parquet", SUMMARY)
    fits, metrics = regress_all(examples, summary, cfg.estimator, cfg.bootstrap, cfg.seed, cfg.ci)
    write_table(args.fits, fits, FITS, {"regress": prm.get("regress")})
    write_json(args.metrics, metrics)
    print(f"regress: {fits.num_rows} fits -> {args.fits}, {args.metrics}")


if __name__ == "__main__":
    run(main)
