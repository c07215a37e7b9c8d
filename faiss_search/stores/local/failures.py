"""Why a write failed, in a user's words, by error number: no space, read-only, permission, I/O."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import FsearchError, IndexWriteError
from .sidecar import committed_manifest

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}
#: SQLite reports some writes that failed for want of space as plain I/O errors; the free space tells
LOW_SPACE_BYTES = 1024 * 1024


def describe(exc: BaseException, folder: Path | None = None) -> str:
    """What went wrong, by error number (the words of a message vary with the byte it struck at)."""
    code = getattr(exc, "errno", None)
    sqlite_code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in _NO_SPACE or sqlite_code == sqlite3.SQLITE_FULL or (
            sqlite_code == sqlite3.SQLITE_IOERR and folder is not None and _free_bytes(folder) < LOW_SPACE_BYTES):
        return "no space left on the device"
    if code == errno.EROFS or sqlite_code == sqlite3.SQLITE_READONLY:
        return "the file system is read-only"
    if code in _NO_PERMISSION or sqlite_code in (sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        return "permission denied"
    if code == errno.EIO or sqlite_code == sqlite3.SQLITE_IOERR:
        return "an I/O error (a full or failing disk?)"
    return f"{type(exc).__name__}: {exc}"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return LOW_SPACE_BYTES


@contextmanager
def write_errors(folder: Path) -> Iterator[None]:
    """Turn OS and SQLite failures while updating ``folder`` into one line that says what is live."""
    try:
        yield
    except FsearchError:
        raise  # already says what happened (some of ours are OSErrors too)
    except (OSError, sqlite3.OperationalError) as exc:
        committed = committed_manifest(folder)
        live = committed.generation if committed else None
        state = f"the previous index is unchanged (generation {live})" if live else "no index was written"
        reason = describe(exc, folder)
        hint = "free some space and run it again" if "space" in reason else None
        raise IndexWriteError(f"cannot write the index at {folder}: {reason}; {state}", hint=hint) from None
