"""The analysts' database: rebuilt from the warehouse by every run, no personal data.

Built into a temporary file and renamed over the old one, so analysts never
open a half-built database, and a crash leaves yesterday's in place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from flows.common.config import pseudonym_key
from flows.common.errors import RunFailed
from flows.common.files import sql_literal
from flows.common.sql import load_sql
from flows.common.warehouse import limit_resources

_SMALL_TABLES = (
    "analytics/deliveries",
    "analytics/quarantine_summary",
    "analytics/runs",
)
"""Rebuilt whole by every run: their size follows deliveries and runs, not records."""

_AGGREGATES = {
    "reasons_by_run": "analytics/reasons_by_run",
    "units_exempt_by_name_only": "report/units_exempt_by_name_only",
    "unknown_codes": "report/unknown_codes",
}
"""Counts rebuilt whole by every run (one grouped scan each), so the analysts' report
(`jvn report`) needs nothing but this database: table name -> the query that counts."""


def rebuild(warehouse: Path, analytics: Path) -> None:
    """Write a fresh analytics.duckdb from the warehouse's latest state."""
    install(build(warehouse, analytics, run_id=None), analytics)


def build(
    warehouse: Path,
    analytics: Path,
    *,
    run_id: str | None,
    previous_run: str | None = None,
    only_records: list[str] | None = None,
) -> Path:
    """Build the new analysts' database beside the live one; returns its temporary path.

    Incremental when `only_records` names the records this run decided anew
    and the live database was built by `previous_run` (its `build_info` says
    so): a copy of it gets those records' rows replaced and this run's changes
    appended. Otherwise everything is built from the warehouse.
    """
    key = pseudonym_key()
    temporary = analytics.with_name(f".{analytics.name}.building")
    temporary.unlink(missing_ok=True)
    analytics.parent.mkdir(parents=True, exist_ok=True)
    incremental = (
        only_records is not None
        and previous_run is not None
        and _built_by(analytics) == previous_run
    )
    connection = duckdb.connect()
    limit_resources(connection, warehouse.with_name(warehouse.name + ".tmp"))
    try:
        connection.execute(f"ATTACH '{sql_literal(warehouse)}' AS warehouse (READ_ONLY)")
        connection.execute("USE warehouse")
        visibility = load_sql("analytics/record_visibility")
        changes = load_sql("analytics/decision_changes")
        # A database built by an older job lacks columns this one writes: build it whole.
        if incremental and _visibility_columns(analytics) != _columns_of(
            connection, visibility, {"key": key, "only_records": []}
        ):
            incremental = False
        if incremental:
            shutil.copyfile(analytics, temporary)
        connection.execute(f"ATTACH '{sql_literal(temporary)}' AS analytics")
        if incremental:
            connection.execute(
                "DELETE FROM analytics.record_visibility "
                "WHERE record_id IN (SELECT unnest(CAST($ids AS VARCHAR[])))",
                {"ids": only_records},
            )
            connection.execute(
                f"INSERT INTO analytics.record_visibility {visibility}",
                {"key": key, "only_records": only_records},
            )
            connection.execute(
                f"INSERT INTO analytics.decision_changes {changes}", {"only_run": run_id}
            )
        else:
            connection.execute(
                f"CREATE TABLE analytics.record_visibility AS {visibility} ORDER BY record_id",
                {"key": key, "only_records": None},
            )
            connection.execute(
                f"CREATE TABLE analytics.decision_changes AS {changes}", {"only_run": None}
            )
        for name in _SMALL_TABLES:
            connection.execute(load_sql(name))
        for table, query in _AGGREGATES.items():
            connection.execute(f"CREATE OR REPLACE TABLE analytics.{table} AS {load_sql(query)}")
        for view in load_sql("analytics/views").split(";"):
            if view.strip():
                connection.execute(view)
        connection.execute(
            "CREATE OR REPLACE TABLE analytics.build_info AS "
            "SELECT CAST($run_id AS VARCHAR) AS run_id, $incremental AS incremental",
            {"run_id": run_id, "incremental": incremental},
        )
        connection.execute("DETACH analytics")
    finally:
        connection.close()
    # Analysts may read it: readable by the job's group, never world-readable.
    os.chmod(temporary, 0o640)
    return temporary


def _built_by(analytics: Path) -> str | None:
    """The run whose decisions the live analysts' database holds, if it says."""
    if not analytics.is_file():
        return None
    try:
        with duckdb.connect(str(analytics), read_only=True) as connection:
            rows = connection.execute("SELECT run_id FROM build_info").fetchall()
    except duckdb.Error:
        return None
    return str(rows[0][0]) if rows and rows[0][0] else None


def _visibility_columns(analytics: Path) -> list[str]:
    """The columns of the live database's `record_visibility`, in order."""
    try:
        with duckdb.connect(str(analytics), read_only=True) as connection:
            cursor = connection.execute("SELECT * FROM record_visibility LIMIT 0")
            cursor.fetchall()
            return [column[0] for column in cursor.description or ()]
    except duckdb.Error:
        return []


def _columns_of(
    connection: duckdb.DuckDBPyConnection, query: str, parameters: dict[str, object]
) -> list[str]:
    """The columns `query` yields, in order, without reading a row."""
    cursor = connection.execute(f"SELECT * FROM ({query}) LIMIT 0", parameters)
    cursor.fetchall()
    return [column[0] for column in cursor.description or ()]


def check_replaceable(analytics: Path) -> None:
    """Fail before the feed goes live if the built database could not be renamed into place."""
    if analytics.exists() and not analytics.is_file():
        raise RunFailed(f"the analysts' database {analytics} is not a file; it cannot be replaced")
    if not os.access(analytics.parent, os.W_OK):
        raise RunFailed(f"the folder of the analysts' database {analytics} is not writable")


def install(built: Path, analytics: Path) -> None:
    """Replace the analysts' database with a built one in one rename."""
    os.replace(built, analytics)
