"""The job's settings, stated once: default places, environment settings, today's date.

Defaults of the command line (`jvn`) and of the scheduled deployment (`jvn
serve`) come from here; settings that come from the environment rather than
the command line (the pseudonym key, the warehouse lock wait) are read here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from transforms.canonical import LOCAL_TIME_ZONE

DEFAULT_INBOX = Path("data/inbox")
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
DEFAULT_ANALYTICS = Path("data/analytics.duckdb")
DEFAULT_FEED = Path("data/feed")
DEFAULT_PAGE = Path("data/page.html")
"""Where the job's files are by default: under `data/` of the folder it runs in."""

KEY_VARIABLE = "JVN_PSEUDONYM_KEY"
KEY_FILE_VARIABLE = "JVN_PSEUDONYM_KEY_FILE"
_MIN_KEY_LENGTH = 16

LOCK_WAIT_VARIABLE = "JVN_WAREHOUSE_LOCK_WAIT"
DEFAULT_LOCK_WAIT_SECONDS = 60.0
"""How long opening the warehouse waits while another process (an operator's
read-only DuckDB session) holds it, before the run fails with one line."""

_held_key: str | None = None


class ConfigError(Exception):
    """Bad arguments or configuration: the command exits 2 with this one-line message."""


def pseudonym_key() -> str:
    """The analysts' pseudonym key, from JVN_PSEUDONYM_KEY or the file JVN_PSEUDONYM_KEY_FILE.

    There is no default: without a key the analysts' database cannot be built
    without either leaking the personnummer or breaking keys across runs.
    """
    if _held_key is not None:
        return _held_key
    value = os.environ.get(KEY_VARIABLE)
    if not value and os.environ.get(KEY_FILE_VARIABLE):
        path = Path(os.environ[KEY_FILE_VARIABLE])
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError:
            raise ConfigError(f"{KEY_FILE_VARIABLE} names a file that cannot be read") from None
    if not value:
        raise ConfigError(
            f"no pseudonym key: set {KEY_VARIABLE} or {KEY_FILE_VARIABLE} "
            "(the analysts' patient_key is a keyed hash and needs it)"
        )
    if len(value) < _MIN_KEY_LENGTH:
        raise ConfigError(f"the pseudonym key is shorter than {_MIN_KEY_LENGTH} characters")
    return value


def pseudonym_key_if_set() -> str | None:
    """The pseudonym key when one is configured, None when neither variable is set
    (a configured key that cannot be read is still a ConfigError)."""
    if _held_key is None and not (
        os.environ.get(KEY_VARIABLE) or os.environ.get(KEY_FILE_VARIABLE)
    ):
        return None
    return pseudonym_key()


@contextmanager
def key_withheld_from_children() -> Iterator[str]:
    """Hold the pseudonym key in this process only, for the duration of a run.

    `JVN_PSEUDONYM_KEY` is taken out of the environment, so the processes a run
    starts (Prefect's temporary server, Dask workers) do not inherit it;
    `pseudonym_key()` still returns it here. Restored afterwards.
    """
    global _held_key
    key = pseudonym_key()
    saved = os.environ.pop(KEY_VARIABLE, None)
    _held_key = key
    try:
        yield key
    finally:
        _held_key = None
        if saved is not None:
            os.environ[KEY_VARIABLE] = saved


def environment_without_key(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` (this process's by default) less the pseudonym key and its file's
    name: the environment of a process the job starts that must not hold the key."""
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        if name not in (KEY_VARIABLE, KEY_FILE_VARIABLE)
    }


@contextmanager
def environment_variable(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` while inside, as it was (set or not) after."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def warehouse_lock_wait() -> float:
    """Seconds to wait for the warehouse held by another process (JVN_WAREHOUSE_LOCK_WAIT)."""
    text = os.environ.get(LOCK_WAIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_LOCK_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError(f"{LOCK_WAIT_VARIABLE} is not a number of seconds: {text!r}") from None
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"{LOCK_WAIT_VARIABLE} must be 0 or more seconds")
    return seconds


def today_in_stockholm() -> date:
    """The business date a run defaults to: today on a Swedish wall calendar."""
    return datetime.now(ZoneInfo(LOCAL_TIME_ZONE)).date()
