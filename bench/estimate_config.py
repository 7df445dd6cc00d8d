"""Estimate the training time of a named configuration (e.g. paper) on this machine.

Trains one block of every width of the composed params (params.yaml with ``-S
+experiment=NAME``, as ``dvc exp run`` and ``biasvar launch`` compose it) for
``--fraction`` of its steps with ``train_block`` (the function the train stage calls),
scales each block's time to the full step count (a step's cost does not change along
training; evaluations every ``log_every`` steps scale with it too), and multiplies by
the number of noise levels and blocks. Adds a per-stage overhead (DVC, interpreter and
torch start-up, saving) measured from the default pipeline, ~5 s per stage.

Usage: python bench/estimate_config.py paper [--fraction 0.0625] [--threads 2]
Prints a Markdown table. Not a test: timings vary by machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

STAGE_OVERHEAD_S = 5.0  # default pipeline: stage wall time minus the block's printed time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="a configuration of configs/experiment/, e.g. paper")
    ap.add_argument("--fraction", type=float, default=1 / 16, help="share of the steps to run")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import tempfile

    import numpy as np

    from biasvar.cli.launch import compose_params
    from biasvar.core.config import RuntimeParams, read_yaml
    from biasvar.data.dataset import generate
    from biasvar.data.splits import make_split
    from biasvar.ensemble.config import ModelParams, TrainParams
    from biasvar.ensemble.train import BlockSpec, train_block

    with tempfile.TemporaryDirectory() as tmp:
        p = read_yaml(compose_params(ROOT, [f"+experiment={args.config}"],
                                     Path(tmp) / "params.yaml"))
    data, ens = p["data"], p["ensemble"]
    full_steps = p["train"]["steps"]
    steps = max(p["train"]["log_every"], round(full_steps * args.fraction))
    train_cfg = TrainParams.from_dict({**p["train"], "steps": steps})
    model_cfg = ModelParams.from_dict(p["model"])
    runtime = RuntimeParams(device=args.device, threads=args.threads, progress=False)
    ds = generate(data["num_samples"], data["train_split"], data["seed"],
                  max(data["label_noise"]), data["noise_seed"])
    size, spd = ens["block_size"], ens["seeds_per_draw"]
    members = tuple(range(size))
    draws = sorted({m // spd for m in members})
    split = make_split(p["split"]["method"], ds.n_train, draws, p["split"]["seed"],
                       p["split"]["parts"])
    n_blocks = len(data["label_noise"]) * len(ens["blocks"])
    print(f"{args.config}: {len(ens['widths'])} widths x {n_blocks} blocks of {size} members, "
          f"{full_steps} steps; timing {steps} steps per width on {args.device}")
    print("| width | block, measured (s) | block, full steps (s) | all its blocks (min) |")
    print("|---|---|---|---|")
    total = 0.0
    for w in ens["widths"]:
        spec = BlockSpec(members, tuple(m // spd for m in members),
                         tuple(m % spd for m in members), w)
        t0 = time.perf_counter()
        train_block(ds, split, spec, model_cfg, train_cfg, runtime)
        dt = time.perf_counter() - t0
        block = dt * full_steps / steps + STAGE_OVERHEAD_S
        total += block * n_blocks
        print(f"| {w} | {dt:.1f} | {block:.0f} | {block * n_blocks / 60:.1f} |", flush=True)
    n_stages = len(ens["widths"]) * n_blocks
    print(f"\ntraining, one job: {total / 3600:.2f} h for {n_stages} train stages "
          f"({np.round(total / n_stages):.0f} s per stage on average)")


if __name__ == "__main__":
    main()
