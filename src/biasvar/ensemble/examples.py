"""Example model factories for ``model.arch: module`` (``model.module: "package.module:function"``).

A factory is called as ``function(input_shape, n_classes, width)`` and returns an
``nn.Module`` mapping ``(batch, *input_shape)`` to ``(batch, n_classes)`` logits.
Any module works; these two show a plain one and one with BatchNorm (whose running
statistics the generic path keeps per member).
"""

from __future__ import annotations

import math

from torch import nn


def mlp(input_shape: tuple[int, ...], n_classes: int, width: int) -> nn.Module:
    """One hidden layer of ``width`` tanh units on the flattened input."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.Tanh(),
                         nn.Linear(width, n_classes))


def bn_convnet(input_shape: tuple[int, ...], n_classes: int, width: int) -> nn.Module:
    """conv3x3 (``width`` channels) + BatchNorm + ReLU, global average pool, linear head.

    Inputs ``(C, H, W)`` images.
    """
    c = input_shape[0]
    return nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, n_classes))
