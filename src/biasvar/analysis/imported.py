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

Every array goes through ``biasvar.analysis.inputs.ensemble_inputs``, so a bad file is
one ``InputError`` naming the file, the array and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biasvar.analysis.inputs import ensemble_inputs
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


# ------------------------------------------------------------------ the import source
# A config's name places it on the report's sweep axes: ``noise-<level>_width-<width>``
# (the names of this project's logits files) or ``width-<width>`` (label noise 0).
_AXES = re.compile(r"^(?:noise-(?P<p>\d+(?:\.\d+)?)_)?width-(?P<w>\d+)$")


def config_axes(name: str, n_configs: int, label_noise: float, width: int,
                where: str) -> tuple[float, int]:
    """``(label_noise, width)`` of an imported config: parsed from its name, or, for the
    only config of a file whose name says neither, the ``import.label_noise`` and
    ``import.width`` params."""
    m = _AXES.match(name)
    if m:
        p = float(m["p"]) if m["p"] is not None else 0.0
        if not 0.0 <= p < 1.0:
            raise InputError(f"{where}: config {name!r}: label-noise level {p} is outside "
                             "[0, 1)")
        return p, int(m["w"])
    if n_configs == 1:
        return float(label_noise), int(width)
    raise InputError(f"{where}: config {name!r} does not name its place in the sweep; with "
                     "several configs name each noise-<level>_width-<width> (e.g. "
                     "logits__noise-0.15_width-64) or width-<width>")


def _sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's ``.npy`` files (names and bytes, in order)."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def import_source(path: str | Path, out_dir: str | Path, label_noise: float = 0.0,
                  width: int = 1) -> dict:
    """Validate a user's ensemble file into the import source folder
    (``biasvar.ensemble.source``), which the pipeline's decompose → … → plot read as they
    read a trained ensemble's.

    ``path``: any layout ``load_ensemble`` reads. Each config goes on the report's sweep
    axes by its name (``config_axes``); the configs must fill the grid of their levels ×
    widths, share the test labels and have two draws or more each (the intervals and the
    alignment against ensemble size need them; ``biasvar analyze`` takes one draw).
    Written atomically: ``logits/`` (test partition only, logits as float32; a file of
    probabilities is stored as log-probabilities) and ``source.json`` with the file's
    SHA-256. Returns ``{"configs": n, "members": total}``.
    """
    from biasvar.core.io import atomic_dir
    from biasvar.ensemble.logits import logits_table, write_config
    from biasvar.ensemble.source import write_source

    path = Path(path)
    configs = load_ensemble(path)
    placed: dict[tuple[float, int], EnsembleConfig] = {}
    for c in configs:
        key = config_axes(c.name, len(configs), label_noise, width, str(path))
        if key in placed:
            raise InputError(f"{path}: configs {placed[key].name!r} and {c.name!r} both sit at "
                             f"label noise {key[0]:g}, width {key[1]}")
        placed[key] = c
        n_draws = len(np.unique(c.draw))
        if n_draws < 2:
            raise InputError(f"{path}: config {c.name!r} has {n_draws} draw; the pipeline's "
                             "report needs 2 or more (intervals, alignment against ensemble "
                             "size): give draw, or use `biasvar analyze`")
    levels = sorted({p for p, _ in placed})
    widths = sorted({w for _, w in placed})
    for p in levels:
        for w in widths:
            if (p, w) not in placed:
                raise InputError(f"{path}: no config at label noise {p:g}, width {w} "
                                 f"(noise-{p:g}_width-{w}); the configs must fill the grid of "
                                 f"levels {[float(f'{q:g}') for q in levels]} x widths {widths}")
    first = next(iter(placed.values()))
    for c in placed.values():
        if c.labels.shape != first.labels.shape or not np.array_equal(c.labels, first.labels):
            raise InputError(f"{path}: configs {first.name!r} and {c.name!r} have different "
                             "labels; every config must be scored on the same test set")
        if c.logits.shape[2] != first.logits.shape[2]:
            raise InputError(f"{path}: configs {first.name!r} and {c.name!r} have "
                             f"{first.logits.shape[2]} and {c.logits.shape[2]} classes")
    file = {"path": str(path), "sha256": _sha256(path)}
    data = {"name": "import", "input_shape": [], "n_classes": int(first.logits.shape[2]),
            "source": str(path), "fingerprint": file["sha256"]}
    members = 0
    with atomic_dir(out_dir) as tmp:
        for (p, w), c in sorted(placed.items()):
            k = c.logits.shape[0]
            members += k
            table = logits_table(p, w, np.arange(k), c.draw.astype(np.int32),
                                 c.seed.astype(np.int32),
                                 {"test": (c.logits.astype(np.float32), c.labels)})
            write_config(tmp / "logits", p, w, table,
                         {"label_noise": p, "width": w, "source": "import", "config": c.name,
                          "file": file})
        write_source(tmp, "import", levels, widths, ("test",), data, file=file)
    return {"configs": len(placed), "members": members}
