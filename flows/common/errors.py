"""The job's own exceptions, whose messages are safe to log, and the rule for any other.

A library's error can quote a value (a personnummer, a line of journal text):
only the exceptions listed in `safe_message` pass with their text; anything
else is reduced to its type (and, for an OSError on the job's own files, the
errno and path). Every Prefect task of the run is wrapped in `sanitized`, since
Prefect stores a failed task's exception text in its logs, events and states.
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from flows.common.config import ConfigError
from flows.common.paths import job_places
from transforms.rules import RuleFileError
from transforms.schemas import ValidationFailed

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "ConfigError",
    "DeliveryFileError",
    "FeedError",
    "LocalFailure",
    "RunFailed",
    "WarehouseBusy",
    "messages_may_name",
    "safe_message",
    "sanitized",
]


class RunFailed(Exception):
    """The run stopped; nothing was published. The message is safe to log."""


class FeedError(Exception):
    """The feed folder is not in a state the job can publish to."""


class DeliveryFileError(Exception):
    """The file cannot be read as its contract says; the delivery is rejected whole.

    The message is safe to log: it never contains content from the file.
    """


class WarehouseBusy(Exception):
    """Another process held the warehouse longer than the job waits. Safe to log."""


SAFE_ERRORS: tuple[type[BaseException], ...] = (
    RunFailed,
    ValidationFailed,
    RuleFileError,
    DeliveryFileError,
    FeedError,
    WarehouseBusy,
)
"""Exceptions whose messages the job writes itself, never quoting data."""


def safe_message(error: BaseException) -> str:
    """An error message that cannot carry personal data.

    Our own exceptions are written to be safe; anything else (a library error
    may quote a value) is reduced to its type.
    """
    if isinstance(error, SAFE_ERRORS):
        return str(error)
    what = type(error).__name__
    if isinstance(error, OSError) and error.errno:
        what += f" {errno.errorcode.get(error.errno, str(error.errno))}"
        named = [
            str(name)
            for name in (error.filename, error.filename2)
            if name is not None and _is_own_file(name)
        ]
        if named:
            what += " on " + " -> ".join(named)
    return f"internal error ({what}); see 'Internal errors' in docs/operations.md"


def sanitized(function: Callable[P, R]) -> Callable[P, R]:
    """Re-raise any error of a task as RunFailed with a message safe to log."""

    @functools.wraps(function)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except RunFailed:
            raise
        except Exception as error:
            raise RunFailed(safe_message(error)) from None

    return guarded


_own_places: list[Path] = []
"""The running job's own files and folders: an error's message may name a path
under these (they carry no personal data; a delivery's file names are the sender's)."""


def messages_may_name(
    warehouse: str | None = None, analytics_db: str | None = None, feed_dir: str | None = None
) -> None:
    """Set (or, without arguments, clear) the paths an error message may name."""
    _own_places.clear()
    if warehouse and analytics_db and feed_dir:
        places = job_places(
            warehouse=Path(warehouse), analytics=Path(analytics_db), feed=Path(feed_dir)
        )
        _own_places.extend(Path(os.path.abspath(p)) for group in places.values() for p in group)


def _is_own_file(name: str | bytes | int) -> bool:
    if not isinstance(name, str):
        return False
    path = Path(os.path.abspath(name))
    return any(path == place or place in path.parents for place in _own_places)


class LocalFailure(Exception):
    """The job's own files failed (disk full, an I/O error in the work folder).

    Not the sender's fault: the run fails, the delivery is not recorded, and the
    next run loads it. The message names the errno and the job's own path, which
    hold no personal data.
    """

    @classmethod
    def of(cls, error: Exception, path: Path, doing: str) -> LocalFailure:
        number = errno_of(error)
        code = errno.errorcode.get(number or 0)
        cause = f"{code}: {os.strerror(number or 0)}" if code else type(error).__name__
        return cls(f"local failure {doing} {path} ({cause})")


def errno_of(error: Exception) -> int | None:
    """The operating system's error number behind an error, where it tells one.

    DuckDB and polars report it inside their messages (`"errno":"28"`,
    `(os error 28)`); only the number is taken from there.
    """
    if isinstance(error, OSError):
        return error.errno
    for pattern in (_DUCKDB_ERRNO, _RUST_ERRNO):
        found = pattern.search(str(error))
        if found:
            return int(found.group(1))
    return None


_DUCKDB_ERRNO = re.compile(r'"errno"\s*:\s*"?(\d+)')
_RUST_ERRNO = re.compile(r"\(os error (\d+)\)")
