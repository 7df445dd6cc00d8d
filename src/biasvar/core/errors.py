"""Errors that stages turn into one clear line on stderr and a non-zero exit."""

from __future__ import annotations


class BiasvarError(Exception):
    """Base class: a failure the user can act on, reported as one line."""


class ParamError(BiasvarError):
    """A params.yaml value that is not allowed; names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"params.yaml: {key} = {value!r} is invalid: {allowed}")


class InputError(BiasvarError):
    """A corrupted or mismatched input file; names the file (and column where relevant)."""


class NonFiniteLossError(BiasvarError):
    """A member's training loss became NaN or infinite."""

    def __init__(self, member: int, step: int, loss: float):
        self.member, self.step = member, step
        super().__init__(f"member {member}: training loss became {loss} at step {step}")


class OutputError(BiasvarError):
    """An output that could not be written (full disk, permission, read-only); names it."""
