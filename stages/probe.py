"""probe: effective rank of every listed member's penultimate-layer embeddings, per config."""

import argparse

from _common import run

PARAMS = ("data.label_noise", "ensemble.widths", "ensemble.blocks", "probe")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", required=True, help="root of the train stages' outputs")
    ap.add_argument("--datasets", required=True, help="directory of generate's noise-<p>.npz")
    ap.add_argument("--out", required=True, help="per-config summary (CSV)")
    ap.add_argument("--members-out", required=True, help="per-member table (CSV)")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from pathlib import Path

    from biasvar.core.config import load_declared, load_runtime
    from biasvar.data.config import sweep_axes
    from biasvar.data.dataset import load_dataset
    from biasvar.ensemble.blocks import dataset_identity
    from biasvar.studies.common import write_csv, write_result
    from biasvar.studies.effective_rank import ProbeParams, run_probe

    prm = load_declared(PARAMS)
    cfg = prm.section(ProbeParams)
    noise, widths = sweep_axes(prm)  # raw values: they name the files
    blocks = prm.get("ensemble.blocks")
    part = f"x_{cfg.partition}"
    datasets = {p: load_dataset(Path(args.datasets) / f"noise-{p}.npz", label_noise=p)
                for p in noise}
    inputs = {p: getattr(ds, part) for p, ds in datasets.items()}
    # each block must have been trained on these inputs (recorded fingerprint)
    x_sha256 = {p: dataset_identity(ds)["x_sha256"] for p, ds in datasets.items()}
    result, per_member = run_probe(args.members, inputs, widths, blocks, cfg.center,
                                   threads=load_runtime().threads, x_sha256=x_sha256)
    write_csv(per_member, args.members_out)
    write_result(result, args.out, args.metrics)
    print(f"probe: {len(per_member)} members in {len(result.table)} configs -> {args.out}")


if __name__ == "__main__":
    run(main)
