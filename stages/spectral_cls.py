"""spectral_cls@<config>: spectral bias of classifier logits along input paths."""

import argparse

from _common import run

# ${key} is the configuration's name (dvc.yaml foreach): each stage declares its own entry.
PARAMS = ("spectral_cls.num_samples", "spectral_cls.data_seed", "spectral_cls.paths",
          "spectral_cls.points", "spectral_cls.log_every", "spectral_cls.seed",
          "spectral_cls.base", "spectral_cls.configs.${key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True, help="a key of spectral_cls.configs")
    ap.add_argument("--out", required=True, help="table (CSV), one row per (step, frequency)")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.config import load_runtime
    from biasvar.studies.grid import overrides, read_config
    from biasvar.studies.spectral_cls import SpectralClsParams

    raw = read_config(PARAMS, args.config)
    c = SpectralClsParams.from_dict(raw).runs[0]

    from biasvar.data.providers.mnist1d import study_data
    from biasvar.studies.common import write_result
    from biasvar.studies.spectral_cls import spectral_cls

    d = study_data(raw["num_samples"], raw["data_seed"])
    result = spectral_cls(d.x_train, d.y_train, d.x_test, d.y_test, c,
                          threads=load_runtime().threads or 1)
    result.metrics["overrides"] = overrides(raw, args.config)
    write_result(result, args.out, args.metrics)
    m = result.metrics
    print(f"spectral_cls@{c.name}: {c.members} {c.arch} members, {c.steps} steps; frequency "
          f"centroid {m['centroid_first']:.4f} -> {m['centroid_final']:.4f} (Spearman with step "
          f"{m['centroid_spearman']:.2f}); test error {m['final_test_error']:.3f} -> {args.out}")


if __name__ == "__main__":
    run(main)
