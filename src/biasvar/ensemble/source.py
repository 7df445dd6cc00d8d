"""The source folder: one self-contained ensemble that decompose, alignment_size,
calibration_intervention and plot read, whichever stage produced it.

``source: train`` → ``collect`` writes ``data/sources/train``; ``source: import`` → the
``import`` stage writes ``data/sources/import`` from a user's file. The stages after
them read ``data/sources/${source}`` and nothing else of the data, so the same code
reports on either (DVC has no conditional stages: the folder path is the switch).

Layout (the files are described in ``biasvar.core.schema``):

- ``logits/``: the logits contract (``schema.LOGITS``), one file per config;
- ``source.json`` (``schema.SOURCE_JSON``): which source, the configs (raw label-noise
  levels and widths: they name the files), the partitions every config holds, what the
  data is (``Dataset.metadata()`` or, for an import, name and class count), the blocks
  (train) or the imported file and its SHA-256 (import);
- ``examples.npz`` (train partition only): ``noisy__<level>``, the training set's
  label-noise flags per level, and ``in_bag__<draw>``, each draw's distinct training
  indices (for out-of-bag predictions);
- ``members.csv`` and ``curves.csv`` (train only): per-member metrics, training curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biasvar.core.errors import InputError
from biasvar.core.schema import PARTITIONS, SOURCE_JSON, check_json

SOURCES = ("train", "import")


@dataclass(frozen=True)
class Source:
    """A source folder, read and checked (``read_source``)."""

    path: Path
    kind: str  # 'train' | 'import'
    label_noise: list  # raw levels, as they name the logits files
    widths: list[int]
    partitions: tuple[str, ...]
    data: dict[str, Any]
    blocks: list[int] | None  # train: the blocks params listed
    file: dict[str, Any] | None  # import: {'path', 'sha256'} of the user's file
    noisy: dict  # level -> (n_train,) bool flags; empty without a train partition
    in_bag: dict[int, np.ndarray] | None  # draw -> (n_in_bag,) indices; None: no train

    @property
    def logits(self) -> Path:
        return self.path / "logits"


def write_source(folder: str | Path, kind: str, label_noise: list, widths: list,
                 partitions: tuple[str, ...], data: dict[str, Any], *,
                 blocks: list[int] | None = None, file: dict[str, Any] | None = None,
                 noisy: dict | None = None, in_bag: dict[int, np.ndarray] | None = None
                 ) -> None:
    """Write ``source.json`` (and, with a train partition, ``examples.npz``) into
    ``folder``, the (temporary) source folder its stage is building."""
    from biasvar.core.io import atomic_path, write_json

    folder = Path(folder)
    meta = {"version": SOURCE_JSON.version, "source": kind, "label_noise": list(label_noise),
            "widths": [int(w) for w in widths], "partitions": list(partitions),
            "data": data, "blocks": None if blocks is None else sorted(int(b) for b in blocks),
            "file": file}
    check_json(meta, SOURCE_JSON, folder / "source.json")
    if "train" in partitions:
        if noisy is None or in_bag is None:
            raise ValueError("a train partition needs the noisy flags and in-bag indices")
        arrays = {f"noisy__{p}": np.asarray(noisy[p], dtype=bool) for p in label_noise}
        arrays.update({f"in_bag__{int(d)}": np.asarray(v, dtype=np.int64)
                       for d, v in sorted(in_bag.items())})
        with atomic_path(folder / "examples.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    write_json(folder / "source.json", meta)


def read_source(folder: str | Path) -> Source:
    """Read a source folder; a missing or malformed ``source.json`` or ``examples.npz``
    is one ``InputError`` naming the file and the field."""
    from biasvar.core.io import check_complete, read_json

    folder = Path(folder)
    check_complete(folder)
    path = folder / "source.json"
    if not path.is_file():
        raise InputError(f"{path}: missing; {folder} is not a source folder (rerun collect "
                         "or import)")
    meta = check_json(read_json(path), SOURCE_JSON, path)
    if meta["source"] not in SOURCES:
        raise InputError(f"{path}: field 'source' is {meta['source']!r}; expected one of "
                         f"{list(SOURCES)}")
    parts = tuple(meta["partitions"])
    if "test" not in parts or any(p not in PARTITIONS for p in parts):
        raise InputError(f"{path}: field 'partitions' is {list(parts)}; expected 'test' and "
                         f"optionally 'train'")
    if not meta["label_noise"] or not meta["widths"]:
        raise InputError(f"{path}: fields 'label_noise' and 'widths' must list at least one "
                         "config")
    noisy: dict = {}
    in_bag = None
    if "train" in parts:
        ex = folder / "examples.npz"
        try:
            with np.load(ex, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # missing, truncated, not a zip
            raise InputError(f"{ex}: not readable ({type(e).__name__}: {e}); rerun collect"
                             ) from None
        for p in meta["label_noise"]:
            if f"noisy__{p}" not in arrays:
                raise InputError(f"{ex}: no array 'noisy__{p}' (the label-noise flags of "
                                 f"level {p}); rerun collect")
            noisy[p] = arrays[f"noisy__{p}"]
        in_bag = {int(k.split("__", 1)[1]): v for k, v in arrays.items()
                  if k.startswith("in_bag__")}
    return Source(path=folder, kind=meta["source"], label_noise=meta["label_noise"],
                  widths=meta["widths"], partitions=parts, data=meta["data"],
                  blocks=meta["blocks"], file=meta["file"], noisy=noisy, in_bag=in_bag)
