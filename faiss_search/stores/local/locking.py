"""One writer per index folder: an advisory lock file that names its owner.

The lock is an ``fcntl.flock`` on ``<index>/writer.lock``, so the kernel releases it when
its owner dies, even by ``kill -9``: a lock left by a dead process is simply taken over.
The owner's pid is written into the file so that a waiting writer can say who it waits for.
Readers never take it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from ...errors import IndexBusyError

LOCK_FILE = "writer.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that id is running (not one of ours to signal counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """``with WriterLock(folder, wait=True, on_wait=print):`` holds the folder's writer lock."""

    def __init__(self, folder: Path, wait: bool = True, on_wait: Callable[[str], None] | None = None,
                 poll_seconds: float = 0.2) -> None:
        self.path = folder / LOCK_FILE
        self.wait = wait
        self.on_wait = on_wait
        self.poll_seconds = poll_seconds
        self._fd: int | None = None
        self.took_over_from: int | None = None

    def _owner(self) -> int | None:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def acquire(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = self._owner()
                if not self.wait:
                    os.close(fd)
                    raise IndexBusyError(
                        f"another fsearch (pid {owner or '?'}) is updating the index at {self.path.parent}",
                        hint="wait for it to finish, or run without --no-wait to queue behind it",
                    ) from None
                if not told and self.on_wait:
                    self.on_wait(f"waiting for fsearch pid {owner or '?'} to finish updating {self.path.parent}")
                    told = True
                time.sleep(self.poll_seconds)
        previous = self._owner()
        if previous and previous != os.getpid() and pid_alive(previous) is False:
            self.took_over_from = previous
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def writer_active(folder: Path) -> bool:
    """Whether an update holds the writer lock now (on read-only media nobody can). Creates nothing: the
    folder may not be an index at all."""
    if not (folder / LOCK_FILE).exists():
        return False  # a writer makes the file before it locks it
    try:
        WriterLock(folder, wait=False).acquire().release()
    except IndexBusyError:
        return True
    except OSError:
        pass
    return False
