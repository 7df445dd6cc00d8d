"""Decomposition benchmark: every per-example decomposition + Neal split, vectorized vs a loop.

Input: random logits for 100 members x 10,000 examples x 10 classes (10 draws
x 10 seeds). Times ``biasvar.summary.per_example`` (MSE, cross-entropy, 0-1,
Neal split, finite-K estimates) and a slow, obviously-correct per-example
Python loop (the same reference the tests use), timed on ``--slow-examples``
examples and scaled to all 10,000. Also checks that both agree.

Usage: python bench/bench_decompose.py [--members 100] [--examples 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402


def slow_example(p: np.ndarray, label: int, draws: np.ndarray) -> tuple[float, ...]:
    """All terms of one example from its (K, C) probabilities with plain loops."""
    k, c = p.shape
    mean = [sum(p[m, j] for m in range(k)) / k for j in range(c)]
    y = [1.0 if j == label else 0.0 for j in range(c)]
    bias2 = sum((mean[j] - y[j]) ** 2 for j in range(c))
    var = sum(sum((p[m, j] - mean[j]) ** 2 for j in range(c)) for m in range(k)) / k
    geo = [np.exp(sum(np.log(p[m, j]) for m in range(k)) / k) for j in range(c)]
    z = sum(geo)
    central = [g / z for g in geo]
    ce_var = sum(sum(central[j] * np.log(central[j] / p[m, j]) for j in range(c))
                 for m in range(k)) / k
    preds = [int(np.argmax(p[m])) for m in range(k)]
    counts = [preds.count(j) for j in range(c)]
    mode = counts.index(max(counts))
    zo_var = sum(q != mode for q in preds) / k
    uniq = sorted(set(draws.tolist()))
    dmean = {d: [float(np.mean([p[m, j] for m in range(k) if draws[m] == d])) for j in range(c)]
             for d in uniq}
    opt = sum(sum((p[m, j] - dmean[draws[m]][j]) ** 2 for j in range(c)) for m in range(k)) / k
    return bias2, var, -np.log(central[label]), ce_var, float(mode != label), zo_var, opt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seeds-per-draw", type=int, default=10)
    ap.add_argument("--slow-examples", type=int, default=200)
    args = ap.parse_args()

    from biasvar.analysis.decompose import softmax
    from biasvar.analysis.summary import per_example

    rng = np.random.default_rng(0)
    k, n, c = args.members, args.examples, args.classes
    logits = rng.normal(scale=2.0, size=(k, n, c)).astype(np.float32)
    labels = rng.integers(0, c, n)
    draws = np.arange(k) // args.seeds_per_draw

    per_example(logits[:, :100], labels[:100], draws)  # warm up imports
    times = []
    for _ in range(3):
        t = time.perf_counter()
        cols = per_example(logits, labels, draws)
        times.append(time.perf_counter() - t)
    fast = min(times)

    p = softmax(logits)
    m = args.slow_examples
    t = time.perf_counter()
    slow = [slow_example(p[:, i], int(labels[i]), draws) for i in range(m)]
    slow_time = (time.perf_counter() - t) * n / m
    ref = np.array(slow)
    for j, name in enumerate(("mse_bias2", "mse_var", "ce_bias", "ce_var", "zero_one_bias",
                              "zero_one_var", "var_optimization")):
        np.testing.assert_allclose(cols[name][:m], ref[:, j], rtol=1e-9, atol=1e-12,
                                   err_msg=name)
    print(f"{k} members x {n} examples x {c} classes ({k // args.seeds_per_draw} draws x "
          f"{args.seeds_per_draw} seeds)")
    print("| measurement | value |\n|---|---|")
    print(f"| vectorized: MSE + CE + 0-1 + Neal split + finite-K, all examples | {fast:.2f} s |")
    print(f"| slow per-example loop (timed on {m} examples, scaled) | {slow_time:.0f} s |")
    print(f"| speed-up | {slow_time / fast:.0f}x |")


if __name__ == "__main__":
    main()
