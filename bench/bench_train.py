"""Training benchmark: a vectorized block vs sequential plain PyTorch loops.

1. Per-member speed-up: a block of 16 MLP members (the MNIST-1D reference
   residual MLP, width 100, batch 100, Adam) trained by ``train_block`` vs the
   same 16 members trained one after another by the textbook loop
   (``nn.Module`` + ``DataLoader(shuffle=True)`` + ``torch.optim.Adam``).
2. Step anatomy per width (``--widths``), blocks of 32: member-steps per
   second of a whole block (minibatch gather, step, fused Adam, the final
   scoring of both partitions) with the MLP's hand-written backward (what
   training uses) and with autograd; the achieved fraction of this machine's
   sgemm peak (a 2048^3 float32 matmul, measured before, between and after the
   widths) for the whole block, for its steady-state steps (a block of 2S
   steps minus one of S), for the step alone (hand-written forward +
   backward on fixed random data: no gather, no optimizer, no scoring) and
   for the step's eight matmuls alone (the ceiling for a step: no ReLU,
   softmax, sums or adds).

The whole process keeps freed memory in the heap, as training does
(``biasvar.core.alloc``), the plain loop included.

FLOPs are the matmul FLOPs a step really does: per example and weight matrix,
2 forward + 2 for the weight gradient + 2 for the input gradient, except the
first layer, whose input gradient is never formed (biases and elementwise ops
not counted). That is ~5 % below the usual "6 x parameters" at width 256.
``tests/test_bench_train.py`` checks this count, and that ``matmul_ceiling`` runs
exactly the step's matmuls, against ``torch.utils.flop_counter.FlopCounterMode``.

Usage: python bench/bench_train.py [--json bench/results/bench.json]   # both parts, ~15 min
       python bench/bench_train.py --anatomy-only [--widths 8 32 128 256 512 1024]
       python bench/bench_train.py --speedup-only [--steps 6000] [--members 16]
       python bench/bench_train.py --render bench/results/bench.json   # no benchmark run
Prints the results as Markdown (``render_markdown``); with ``--json`` it also writes
them beside the JSON (``bench/results/bench.md``, which the docs include). ``--render``
rewrites that Markdown from a results JSON without running anything. Not a test:
timings vary by machine.
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


def matmul_ceiling(members: int, width: int, steps: int, batch: int) -> float:
    """Seconds for ``steps`` runs of only the matmuls of a hand-written step.

    The eight batched matmuls of ``StackedMLP.loss_and_grad`` (depth 2,
    residual), with the same shapes, layouts and calls, back to back on fixed
    random data, without anything else of the step: no ReLU, softmax, bias sums
    or residual adds. A step can be no faster than this, so its fraction of the
    sgemm peak bounds what a whole block can reach.
    """
    from biasvar.ensemble.models import stacked_model

    model = stacked_model("mlp", members, width, 2, True)
    l1, l2, lo = (*model.hidden, model.out)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=width ** -0.5)
        p.grad = torch.empty_like(p)
    x = torch.randn(members, batch, 40)  # (M, B, 40)
    h1, h2 = torch.randn(members, batch, width), torch.randn(members, batch, width)
    da1, da2 = torch.randn(members, batch, width), torch.randn(members, batch, width)
    g = torch.randn(members, batch, 10)  # dlogits (M, B, C)

    def matmuls() -> None:
        l1(x), l2(h1), lo(h2)  # forward: baddbmm(b, h, W^T) each
        torch.bmm(g.transpose(1, 2), h2, out=lo.weight.grad)  # dW_out
        dh2 = torch.bmm(g, lo.weight)  # dh into the output layer
        torch.bmm(da2.transpose(1, 2), h1, out=l2.weight.grad)  # dW_2
        torch.baddbmm(dh2, da2, l2.weight)  # dh through layer 2, residual gradient added
        torch.bmm(da1.transpose(1, 2), x, out=l1.weight.grad)  # dW_1

    with torch.no_grad():
        for _ in range(20):
            matmuls()
        t = time.perf_counter()
        for _ in range(steps):
            matmuls()
        return time.perf_counter() - t


def anatomy(ds, members: int, widths: list[int], steps: int, repeats: int = 2
            ) -> tuple[list[dict], list[float]]:
    """Per width: member-steps/s hand-written vs autograd backward, fraction of peak, ceiling.

    The sgemm peak is measured before the first width, between widths and after
    the last; each width's fractions are of the larger of the two measurements
    around it (this VM's sgemm speed drifts by up to 50 % within minutes, so a
    single measurement at the start would credit or blame the blocks for the
    drift). Returns the rows and every peak measurement.
    """
    rows = []
    peaks = [sgemm_peak()]
    for w in widths:
        # wider than 256: fewer steps, but still hundreds, so that the fixed costs
        # (initialization, the final scoring, checkpoints) stay a small share
        n = steps if w <= 256 else max(50, steps * 256 // w)
        flop = step_flops(w, 100) * members * n
        # best of `repeats`, the variants alternating, so that a busy moment
        # or the first run's warm-up does not decide the comparison
        t_hand = t_hand2 = t_auto = t_step = t_mm = float("inf")
        for _ in range(repeats):
            t_hand = min(t_hand, block(ds, members, w, n, 100))
            # twice the steps: the difference is `n` steady-state training steps,
            # without the fixed costs
            t_hand2 = min(t_hand2, block(ds, members, w, 2 * n, 100))
            t_auto = min(t_auto, block(ds, members, w, n, 100, autograd=True))
            t_step = min(t_step, step_ceiling(members, w, n, 100))
            t_mm = min(t_mm, matmul_ceiling(members, w, n, 100))
        peaks.append(sgemm_peak())
        peak = max(peaks[-2:])
        rows.append({"width": w, "members": members, "steps": n, "sgemm_peak_gflops": peak,
                     "member_steps_per_s_hand": members * n / t_hand,
                     "member_steps_per_s_autograd": members * n / t_auto,
                     "gflops_hand": flop / t_hand / 1e9,
                     "fraction_of_peak_hand": flop / t_hand / 1e9 / peak,
                     "fraction_of_peak_hand_steady": flop / (t_hand2 - t_hand) / 1e9 / peak,
                     "fraction_of_peak_autograd": flop / t_auto / 1e9 / peak,
                     "fraction_of_peak_step_alone": flop / t_step / 1e9 / peak,
                     "fraction_of_peak_matmuls_alone": flop / t_mm / 1e9 / peak})
        print(rows[-1], flush=True)
    return rows, peaks


def anatomy_row(r: dict) -> str:
    """One width's row of the step-anatomy Markdown table (README Speed)."""
    return (f"| {r['width']} | {r['member_steps_per_s_hand']:.0f} | "
            f"{r['member_steps_per_s_autograd']:.0f} | {r['sgemm_peak_gflops']:.0f} | "
            f"{100 * r['fraction_of_peak_hand']:.0f} % | "
            f"{100 * r['fraction_of_peak_hand_steady']:.0f} % | "
            f"{100 * r['fraction_of_peak_autograd']:.0f} % | "
            f"{100 * r['fraction_of_peak_step_alone']:.0f} % | "
            f"{100 * r['fraction_of_peak_matmuls_alone']:.0f} % |")


# A whole block "reaches" the sgemm peak at this fraction (the performance target).
TARGET = 0.6
GENERATED = "<!-- generated by bench/bench_train.py from the JSON beside it; do not edit -->"


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _widths_text(ws: list[int]) -> str:
    return ", ".join(map(str, ws)) if ws else "none"


def render_markdown(res: dict) -> str:
    """The benchmark's results (``main``'s JSON) as Markdown: the per-member speed-up
    table, the step-anatomy table (``anatomy_row``) and the sentences derived from it:
    which widths reach ``TARGET`` of the sgemm peak, and, for those that do not, how far
    the step's matmuls alone get and how much of the rest would have to go."""
    out = [GENERATED, ""]
    head = f"torch {res['torch']}, {res['threads']} threads"
    if "speedup" in res:
        r = res["speedup"]
        out += [f"**Per-member speed-up** ({head}): a block of {r['members']} members trained "
                "vectorized against the same members trained one after another by the "
                "textbook loop.", "",
                "| measurement | value |", "|---|---|",
                f"| plain DataLoader loop, per member ({r['steps']} steps) | "
                f"{r['plain_s_per_member']:.2f} s |",
                f"| vectorized block of {r['members']}, per member | "
                f"{r['block_s_per_member']:.2f} s |",
                f"| **per-member speed-up** | **{r['speedup']:.1f}×** |", ""]
    if "anatomy" in res:
        rows, peaks = res["anatomy"], res["sgemm_peaks_gflops"]
        steps = sorted({r["steps"] for r in rows}, reverse=True)
        out += [f"**Step anatomy** ({head}; blocks of {rows[0]['members']}, batch 100, "
                f"{' / '.join(map(str, steps))} steps, best of 2): the sgemm peak was measured "
                f"{len(peaks)} times in the run, {min(peaks):.0f} to {max(peaks):.0f} GFLOP/s; "
                "each width's percentages are of the larger measurement around it.", "",
                "| width | member-steps/s, hand-written backward | autograd | sgemm peak around "
                "it (GFLOP/s) | % of sgemm peak, hand-written: block | steady-state steps | "
                "autograd: block | step alone | its matmuls alone |",
                "|---|---|---|---|---|---|---|---|---|",
                *(anatomy_row(r) for r in rows), ""]
        gains = ", ".join(f"{r['member_steps_per_s_hand'] / r['member_steps_per_s_autograd']:.2f}"
                          f"× at width {r['width']}" for r in rows)
        text = [f"The hand-written backward against autograd, member-steps per second: {gains}."]
        wide = [r for r in rows if r["width"] >= 128]
        if wide:
            over = [r["width"] for r in wide if r["fraction_of_peak_hand"] >= TARGET]
            worst = min(wide, key=lambda r: r["fraction_of_peak_hand"])
            text.append(f"From width 128 on, a whole block reaches ≥ {_pct(TARGET)} of the sgemm "
                        f"peak at width(s): {_widths_text(over)}; lowest at width "
                        f"{worst['width']} ({_pct(worst['fraction_of_peak_hand'])}).")
            short = [r for r in wide if r["fraction_of_peak_hand"] < TARGET]
            if short:
                mm = [r["fraction_of_peak_matmuls_alone"] for r in short]
                spent = [m / r["fraction_of_peak_hand"] - 1 for m, r in zip(mm, short,
                                                                             strict=True)]
                budget = [m / TARGET - 1 for m in mm]
                at = [f"width {r['width']}" for r in short]
                text.append(
                    "Where it falls short, the matmuls of a step alone reach "
                    + ", ".join(f"{_pct(m)} at {w}" for m, w in zip(mm, at, strict=True))
                    + f"; to reach {_pct(TARGET)} everything else may take at most "
                    + " and ".join(f"{_pct(x)} at {w}" for x, w in zip(budget, at, strict=True))
                    + " of the matmul time; it takes "
                    + " and ".join(_pct(x) for x in spent)
                    + " (block against matmuls alone), so it would have to shrink to "
                    + " and ".join(_pct(x / s) if s > 0 else "—"
                                   for x, s in zip(budget, spent, strict=True))
                    + " of what it is.")
            top = max(rows, key=lambda r: r["width"])
            text.append(f"The widest block (width {top['width']}, {top['gflops_hand']:.0f} "
                        f"GFLOP/s) is at {_pct(top['gflops_hand'] / max(peaks))} of the largest "
                        f"sgemm measurement of the run ({max(peaks):.0f} GFLOP/s) and "
                        f"{_pct(top['gflops_hand'] / min(peaks))} of the smallest "
                        f"({min(peaks):.0f}); its steady-state steps reach "
                        f"{_pct(top['fraction_of_peak_hand_steady'])}, the step alone "
                        f"{_pct(top['fraction_of_peak_step_alone'])}.")
        out += [" ".join(text), ""]
    return "\n".join(out).rstrip() + "\n"


def write_markdown(json_path: Path) -> Path:
    """Write ``render_markdown`` of the results in ``json_path`` beside it (``.md``)."""
    md = json_path.with_suffix(".md")
    md.write_text(render_markdown(json.loads(json_path.read_text())))
    return md


def speedup(ds, members: int, steps: int) -> dict:
    """Seconds per member: a vectorized block vs the plain loop, member after member."""
    from biasvar.data.splits import draw_indices

    t_block = block(ds, members, 100, steps, 100)
    print(f"block of {members}: {t_block:.1f}s", flush=True)
    t_plain = []
    for m in range(members):
        idx = draw_indices("bootstrap", ds.n_train, m, seed=0)
        t_plain.append(plain_loop(ds.x_train, ds.y_train, idx, 100, steps, 100, m))
        print(f"plain member {m}: {t_plain[-1]:.1f}s", flush=True)
    per_block, per_plain = t_block / members, float(np.mean(t_plain))
    return {"members": members, "steps": steps, "block_s": t_block,
            "block_s_per_member": per_block, "plain_s_per_member": per_plain,
            "speedup": per_plain / per_block}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--flops-steps", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 32, 128, 256, 512])
    ap.add_argument("--anatomy-members", type=int, default=32)
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--anatomy-only", action="store_true", help="skip the plain loop")
    only.add_argument("--speedup-only", action="store_true", help="skip the step anatomy")
    only.add_argument("--render", type=Path, metavar="JSON",
                      help="only write the Markdown of a results JSON beside it (no run)")
    args = ap.parse_args()
    if args.render:
        print(f"wrote {write_markdown(args.render)}")
        return

    from biasvar.core.alloc import keep_freed_memory
    from biasvar.data.dataset import generate

    # as training does (train_block): no page faults on freed activations; the plain
    # loop gets it too, so the comparison is of the training code alone
    keep_freed_memory()
    ds = generate(5000, 0.8, 42, 0.0, 0)  # the reference 4000 / 1000 split
    res = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    if not args.anatomy_only:
        res["speedup"] = speedup(ds, args.members, args.steps)
    if not args.speedup_only:
        rows, peaks = anatomy(ds, args.anatomy_members, args.widths, args.flops_steps)
        res["sgemm_peaks_gflops"], res["anatomy"] = peaks, rows

    print("\n" + render_markdown(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {args.json} and {write_markdown(args.json)}")


if __name__ == "__main__":
    main()
