"""shift: every member scored on shifted test sets; bias, variance, calibration, alignment."""

import argparse

from _common import run

PARAMS = ("shift", "data.label_noise", "data.name", "data.num_samples", "data.train_split",
          "data.seed", "ensemble.widths", "ensemble.blocks")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", required=True, help="root of the train stages' outputs")
    ap.add_argument("--datasets", required=True, help="directory of generate's noise-<p>.npz")
    ap.add_argument("--out", required=True, help="folder for summary.csv, fits.csv, examples.csv")
    ap.add_argument("--metrics", required=True, help="per-config curves over severity (JSON)")
    args = ap.parse_args()

    from pathlib import Path

    from biasvar.analysis.shifted import ShiftParams
    from biasvar.core.config import load_declared, load_runtime
    from biasvar.data.config import sweep_axes

    prm = load_declared(PARAMS)
    cfg = prm.section(ShiftParams)
    name = prm.get("data.name")
    cfg.check_data(name)  # kinds this dataset has no generator for, before any work
    noise, widths = sweep_axes(prm)  # raw values: they name the files
    blocks = prm.get("ensemble.blocks")
    threads = load_runtime().threads

    import torch

    from biasvar.analysis.shifted import shift_all, shift_metrics
    from biasvar.core.io import atomic_dir, write_json
    from biasvar.data.dataset import load_dataset

    if threads:
        torch.set_num_threads(threads)
    datasets = {p: load_dataset(Path(args.datasets) / f"noise-{p}.npz", label_noise=p)
                for p in noise}
    data = {k: prm.get(f"data.{k}") for k in ("name", "num_samples", "train_split", "seed")}
    data["file"] = str(Path(args.datasets) / f"noise-{noise[0]}.npz")
    summary, fits, examples = shift_all(
        args.members, datasets, noise, widths, blocks, cfg.kinds, cfg.severities, data=data,
        ci=cfg.ci, n_bins=cfg.ece_bins, n_boot=cfg.bootstrap, seed=cfg.seed)
    with atomic_dir(args.out) as tmp:
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.8g")
        fits.to_csv(tmp / "fits.csv", index=False, float_format="%.8g")
        examples.to_csv(tmp / "examples.csv", index=False, float_format="%.8g")
    write_json(args.metrics, {"kinds": list(cfg.kinds), "severities": list(cfg.severities),
                              "curves": shift_metrics(summary, fits)})
    print(f"shift: {len(fits)} (config, kind, severity) fits -> {args.out}")


if __name__ == "__main__":
    run(main)
