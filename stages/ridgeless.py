"""ridgeless: double descent of min-norm least squares on Legendre features."""

import argparse

from _common import run

PARAMS = ("ridgeless",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="table (CSV), one row per number of features")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.config import load_declared
    from biasvar.studies.common import write_result
    from biasvar.studies.ridgeless import RidgelessParams, run_ridgeless

    cfg = RidgelessParams.from_dict(load_declared(PARAMS).get("ridgeless"))
    result = run_ridgeless(cfg.n_features, cfg.n_train, cfg.n_test, cfg.repeats, cfg.noise_std,
                           cfg.seed)
    write_result(result, args.out, args.metrics)
    m = result.metrics
    print(f"ridgeless: {len(cfg.n_features)} values of P x {cfg.repeats} repeats; median test "
          f"MSE peaks at P = {m['peak_n_features']} (N = {cfg.n_train}) -> {args.out}")


if __name__ == "__main__":
    run(main)
