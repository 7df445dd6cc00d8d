"""Trained members read back from a block: a member's plain reference model with the
weights its train stage saved (``<block>/checkpoints/member-XXXXXX.pt``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biasvar.core.errors import InputError


def load_member(block: str | Path, member: int, model_params: Mapping[str, Any], width: int,
                input_shape: tuple[int, ...] = (40,), n_classes: int = 10):
    """Member ``member``'s plain model from ``<block>/checkpoints/member-XXXXXX.pt``."""
    import torch

    from biasvar.ensemble.blocks import checkpoint_name
    from biasvar.ensemble.models import model_from_params

    path = Path(block) / "checkpoints" / checkpoint_name(member)
    model = model_from_params(dict(model_params), width, input_shape, n_classes)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise InputError(f"{path}: checkpoint not found (was this block trained?)") from e
    except Exception as e:
        raise InputError(f"{path}: not a readable checkpoint ({e.__class__.__name__}: {e})") from e
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise InputError(f"{path}: does not fit the {model_params['arch']} of width {width} "
                         f"recorded in members.json ({first})") from e
    return model
