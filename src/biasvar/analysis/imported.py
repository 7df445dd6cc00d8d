"""An ensemble you bring: the three file layouts ``biasvar analyze`` reads.

- ``.npz``: ``logits`` or ``probs`` ``(members, examples, classes)``, ``labels``
  ``(examples,)``, optional ``draw`` and ``seed`` ``(members,)``; several configs as
  ``logits__<name>`` / ``probs__<name>`` arrays sharing ``labels`` (and ``draw``,
  ``seed``, or their own ``draw__<name>`` / ``seed__<name>``);
- a logits Parquet file of this project (``biasvar.core.schema.LOGITS``: one config;
  its test partition);
- a directory of per-member ``.npy`` files, each ``(examples, classes)`` logits, read in
  name order (natural: ``m2`` before ``m10``), plus ``labels.npy`` (and optional
  ``draw.npy``, ``seed.npy``).

Every array goes through ``biasvar.analysis.api.ensemble_inputs``, so a bad file is
one ``InputError`` naming the file, the array and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasvar.analysis.api import ensemble_inputs
from biasvar.core.errors import InputError

GRID_KEYS = ("labels", "draw", "seed")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class EnsembleConfig:
    """One config of a user's ensemble, checked: ``logits`` float64 (K, N, C) (log-
    probabilities when the file held probabilities), ``labels`` (N,), ``draw`` and
    ``seed`` (K,)."""

    name: str
    logits: np.ndarray
    labels: np.ndarray
    draw: np.ndarray
    seed: np.ndarray
    source: str


def load_ensemble(path: str | Path) -> list[EnsembleConfig]:
    """Read ``path`` (``.npz``, ``.parquet`` or a directory; see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        return [_from_npy_dir(path)]
    if not path.exists():
        raise InputError(f"{path}: does not exist; expected an .npz, a logits .parquet or a "
                         "directory of per-member .npy files")
    if path.suffix == ".npz":
        return _from_npz(path)
    if path.suffix == ".parquet":
        return [_from_parquet(path)]
    raise InputError(f"{path}: unknown file type {path.suffix or '(none)'!r}; expected .npz, "
                     ".parquet or a directory")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    import zipfile

    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle
        raise InputError(f"{path}: not a readable .npz (not a zip archive); expected arrays "
                         "saved with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle: refused
        raise InputError(f"{path}: holds an object array ({e}); expected numeric arrays "
                         "only") from None
    except Exception as e:  # not a zip, truncated, ...
        raise InputError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from None


def _from_npz(path: Path) -> list[EnsembleConfig]:
    z = _load_npz(path)
    configs: dict[str, tuple[str, np.ndarray]] = {}
    for key, a in z.items():
        kind, _, name = key.partition("__")
        if kind in ("logits", "probs"):
            name = name or "ensemble"
            if name in configs:
                raise InputError(f"{path}: config {name!r} has both logits and probs; "
                                 "expected one of them")
            if not _NAME.match(name):
                raise InputError(f"{path}: array {key!r}: config name {name!r} must be 1-64 "
                                 "letters, digits, '_', '.' or '-'")
            configs[name] = (kind, a)
        elif kind not in GRID_KEYS:
            raise InputError(f"{path}: unknown array {key!r}; expected logits, probs, labels, "
                             "draw, seed (or logits__<name>, probs__<name>, draw__<name>, "
                             "seed__<name>)")
    if not configs:
        raise InputError(f"{path}: no 'logits' or 'probs' array (of shape (members, examples, "
                         f"classes)); it holds {sorted(z) or 'nothing'}")
    if "labels" not in z:
        raise InputError(f"{path}: no 'labels' array; expected integer labels (examples,)")
    out = []
    for name, (kind, a) in sorted(configs.items()):
        where = f"{path} [{kind}{'' if name == 'ensemble' else '__' + name}]"
        draw = z.get(f"draw__{name}", z.get("draw"))
        seed = z.get(f"seed__{name}", z.get("seed"))
        arrays = {"logits": a} if kind == "logits" else {"probs": a}
        x, y, d, s = ensemble_inputs(**arrays, labels=z["labels"], draw=draw, seed=seed,
                                     where=where)
        out.append(EnsembleConfig(name, x, y, d, s, str(path)))
    return out


def _from_parquet(path: Path) -> EnsembleConfig:
    from biasvar.core.schema import LOGITS, read_table
    from biasvar.ensemble.logits import dense

    c = dense(read_table(path, LOGITS), "test", path)
    x, y, d, s = ensemble_inputs(c.logits, labels=c.labels, draw=c.draws, seed=c.seeds,
                                 where=str(path))
    return EnsembleConfig(f"noise-{c.label_noise:g}_width-{c.width}", x, y, d, s, str(path))


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem)]


def _from_npy_dir(path: Path) -> EnsembleConfig:
    def load(p: Path) -> np.ndarray:
        try:
            return np.load(p, allow_pickle=False)
        except Exception as e:
            raise InputError(f"{p}: not a readable .npy ({type(e).__name__}: {e})") from None

    files = sorted((p for p in path.glob("*.npy") if p.stem not in GRID_KEYS), key=_natural)
    if not files:
        raise InputError(f"{path}: no member .npy files; expected one (examples, classes) "
                         "logits array per member, plus labels.npy")
    if not (path / "labels.npy").is_file():
        raise InputError(f"{path}: no labels.npy; expected integer labels (examples,)")
    members = [load(p) for p in files]
    shapes = {a.shape for a in members}
    if len(shapes) != 1:
        first = members[0].shape
        odd = next(p for p, a in zip(files, members, strict=True) if a.shape != first)
        raise InputError(f"{odd}: shape {load(odd).shape}, but {files[0].name} has {first}; "
                         "expected every member to have the same (examples, classes)")
    grid = {k: load(path / f"{k}.npy") for k in ("draw", "seed") if (path / f"{k}.npy").is_file()}
    x, y, d, s = ensemble_inputs(np.stack(members), labels=load(path / "labels.npy"),
                                 draw=grid.get("draw"), seed=grid.get("seed"), where=str(path))
    return EnsembleConfig(path.name or "ensemble", x, y, d, s, str(path))
