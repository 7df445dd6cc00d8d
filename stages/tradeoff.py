"""tradeoff: the classical U-shaped bias-variance trade-off of the UDL ch. 8 toy regression."""

import argparse

from _common import run

PARAMS = ("tradeoff",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="table (CSV), one row per D")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.config import load_declared
    from biasvar.studies.common import write_result
    from biasvar.studies.tradeoff import TradeoffParams, run_tradeoff

    cfg = TradeoffParams.from_dict(load_declared(PARAMS).get("tradeoff"))
    result = run_tradeoff(cfg.hidden_units, cfg.n_datasets, cfg.n_train, cfg.noise_std,
                          cfg.n_grid, cfg.test_draws, cfg.seed)
    write_result(result, args.out, args.metrics)
    m = result.metrics
    print(f"tradeoff: {len(cfg.hidden_units)} values of D x {cfg.n_datasets} datasets; "
          f"total minimal at D = {m['argmin_total']} ({m['min_total']:.4f}) -> {args.out}")


if __name__ == "__main__":
    run(main)
