"""One run at a time: an exclusive lock beside the warehouse, and one in the feed folder.

The lock is an OS file lock (flock), so a run killed by SIGKILL releases it the
moment the process dies: a stale lock file is simply taken over by the next run.
The file records who holds it, for the operator's message.

A run that publishes also locks the feed folder (`<feed>/LOCK`): two runs with
different warehouses and one feed would otherwise both publish to it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType


class RunLocked(Exception):
    """Another run holds the lock; nothing was touched."""


FEED_LOCK_NAME = "LOCK"
"""The lock file inside the feed folder: not a dot-file, which would read as a
half-written leftover (flows/publish/feed.py `clean_stale_staging`)."""


class RunLock:
    """`with RunLock(warehouse, feed=feed_dir):` holds `<warehouse>.lock` and
    `<feed>/LOCK` for the run's duration (the feed's only when `feed` is given)."""

    def __init__(self, warehouse: Path, *, feed: Path | None = None) -> None:
        self.path = warehouse.with_name(warehouse.name + ".lock")
        self.feed_path = feed / FEED_LOCK_NAME if feed is not None else None
        self._descriptors: list[int] = []

    def __enter__(self) -> RunLock:
        try:
            self._descriptors.append(_take(self.path, "another jvn run is in progress"))
            if self.feed_path is not None:
                self._descriptors.append(
                    _take(self.feed_path, "another jvn run is publishing to this feed")
                )
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        while self._descriptors:
            descriptor = self._descriptors.pop()
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)


def _take(path: Path, busy: str) -> int:
    """Hold an exclusive flock on `path` (created private), noting the holder in it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = path.read_text(encoding="utf-8", errors="replace").strip()
        os.close(descriptor)
        raise RunLocked(
            f"{busy} ({holder or 'holder unknown'}); this one touched nothing"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(
        descriptor,
        f"pid {os.getpid()} on {socket.gethostname()} since "
        f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n".encode(),
    )
    return descriptor
