"""Adam and SGD (momentum) on one flat parameter buffer.

A block's parameters live in a single contiguous tensor (``FlatParams``), so
an optimizer step is a handful of elementwise ops on one tensor instead of
several per parameter: this is most of a small model's step time on a CPU.
The updates reproduce ``torch.optim.Adam`` / ``torch.optim.SGD`` (L2 weight
decay added to the gradient, no dampening, no Nesterov); tests compare them
step by step. Elementwise updates on stacked parameters are exactly
independent per-member optimizers.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FlatParams:
    """All parameters of a module stored in one flat tensor, gradients in another.

    Each ``nn.Parameter`` keeps its name and shape but its storage becomes a
    view into ``flat``, and its ``.grad`` a view into ``grad``: autograd then
    accumulates in place into the flat gradient (grads already exist, and
    backward runs with grad mode off), so the optimizer sees one tensor.
    Zeroing is one ``grad.zero_()``.
    """

    def __init__(self, module: nn.Module):
        params = list(module.parameters())
        self.flat = torch.cat([p.detach().reshape(-1) for p in params])
        self.grad = torch.zeros_like(self.flat)
        start = 0
        for p in params:
            n = p.numel()
            p.data = self.flat[start:start + n].view_as(p)
            p.grad = self.grad[start:start + n].view_as(p)
            start += n

    def zero_grad(self) -> None:
        self.grad.zero_()


class FlatAdam:
    """``torch.optim.Adam`` (betas 0.9/0.999, eps 1e-8, L2 weight decay) on one tensor.

    The update is PyTorch's fused Adam kernel (``torch._fused_adam_``, the one
    behind ``torch.optim.Adam(fused=True)``; CPU and CUDA): one pass over the
    flat buffer that reads p, g, m, v and writes p, m, v. The unfused chain
    below (``fused=False``, or a torch without the kernel) makes six passes;
    on a 2-core CPU the fused step is about 4x faster (``bench/bench_train.py``).
    The two agree to float32 rounding (both are tested against ``torch.optim.Adam``).
    """

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float,
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, fused: bool = True):
        self.p, self.g, self.lr, self.wd, self.betas, self.eps = (
            param, grad, lr, weight_decay, betas, eps)
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0
        self.fused = fused and hasattr(torch, "_fused_adam_")
        if self.fused:
            # the kernel reads the step count from a tensor on the parameters' device
            self.step_t = torch.zeros((), dtype=torch.float32, device=param.device)
        else:
            self.denom = torch.empty_like(param)

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        self.t += 1
        if self.fused:
            self.step_t.add_(1.0)
            torch._fused_adam_([self.p], [self.g], [self.m], [self.v], [], [self.step_t],
                               lr=self.lr, beta1=b1, beta2=b2, weight_decay=self.wd,
                               eps=self.eps, amsgrad=False, maximize=False)
            return
        g = self.g.add(self.p, alpha=self.wd) if self.wd else self.g
        self.m.lerp_(g, 1 - b1)  # m = b1 m + (1 - b1) g, as torch does
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        bc1 = 1 - b1 ** self.t
        bc2_sqrt = math.sqrt(1 - b2 ** self.t)
        torch.sqrt(self.v, out=self.denom)
        self.denom.div_(bc2_sqrt).add_(self.eps)
        self.p.addcdiv_(self.m, self.denom, value=-self.lr / bc1)


class FlatSGD:
    """``torch.optim.SGD`` with momentum (no dampening/Nesterov) and L2 weight decay."""

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float,
                 momentum: float = 0.0, weight_decay: float = 0.0):
        self.p, self.g, self.lr, self.momentum, self.wd = param, grad, lr, momentum, weight_decay
        self.buf: torch.Tensor | None = None

    @torch.no_grad()
    def step(self) -> None:
        g = self.g.add(self.p, alpha=self.wd) if self.wd else self.g
        if self.momentum:
            if self.buf is None:
                self.buf = g.clone()  # torch starts the buffer at the first gradient
            else:
                self.buf.mul_(self.momentum).add_(g)
            g = self.buf
        self.p.add_(g, alpha=-self.lr)


def make_optimizer(name: str, flat: FlatParams, lr: float, momentum: float,
                   weight_decay: float) -> FlatAdam | FlatSGD:
    """``adam`` or ``sgd`` over a module's flat parameters."""
    if name == "adam":
        return FlatAdam(flat.flat, flat.grad, lr, weight_decay)
    if name == "sgd":
        return FlatSGD(flat.flat, flat.grad, lr, momentum, weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")
