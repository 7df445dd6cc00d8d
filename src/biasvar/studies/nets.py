"""Small stacked networks and their training, shared by the simplicity-bias studies
(``spectral_cls``, ``erank_depth``) whose factor grid varies what the main
ensemble keeps fixed: activation, depth, width, optimizer, initialization scale
and the input representation.

The layers are the main ensemble's vectorized ones (``biasvar.ensemble.models``:
``StackedLinear`` / ``StackedConv1d``, a leading member axis, one batched call
for all members), so M members train at the cost of one wider network. Each
member draws its initialization from its own generator; all members see the
same minibatch sequence (they differ by initialization only, which is the
spread these studies measure).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

ACTIVATIONS = ("relu", "tanh", "linear")
ARCHS = ("mlp", "cnn")
INPUT_VERSIONS = ("mnist1d", "shuffled", "whitened")


def input_version(x_train: np.ndarray, x_test: np.ndarray, version: str,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The inputs a config trains on: ``(x_train, x_test)``, each (n, 40) float32.

    - ``mnist1d``: as generated.
    - ``shuffled``: the 40 input coordinates permuted by one fixed random
      permutation (the same for every example): every pixel's values and the
      covariance spectrum are kept, spatial locality is destroyed.
    - ``whitened``: ZCA whitening with the training mean and covariance,
      ``(x - mean) Sigma^{-1/2}``: every direction has variance 1, so nothing is
      left for a bias towards large principal components to order.
    """
    xtr, xte = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    if version == "shuffled":
        from biasvar.core.rng import numpy_generator

        perm = numpy_generator(seed, "shuffled_inputs").permutation(xtr.shape[1])
        xtr, xte = xtr[:, perm], xte[:, perm]
    elif version == "whitened":
        mean = xtr.mean(0, keepdims=True)
        evals, evecs = np.linalg.eigh(np.cov(xtr - mean, rowvar=False, bias=True))
        inv_sqrt = evecs @ np.diag(1.0 / np.sqrt(np.maximum(evals, 1e-8))) @ evecs.T
        xtr, xte = (xtr - mean) @ inv_sqrt, (xte - mean) @ inv_sqrt
    elif version != "mnist1d":
        raise ValueError(f"unknown input version {version!r}")
    return xtr.astype(np.float32), xte.astype(np.float32)


def build(arch: str, members: int, depth: int, width: int, activation: str,
          init_scale: float, seed: int, purpose: str, input_shape: tuple[int, ...] = (40,),
          n_classes: int = 10):
    """A stacked network of ``members`` members, initialized.

    ``mlp``: ``depth`` hidden layers of ``width`` units with ``activation``;
    ``features`` is the last hidden layer (M, B, width). ``cnn``: the MNIST-1D
    reference CNN (three convolutions of ``width`` channels, ReLU, ``depth`` and
    ``activation`` ignored); ``features`` its flattened last convolution.
    Initialization: PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
    weights and biases (``init_members``), times ``init_scale``; member m from
    ``torch_generator(seed, purpose, m)``.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from biasvar.core.rng import torch_generator
    from biasvar.ensemble.models import StackedCNN, StackedLinear, init_members

    n_in = math.prod(input_shape)  # the mlp flattens its input
    act = {"relu": F.relu, "tanh": torch.tanh, "linear": lambda h: h}[activation]

    class StackedNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.ModuleList(StackedLinear(members, n_in if i == 0 else width, width)
                                        for i in range(depth))
            self.out = StackedLinear(members, width, n_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            """``(M, B, n_in) -> (M, B, width)``."""
            h = x
            for layer in self.hidden:
                h = act(layer(h))
            return h

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.features(x))

    if arch == "mlp":
        net = StackedNet()
    elif arch == "cnn":
        net = StackedCNN(members, width, input_shape, n_classes)
    else:
        raise ValueError(f"unknown arch {arch!r}")
    init_members(net, [torch_generator(seed, purpose, m) for m in range(members)])
    if init_scale != 1.0:
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(init_scale)
    return net


def train(net, x: np.ndarray, y: np.ndarray, *, optimizer: str, lr: float, steps: int,
          batch_size: int, seed: int, purpose: str, log_every: int,
          on_log: Callable[[int], Any] | None = None) -> float:
    """Minibatch cross-entropy training of every member of ``net`` on ``(x, y)``.

    The pipeline's training loop (``ensemble.train.fit_members``: one flat buffer,
    Adam or SGD with momentum 0.9, the loss summed over members so each member
    follows its own gradient), with the studies' protocol: every member sees the same
    minibatches, so members differ by initialization only. Each step draws one
    minibatch of ``batch_size`` examples (with replacement across steps, without
    within a step) from ``numpy_generator(seed, purpose)``. ``on_log(step)`` runs at
    step 0 (initialization), every ``log_every`` steps and after the last step.
    Returns the last step's minibatch loss, averaged over members.
    """
    import torch

    from biasvar.core.rng import numpy_generator
    from biasvar.ensemble.train import fit_members

    xt = torch.as_tensor(x, dtype=torch.float32)  # (n, 40)
    yt = torch.as_tensor(y, dtype=torch.int64)  # (n,)
    n = len(xt)
    b = min(batch_size, n)
    rng = numpy_generator(seed, purpose)

    def shared_batch(step: int) -> torch.Tensor:  # (b,): the same minibatch for every member
        return torch.as_tensor(rng.choice(n, size=b, replace=False))

    loss = fit_members(net, xt, yt, shared_batch, steps, optimizer, lr,
                       0.9 if optimizer == "sgd" else 0.0, log_every=log_every,
                       on_log=None if on_log is None else (lambda step, *_: on_log(step)),
                       log_start=True)
    return float(loss.mean())


def predict(net, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Every member's logits for ``x`` (n, 40): (M, n, classes), float64, without gradients."""
    import torch

    members = next(net.parameters()).shape[0]
    out = []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            xb = torch.as_tensor(x[i:i + chunk], dtype=torch.float32)
            out.append(net(xb.expand(members, -1, -1)).double().numpy())
    return np.concatenate(out, axis=1)


def embed(net, x: np.ndarray) -> np.ndarray:
    """Every member's penultimate features for ``x`` (n, 40): (M, n, features), float64."""
    import torch

    members = next(net.parameters()).shape[0]
    with torch.no_grad():
        xb = torch.as_tensor(x, dtype=torch.float32)
        return net.features(xb.expand(members, -1, -1)).double().numpy()
