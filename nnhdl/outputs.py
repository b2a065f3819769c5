"""Every output of a command appears only when the whole command succeeds.

Writers call :func:`write_atomically` (a file) or :func:`staged_dir` (a
folder).  Outside a command they behave as plain atomic writes.  Inside
:func:`transaction` -- which :func:`nnhdl.errors.run_cli` opens around every
entry point -- the finished temporary siblings are only renamed into place
when the command returns 0; any error, exit status or Ctrl-C removes them.
So a failed run, however late it fails, leaves no new or half-written file
or folder behind.  Writes that must outlive a failure (a training checkpoint
saved on Ctrl-C) pass ``durable=True``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import NnhdlError

__all__ = ["write_atomically", "staged_dir", "output_file", "check_output_path", "writable", "readable", "scratch",
           "transaction", "Transaction"]


class Transaction:
    """Temporary siblings waiting to be renamed onto their targets."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary, target), in creation order
        self._dirs: dict[Path, Path] = {}  # staged folder target -> temporary

    def add(self, tmp: Path, target: Path) -> None:
        self._pending.append((tmp, target))

    def pending(self, target: Path) -> Path | None:
        """The staged temporary file that will become ``target``, if any (the latest one)."""
        target = Path(os.path.abspath(target))
        for tmp, t in reversed(self._pending):
            if Path(os.path.abspath(t)) == target and tmp.is_file():
                return tmp
        return None

    def staged_folder(self, target: Path) -> Path | None:
        return self._dirs.get(target)

    def add_folder(self, tmp: Path, target: Path) -> None:
        self._dirs[target] = tmp
        self.add(tmp, target)

    def commit(self) -> None:
        # Children were staged after their parents: rename them first.
        for tmp, target in reversed(self._pending):
            os.replace(tmp, target)
        self._pending.clear()

    def rollback(self) -> None:
        for tmp, _ in reversed(self._pending):
            _remove(tmp)
        self._pending.clear()


_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar("nnhdl_outputs", default=None)


class _Joined(Transaction):
    """A command run from inside another (``train --report`` runs ``evaluate``): the outer one commits."""

    def __init__(self, outer: Transaction) -> None:
        self.outer = outer

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


@contextlib.contextmanager
def transaction() -> Iterator[Transaction]:
    """Stage every write inside; the caller commits (see :func:`nnhdl.errors.run_cli`)."""
    outer = _current.get()
    if outer is not None:
        yield _Joined(outer)
        return
    t = Transaction()
    token = _current.set(t)
    try:
        yield t
    except BaseException:
        t.rollback()
        raise
    finally:
        _current.reset(token)
        t.rollback()  # no-op after a commit


@contextlib.contextmanager
def scratch() -> Iterator[None]:
    """Work files (a compiler's build folder in the cache) are not outputs: written at once, never staged."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


def _remove(p: Path) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass


def readable(path: str | os.PathLike) -> Path:
    """Where to read ``path`` from: a file this command has written but not yet committed reads as written."""
    t = _current.get()
    staged = t.pending(Path(path)) if t is not None else None
    return staged if staged is not None else _redirect(Path(path))


def _redirect(path: Path) -> Path:
    """Where ``path`` is while its folder (or an ancestor) is still staged."""
    t = _current.get()
    if t is None:
        return path
    absolute = Path(os.path.abspath(path))
    for ancestor in [absolute, *absolute.parents]:
        tmp = t.staged_folder(ancestor)
        if tmp is not None:
            return tmp / absolute.relative_to(ancestor)
    return path


def check_output_path(path: str | os.PathLike, what: str = "output file") -> Path:
    """Refuse, before any work, an output path that cannot be written: a folder, a missing folder."""
    path = Path(path)
    real = _redirect(path)
    if real.is_dir():
        raise NnhdlError(f"{path}: is a folder; give a file name for the {what}")
    parent = real.parent if str(real.parent) else Path(".")
    if not parent.is_dir():
        raise NnhdlError(f"{path}: folder {path.parent} does not exist")
    if not writable(parent):
        raise NnhdlError(f"{path}: cannot write in folder {path.parent or '.'}")
    return path


def writable(folder: str | os.PathLike) -> bool:
    """Whether a file can be created in ``folder``: tried, since permissions alone lie (root, /proc, read-only)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, probe = tempfile.mkstemp(prefix=".nnhdl-probe.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def _temp_sibling(path: Path, make: Callable[..., Any]) -> Path:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        made = make(prefix=f".{path.name}.", suffix=".partial", dir=parent)
    except OSError as e:
        raise NnhdlError(f"{path}: cannot write there ({e.strerror or e})") from None
    if isinstance(made, tuple):  # mkstemp: (fd, name)
        os.close(made[0])
        return Path(made[1])
    return Path(made)


@contextlib.contextmanager
def output_file(path: str | os.PathLike, what: str = "output file") -> Iterator[Path]:
    """A temporary sibling to write ``path`` through, for tools that want a file name (a VCD, a PNG).

    On success it is renamed onto ``path`` (at the command's commit inside
    a transaction); on an exception it is removed.
    """
    target = check_output_path(_redirect(Path(path)), what)
    tmp = _temp_sibling(target, tempfile.mkstemp)
    try:
        yield tmp
        if not tmp.exists():  # the writer decided there is nothing to write
            return
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        _remove(tmp)
        raise
    t = _current.get()
    if t is None:
        os.replace(tmp, target)
    else:
        t.add(tmp, target)


def write_atomically(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb", *,
                     durable: bool = False) -> None:
    """Write through a temporary file in the same folder, then rename.

    An exception inside ``write`` leaves no file at ``path``.  Inside a
    command the rename waits for the command's success, unless ``durable``.
    """
    path = Path(path)
    real = _redirect(path)
    check_output_path(real)
    fd, tmp = _temp_fd(real)
    try:
        with os.fdopen(fd, mode, **({"newline": "\n"} if "b" not in mode else {})) as f:
            write(f)
        umask = os.umask(0)  # mkstemp makes the file 0600; give it the permissions open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except BaseException:
        _remove(Path(tmp))
        raise
    t = _current.get()
    if t is None or durable:
        os.replace(tmp, real)
    else:
        t.add(Path(tmp), real)


def _temp_fd(path: Path) -> tuple[int, str]:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=parent)
    except OSError as e:
        raise NnhdlError(f"{path}: cannot write there ({e.strerror or e})") from None


def staged_dir(path: str | os.PathLike) -> Path:
    """The folder to write ``path``'s contents in; created (with parents) if missing.

    Inside a transaction, the first missing ancestor is created as a
    temporary sibling and renamed into place at commit, so a failed command
    leaves no new folder.  Returns the folder to write in (the temporary one
    while staged).
    """
    path = Path(os.path.abspath(path))
    real = _redirect(path)
    if real.exists():
        if not real.is_dir():
            raise NnhdlError(f"{path}: exists and is not a folder")
        if not writable(real):
            raise NnhdlError(f"{path}: cannot write in this folder")
        return real
    t = _current.get()
    missing = real
    while not missing.parent.exists():
        missing = missing.parent
    if not missing.parent.is_dir():
        raise NnhdlError(f"{path}: {missing.parent} is not a folder")
    if t is None:
        try:
            real.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NnhdlError(f"{path}: cannot create the folder ({e.strerror or e})") from None
        return real
    tmp = _temp_sibling(missing, tempfile.mkdtemp)
    os.chmod(tmp, 0o777 & ~_umask())
    t.add_folder(tmp, missing)
    inside = tmp / real.relative_to(missing)
    inside.mkdir(parents=True, exist_ok=True)
    return inside


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
