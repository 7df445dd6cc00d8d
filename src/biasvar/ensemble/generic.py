"""The generic vectorized path: M members of any ``nn.Module`` trained as one, with torch.func.

``stack_module_state`` turns M freshly built members (each initialized from its
own generator) into stacked tensors with a leading member axis;
``functional_call`` runs the architecture with one member's tensors, and
``vmap`` maps it over the member axis of the parameters *and* of the inputs, so
every member sees its own minibatch ``(M, B, *input_shape)``. Gradients are
``vmap(grad(loss))``: member m's gradient of its own mean minibatch loss, as
``M`` separate ``loss.backward()`` calls would give (PyTorch's model-ensembling
tutorial, ``intermediate_source/ensembling.py``).

The stacked parameters are ordinary ``nn.Parameter`` s of ``VmapEnsemble``, so the
block's machinery works unchanged: ``FlatParams`` moves them into one flat buffer,
``FlatAdam`` / ``FlatSGD`` update it elementwise (exactly M independent optimizers),
``predict`` calls ``model(x)`` with ``x`` ``(M, N, *input_shape)``, and
``member_state(m)`` is member m's plain ``state_dict``.

Normalization: the built-in ``resnet`` uses GroupNorm (no running statistics;
``biasvar.ensemble.models.ResNet`` says why). A user's module with BatchNorm also
works: its buffers are stacked per member like the parameters and enter the
vmapped call batched, so each member normalizes with its own batch statistics and
updates only its own running statistics (tested).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from biasvar.ensemble.models import ALIASES, init_member, model_from_params


class VmapEnsemble(nn.Module):
    """M members of one architecture, stacked: parameter ``i`` is ``(M, *shape_i)``.

    ``forward``: ``(M, B, *input_shape) -> (M, B, classes)``, member m on ``x[m]``.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        params, buffers = stack_module_state(members)
        # The architecture without storage: functional_call substitutes every tensor.
        # Kept out of the module tree so that it is no parameter, buffer or state_dict key.
        object.__setattr__(self, "base", copy.deepcopy(members[0]).to("meta"))
        self.param_names = list(params)
        self.buffer_names = list(buffers)
        self.state_names = list(members[0].state_dict())
        self.stacked = nn.ParameterList(nn.Parameter(v.detach()) for v in params.values())
        for i, v in enumerate(buffers.values()):
            self.register_buffer(f"stacked_buffer_{i}", v)

    @property
    def members(self) -> int:
        return len(self.stacked[0])

    def train(self, mode: bool = True) -> VmapEnsemble:
        self.base.train(mode)  # the mode functional_call runs (BatchNorm, dropout)
        return super().train(mode)

    def _tensors(self, detach: bool = False) -> tuple[dict, dict]:
        params = {k: (p.detach() if detach else p)
                  for k, p in zip(self.param_names, self.stacked, strict=True)}
        buffers = {k: getattr(self, f"stacked_buffer_{i}")
                   for i, k in enumerate(self.buffer_names)}
        return params, buffers

    def _member_logits(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))  # (B, classes)

    def _member_loss(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor):
        logits = self._member_logits(params, buffers, x)  # (B, classes)
        loss = F.cross_entropy(logits, y)  # this member's mean minibatch CE
        acc = (logits.argmax(-1) == y).float().mean()
        return loss, (loss.detach(), acc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params, buffers = self._tensors()
        return vmap(self._member_logits)(params, buffers, x)  # (M, B, classes)

    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (M, B, *input_shape), ``y`` (M, B) -> mean CE (M,) and accuracy (M,).

        Every parameter's ``.grad`` is overwritten with member m's gradient of its
        own mean loss (the contract of ``StackedMLP.loss_and_grad``).
        """
        params, buffers = self._tensors(detach=True)
        grads, (loss, acc) = vmap(grad(self._member_loss, has_aux=True))(params, buffers, x, y)
        with torch.no_grad():
            for p, name in zip(self.stacked, self.param_names, strict=True):
                if p.grad is None:
                    p.grad = torch.empty_like(p)
                p.grad.copy_(grads[name])
        return loss, acc

    def member_state(self, m: int) -> dict[str, torch.Tensor]:
        """Member ``m``'s ``state_dict``, loadable into a freshly built plain member."""
        params, buffers = self._tensors(detach=True)
        tensors = {**params, **buffers}
        return {k: tensors[k][m].cpu().clone() for k in self.state_names}


def build_member(model_cfg, width: int, input_shape: tuple[int, ...], n_classes: int,
                 gen: torch.Generator) -> nn.Module:
    """One plain member initialized from ``gen`` alone (never from the global stream).

    Built-in families: ``init_member`` (the same draws as the stacked twins'
    ``init_members``). A user's factory keeps its own initialization, run with
    torch's global generator seeded from ``gen``'s seed inside ``fork_rng``, which
    restores the global state afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(gen.initial_seed())
        net = model_from_params(model_cfg, width, input_shape, n_classes)
    arch = model_cfg["arch"] if isinstance(model_cfg, dict) else model_cfg.arch
    if ALIASES.get(arch, arch) != "module":
        init_member(net, gen)
    return net


def build_ensemble(model_cfg, width: int, input_shape: tuple[int, ...], n_classes: int,
                   generators: list[torch.Generator], device: torch.device | str = "cpu"
                   ) -> VmapEnsemble:
    """``VmapEnsemble`` of one member per generator, on ``device``."""
    members = [build_member(model_cfg, width, input_shape, n_classes, g).to(device)
               for g in generators]
    return VmapEnsemble(members)


def activation_width(arch: str, width: int, input_shape: tuple[int, ...]) -> int:
    """Floats per example of a layer's activation, for the scoring chunk size."""
    arch = ALIASES.get(arch, arch)
    if arch in ("cnn2d", "resnet", "module") and len(input_shape) >= 2:
        return width * math.prod(input_shape[-2:])
    return width
