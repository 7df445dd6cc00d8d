"""Small file helpers: atomic writes, JSON."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>`` siblings of ``path`` left by a writer that was killed
    (SIGKILL, power loss: no ``finally`` ran). A live writer's temporary is kept."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
            removed.append(tmp)
    return removed


def _unnamed_file(directory: Path) -> int | None:
    """An open descriptor of a new file in ``directory`` that has no name yet (Linux
    ``O_TMPFILE``), or None where the platform or file system has no such files.

    Such a file disappears with its process, whatever kills it: no temporary can be
    left behind, not even by SIGKILL while DVC later restores the output from its
    run-cache instead of rerunning the stage (which would have swept a named one).
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o666)
    except OSError:  # EOPNOTSUPP, EISDIR on file systems without unnamed files
        return None


def _link(fd: int, dest: Path) -> None:
    """Give the unnamed file ``fd`` the name ``dest`` (which must not exist).

    ``linkat(AT_SYMLINK_FOLLOW)`` on ``/proc/self/fd/<fd>`` is the documented way
    to name an ``O_TMPFILE`` file; ``os.link`` does not pass that flag on every
    Python version, hence ctypes.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, at_symlink_follow = -100, 0x400
    if libc.linkat(at_fdcwd, f"/proc/self/fd/{fd}".encode(), at_fdcwd,
                   os.fsencode(dest), at_symlink_follow) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(dest))


@contextmanager
def naming_failures(path: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` raised while ``path`` is written into one ``OutputError`` line
    that names ``path`` (pyarrow's "Error writing bytes to file ... No space left on
    device" names no file; a temporary's name would mean nothing to the user)."""
    from biasvar.core.errors import OutputError

    try:
        yield
    except OSError as e:
        detail = e.strerror or str(e) or e.__class__.__name__
        named = e.filename is not None and not _is_temporary(str(e.filename), Path(path))
        if named:
            raise  # an input (or another file) the writer was reading: named already
        raise OutputError(f"{path}: cannot be written ({detail})") from e


def _is_temporary(name: str, path: Path) -> bool:
    return (name.startswith("/proc/self/fd/") or f".{path.name}.tmp-" in name
            or name == str(path) or name.startswith(str(path) + os.sep))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for ``path``; it becomes ``path`` only on success.

    An interrupted or failing writer leaves no half-written file that looks valid,
    and (on Linux) no temporary at all: the temporary is an unnamed file of the
    target's directory (``/proc/self/fd/<n>``), named only once complete. Elsewhere
    it is a ``.<name>.tmp-<pid>`` sibling, removed by the next writer if a kill left
    it. A write failure (full disk, permission) is one ``OutputError`` naming ``path``.
    """
    path = Path(path)
    with naming_failures(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd = _unnamed_file(path.parent)
    if fd is not None:
        try:
            with naming_failures(path):
                yield Path(f"/proc/self/fd/{fd}")
                if not path.exists():
                    _link(fd, path)
                else:  # a name cannot be replaced by linkat: link beside, then rename
                    side = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                    if side.exists():
                        side.unlink()
                    _link(fd, side)
                    os.replace(side, path)
        finally:
            os.close(fd)
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with naming_failures(path):
            yield tmp
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


# Inside a directory being built in place; holds the writer's pid. Removed last.
INCOMPLETE = ".incomplete"


def _marker_pid(path: Path) -> int | None:
    """The pid in ``path``'s ``INCOMPLETE`` marker (0 if unreadable), None if unmarked."""
    marker = path / INCOMPLETE
    if not marker.is_file():
        return None
    text = marker.read_text(errors="replace").strip()
    return int(text) if text.isdigit() else 0


def check_complete(path: str | Path) -> None:
    """Refuse to read ``path`` if it lies in a directory whose writer was killed while
    building it in place (see ``atomic_dir``): its files may be missing or half there."""
    from biasvar.core.errors import InputError

    path = Path(path)
    for d in [path, *list(path.parents)[:4]]:
        if (d / INCOMPLETE).is_file():
            raise InputError(f"{path}: {d} is incomplete (its writer was interrupted); "
                             "rerun the stage that writes it")


def _recover(path: Path) -> None:
    """Undo what a writer killed mid-swap left: if ``path`` is missing but a complete old
    copy was renamed aside (``.<name>.old-<pid>`` of a dead pid), put it back."""
    for old in sorted(path.parent.glob(f".{path.name}.old-*")):
        pid = old.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if not path.exists():
            os.replace(old, path)
        else:
            shutil.rmtree(old) if old.is_dir() else old.unlink()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build the directory ``path``; readers see it only once complete, and whatever
    fails (an error, SIGTERM, SIGKILL, a full disk) no earlier ``path`` is lost.

    - ``path`` absent (every DVC stage run: DVC deletes a stage's outputs before it runs
      it or restores them from its run-cache): the directory is built in place, with an
      ``INCOMPLETE`` marker that is removed last. A failure removes it; a SIGKILL
      leaves a marked folder at the output path itself, which readers refuse
      (``check_complete``), the next writer replaces, and DVC deletes before any rerun
      or restore, so no temporary is ever left beside the outputs.
    - ``path`` present (a ``persist`` output such as a committed report, or a run
      outside DVC): built beside it as ``.<name>.tmp-<pid>``, then swapped in by two
      renames (old aside, new in) and the old copy deleted. A kill leaves at worst
      the siblings; the next writer deletes them, or puts the old copy back if the kill
      fell between the two renames.
    """
    from biasvar.core.errors import OutputError

    path = Path(path)
    with naming_failures(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _recover(path)
        remove_stale_temporaries(path)
        pid = _marker_pid(path) if path.is_dir() else None
        if pid is not None:  # a folder built in place by a writer that did not finish
            if pid and pid != os.getpid() and _alive(pid):
                raise OutputError(f"{path}: is being written by process {pid}")
            shutil.rmtree(path)
    if not path.exists():
        try:
            with naming_failures(path):
                path.mkdir()
                (path / INCOMPLETE).write_text(f"{os.getpid()}\n")
                yield path
                (path / INCOMPLETE).unlink()
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    try:
        with naming_failures(path):
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            yield tmp
            os.replace(path, old)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        if old.exists():
            if path.exists():
                shutil.rmtree(old)
            else:  # the second rename failed: the old copy goes back
                os.replace(old, path)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    """Read JSON; a missing, unreadable or corrupted file is named in one line.

    Only the syntax is checked here: callers check the structure they expect
    (an object with given keys) and name the file when it is not there.
    """
    from biasvar.core.errors import InputError

    path = Path(path)
    check_complete(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"{path}: not found") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid JSON (not UTF-8 text: byte 0x{e.object[e.start]:02x} "
                         f"at position {e.start})") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from e
    except OSError as e:
        raise InputError(f"{path}: not readable ({e.__class__.__name__}: {e.strerror})") from e


def sha256_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 over the dtype, shape and bytes of ``arrays``, in order: identical arrays
    give identical hex, and a changed dtype or shape changes it even for equal bytes.
    The one fingerprint of the project (provider data, datasets, splits, labels)."""
    import numpy as np  # lazily: core.io serves CLIs that never hash

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()
