"""Probes of trained members: effective rank of penultimate-layer embeddings (Huh et al. 2023).

For every member of the main study, its checkpoint is loaded into the plain
reference model (``biasvar.ensemble.models.reference_model`` with the model params
recorded in the block's ``members.json``), the inputs of one partition are
embedded with ``model.features(x)`` (the last hidden layer, before the output
layer), and the effective rank of the ``(examples, features)`` embedding
matrix is computed (Roy & Vetterli 2007):

    p_i = sigma_i / sum_j sigma_j,   erank = exp(-sum_i p_i log p_i)

over the singular values sigma_i. erank(I_n) = n; a rank-1 matrix has erank
1; it lies between 1 and the rank and, unlike the rank, discounts directions
with small singular values. The per-member values are summarized per config
``(label_noise, width)``: mean, standard deviation, range over members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from biasvar.core.config import Bool, Choice, Section
from biasvar.core.errors import InputError
from biasvar.ensemble.members import load_member
from biasvar.studies.common import StudyResult

PROBE_PARTITIONS = ("test", "train")
EMBED_CHUNK = 4096  # examples per forward pass

# Per-member table, one row per member, sorted by label_noise, width, member.
ERANK_MEMBER_COLUMNS = (
    "label_noise",  # training-label noise of the member's config
    "width",  # the sweep's width (hidden units / channels)
    "member",  # member id
    "draw",  # bootstrap replicate the member trained on
    "seed",  # its optimization seed
    "n_examples",  # rows of the embedding matrix (examples of the partition)
    "feature_dim",  # columns: the embedding dimension (width for an MLP)
    "dead_units",  # embedding coordinates that are zero on every example
    "rank",  # numerical rank of the embedding matrix (numpy.linalg.matrix_rank rule)
    "erank",  # effective rank (Roy & Vetterli), between 1 and rank
)

# Per-config summary, one row per (label_noise, width), sorted by both.
ERANK_SUMMARY_COLUMNS = (
    "label_noise",
    "width",
    "n_members",
    "feature_dim",
    "erank_mean",  # mean over members
    "erank_sd",  # standard deviation over members (ddof = 1; NaN for one member)
    "erank_min",
    "erank_max",
    "erank_ratio_mean",  # mean over members of erank / feature_dim
    "rank_mean",
    "dead_units_mean",
)


class ProbeParams(Section):
    """The ``probe.*`` section of params.yaml.

    ``partition``: the inputs embedded (``train`` is the full training set,
    not a member's bootstrap draw). ``center``: subtract the mean embedding
    before the SVD (false: the raw embedding matrix, as Roy & Vetterli define
    it for any matrix; post-ReLU embeddings then have a large mean direction).
    """

    SECTION: ClassVar[str] = "probe"
    partition: Choice(*PROBE_PARTITIONS)
    center: Bool


def effective_rank(matrix: np.ndarray, center: bool = False) -> float:
    """Roy & Vetterli's effective rank of a 2-D ``matrix``: exp of the entropy of sigma / sum sigma.

    ``center`` subtracts the column means first. A zero matrix has no
    singular-value distribution; its effective rank is reported as 0.
    """
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"effective_rank needs a 2-D matrix, got shape {a.shape}")
    if center:
        a = a - a.mean(axis=0, keepdims=True)
    s = np.linalg.svd(a, compute_uv=False)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total  # 0 log 0 = 0: zero singular values drop out
    return float(np.exp(-(p * np.log(p)).sum()))


def numerical_rank(matrix: np.ndarray, center: bool = False) -> int:
    """``numpy.linalg.matrix_rank`` (cutoff sigma_max * max(shape) * eps) of the same matrix."""
    a = np.asarray(matrix, dtype=np.float64)
    if center:
        a = a - a.mean(axis=0, keepdims=True)
    return int(np.linalg.matrix_rank(a))


def _last_linear_input(model):
    """``x -> (N, F)``: the input of the model's last ``nn.Linear`` (in module order), for
    a user's module without ``features``; None when it has no ``nn.Linear``."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None

    def features(x):
        seen = []
        handle = linears[-1].register_forward_hook(lambda _m, inp, _out: seen.append(inp[0]))
        try:
            model(x)
        finally:
            handle.remove()
        return seen[-1]  # (N, F): the classifier head's input

    return features


def embeddings(model, x: np.ndarray, where: str = "<model>") -> np.ndarray:
    """``(N, F)`` penultimate-layer embeddings of inputs ``x`` ``(N, *input_shape)``.

    ``model.features(x)`` for the built-in families; a user's module without it is read
    at the input of its last ``nn.Linear`` (the classifier head of most classifiers); one
    with neither is refused, naming ``where``.
    """
    import torch

    features = getattr(model, "features", None)
    if not callable(features) or isinstance(features, torch.nn.Module):
        # torchvision-style modules name a submodule ``features``: not the embedding
        features = _last_linear_input(model)
    if features is None:
        raise InputError(f"{where}: the model has no features() method and no nn.Linear "
                         "head, so the probe cannot find its embeddings (give the factory's "
                         "module a features(x) -> (N, F) method)")
    model.eval()
    out = []
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float32)  # members trained on float32 inputs
        for start in range(0, len(xt), EMBED_CHUNK):
            out.append(features(xt[start:start + EMBED_CHUNK]).flatten(1).double().numpy())
    return np.concatenate(out)


def probe_block(block: str | Path, x: np.ndarray, center: bool,
                expect: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row (``ERANK_MEMBER_COLUMNS``) per member of a trained block, embedding ``x``.

    ``expect``: what the block's ``members.json`` must record (``label_noise``,
    ``width``, ``block``, ``x_sha256``: the fingerprint of the dataset inputs it was
    trained on), so that a block copied from another config or trained on other data
    is refused, naming the file and the field.
    """
    from biasvar.core.io import read_json

    block = Path(block)
    info = read_json(block / "members.json")
    try:
        model_params, width = info["params"]["model"], int(info["width"])
        members = info["members"]
        noise = float(info["label_noise"])
        recorded = {"label_noise": noise, "width": width, "block": info.get("block"),
                    "x_sha256": (info.get("dataset") or {}).get("x_sha256")}
        # the head's size: the class count the block records (blocks trained before the
        # data providers record none: MNIST-1D's 10)
        n_classes = int((info.get("dataset") or {}).get("n_classes", 10))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"{block / 'members.json'}: lacks {e} (params.model, width, "
                         "label_noise, members)") from e
    for key, want in (expect or {}).items():
        got = recorded[key]
        if got is None:
            field = "dataset.x_sha256" if key == "x_sha256" else key
            raise InputError(f"{block / 'members.json'}: records no {field} (retrain the block)")
        if (float(got) != float(want)) if key == "label_noise" else got != want:
            field = "dataset.x_sha256" if key == "x_sha256" else key
            raise InputError(f"{block / 'members.json'}: records {field} = {got!r}, but is read "
                             f"as {field} {want!r} (retrain the block, or regenerate the data)")
    rows = []
    for m in members:
        emb = embeddings(load_member(block, int(m["member"]), model_params, width,
                                     tuple(x.shape[1:]), n_classes), x,
                         str(block / "members.json"))  # (N, F)
        rows.append({
            "label_noise": noise, "width": width, "member": int(m["member"]),
            "draw": int(m["draw"]), "seed": int(m["seed"]), "n_examples": emb.shape[0],
            "feature_dim": emb.shape[1], "dead_units": int((~emb.any(axis=0)).sum()),
            "rank": numerical_rank(emb, center), "erank": effective_rank(emb, center),
        })
    return rows


def summarize(members: Any) -> Any:
    """Per-config summary (``ERANK_SUMMARY_COLUMNS``) of the per-member table."""
    df = members.assign(erank_ratio=members["erank"] / members["feature_dim"])
    g = df.groupby(["label_noise", "width"], sort=True)
    out = g.agg(n_members=("member", "size"), feature_dim=("feature_dim", "first"),
                erank_mean=("erank", "mean"), erank_sd=("erank", "std"),
                erank_min=("erank", "min"), erank_max=("erank", "max"),
                erank_ratio_mean=("erank_ratio", "mean"), rank_mean=("rank", "mean"),
                dead_units_mean=("dead_units", "mean")).reset_index()
    return out[list(ERANK_SUMMARY_COLUMNS)]


def run_probe(members_root: str | Path, inputs: Mapping[Any, np.ndarray],
              widths: Sequence[int], blocks: Sequence[int], center: bool,
              threads: int = 0, x_sha256: Mapping[Any, str] | None = None
              ) -> tuple[StudyResult, Any]:
    """Effective rank of every listed member; returns (summary result, per-member table).

    ``inputs`` maps each label-noise level, as it names the member directories
    (``noise-<p>``), to the ``(N, *input_shape)`` inputs to embed. Only the blocks listed
    are read (not whatever lies on disk), and each must record the config it is
    read as and, with ``x_sha256`` (per level), the dataset the inputs come from.
    The summary's metrics give, per noise level, the mean effective rank at each width.
    """
    import pandas as pd
    import torch

    from biasvar.ensemble.blocks import block_dir

    if threads > 0:
        torch.set_num_threads(threads)
    rows = []
    for noise, x in inputs.items():
        for width in widths:
            for b in blocks:
                expect = {"label_noise": noise, "width": width, "block": b}
                if x_sha256 is not None:
                    expect["x_sha256"] = x_sha256[noise]
                rows += probe_block(block_dir(members_root, noise, width, b), x, center, expect)
    per_member = pd.DataFrame(rows, columns=list(ERANK_MEMBER_COLUMNS))
    per_member = per_member.sort_values(["label_noise", "width", "member"], kind="stable")
    per_member = per_member.reset_index(drop=True)
    summary = summarize(per_member)
    metrics = {
        "center": center,
        "erank_mean": {f"noise-{p}": {str(int(r.width)): round(float(r.erank_mean), 4)
                                      for r in part.itertuples()}
                       for p, part in summary.groupby("label_noise", sort=True)},
    }
    return StudyResult(summary, metrics), per_member
