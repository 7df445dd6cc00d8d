"""Factories for ``model.arch: module`` tests that must fail (imported by name from tests/)."""

from __future__ import annotations


def not_a_module(input_shape, n_classes, width):
    return {"weights": [1.0, 2.0]}


def raises(input_shape, n_classes, width):
    raise RuntimeError("no GPU in this factory")
