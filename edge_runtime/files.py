"""Reading and writing the files itemrec is handed: regular files only, bounded, atomic.

``read_regular_file`` opens without blocking and refuses anything that is not a regular file
before reading a byte: a FIFO named ``x.jpg`` would otherwise block forever, a character
device never end, and a directory fail with an error that does not say which file it was.
It also refuses files above a size limit before reading them.

``atomic_path`` yields a temporary path beside the target and renames it over the target
when the block succeeds, so a killed writer leaves the previous file (or none) and never a
partial one. ``mkstemp`` creates its file with mode 0600; the finished file gets the mode a
plain ``open()`` would have given it (0666 less the umask), so a gallery or a model can be
read by the service user that runs the device loop.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from itemrec.edge_runtime.errors import InputError, ItemrecError


def shown(path: str | os.PathLike) -> str:
    """``path`` as text fit for a one-line message.

    A file name may hold a newline or bytes that are not UTF-8; those are escaped so that the
    message stays one line and printing it cannot fail.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.isprintable():
        return text
    raw = os.fsencode(text).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in raw)


def read_regular_file(
    path: str | os.PathLike,
    max_bytes: int,
    error: type[ItemrecError] = InputError,
    what: str = "a file",
) -> bytes:
    """The content of the regular file ``path``, or ``error`` naming it and the reason.

    ``what`` names the kind of file, with its article ("an image"), for the size message.
    """
    name = shown(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise error(f"{name}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{name}: is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{name}: not a regular file (a FIFO, socket or device)")
        if info.st_size > max_bytes:
            raise error(f"{name}: {info.st_size} bytes is more than {what} may have ({max_bytes})")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise error(f"{name}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew while we read it
        raise error(f"{name}: more than the {max_bytes} bytes {what} may have")
    return data


def new_file_mode() -> int:
    """The permission bits ``open(path, "w")`` gives a new file: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    With ``replace=False`` an existing ``path`` is never overwritten: the rename becomes a
    hard link (atomic, fails if ``path`` appeared meanwhile) and ``FileExistsError`` rises.
    The temporary file is removed when the block raises.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        os.chmod(temp, new_file_mode())
        if replace:
            os.replace(temp, path)
        else:
            _link_no_clobber(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _link_no_clobber(temp: Path, path: Path) -> None:
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT): check, then rename
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(temp, path)


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path` (flushed to disk first)."""
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
