"""Files only this user may read (the admin token, the demo keys, the log): created 0600, never chmod'ed later.

A file is written whole into a temporary sibling opened with ``O_CREAT | O_EXCL`` and mode 0600, then
published under its name in one step: ``os.link`` for "create unless it exists" (two servers starting at
once agree on one file, and no reader ever sees it half written), ``os.replace`` for "replace". Reading
refuses a file that group or others could read, or that another user owns, naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_MODE = 0o600


class PrivateFileError(RuntimeError):
    """A private file is unusable: the message names the file, what is wrong and what to do."""


def _write_temp(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def create_private(path: Path, data: bytes) -> bool:
    """Create ``path`` (mode 0600) holding ``data`` unless it exists; True if this call created it."""
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:
        # a filesystem without hard links: create the name itself exclusively (the same 0600, same O_EXCL)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def replace_private(path: Path, data: bytes) -> None:
    """Write ``path`` (mode 0600) with ``data``, replacing any previous file in one step."""
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_private(path: Path) -> None:
    """Raise PrivateFileError unless ``path`` is a regular file of this user that only this user can read."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise PrivateFileError(f"{path} is not a regular file")
    if st.st_uid != os.geteuid():
        raise PrivateFileError(f"{path} belongs to user id {st.st_uid}, not to this user ({os.geteuid()})")
    if st.st_mode & 0o077:
        raise PrivateFileError(
            f"{path} is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"it holds credentials: delete it and restart to get a new one"
        )


def read_private(path: Path) -> bytes:
    """The content of a private file (checked with :func:`check_private` first)."""
    check_private(path)
    return path.read_bytes()
