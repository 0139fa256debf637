"""The analysts' database: kept up to date from the warehouse by every run, no personal data.

A nightly run patches the live database in place: the rows of the records it
decided anew (and the run's changes, runs, deliveries and counts) are staged
from the warehouse first, then written into the live database inside one
transaction that is committed only once the feed is live (`prepare`, then
`InPlace.install`). Analysts never see a half-patched database, a failure or a
crash before the commit leaves yesterday's, and nothing is copied whole.

Every other build is built into a temporary file beside the live database and
renamed over it (`build`, then `Renamed.install`): a whole build (the first
run, a full run, a database an older job built), and a nightly patch while an
analyst holds the live database open (DuckDB's file lock), which then patches
a copy. A full run still takes the earlier runs' changes from the live
database when the previous published run built it (see `build`).
"""

from __future__ import annotations

import os
import shutil
from contextlib import closing
from pathlib import Path

import duckdb

from flows.common.config import pseudonym_key
from flows.common.errors import RunFailed
from flows.common.faults import checkpoint
from flows.common.files import sql_literal
from flows.common.paths import analytics_building_path
from flows.common.sql import load_sql
from flows.common.warehouse import limit_resources

_SMALL_TABLES = {
    "deliveries": "analytics/deliveries",
    "quarantine_summary": "analytics/quarantine_summary",
    "runs": "analytics/runs",
    "reasons_by_run": "analytics/reasons_by_run",
    "units_exempt_by_name_only": "report/units_exempt_by_name_only",
    "unknown_codes": "report/unknown_codes",
}
"""Rebuilt whole by every run (their size follows deliveries, runs and units, not
records): table name -> its query. The counts let the analysts' report (`jvn
report`) need nothing but this database."""

_STAGED = "staged"
"""The in-memory database a nightly patch's rows are staged in."""

INSTALL_ERRORS = (OSError, duckdb.Error)
"""What `install` raises when the new database could not be put in place."""


class InPlace:
    """The live database patched inside an open transaction: `install` commits it.

    The warehouse is no longer attached, so the run may open it while this waits."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection: duckdb.DuckDBPyConnection | None = connection

    def install(self) -> None:
        """Commit the patch: analysts see the new run from here on."""
        checkpoint("analytics:commit")
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.commit()
            finally:
                connection.close()

    def discard(self) -> None:
        """Roll the patch back (nothing if installed): the live database stays as it was."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class Renamed:
    """A database built beside the live one: `install` renames it over the live one."""

    def __init__(self, built: Path, analytics: Path) -> None:
        self.built = built
        self.analytics = analytics

    def install(self) -> None:
        """Replace the live database in one rename."""
        install(self.built, self.analytics)

    def discard(self) -> None:
        """Remove the built database (nothing if installed)."""
        self.built.unlink(missing_ok=True)


def rebuild(warehouse: Path, analytics: Path) -> None:
    """Write a fresh analytics.duckdb from the warehouse's latest state."""
    install(build(warehouse, analytics, run_id=None), analytics)


def prepare(
    warehouse: Path,
    analytics: Path,
    *,
    run_id: str,
    previous_run: str | None,
    only_records: list[str] | None,
) -> InPlace | Renamed:
    """The run's analysts' database, ready to install once the feed is live.

    Patched in place (`InPlace`) when the live database can take this run's
    records (see `build`'s incremental case) and can be opened for writing (no
    analyst's session holds it); otherwise built beside it (`Renamed`). A
    failure leaves the live database as it was; Prefect's retry starts again
    from it.
    """
    key = pseudonym_key()
    connection = _connect(warehouse)
    patched: InPlace | None = None
    try:
        patch: list[str] | None = None
        if only_records is not None and _patchable(
            connection, analytics, key=key, previous_run=previous_run
        ):
            _stage(connection, key=key, run_id=run_id, only_records=only_records)
            patch = only_records
            try:
                connection.execute(f"ATTACH '{sql_literal(analytics)}' AS analytics")
            except duckdb.IOException:
                # Not open for writing: an analyst's session holds it (DuckDB's file
                # lock), or its mode forbids; renaming a patched copy over it works.
                pass
            else:
                connection.execute("BEGIN TRANSACTION")
                _apply(connection, run_id=run_id, only_records=patch)
                patched = InPlace(connection)
                return patched
        built = _beside(connection, analytics, key=key, run_id=run_id, patch=patch)
        return Renamed(built, analytics)
    finally:
        if patched is None:
            connection.close()


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
    so) with the columns this job writes: a copy of it gets those records' rows
    replaced and this run's changes appended. Otherwise `record_visibility` is
    built whole from the warehouse; so is `decision_changes`, unless the live
    database was built by the published run just before `run_id` and holds as
    many changes as the warehouse has for the runs before this one: then its
    rows are read from there and this run's appended, instead of joining the
    whole history again.
    """
    key = pseudonym_key()
    with closing(_connect(warehouse)) as connection:
        patch: list[str] | None = None
        if (
            run_id is not None
            and only_records is not None
            and _patchable(connection, analytics, key=key, previous_run=previous_run)
        ):
            _stage(connection, key=key, run_id=run_id, only_records=only_records)
            patch = only_records
        return _beside(connection, analytics, key=key, run_id=run_id, patch=patch)


def _beside(
    connection: duckdb.DuckDBPyConnection,
    analytics: Path,
    *,
    key: str,
    run_id: str | None,
    patch: list[str] | None,
) -> Path:
    """The new database in the temporary file beside the live one; its path. `patch`:
    the records whose staged rows go into a copy of the live database; None: every
    table built whole. A build that fails removes the file, so a retry starts again."""
    temporary = analytics_building_path(analytics)
    temporary.unlink(missing_ok=True)
    analytics.parent.mkdir(parents=True, exist_ok=True)
    try:
        if patch is not None:
            shutil.copyfile(analytics, temporary)
        connection.execute(f"ATTACH '{sql_literal(temporary)}' AS analytics")
        if patch is not None:
            _apply(connection, run_id=run_id, only_records=patch)
        else:
            _write_whole(connection, analytics, key=key, run_id=run_id)
        connection.execute("DETACH analytics")
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # Analysts may read it: readable by the job's group, never world-readable.
    os.chmod(temporary, 0o640)
    return temporary


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the warehouse attached read-only and in use."""
    connection = duckdb.connect()
    try:
        limit_resources(connection, warehouse.with_name(warehouse.name + ".tmp"))
        connection.execute(f"ATTACH '{sql_literal(warehouse)}' AS warehouse (READ_ONLY)")
        connection.execute("USE warehouse")
    except BaseException:
        connection.close()
        raise
    return connection


def _patchable(
    connection: duckdb.DuckDBPyConnection,
    analytics: Path,
    *,
    key: str,
    previous_run: str | None,
) -> bool:
    """Whether the live database holds `previous_run`'s decisions in the columns this
    job writes (a database built by an older job lacks some: it is built whole)."""
    if previous_run is None or _built_by(analytics) != previous_run:
        return False
    visibility = load_sql("analytics/record_visibility")
    wanted = _columns_of(connection, visibility, {"key": key, "only_records": []})
    return _visibility_columns(analytics) == wanted


def _stage(
    connection: duckdb.DuckDBPyConnection, *, key: str, run_id: str, only_records: list[str]
) -> None:
    """This run's rows for the analysts' database, in memory (`staged`), read from the
    warehouse, which is detached afterwards."""
    connection.execute(f"ATTACH ':memory:' AS {_STAGED}")
    connection.execute(
        f"CREATE TABLE {_STAGED}.record_visibility AS {load_sql('analytics/record_visibility')}",
        {"key": key, "only_records": only_records},
    )
    connection.execute(
        f"CREATE TABLE {_STAGED}.decision_changes AS {load_sql('analytics/decision_changes')}",
        {"only_run": run_id},
    )
    # Their rows are copied in the order the queries give them.
    connection.execute("SET preserve_insertion_order = true")
    for table, query in _SMALL_TABLES.items():
        connection.execute(f"CREATE TABLE {_STAGED}.{table} AS {load_sql(query)}")
    connection.execute(f"USE {_STAGED}")
    connection.execute("DETACH warehouse")


def _apply(
    connection: duckdb.DuckDBPyConnection, *, run_id: str | None, only_records: list[str]
) -> None:
    """The staged rows written into the attached `analytics` database: the records'
    rows replaced, the run's changes appended, the small tables and views replaced."""
    connection.execute(
        "DELETE FROM analytics.record_visibility "
        "WHERE record_id IN (SELECT unnest(CAST($ids AS VARCHAR[])))",
        {"ids": only_records},
    )
    connection.execute(
        f"INSERT INTO analytics.record_visibility SELECT * FROM {_STAGED}.record_visibility"
    )
    connection.execute(
        f"INSERT INTO analytics.decision_changes SELECT * FROM {_STAGED}.decision_changes"
    )
    for table in _SMALL_TABLES:
        connection.execute(
            f"CREATE OR REPLACE TABLE analytics.{table} AS SELECT * FROM {_STAGED}.{table}"
        )
    _finish(connection, run_id=run_id, incremental=True)


def _write_whole(
    connection: duckdb.DuckDBPyConnection, analytics: Path, *, key: str, run_id: str | None
) -> None:
    """Every table of the attached `analytics` database built from the warehouse."""
    visibility = load_sql("analytics/record_visibility")
    changes = load_sql("analytics/decision_changes")
    # Whose changes the live database may hold is the warehouse's say.
    previous_run = _previous_published_run(connection, run_id) if run_id else None
    reuse_changes = (
        run_id is not None
        and previous_run is not None
        and _patchable(connection, analytics, key=key, previous_run=previous_run)
        and _attach_live_changes(connection, analytics, changes, run_id)
    )
    connection.execute(
        # Not sorted: rows are read by query, never by position (a nightly
        # patch appends its rows anyway), and sorting 10 M rows costs ~6 s.
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
    for table, query in _SMALL_TABLES.items():
        connection.execute(f"CREATE OR REPLACE TABLE analytics.{table} AS {load_sql(query)}")
    _finish(connection, run_id=run_id, incremental=False)


def _finish(
    connection: duckdb.DuckDBPyConnection, *, run_id: str | None, incremental: bool
) -> None:
    """The views and `build_info` (which run's decisions the database holds)."""
    for view in load_sql("analytics/views").split(";"):
        if view.strip():
            connection.execute(view)
    connection.execute(
        "CREATE OR REPLACE TABLE analytics.build_info AS "
        "SELECT CAST($run_id AS VARCHAR) AS run_id, $incremental AS incremental",
        {"run_id": run_id, "incremental": incremental},
    )


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
    """`decision_changes` of the new database: the attached live one's rows (in no
    particular order, as a whole build writes them)."""
    try:
        connection.execute(
            f"CREATE TABLE analytics.decision_changes AS SELECT * FROM {_LIVE}.decision_changes"
        )
    finally:
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
