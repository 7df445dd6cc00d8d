"""Explicit randomness: every generator is derived from (base seed, purpose, identity).

No global seeding anywhere in the project. A purpose string keeps streams for
different jobs (label noise, bootstrap draws, initialization, minibatch order)
independent even when they share a base seed and a member id.
"""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(base: int, purpose: str, *ids: int) -> int:
    """A 63-bit seed from ``(base, purpose, *ids)``, stable across Python runs and platforms.

    ``zlib.crc32`` (not ``hash``) keeps the purpose's contribution stable across
    interpreter runs; ``SeedSequence`` mixes the words so nearby ids give
    unrelated streams.
    """
    words = [int(base), zlib.crc32(purpose.encode("utf-8")), *(int(i) for i in ids)]
    if any(w < 0 for w in words):
        raise ValueError(f"seed words must be non-negative, got {words}")
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def numpy_generator(base: int, purpose: str, *ids: int) -> np.random.Generator:
    """A numpy ``Generator`` for ``(base, purpose, *ids)``."""
    return np.random.default_rng(derive_seed(base, purpose, *ids))


def torch_generator(base: int, purpose: str, *ids: int):
    """A CPU ``torch.Generator`` for ``(base, purpose, *ids)`` (torch imported lazily)."""
    import torch

    g = torch.Generator(device="cpu")
    g.manual_seed(derive_seed(base, purpose, *ids))
    return g
