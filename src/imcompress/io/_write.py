"""Atomic, non-clobbering output."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from .._errors import OutputExistsError, WriteError

__all__ = ["atomic_write", "check_writable", "write_stdout"]


def check_writable(path, *, force: bool = False) -> Path:
    """Check, before any work, that ``path`` may be written.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    WriteError
        The parent folder is missing or not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{path}: is a folder; give a file name")
    if _is_special(path):
        return path  # /dev/null, /dev/stdout, a named pipe: written in place
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists; use -f/--force (force=True) to overwrite")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise WriteError(f"{path}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteError(f"{path}: folder {parent} is not writable")
    return path


def atomic_write(path, data: bytes, *, force: bool = False) -> int:
    """Write ``data`` to ``path`` atomically; ``"-"`` writes to stdout.

    The bytes go to a unique temporary file in the target folder, are flushed
    to disk, then renamed over ``path``: a failure at any point leaves no
    partial file and any old file intact.

    Returns
    -------
    int
        The number of bytes written.
    """
    if str(path) == "-":
        write_stdout(data)
        return len(data)
    path = check_writable(path, force=force)
    if _is_special(path):
        # a device or named pipe cannot be replaced by a rename (and as root
        # the rename would turn /dev/null into a regular file): write in place
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
        return len(data)
    parent = path.parent if str(path.parent) else Path(".")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not force and path.exists():
            # someone created it while we worked: do not clobber
            raise OutputExistsError(f"{path}: already exists; use -f/--force (force=True) to overwrite")
        os.chmod(tmp_name, 0o644 & ~_umask())
        os.replace(tmp_name, path)
        tmp_name = None
    except OutputExistsError:
        raise
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return len(data)


def _is_special(path: Path) -> bool:
    """True for an existing character device or named pipe."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def write_stdout(data) -> None:
    """Write bytes (or text, encoded as UTF-8) to stdout and flush.

    Raises
    ------
    WriteError
        The reader closed the pipe (``| head``) before everything was written.
        stdout is then pointed at the null device, so that the interpreter's
        final flush does not fail a second time.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        sys.stdout.flush()  # text written before, through the text layer
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # pragma: no cover - no real stdout
            pass
        raise WriteError("stdout was closed before the output was written (broken pipe)") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
