"""Model families sized from the data, and hand-written stacked (vectorized) twins.

Every family is a plain ``nn.Module`` built from ``(input_shape, n_classes,
width)`` (plus ``depth``, ``residual``, ``stages`` where they apply) by
``build_member``; ``biasvar.ensemble.generic`` trains M of them vectorized with
``torch.func``. ``width`` is the capacity axis of every family. Families
(``model.arch``):

- ``mlp``: flattens any input; ``depth`` hidden ReLU layers of ``width`` units;
  with ``residual`` the hidden-to-hidden layers add a skip ``h = h + relu(L h)``
  (the MNIST-1D reference MLP is depth 2, residual, width 100: 15,210 parameters).
- ``cnn1d`` (alias ``cnn``, the name of earlier params): the MNIST-1D reference CNN,
  Conv1d(C,w,5,s2,p1) -> Conv1d(w,w,3,s2,p1) -> Conv1d(w,w,3,s2,p1), ReLU after each,
  flatten -> Linear; inputs ``(L,)`` (one channel) or ``(C, L)`` (w = 25 on MNIST-1D:
  5,210 parameters).
- ``logistic``: Linear(prod(input_shape), n_classes); ``width`` is ignored.
- ``cnn2d``: inputs ``(C, H, W)`` (or ``(H, W)``): two stages of conv3x3 (``width``
  channels) + ReLU + 2x2 max-pooling, then a linear head.
- ``resnet``: a pre-activation ResNet (He et al. 2016) in the spirit of Nakkiran et
  al. 2019 ("ResNet18 with k channels in the first stage"): ``stages`` stages of
  ``depth`` basic blocks with k, 2k, 4k, 8k, ... channels (k = ``width``); stages 4
  and depth 2 give ResNet18's layout. GroupNorm replaces BatchNorm (``ResNet``).
- ``module``: a user's factory ``model.module: "package.module:function"``, called
  as ``function(input_shape, n_classes, width)``, returning an ``nn.Module``.

A *stacked* model holds the parameters of M members in tensors with a leading
member axis, e.g. an MLP layer's weight is ``(M, out, in)``, and runs all of
them in one batched call (``torch.baddbmm`` for linear layers, a grouped
``conv1d`` for convolutions). Parameter names and per-member shapes are those
of the plain module, so member m's checkpoint is ``{name: p[m]}`` and loads into
the plain module with ``load_state_dict``. The MLP's stacked twin is the fast
path of the default run; ``cnn1d`` and ``logistic`` keep theirs too (tested
equal to the generic path).
"""

from __future__ import annotations

import importlib
import math

import torch
import torch.nn.functional as F
from torch import nn

ARCHS = ("mlp", "cnn1d", "logistic", "cnn2d", "resnet", "module")
ALIASES = {"cnn": "cnn1d"}  # configs written before cnn2d existed
CNN_LAYERS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))  # (kernel, stride, padding)


def data_shape(dataset) -> tuple[tuple[int, ...], int]:
    """``(input_shape, n_classes)`` of a dataset (provider attributes, else from the arrays)."""
    shape = getattr(dataset, "input_shape", None) or tuple(dataset.x_train.shape[1:])
    return tuple(int(s) for s in shape), int(getattr(dataset, "n_classes", None) or 10)


def _conv_out_len(length: int) -> int:
    for k, s, p in CNN_LAYERS:
        length = (length + 2 * p - k) // s + 1
    return length


def _shape_error(arch: str, takes: str, input_shape: tuple[int, ...]):
    """One line before training: the family cannot take the dataset's inputs."""
    from biasvar.core.errors import ParamError

    return ParamError("model.arch", arch, f"{arch} takes inputs of shape {takes}, but the "
                      f"dataset's inputs are {tuple(input_shape)}")


def _channels_length(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(L,)`` -> (1, L); ``(C, L)`` -> (C, L)."""
    if len(input_shape) == 1:
        return 1, input_shape[0]
    if len(input_shape) == 2:
        return input_shape[0], input_shape[1]
    raise _shape_error("cnn1d", "(L,) or (C, L)", input_shape)


def _chw(input_shape: tuple[int, ...], arch: str) -> tuple[int, int, int]:
    """``(H, W)`` -> (1, H, W); ``(C, H, W)`` as is."""
    if len(input_shape) == 2:
        return (1, *input_shape)
    if len(input_shape) == 3:
        return tuple(input_shape)
    raise _shape_error(arch, "(C, H, W) or (H, W)", input_shape)


# ------------------------------------------------------------------ plain members
class MLP(nn.Module):
    """Plain MLP member; flattens ``(B, *input_shape)`` to ``(B, prod(input_shape))``."""

    def __init__(self, width: int, depth: int, residual: bool, n_in: int, n_classes: int):
        super().__init__()
        self.residual = residual
        self.hidden = nn.ModuleList(
            nn.Linear(n_in if i == 0 else width, width) for i in range(depth))
        self.out = nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.hidden[0](x.flatten(1)))
        for layer in self.hidden[1:]:
            h = h + F.relu(layer(h)) if self.residual else F.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class CNN(nn.Module):
    """Plain MNIST-1D reference CNN (``cnn1d``) with ``width`` channels."""

    def __init__(self, width: int, input_shape: tuple[int, ...], n_classes: int):
        super().__init__()
        c_in, length = _channels_length(tuple(input_shape))
        chans = (c_in, width, width, width)
        self.conv = nn.ModuleList(
            nn.Conv1d(chans[i], chans[i + 1], k, stride=s, padding=p)
            for i, (k, s, p) in enumerate(CNN_LAYERS))
        self.out = nn.Linear(width * _conv_out_len(length), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), -1, x.shape[-1])  # (batch, C, L); C = 1 for (B, L) inputs
        for conv in self.conv:
            h = F.relu(conv(h))
        return h.flatten(1)  # (batch, width * L'), L' = 5 on MNIST-1D

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class Logistic(nn.Module):
    """Multinomial logistic regression on the flattened input."""

    def __init__(self, n_in: int, n_classes: int):
        super().__init__()
        self.out = nn.Linear(n_in, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class CNN2d(nn.Module):
    """A small image conv net: 2 x (conv3x3 ``width`` ch. + ReLU + 2x2 max-pool), linear head.

    A side shorter than 2 skips its pooling (an 8x8 digit ends at 2x2, a 32x32 image at 8x8).
    """

    def __init__(self, width: int, input_shape: tuple[int, ...], n_classes: int):
        super().__init__()
        c, h, w = _chw(tuple(input_shape), "cnn2d")
        self.conv = nn.ModuleList([nn.Conv2d(c, width, 3, padding=1),
                                   nn.Conv2d(width, width, 3, padding=1)])
        for _ in self.conv:
            h, w = (h // 2 if h >= 2 else h), (w // 2 if w >= 2 else w)
        self.out = nn.Linear(width * h * w, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(len(x), -1, *x.shape[-2:])  # (batch, C, H, W)
        for conv in self.conv:
            h = F.relu(conv(h))
            kh, kw = min(2, h.shape[-2]), min(2, h.shape[-1])
            h = F.max_pool2d(h, (kh, kw))
        return h.flatten(1)  # (batch, width * H' * W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def _norm(channels: int) -> nn.GroupNorm:
    # up to 32 groups (Wu & He 2018), a divisor of the channel count
    return nn.GroupNorm(math.gcd(32, channels), channels)


class PreActBlock(nn.Module):
    """Pre-activation basic block: norm-ReLU-conv3x3 twice, identity or 1x1-conv skip."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm2 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.skip = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                     if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.norm1(x))
        skip = self.skip(a) if self.skip is not None else x
        h = self.conv1(a)
        h = self.conv2(F.relu(self.norm2(h)))
        return h + skip


class ResNet(nn.Module):
    """Width-scalable pre-activation ResNet: ``stages`` stages of ``depth`` blocks, k·2^s ch.

    Normalization is GroupNorm, not Nakkiran et al.'s BatchNorm: it has no
    running statistics, so a member's output depends only on its own input
    example (not on its minibatch), training and scoring compute the same
    function, and the module vmaps over stacked members with nothing to
    update in place (BatchNorm's running-stat updates are in-place writes to
    buffers, which ``torch.func`` transforms handle poorly). The price: results
    are comparable to a BN ResNet in shape, not number for number.
    """

    def __init__(self, width: int, input_shape: tuple[int, ...], n_classes: int,
                 depth: int = 2, stages: int = 4):
        super().__init__()
        c, _, _ = _chw(tuple(input_shape), "resnet")
        self.stem = nn.Conv2d(c, width, 3, padding=1, bias=False)
        blocks, c_in = [], width
        for s in range(stages):
            c_out = width * 2**s
            for b in range(depth):
                blocks.append(PreActBlock(c_in, c_out, 2 if (s > 0 and b == 0) else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.norm = _norm(c_in)
        self.out = nn.Linear(c_in, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x.reshape(len(x), -1, *x.shape[-2:]))  # (batch, k, H, W)
        h = F.relu(self.norm(self.blocks(h)))
        return h.mean((-2, -1))  # global average pool: (batch, k * 2^(stages-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def load_factory(spec: str | None):
    """The user's factory named by ``model.module`` ("package.module:function").

    Raises ``ParamError`` (one line naming the key and value) when it cannot be imported.
    """
    from biasvar.core.errors import ParamError

    key = "model.module"
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ParamError(key, spec, 'a factory "package.module:function"')
    mod_name, fn_name = spec.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:  # ImportError, or an error raised while importing it
        raise ParamError(key, spec, f"module {mod_name!r} cannot be imported "
                                    f"({e.__class__.__name__}: {e})") from None
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise ParamError(key, spec, f"module {mod_name!r} has no function {fn_name!r}")
    return fn


def reference_model(arch: str, width: int, depth: int = 2, residual: bool = False,
                    input_shape: tuple[int, ...] = (40,), n_classes: int = 10,
                    stages: int = 4, module: str | None = None) -> nn.Module:
    """One plain member (PyTorch's default init); the shape defaults are MNIST-1D's."""
    from biasvar.core.errors import ParamError

    arch = ALIASES.get(arch, arch)
    input_shape = tuple(int(s) for s in input_shape)
    if arch == "mlp":
        return MLP(width, depth, residual, math.prod(input_shape), n_classes)
    if arch == "cnn1d":
        return CNN(width, input_shape, n_classes)
    if arch == "logistic":
        return Logistic(math.prod(input_shape), n_classes)
    if arch == "cnn2d":
        return CNN2d(width, input_shape, n_classes)
    if arch == "resnet":
        return ResNet(width, input_shape, n_classes, depth, stages)
    if arch == "module":
        fn = load_factory(module)
        try:
            net = fn(input_shape, n_classes, width)
        except Exception as e:
            raise ParamError("model.module", module, f"the factory failed on input_shape "
                             f"{input_shape}, n_classes {n_classes}, width {width} "
                             f"({e.__class__.__name__}: {e})") from None
        if not isinstance(net, nn.Module):
            raise ParamError("model.module", module, "a factory returning a torch.nn.Module, "
                             f"not {type(net).__name__}")
        return net
    raise ValueError(f"unknown arch {arch!r}")


def check_factory(spec: str, input_shape: tuple[int, ...], n_classes: int,
                  widths: list[int]) -> None:
    """Build ``model.module``'s member at every width and run it on two zero inputs.

    What ``tools.validate`` does before any stage runs, so that a factory that cannot
    be imported, fails, returns no ``nn.Module`` or ignores the data's shape (its
    logits are not ``(2, n_classes)``) is one line naming ``model.module``, not a
    failure of every train stage. Raises ``ParamError``.
    """
    from biasvar.core.errors import ParamError

    x = torch.zeros(2, *input_shape)
    for width in widths:
        net = reference_model("module", width, input_shape=input_shape, n_classes=n_classes,
                              module=spec)
        try:
            with torch.no_grad():
                out = net(x)
        except Exception as e:
            raise ParamError("model.module", spec, f"a module that takes inputs (batch, "
                             f"{', '.join(map(str, input_shape))}); at width {width} its "
                             f"forward failed ({e.__class__.__name__}: {e})") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_classes):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ParamError("model.module", spec, f"a module returning logits (batch, "
                             f"{n_classes}); at width {width} it returned {got}")


def model_from_params(model_cfg, width: int, input_shape: tuple[int, ...],
                      n_classes: int) -> nn.Module:
    """``reference_model`` for a ``ModelParams`` section (or a mapping of its keys)."""
    get = (model_cfg.get if isinstance(model_cfg, dict)
           else lambda k, d=None: getattr(model_cfg, k, d))
    return reference_model(get("arch"), width, get("depth", 2), get("residual", False),
                           input_shape, n_classes, get("stages", 4), get("module"))


def n_parameters(arch: str, width: int, depth: int = 2, residual: bool = False,
                 input_shape: tuple[int, ...] = (40,), n_classes: int = 10,
                 stages: int = 4) -> int:
    """Parameters of one member (built on the meta device: no memory, no init, fast)."""
    with torch.device("meta"):
        net = reference_model(arch, width, depth, residual, input_shape, n_classes, stages)
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def init_member(model: nn.Module, gen: torch.Generator) -> None:
    """Initialize a plain member's linear and convolution layers from ``gen``.

    The same draws, in the same order, as ``init_members`` gives one member of the
    stacked twin: for each ``nn.Linear`` / ``nn.ConvNd`` in registration order, weight
    then bias, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default distribution).
    Norm layers keep their constant init; other parameters keep the module's own.
    """
    for mod in model.modules():
        if not isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        bound = 1.0 / math.sqrt(mod.weight[0].numel())  # fan_in = in * kernel
        for p in (mod.weight, mod.bias):
            if p is None:
                continue
            sample = torch.rand(p.shape, generator=gen, dtype=torch.float32)
            p.copy_((sample * 2 - 1) * bound)


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
    """The hand-written fast path of ``MLP``: inputs ``(M, B, n_in)``, already flat."""

    def __init__(self, members: int, width: int, depth: int, residual: bool, n_in: int,
                 n_classes: int):
        super().__init__()
        self.residual = residual
        self.hidden = nn.ModuleList(
            StackedLinear(members, n_in if i == 0 else width, width) for i in range(depth))
        self.out = StackedLinear(members, width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, B, n_in) -> (M, B, width)``."""
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

        ``x`` (M, B, n_in), ``y`` (M, B) -> per-member mean cross-entropy (M,) and
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
        h = x  # (M, B, n_in)
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
    """Stacked ``CNN1d`` (grouped convolutions); inputs ``(M, B, L)`` or ``(M, B, C, L)``."""

    def __init__(self, members: int, width: int, input_shape: tuple[int, ...], n_classes: int):
        super().__init__()
        self.members, self.width = members, width
        c_in, length = _channels_length(input_shape)
        chans = (c_in, width, width, width)
        self.conv = nn.ModuleList(
            StackedConv1d(members, chans[i], chans[i + 1], k, s, p)
            for i, (k, s, p) in enumerate(CNN_LAYERS))
        self.out = StackedLinear(members, width * _conv_out_len(length), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, B, L)`` or ``(M, B, C, L)`` -> ``(M, B, width * L')`` (L = 40: L' = 5)."""
        m, b = x.shape[:2]
        # (B, M*C, L): channels m*C ... m*C+C-1 are member m's input
        h = x.reshape(m, b, -1, x.shape[-1]).transpose(0, 1).reshape(b, -1, x.shape[-1])
        for conv in self.conv:
            h = F.relu(conv(h))  # (B, M*width, L')
        # (B, M, width, L') -> (M, B, width*L'): per member, the reference's flatten order
        return h.reshape(b, m, -1).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class StackedLogistic(nn.Module):
    """Stacked ``Logistic``; inputs ``(M, B, *input_shape)``, flattened."""

    def __init__(self, members: int, input_shape: tuple[int, ...], n_classes: int):
        super().__init__()
        self.out = StackedLinear(members, math.prod(input_shape), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)  # (M, B, n_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


STACKED_ARCHS = ("mlp", "cnn1d", "logistic")


def stacked_model(arch: str, members: int, width: int, depth: int = 2, residual: bool = False,
                  input_shape: tuple[int, ...] = (40,), n_classes: int = 10) -> nn.Module:
    """An uninitialized hand-written stacked model (see ``init_members``).

    Only ``mlp`` (the fast path), ``cnn1d`` and ``logistic`` have one; every
    family also trains through ``biasvar.ensemble.generic``. The shape defaults
    are MNIST-1D's, for the tests and the benchmark.
    """
    arch = ALIASES.get(arch, arch)
    input_shape = tuple(input_shape)
    if arch == "mlp":
        return StackedMLP(members, width, depth, residual, math.prod(input_shape), n_classes)
    if arch == "cnn1d":
        return StackedCNN(members, width, input_shape, n_classes)
    if arch == "logistic":
        return StackedLogistic(members, input_shape, n_classes)
    raise ValueError(f"arch {arch!r} has no hand-written stacked model")


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
    """Member ``m``'s parameters as a plain-module ``state_dict`` (CPU tensors)."""
    if hasattr(model, "member_state"):  # the generic path (biasvar.ensemble.generic)
        return model.member_state(m)
    return {k: v[m].detach().cpu().clone() for k, v in model.state_dict().items()}
