"""The analysts' database: rebuilt from the warehouse by every run, no personal data.

Built into a temporary file and renamed over the old one, so analysts never
open a half-built database, and a crash leaves yesterday's in place. What the
live database already holds for earlier runs is taken from it when the previous
published run built it (see `build`): a nightly run replaces only the records it
decided anew, a full run reads the earlier runs' changes from there.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from flows.common.config import pseudonym_key
from flows.common.errors import RunFailed
from flows.common.files import sql_literal
from flows.common.paths import analytics_building_path
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
    copied_ahead: bool = False,
) -> Path:
    """Build the new analysts' database beside the live one; returns its temporary path.

    Incremental when `only_records` names the records this run decided anew
    and the live database was built by `previous_run` (its `build_info` says
    so): a copy of it gets those records' rows replaced and this run's changes
    appended. Otherwise `record_visibility` is built whole from the warehouse;
    so is `decision_changes`, unless the live database was built by the
    published run just before `run_id` and holds as many changes as the
    warehouse has for the runs before this one: then its rows are read from
    there (in their order) and this run's appended, instead of joining and
    sorting the whole history again.

    `copied_ahead`: `LiveCopy` has copied the live database to the temporary
    path: an incremental build starts from it; any other build removes it.
    A build that fails removes its temporary file, the copy included, so that a
    retry never builds on what the failed attempt half changed: it copies again.
    """
    key = pseudonym_key()
    temporary = analytics_building_path(analytics)
    from_copy = copied_ahead and temporary.is_file()
    if not from_copy:
        temporary.unlink(missing_ok=True)
    try:
        _build_into(
            temporary,
            warehouse,
            analytics,
            key=key,
            run_id=run_id,
            previous_run=previous_run,
            only_records=only_records,
            from_copy=from_copy,
        )
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # Analysts may read it: readable by the job's group, never world-readable.
    os.chmod(temporary, 0o640)
    return temporary


def _build_into(
    temporary: Path,
    warehouse: Path,
    analytics: Path,
    *,
    key: str,
    run_id: str | None,
    previous_run: str | None,
    only_records: list[str] | None,
    from_copy: bool,
) -> None:
    """`build`'s work, into `temporary` (holding the live database's copy if `from_copy`)."""
    analytics.parent.mkdir(parents=True, exist_ok=True)
    built_by = _built_by(analytics)
    connection = duckdb.connect()
    limit_resources(connection, warehouse.with_name(warehouse.name + ".tmp"))
    try:
        connection.execute(f"ATTACH '{sql_literal(warehouse)}' AS warehouse (READ_ONLY)")
        connection.execute("USE warehouse")
        visibility = load_sql("analytics/record_visibility")
        changes = load_sql("analytics/decision_changes")
        if only_records is None:
            # A whole build: whose changes the live database may hold is the warehouse's say.
            previous_run = _previous_published_run(connection, run_id) if run_id else None
        reusable = previous_run is not None and built_by == previous_run
        # A database built by an older job lacks columns this one writes: build it whole.
        if reusable and _visibility_columns(analytics) != _columns_of(
            connection, visibility, {"key": key, "only_records": []}
        ):
            reusable = False
        incremental = reusable and only_records is not None
        reuse_changes = (
            reusable
            and not incremental
            and run_id is not None
            and _attach_live_changes(connection, analytics, changes, run_id)
        )
        if from_copy and not incremental:
            temporary.unlink()
        elif incremental and not from_copy:
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
                # Not sorted: rows are read by query, never by position (a nightly
                # build appends its rows anyway), and sorting 10 M rows costs ~6 s.
                f"CREATE TABLE analytics.record_visibility AS {visibility}",
                {"key": key, "only_records": None},
            )
            if reuse_changes:
                _copy_live_changes(connection)
                connection.execute(
                    f"INSERT INTO analytics.decision_changes {changes}", {"only_run": run_id}
                )
            else:
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


class LiveCopy:
    """The live analysts' database copied, on a thread of its own, to where `build` works.

    An incremental build starts from a copy of the live database (at 10 M
    records 400 MB: 1.1-1.5 s inside a nightly run). Started as soon as the run
    knows it is incremental, the copy overlaps exporting and deciding instead
    of holding up the analytics stage. Only the job writes the live database,
    under the run lock, so the copy is the database `build` would have copied.
    """

    def __init__(self, analytics: Path) -> None:
        self.path = analytics_building_path(analytics)
        self.path.unlink(missing_ok=True)
        copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics-copy")
        self._copying = copier.submit(shutil.copyfile, analytics, self.path)
        copier.shutdown(wait=False)

    def ready(self) -> bool:
        """Whether the copy is complete, for `build(copied_ahead=...)`; False if copying
        failed (a full disk): then `build` copies again itself, under its task's retry."""
        try:
            self._copying.result()
        except OSError:
            return False
        return True

    def settle(self) -> None:
        """Wait for the copy; if the run did not build from it, remove it."""
        self.ready()
        self.path.unlink(missing_ok=True)


def _previous_published_run(connection: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The published run just before `run_id` (in the attached warehouse), if any."""
    rows = connection.execute(
        load_sql("analytics/previous_published_run"), {"run_id": run_id}
    ).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] else None


_LIVE = "live_analytics"
"""The live analysts' database, attached read-only while its changes are reused."""


def _attach_live_changes(
    connection: duckdb.DuckDBPyConnection, analytics: Path, changes: str, run_id: str
) -> bool:
    """Attach the live database (read-only, as `_LIVE`) if its `decision_changes` are
    those a whole build would write for the runs before `run_id`: the same columns
    and types, as many rows. False, and nothing attached, otherwise."""
    wanted = connection.execute(
        f"DESCRIBE SELECT * FROM ({changes}) LIMIT 0", {"only_run": run_id}
    ).fetchall()
    expected = connection.execute(
        load_sql("analytics/changes_before_run"), {"run_id": run_id}
    ).fetchall()
    try:
        connection.execute(f"ATTACH '{sql_literal(analytics)}' AS {_LIVE} (READ_ONLY)")
    except duckdb.Error:
        return False
    try:
        live = connection.execute(f"DESCRIBE {_LIVE}.decision_changes").fetchall()
        rows = connection.execute(f"SELECT count(*) FROM {_LIVE}.decision_changes").fetchall()
    except duckdb.Error:
        live, rows = [], [(None,)]
    if [column[:2] for column in live] == [column[:2] for column in wanted] and (
        rows[0][0] == expected[0][0]
    ):
        return True
    connection.execute(f"DETACH {_LIVE}")
    return False


def _copy_live_changes(connection: duckdb.DuckDBPyConnection) -> None:
    """`decision_changes` of the new database: the attached live one's rows, in their
    order (run, then record, as a whole build sorts them)."""
    connection.execute("SET preserve_insertion_order = true")
    try:
        connection.execute(
            f"CREATE TABLE analytics.decision_changes AS SELECT * FROM {_LIVE}.decision_changes"
        )
    finally:
        connection.execute("SET preserve_insertion_order = false")
        connection.execute(f"DETACH {_LIVE}")


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
