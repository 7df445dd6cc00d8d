"""Checks shared by writers and readers of any format: finite logits.

Kept apart from ``core.schema`` (the file formats) so that the train stages, which
check their members' logits before writing a block, do not depend on the schema of
every table downstream: a new column in the decomposition table retrains nothing.
"""

from __future__ import annotations

import numpy as np

from biasvar.core.errors import InputError


def require_finite_logits(logits: np.ndarray, members, where: str, partition: str) -> None:
    """Raise ``InputError`` if ``logits`` ``(members, ...)`` hold NaN or inf.

    ``where`` names the file and config; the message names the first affected
    member, how many of its values are bad, and every affected member.
    """
    finite = np.isfinite(logits).reshape(len(members), -1)  # (M, values)
    if finite.all():
        return
    bad = (~finite).sum(axis=1)  # (M,)
    hit = np.flatnonzero(bad)
    m = int(hit[0])
    others = f"; members affected: {[int(members[i]) for i in hit]}" if len(hit) > 1 else ""
    raise InputError(f"{where}: member {int(members[m])} has {int(bad[m])} non-finite "
                     f"{partition} logits (NaN or inf) of {finite.shape[1]}{others}")
