"""Stacked (vectorized) ensemble members and their plain PyTorch references.

A *stacked* model holds the parameters of M members in tensors with a leading
member axis, e.g. an MLP layer's weight is ``(M, out, in)``, and runs all of
them in one batched call (``torch.baddbmm`` for linear layers, a grouped
``conv1d`` for convolutions). Parameter names and per-member shapes are those
of the plain ``torch.nn`` reference module, so member m's checkpoint is
``{name: p[m]}`` and loads into the reference with ``load_state_dict``.

Architectures (MNIST-1D, Greydanus 2020, ``notebooks/models.py``):
- ``mlp``: ``depth`` hidden ReLU layers of ``width`` units; with ``residual``
  the hidden-to-hidden layers add a skip ``h = h + relu(L h)`` (the reference
  MLP is depth 2, residual, width 100: 15,210 parameters).
- ``cnn``: Conv1d(1,w,5,s2,p1) -> Conv1d(w,w,3,s2,p1) -> Conv1d(w,w,3,s2,p1),
  ReLU after each, flatten (w*5) -> Linear(w*5, 10) (w = 25: 5,210 parameters).
- ``logistic``: Linear(40, 10) (410 parameters); ``width`` is ignored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

N_IN = 40
N_CLASSES = 10
CNN_LAYERS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))  # (kernel, stride, padding)


def _conv_out_len(length: int) -> int:
    for k, s, p in CNN_LAYERS:
        length = (length + 2 * p - k) // s + 1
    return length


# ------------------------------------------------------------------ references
class MLP(nn.Module):
    """Plain MLP member (reference for the stacked one)."""

    def __init__(self, width: int, depth: int, residual: bool, n_in: int = N_IN,
                 n_classes: int = N_CLASSES):
        super().__init__()
        self.residual = residual
        self.hidden = nn.ModuleList(
            nn.Linear(n_in if i == 0 else width, width) for i in range(depth))
        self.out = nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.hidden[0](x))
        for layer in self.hidden[1:]:
            h = h + F.relu(layer(h)) if self.residual else F.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class CNN(nn.Module):
    """Plain MNIST-1D reference CNN with ``width`` channels."""

    def __init__(self, width: int, n_in: int = N_IN, n_classes: int = N_CLASSES):
        super().__init__()
        chans = (1, width, width, width)
        self.conv = nn.ModuleList(
            nn.Conv1d(chans[i], chans[i + 1], k, stride=s, padding=p)
            for i, (k, s, p) in enumerate(CNN_LAYERS))
        self.out = nn.Linear(width * _conv_out_len(n_in), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(1)  # (batch, 1, 40)
        for conv in self.conv:
            h = F.relu(conv(h))
        return h.flatten(1)  # (batch, width * 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class Logistic(nn.Module):
    """Multinomial logistic regression."""

    def __init__(self, n_in: int = N_IN, n_classes: int = N_CLASSES):
        super().__init__()
        self.out = nn.Linear(n_in, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x)


def reference_model(arch: str, width: int, depth: int = 2, residual: bool = False) -> nn.Module:
    """The plain single-member ``nn.Module`` for an architecture."""
    if arch == "mlp":
        return MLP(width, depth, residual)
    if arch == "cnn":
        return CNN(width)
    if arch == "logistic":
        return Logistic()
    raise ValueError(f"unknown arch {arch!r}")


def n_parameters(arch: str, width: int, depth: int = 2, residual: bool = False) -> int:
    """Parameters of one member."""
    return sum(p.numel() for p in reference_model(arch, width, depth, residual).parameters())


# ------------------------------------------------------------------ stacked layers
class StackedLinear(nn.Module):
    """M independent linear layers: ``(M, B, in) -> (M, B, out)``."""

    def __init__(self, members: int, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, fan_out, fan_in))  # (M, out, in)
        self.bias = nn.Parameter(torch.empty(members, fan_out))  # (M, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # baddbmm: bias (M, 1, out) + x (M, B, in) @ W^T (M, in, out)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedConv1d(nn.Module):
    """M independent Conv1d layers as one grouped conv on ``(B, M*C_in, L)``."""

    def __init__(self, members: int, c_in: int, c_out: int, kernel: int, stride: int,
                 padding: int):
        super().__init__()
        self.members, self.stride, self.padding = members, stride, padding
        self.weight = nn.Parameter(torch.empty(members, c_out, c_in, kernel))
        self.bias = nn.Parameter(torch.empty(members, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, c_out, c_in, k = self.weight.shape
        # groups=M keeps members apart: group m sees only its own C_in channels.
        return F.conv1d(x, self.weight.reshape(m * c_out, c_in, k), self.bias.reshape(-1),
                        stride=self.stride, padding=self.padding, groups=m)


class StackedMLP(nn.Module):
    def __init__(self, members: int, width: int, depth: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.hidden = nn.ModuleList(
            StackedLinear(members, N_IN if i == 0 else width, width) for i in range(depth))
        self.out = StackedLinear(members, width, N_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, B, 40) -> (M, B, width)``."""
        if not torch.is_grad_enabled():
            # scoring: in place, one fresh (M, B, width) tensor per layer instead of three
            h = self.hidden[0](x).relu_()
            for layer in self.hidden[1:]:
                h = h.add_(layer(h).relu_()) if self.residual else layer(h).relu_()
            return h
        h = F.relu(self.hidden[0](x))
        for layer in self.hidden[1:]:
            h = h + F.relu(layer(h)) if self.residual else F.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))

    @torch.no_grad()
    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step's forward and backward, written out by hand.

        ``x`` (M, B, 40), ``y`` (M, B) -> per-member mean cross-entropy (M,) and
        accuracy (M,). Every parameter's ``.grad`` is *overwritten* (not
        accumulated) with the gradient of ``loss.sum()``, i.e. member m's
        gradient of its own mean minibatch loss, as ``loss.sum().backward()``
        after a zero_grad gives; the tests compare the two.

        Why by hand: autograd computes a linear layer's weight gradient in the
        transposed ``(M, in, out)`` layout and then adds it, strided, into the
        ``(M, out, in)`` gradient (a whole extra pass over the weights), and the
        gradients must be zeroed first. Here each weight gradient is one
        ``bmm(dA^T, H, out=W.grad)`` straight into place, each bias gradient
        one ``sum(out=...)``, the first layer's input gradient is never formed,
        and the residual gradient is added inside the ``baddbmm`` that
        propagates through the layer. On a 2-core CPU this raises a block's
        throughput 1.1-1.7x over autograd (``bench/bench_train.py``, README Speed).
        """
        # forward, keeping what the backward needs: each layer's input and ReLU output
        inputs, relus = [], []
        h = x  # (M, B, 40)
        for i, layer in enumerate(self.hidden):
            r = F.relu(layer(h))  # (M, B, width)
            inputs.append(h)
            relus.append(r)
            h = h + r if (self.residual and i > 0) else r
        logits = self.out(h)  # (M, B, C)
        m, b, _ = logits.shape
        logp = torch.log_softmax(logits, -1)  # (M, B, C)
        target = y.unsqueeze(-1)  # (M, B, 1)
        loss = -logp.gather(-1, target).squeeze(-1).mean(1)  # (M,)
        acc = (logits.argmax(-1) == y).float().mean(1)  # (M,)

        # backward of sum_m mean_b CE: dlogits = (softmax - onehot) / B
        g = logp.exp_()
        g.scatter_add_(-1, target, torch.full_like(target, -1.0, dtype=g.dtype))
        g.mul_(1.0 / b)  # (M, B, C)
        dh = _linear_backward(self.out, g, h, need_input=True)  # (M, B, width)
        for i in range(len(self.hidden) - 1, -1, -1):
            da = torch.ops.aten.threshold_backward(dh, relus[i], 0)  # through the ReLU
            # residual layers: h_out = h_in + relu(a), so dh_in = dh_out + da W
            skip = dh if (self.residual and i > 0) else None
            dh = _linear_backward(self.hidden[i], da, inputs[i], need_input=i > 0, skip=skip)
        return loss, acc


def _linear_backward(layer: StackedLinear, da: torch.Tensor, h: torch.Tensor,
                     need_input: bool, skip: torch.Tensor | None = None
                     ) -> torch.Tensor | None:
    """Gradients of ``a = h W^T + b``: writes ``W.grad``, ``b.grad``; returns dh.

    ``da`` (M, B, out), ``h`` (M, B, in). dW = da^T h is (M, out, in), the
    parameter's own layout. With ``skip``, returns ``skip + da W`` in one call.
    """
    w, bias = layer.weight, layer.bias
    if w.grad is None:
        w.grad, bias.grad = torch.empty_like(w), torch.empty_like(bias)
    torch.bmm(da.transpose(1, 2), h, out=w.grad)
    torch.sum(da, 1, out=bias.grad)
    if not need_input:
        return None
    if skip is None:
        return torch.bmm(da, w)  # (M, B, in)
    return torch.baddbmm(skip, da, w)


class StackedCNN(nn.Module):
    def __init__(self, members: int, width: int):
        super().__init__()
        self.members, self.width = members, width
        chans = (1, width, width, width)
        self.conv = nn.ModuleList(
            StackedConv1d(members, chans[i], chans[i + 1], k, s, p)
            for i, (k, s, p) in enumerate(CNN_LAYERS))
        self.out = StackedLinear(members, width * _conv_out_len(N_IN), N_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, B, 40) -> (M, B, width * 5)``."""
        m, b, length = x.shape
        h = x.transpose(0, 1)  # (B, M, 40): channel m*1 is member m's input
        for conv in self.conv:
            h = F.relu(conv(h))  # (B, M*width, L')
        # (B, M, width, L') -> (M, B, width*L'): per member, the reference's flatten order
        return h.reshape(b, m, -1).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class StackedLogistic(nn.Module):
    def __init__(self, members: int):
        super().__init__()
        self.out = StackedLinear(members, N_IN, N_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x)


def stacked_model(arch: str, members: int, width: int, depth: int = 2,
                  residual: bool = False) -> nn.Module:
    """An uninitialized stacked model of ``members`` members (see ``init_members``)."""
    if arch == "mlp":
        return StackedMLP(members, width, depth, residual)
    if arch == "cnn":
        return StackedCNN(members, width)
    if arch == "logistic":
        return StackedLogistic(members)
    raise ValueError(f"unknown arch {arch!r}")


@torch.no_grad()
def init_members(model: nn.Module, generators: list[torch.Generator]) -> None:
    """Initialize member m from ``generators[m]`` with PyTorch's default distribution.

    ``nn.Linear``/``nn.Conv1d`` default to U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
    weights (kaiming_uniform with a = sqrt 5) and biases. Drawing each member
    from its own generator makes its initial weights independent of the block
    it is trained in. Parameters are visited in registration order, weight
    before bias, so the stream consumption is fixed by the architecture.
    """
    modules = [mod for mod in model.modules() if isinstance(mod, (StackedLinear, StackedConv1d))]
    for m, gen in enumerate(generators):
        for mod in modules:
            w = mod.weight[m]  # (out, in[, k])
            bound = 1.0 / math.sqrt(w[0].numel())  # fan_in = in * kernel
            for p in (mod.weight[m], mod.bias[m]):
                sample = torch.rand(p.shape, generator=gen, dtype=torch.float32)
                p.copy_((sample * 2 - 1) * bound)


def member_state(model: nn.Module, m: int) -> dict[str, torch.Tensor]:
    """Member ``m``'s parameters as a reference-module ``state_dict`` (CPU tensors)."""
    return {k: v[m].detach().cpu().clone() for k, v in model.state_dict().items()}
