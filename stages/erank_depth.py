"""erank_depth@<config>: effective rank of embeddings against depth (Huh et al. 2023)."""

import argparse

from _common import run

# ${key} is the configuration's name (dvc.yaml foreach): each stage declares its own entry.
PARAMS = ("erank_depth.num_samples", "erank_depth.data_seed", "erank_depth.depths",
          "erank_depth.center", "erank_depth.seed", "erank_depth.base",
          "erank_depth.configs.${key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True, help="a key of erank_depth.configs")
    ap.add_argument("--out", required=True, help="table (CSV), one row per (depth, member, phase)")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.config import load_runtime
    from biasvar.studies.erank_depth import ErankDepthParams
    from biasvar.studies.grid import overrides, read_config

    raw = read_config(PARAMS, args.config)
    c = ErankDepthParams.from_dict(raw).runs[0]

    from biasvar.data.providers.mnist1d import study_data
    from biasvar.studies.common import write_result
    from biasvar.studies.erank_depth import erank_depth

    d = study_data(raw["num_samples"], raw["data_seed"])
    # small matmuls: one thread unless runtime.threads says otherwise
    result = erank_depth(d.x_train, d.y_train, d.x_test, d.y_test, c,
                         threads=load_runtime().threads or 1)
    result.metrics["overrides"] = overrides(raw, args.config)
    write_result(result, args.out, args.metrics)
    m = result.metrics
    print(f"erank_depth@{c.name}: depths {list(c.depths)}, width {c.width}, {c.members} members; "
          f"Spearman(depth, erank) {m['init']['spearman_depth']:.2f} at init, "
          f"{m['trained']['spearman_depth']:.2f} trained -> {args.out}")


if __name__ == "__main__":
    run(main)
