"""The job's own DuckDB store: opening it, creating its tables, small helpers.

The warehouse holds personnummer and journal text; only the job and its
operators open it. It is created readable by the job's user only, and so is
everything written beside it (DuckDB's `.wal`, the spill folder, the lock, the
work folder): `make_private` corrects modes left by older versions or an
operator, and the CLI runs commands under a umask of 077.

DuckDB lets one process write a database file, or several read it: an
operator's read-only session keeps the job out. `connect` waits a bounded time
(JVN_WAREHOUSE_LOCK_WAIT, `--lock-wait`) and then raises WarehouseBusy, whose
one-line message is safe to show.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import duckdb

from flows.common.config import warehouse_lock_wait
from flows.common.errors import WarehouseBusy
from flows.common.files import private_dir, sql_literal
from flows.common.paths import warehouse_files, work_root
from flows.common.sql import statements_in

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

MEMORY_LIMIT_VARIABLE = "JVN_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "3GB"
"""DuckDB's own default is 80 % of the machine; the job shares it with polars,
so DuckDB gets a fixed budget and spills to disk beyond it."""

WORK_FILE_COMPRESSION: Final = "snappy"
"""For Parquet that lives only in a run's work folder (parsed rows, canonical rows,
state, decisions): each is written once and read once or twice within minutes,
so fast compression beats small files. What is kept (the feed) uses zstd."""


def limit_resources(connection: duckdb.DuckDBPyConnection, spill_dir: Path) -> None:
    """Give a DuckDB connection the job's memory budget and a private spill folder."""
    limit = os.environ.get(MEMORY_LIMIT_VARIABLE, DEFAULT_MEMORY_LIMIT)
    connection.execute(f"SET memory_limit = '{sql_literal(limit)}'")
    connection.execute(f"SET temp_directory = '{sql_literal(spill_dir)}'")
    connection.execute("SET enable_progress_bar = false")
    # Row order matters only where the reader numbers rows (it turns this back
    # on); elsewhere keeping it makes large writes buffer in memory.
    connection.execute("SET preserve_insertion_order = false")
    # A partitioned write (the state export) buffers this many rows per partition
    # before writing them out: at 10 M records in 50 partitions 20,000 took 12.7 s,
    # 100,000 15.8 s and 1,000,000 24.3 s (spilling), and holds less memory.
    connection.execute("SET partitioned_write_flush_threshold = 20000")


_LOCK_CONFLICT = "Could not set lock on file"
"""The start of DuckDB's message when another process holds the file."""


def held_by_another_process(error: duckdb.Error) -> bool:
    """Whether DuckDB refused a file because another process holds its lock (not a
    damaged file, not a missing one: those are IOExceptions too)."""
    return isinstance(error, duckdb.IOException) and _LOCK_CONFLICT in str(error)


def open_waiting(
    path: Path,
    *,
    read_only: bool = False,
    config: dict[str, Any] | None = None,
    what: str = "the warehouse",
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retried with backoff while another process holds the file
    (`what` it is, for the message when the wait runs out)."""
    wait = warehouse_lock_wait()
    deadline = time.monotonic() + wait
    pause = 0.1
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.IOException as error:
            if not held_by_another_process(error):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseBusy(
                    f"{what} {path} is held by another process (a DuckDB session?); "
                    f"waited {wait:g} s. Close that session, or open a copy of the file"
                ) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 5.0)


def make_private(warehouse: Path) -> None:
    """Take group and other access off what the job keeps beside the warehouse.

    Older versions, a run killed mid-write (DuckDB's `.wal`) or an operator may
    have left these readable by others; they hold personnummer and journal text.
    The warehouse's own folder is the operator's and is left as it is.
    """
    for path in [*warehouse_files(warehouse), work_root(warehouse)]:
        if path.is_symlink() or not path.exists():
            continue
        if path.is_dir():
            for folder, _folders, files in os.walk(path):
                _chmod_private(Path(folder), PRIVATE_DIR_MODE)
                for name in files:
                    _chmod_private(Path(folder) / name, PRIVATE_FILE_MODE)
        else:
            _chmod_private(path, PRIVATE_FILE_MODE)


def _chmod_private(path: Path, mode: int) -> None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        return
    if info.st_mode & 0o077:
        os.chmod(path, stat.S_IMODE(info.st_mode) & mode)


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (created with its tables if new), closing it afterwards.

    DuckDB gets the job's memory budget and spills to `<warehouse>.tmp/` beside
    the file, so large sorts and joins degrade to disk instead of failing.
    While another process holds the file, waits (`open_waiting`).
    """
    if not read_only:
        private_dir(path.parent)
    existed = path.exists()
    connection = open_waiting(path, read_only=read_only)
    try:
        if not existed and not read_only:
            os.chmod(path, PRIVATE_FILE_MODE)
        limit_resources(connection, path.with_name(path.name + ".tmp"))
        if not read_only:
            for statement in statements_in("warehouse"):
                connection.execute(statement)
        yield connection
    finally:
        connection.close()


def first_row(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> Any:
    """The first row of a query, or None, with the result fully consumed.

    DuckDB 2 keeps a result open until it is fetched to the end, and refuses
    other work on the connection meanwhile: `fetchone()` alone is not enough.
    """
    rows = connection.execute(sql, parameters).fetchall()
    return rows[0] if rows else None
