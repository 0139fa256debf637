"""How `jvn verify` reads what it checks: never while a run writes, never past a link.

The warehouse is attached read-only to an in-memory DuckDB; a run in
progress (its lock held) or a warehouse open for writing is VerifyError's
WarehouseBusy, not a mismatch; a file reached through a symbolic link is not
the snapshot's own.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from flows.common.files import sql_literal
from flows.common.lock import FEED_LOCK_NAME
from flows.common.warehouse import held_by_another_process, limit_resources


class VerifyError(Exception):
    """Verification could not be carried out (not a mismatch). The message is safe to print."""


class WarehouseBusy(VerifyError):
    """A run holds the warehouse; verifying now would compare half-written state."""


@contextmanager
def open_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the warehouse attached read-only as `w`."""
    connection = duckdb.connect()
    try:
        limit_resources(connection, path.with_name(path.name + ".tmp"))
        attach_read_only(
            connection,
            path,
            "w",
            what=f"the warehouse {path}",
            writer="(a run in progress?); verify when it has finished",
        )
        yield connection
    finally:
        connection.close()


def attach_read_only(
    connection: duckdb.DuckDBPyConnection, path: Path, alias: str, *, what: str, writer: str
) -> None:
    """`path` attached read-only as `alias`; WarehouseBusy while another process writes
    it (`writer` says who that may be), VerifyError for a file DuckDB cannot open."""
    try:
        connection.execute(f"ATTACH '{sql_literal(path)}' AS {alias} (READ_ONLY)")
    except duckdb.Error as error:
        if held_by_another_process(error):
            raise WarehouseBusy(f"{what} is open for writing by another process {writer}") from None
        raise VerifyError(f"{what} cannot be opened ({type(error).__name__})") from None


@contextmanager
def no_run_in_progress(warehouse: Path, feed_dir: Path) -> Iterator[None]:
    """Refuse to verify while a run holds the run lock (flows/common/lock.py); take nothing over.

    Both of its files: the warehouse's, and the feed's (a run with another
    warehouse may be publishing to this feed). A shared lock is held only for
    the moment it takes to look: verify never keeps a nightly run from starting.
    """
    for lock_path in (warehouse.with_name(warehouse.name + ".lock"), feed_dir / FEED_LOCK_NAME):
        try:
            descriptor = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WarehouseBusy(
                    "a jvn run is in progress; verify when it has finished"
                ) from None
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)
    yield


def linked_outside(snapshot: Path, path: Path) -> bool:
    """A symlink anywhere between the snapshot folder and the file (`records` included)."""
    relative = path.relative_to(snapshot)
    current = snapshot
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            return True
    return False
