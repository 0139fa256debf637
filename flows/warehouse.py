"""The job's own DuckDB store: opening it, creating its tables, small helpers.

The warehouse holds personnummer and journal text; only the job and its
operators open it. It is created readable by the job's user only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import duckdb

from flows.sql import statements_in

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
    connection.execute(f"SET memory_limit = '{_quoted(limit)}'")
    connection.execute(f"SET temp_directory = '{_quoted(str(spill_dir))}'")
    connection.execute("SET enable_progress_bar = false")
    # Row order matters only where the reader numbers rows (it turns this back
    # on); elsewhere keeping it makes large writes buffer in memory.
    connection.execute("SET preserve_insertion_order = false")
    connection.execute("SET partitioned_write_flush_threshold = 100000")


def private_dir(path: Path) -> Path:
    """Create a folder only the job's user can read (if it does not exist yet)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    return path


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (created with its tables if new), closing it afterwards.

    DuckDB gets the job's memory budget and spills to `<warehouse>.tmp/` beside
    the file, so large sorts and joins degrade to disk instead of failing.
    """
    if not read_only:
        private_dir(path.parent)
    existed = path.exists()
    connection = duckdb.connect(str(path), read_only=read_only)
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


def _quoted(value: str) -> str:
    """Quote a setting value that DuckDB's SET cannot take as a parameter."""
    return value.replace("'", "''")
