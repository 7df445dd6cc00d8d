"""collapse: binary MNIST-1D ensembles across widths; neural collapse, Chen et al.'s Sec. 5."""

import argparse

from _common import run

PARAMS = ("collapse",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="per-width summary (CSV)")
    ap.add_argument("--examples-out", required=True, help="per test example and width (CSV)")
    ap.add_argument("--members-out", required=True, help="per member and width (CSV)")
    ap.add_argument("--model-out", required=True, help="Assumption 5.1's curve over c (CSV)")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.config import load_declared, load_runtime
    from biasvar.studies.collapse import CollapseParams, model_curve, run_collapse
    from biasvar.studies.common import write_csv, write_result

    cfg = load_declared(PARAMS).section(CollapseParams)
    result, examples, members = run_collapse(cfg, threads=load_runtime().threads)
    write_csv(examples, args.examples_out)
    write_csv(members, args.members_out)
    write_csv(model_curve(), args.model_out)
    write_result(result, args.out, args.metrics)
    last = result.table.iloc[-1]
    print(f"collapse: widths {list(cfg.widths)}; width {int(last.width)}: NC1 "
          f"{last.nc1_train:.3g}, slope {last.slope:.2f} -> {args.out}")


if __name__ == "__main__":
    run(main)
