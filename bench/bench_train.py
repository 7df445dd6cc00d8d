"""Training benchmark: a vectorized block vs sequential plain PyTorch loops.

1. Per-member speed-up: a block of 16 MLP members (the MNIST-1D reference
   residual MLP, width 100, batch 100, Adam) trained by ``train_block`` vs the
   same 16 members trained one after another by the textbook loop
   (``nn.Module`` + ``DataLoader(shuffle=True)`` + ``torch.optim.Adam``).
2. Throughput: the block's achieved GFLOP/s at width 256 against this
   machine's measured sgemm peak (a 2048^3 float32 matmul).
3. Step anatomy per width (``--widths``): member-steps per second of a whole
   block (minibatch gather, step, fused Adam, the final scoring of both
   partitions) with the MLP's hand-written backward (what training uses) and
   with autograd, the achieved fraction of the sgemm peak (of the whole block,
   and of its steady-state steps: a block of 2S steps minus one of S), and the
   ceiling of the step alone (hand-written forward + backward on fixed random data: no
   gather, no optimizer, no scoring).

FLOPs are the matmul FLOPs a step really does: per example and weight matrix,
2 forward + 2 for the weight gradient + 2 for the input gradient, except the
first layer, whose input gradient is never formed (biases and elementwise ops
not counted). That is ~5 % below the usual "6 x parameters" at width 256.

Usage: python bench/bench_train.py [--steps 6000] [--members 16] [--json out.json]
       python bench/bench_train.py --anatomy-only [--widths 8 32 128 256]
Prints a Markdown table for the README. Not a test: timings vary by machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def sgemm_peak(n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of a square float32 matmul, the best this CPU does on dense work."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - t) / reps)
    return 2 * n**3 / best / 1e9


def plain_loop(x: np.ndarray, y: np.ndarray, idx: np.ndarray, width: int, steps: int,
               batch: int, seed: int) -> float:
    """One member the textbook way; returns seconds."""
    from torch.utils.data import DataLoader, TensorDataset

    from biasvar.ensemble.models import reference_model

    torch.manual_seed(seed)
    model = reference_model("mlp", width, depth=2, residual=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = TensorDataset(torch.as_tensor(x[idx], dtype=torch.float32),
                         torch.as_tensor(y[idx], dtype=torch.long))
    loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    t0 = time.perf_counter()
    step = 0
    while step < steps:
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    return time.perf_counter() - t0


def block(ds, members: int, width: int, steps: int, batch: int,
          autograd: bool = False) -> float:
    """A vectorized block; returns its seconds."""
    from biasvar.core.config import RuntimeParams
    from biasvar.data.splits import make_split
    from biasvar.ensemble.config import ModelParams, TrainParams
    from biasvar.ensemble.train import BlockSpec, train_block

    split = make_split("bootstrap", ds.n_train, list(range(members)), seed=0)
    spec = BlockSpec(tuple(range(members)), tuple(range(members)), (0,) * members, width)
    # log_every = steps: one evaluation at the end, as the plain loop has none.
    r = train_block(ds, split, spec, ModelParams(arch="mlp", depth=2, residual=True),
                    TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0,
                                steps=steps, batch_size=batch, seed=0, log_every=steps),
                    RuntimeParams(device="cpu", threads=0, progress=False), autograd=autograd)
    return r.seconds


def step_flops(width: int, batch: int, depth: int = 2) -> int:
    """Matmul FLOPs of one member's training step (see the module docstring)."""
    dims = [40] + [width] * depth + [10]
    weights = sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=False))
    return batch * (6 * weights - 2 * dims[0] * dims[1])


def step_ceiling(members: int, width: int, steps: int, batch: int) -> float:
    """Seconds for ``steps`` hand-written forward + backward passes on fixed random data."""
    from biasvar.ensemble.models import stacked_model

    model = stacked_model("mlp", members, width, 2, True)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=width ** -0.5)
    x = torch.randn(members, batch, 40)
    y = torch.randint(0, 10, (members, batch))
    for _ in range(20):
        model.loss_and_grad(x, y)
    t = time.perf_counter()
    for _ in range(steps):
        model.loss_and_grad(x, y)
    return time.perf_counter() - t


def anatomy(ds, members: int, widths: list[int], steps: int, peak: float,
            repeats: int = 2) -> list[dict]:
    """Per width: member-steps/s hand-written vs autograd backward, fraction of peak, ceiling."""
    rows = []
    base_steps = steps
    for w in widths:
        # wider than 256: fewer steps (same work per measurement, roughly)
        steps = max(50, min(base_steps, int(base_steps * (256 / w) ** 2)))
        flop = step_flops(w, 100) * members * steps
        # best of `repeats`, the variants alternating, so that a busy moment
        # or the first run's warm-up does not decide the comparison
        t_hand = t_hand2 = t_auto = t_step = float("inf")
        for _ in range(repeats):
            t_hand = min(t_hand, block(ds, members, w, steps, 100))
            # twice the steps: the difference is `steps` steady-state training steps,
            # without the fixed costs (initialization, the final scoring of both
            # partitions, checkpoints), which dominate short blocks at large widths
            t_hand2 = min(t_hand2, block(ds, members, w, 2 * steps, 100))
            t_auto = min(t_auto, block(ds, members, w, steps, 100, autograd=True))
            t_step = min(t_step, step_ceiling(members, w, steps, 100))
        rows.append({"width": w, "members": members, "steps": steps,
                     "member_steps_per_s_hand": members * steps / t_hand,
                     "member_steps_per_s_autograd": members * steps / t_auto,
                     "fraction_of_peak_hand": flop / t_hand / 1e9 / peak,
                     "fraction_of_peak_hand_steady": flop / (t_hand2 - t_hand) / 1e9 / peak,
                     "fraction_of_peak_autograd": flop / t_auto / 1e9 / peak,
                     "fraction_of_peak_step_alone": flop / t_step / 1e9 / peak})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--flops-steps", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 32, 128, 256, 512, 1024])
    ap.add_argument("--anatomy-members", type=int, default=32)
    ap.add_argument("--anatomy-only", action="store_true")
    args = ap.parse_args()

    from biasvar.data.dataset import generate
    from biasvar.data.splits import draw_indices

    ds = generate(5000, 0.8, 42, 0.0, 0)  # the reference 4000 / 1000 split
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    if args.anatomy_only:
        # the sgemm peak of this VM moves by ~10 % between measurements: measure it
        # before and after, and divide by the larger (the conservative choice)
        before = sgemm_peak()
        rows = anatomy(ds, args.anatomy_members, args.widths, args.flops_steps, 1.0)
        after = sgemm_peak()
        peak = max(before, after)
        for r in rows:
            for k in [k for k in r if k.startswith("fraction_of_peak")]:
                r[k] /= peak
        print(f"\nsgemm peak {before:.0f} GFLOP/s before, {after:.0f} after, % of the larger; "
              f"block of {args.anatomy_members}, batch 100, {args.flops_steps} steps (fewer "
              "above width 256); best of 2\n")
        print("| width | member-steps/s, hand-written backward | autograd | "
              "% of sgemm peak, hand-written: block | steady-state steps | autograd: block | "
              "step alone |\n|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['width']} | {r['member_steps_per_s_hand']:.0f} | "
                  f"{r['member_steps_per_s_autograd']:.0f} | "
                  f"{100 * r['fraction_of_peak_hand']:.0f} % | "
                  f"{100 * r['fraction_of_peak_hand_steady']:.0f} % | "
                  f"{100 * r['fraction_of_peak_autograd']:.0f} % | "
                  f"{100 * r['fraction_of_peak_step_alone']:.0f} % |")
        if args.json:
            args.json.write_text(json.dumps({"sgemm_peak_gflops": peak,
                                             "sgemm_peak_before_gflops": before,
                                             "sgemm_peak_after_gflops": after,
                                             "anatomy": rows},
                                            indent=2) + "\n")
        return

    t_block = block(ds, args.members, 100, args.steps, 100)
    print(f"block of {args.members}: {t_block:.1f}s", flush=True)
    t_plain = []
    for m in range(args.members):
        idx = draw_indices("bootstrap", ds.n_train, m, seed=0)
        t_plain.append(plain_loop(ds.x_train, ds.y_train, idx, 100, args.steps, 100, m))
        print(f"plain member {m}: {t_plain[-1]:.1f}s", flush=True)
    per_block, per_plain = t_block / args.members, float(np.mean(t_plain))

    peak = sgemm_peak()
    t_wide = block(ds, args.members, 256, args.flops_steps, 100)
    gflops = step_flops(256, 100) * args.members * args.flops_steps / t_wide / 1e9

    res = {"members": args.members, "steps": args.steps, "block_s": t_block,
           "block_s_per_member": per_block, "plain_s_per_member": per_plain,
           "speedup": per_plain / per_block, "sgemm_peak_gflops": peak,
           "width256_gflops": gflops, "width256_fraction_of_peak": gflops / peak,
           "threads": torch.get_num_threads()}
    print()
    print("| measurement | value |\n|---|---|")
    print(f"| plain DataLoader loop, per member ({args.steps} steps) | {per_plain:.2f} s |")
    print(f"| vectorized block of {args.members}, per member | {per_block:.2f} s |")
    print(f"| per-member speed-up | {per_plain / per_block:.1f}x |")
    print(f"| sgemm peak (2048^3 float32) | {peak:.0f} GFLOP/s |")
    print(f"| block at width 256 (matmul FLOPs of a step) | {gflops:.0f} GFLOP/s "
          f"({100 * gflops / peak:.0f} % of peak) |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
