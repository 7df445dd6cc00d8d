"""Factories for ``model.arch: module`` tests that must fail (imported by name from tests/)."""

from __future__ import annotations


def not_a_module(input_shape, n_classes, width):
    return {"weights": [1.0, 2.0]}


def raises(input_shape, n_classes, width):
    raise RuntimeError("no GPU in this factory")


def ignores_shape(input_shape, n_classes, width):
    """Always 10 inputs, whatever the data: its forward fails on MNIST-1D's 40."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(10, n_classes))


def wrong_classes(input_shape, n_classes, width):
    """Three logits, whatever the class count."""
    import math

    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 3))


def breaks_at_width(input_shape, n_classes, width):
    """Fine at width 4 only: the check builds every width, not just the first."""
    import math

    from torch import nn

    if width != 4:
        raise ValueError(f"width {width} is not supported")
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), n_classes))
