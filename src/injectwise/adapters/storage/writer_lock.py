"""A cross-process writer lock beside a SQLite file.

Why: when two service workers (or a worker and its checkpoint thread) want SQLite's write lock at the
same moment, the loser gets SQLITE_BUSY and SQLite's busy handler sleeps 1, 2, 5, 10 ... ms before it
retries, so a 0.3 ms commit behind another one waited up to tens of milliseconds (the load benchmark's
commit p99 with two workers). An advisory `flock` on a lock file wakes the waiter as soon as the holder
lets go, so a writer waits about as long as the other write lasts. Where `fcntl` is missing (Windows)
the lock is a no-op and SQLite's own locking still keeps the data safe.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]


class WriterLock:
    """An exclusive advisory lock on `<database>-writer.lock`, shared by every process on the file."""

    def __init__(self, database: Path | None) -> None:
        self._fd: int | None = None
        if database is not None and fcntl is not None:
            self._fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for a write; blocks until the other holder (if any) is done."""
        if self._fd is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def try_hold(self) -> bool:
        """Take the lock if nobody holds it (True), without waiting; release it with `release`."""
        if self._fd is None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
