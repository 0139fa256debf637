"""The analysts' database: rebuilt from the warehouse by every run, no personal data.

Built into a temporary file and renamed over the old one, so analysts never
open a half-built database, and a crash leaves yesterday's in place.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from flows.config import pseudonym_key
from flows.sql import load_sql
from flows.warehouse import limit_resources

_TABLES = (
    "analytics/record_visibility",
    "analytics/deliveries",
    "analytics/quarantine_summary",
    "analytics/runs",
    "analytics/decision_changes",
)


def rebuild(warehouse: Path, analytics: Path) -> None:
    """Write a fresh analytics.duckdb from the warehouse's latest state."""
    install(build(warehouse, analytics), analytics)


def build(warehouse: Path, analytics: Path) -> Path:
    """Build the new analysts' database beside the live one; returns its temporary path."""
    key = pseudonym_key()
    temporary = analytics.with_name(f".{analytics.name}.building")
    temporary.unlink(missing_ok=True)
    analytics.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    limit_resources(connection, warehouse.with_name(warehouse.name + ".tmp"))
    try:
        connection.execute(f"ATTACH '{_quoted(str(warehouse))}' AS warehouse (READ_ONLY)")
        connection.execute(f"ATTACH '{_quoted(str(temporary))}' AS analytics")
        connection.execute("USE warehouse")
        for name in _TABLES:
            statement = load_sql(name)
            connection.execute(statement, {"key": key} if "$key" in statement else None)
        for view in load_sql("analytics/views").split(";"):
            if view.strip():
                connection.execute(view)
        connection.execute("DETACH analytics")
    finally:
        connection.close()
    # Analysts may read it: readable by the job's group, never world-readable.
    os.chmod(temporary, 0o640)
    return temporary


def check_replaceable(analytics: Path) -> None:
    """Fail before the feed goes live if the built database could not be renamed into place."""
    from flows.nightly import RunFailed

    if analytics.exists() and not analytics.is_file():
        raise RunFailed(f"the analysts' database {analytics} is not a file; it cannot be replaced")
    if not os.access(analytics.parent, os.W_OK):
        raise RunFailed(f"the folder of the analysts' database {analytics} is not writable")


def install(built: Path, analytics: Path) -> None:
    """Replace the analysts' database with a built one in one rename."""
    os.replace(built, analytics)


def _quoted(value: str) -> str:
    return value.replace("'", "''")
