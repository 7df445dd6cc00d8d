"""pc_bias@<config>: principal-component bias of one ensemble config (Hacohen & Weinshall 2022)."""

import argparse

from _common import run

# ${key} is the configuration's name (dvc.yaml foreach): each stage declares its own entry.
PARAMS = ("pc_bias.num_samples", "pc_bias.data_seed", "pc_bias.log_every",
          "pc_bias.converged_fraction", "pc_bias.seed", "pc_bias.base",
          "pc_bias.configs.${key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True, help="a key of pc_bias.configs")
    ap.add_argument("--out", required=True, help="table (CSV), one row per (step, pc)")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.config import load_runtime
    from biasvar.studies.grid import overrides, read_config
    from biasvar.studies.pc_bias import PCBiasParams

    raw = read_config(PARAMS, args.config)
    cfg = PCBiasParams.from_dict(raw)
    c = cfg.runs[0]

    from biasvar.data.providers.mnist1d import study_data
    from biasvar.studies.common import write_result
    from biasvar.studies.pc_bias import pc_bias

    data = study_data(cfg.num_samples, cfg.data_seed)  # the training half is used
    # small full-batch matmuls: one thread unless runtime.threads says otherwise
    result = pc_bias(data.x_train, data.y_train, c, threads=load_runtime().threads or 1)
    result.metrics["overrides"] = overrides(raw, args.config)
    write_result(result, args.out, args.metrics)
    m = result.metrics
    print(f"pc_bias@{c.name}: {c.members} members, {c.steps} steps, final loss "
          f"{m['final_loss']:.4f}; {m['converged_pcs']}/{m['pcs']} PCs converged, Spearman "
          f"(eigenvalue, convergence step) {m['spearman_eigenvalue_vs_convergence']:.3f} "
          f"-> {args.out}")


if __name__ == "__main__":
    run(main)
