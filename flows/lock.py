"""One run at a time: an exclusive lock beside the warehouse.

The lock is an OS file lock (flock), so a run killed by SIGKILL releases it the
moment the process dies: a stale lock file is simply taken over by the next run.
The file records who holds it, for the operator's message.
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


class RunLock:
    """`with RunLock(warehouse):` holds `<warehouse>.lock` for the run's duration."""

    def __init__(self, warehouse: Path) -> None:
        self.path = warehouse.with_name(warehouse.name + ".lock")
        self._descriptor: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.path.read_text(encoding="utf-8", errors="replace").strip()
            os.close(descriptor)
            raise RunLocked(
                f"another jvn run is in progress ({holder or 'holder unknown'}); "
                "this one touched nothing"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(
            descriptor,
            f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}\n".encode(),
        )
        self._descriptor = descriptor
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._descriptor is not None:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None
