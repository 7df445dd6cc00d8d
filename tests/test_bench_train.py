"""The training benchmark's FLOP accounting and its matmul ceiling, against PyTorch's counter.

README Speed divides ``step_flops`` by measured seconds, and reads the
"matmuls alone" column as a ceiling for a step; both are only true if they
count and run exactly the matmuls the hand-written step runs. Checked with
``torch.utils.flop_counter.FlopCounterMode`` (an independent count).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from biasvar.ensemble.models import stacked_model


def _counted(fn) -> tuple[int, dict[str, int]]:
    with FlopCounterMode(display=False) as counter:
        fn()
    per_op = {str(op).split(".")[-1]: n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), per_op


def test_step_flops_is_what_the_hand_written_step_multiplies(bench_train):
    members, width, batch = 3, 24, 7
    model = stacked_model("mlp", members, width, 2, True)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x, y = torch.randn(members, batch, 40), torch.randint(0, 10, (members, batch))
    total, _ = _counted(lambda: model.loss_and_grad(x, y))
    # 6 FLOPs per weight and example, minus the first layer's input gradient
    assert total == members * bench_train.step_flops(width, batch)
    assert bench_train.step_flops(width, batch) == batch * (
        6 * (40 * width + width * width + width * 10) - 2 * 40 * width)


def test_matmul_ceiling_runs_the_same_matmuls_as_the_step(bench_train):
    members, width, batch, steps = 2, 16, 5, 3
    model = stacked_model("mlp", members, width, 2, True)
    x, y = torch.randn(members, batch, 40), torch.randint(0, 10, (members, batch))
    step_total, step_ops = _counted(lambda: model.loss_and_grad(x, y))
    total, ops = _counted(lambda: bench_train.matmul_ceiling(members, width, steps, batch))
    runs = 20 + steps  # warm-up runs + timed runs
    assert total == runs * step_total
    assert ops == {op: runs * n for op, n in step_ops.items()}  # same bmm/baddbmm split
