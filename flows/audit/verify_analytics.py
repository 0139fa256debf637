"""`jvn verify --analytics`: the analysts' database against the warehouse it was built from.

A nightly run patches the analysts' database in place rather than rebuilding
it (flows/publish/analytics.py), so what analysts count is only as right as
every patch before it. This layer says whether it still is: the database holds
the latest published run's build, no column of personal data, one row per
decided record with exactly the columns the warehouse's decisions give, and
exactly the warehouse's changes. Both sides are computed by the queries that
build the database (`sql/analytics/`), read against the warehouse. Rows are
matched by their key (a record; a run and a record) and compared whole: at
1 M records about a second, where a set difference over every column took five.

Patient keys are recomputed when the pseudonym key is at hand; without it
they are checked for what can be seen without it (one patient, one key).
Like every layer, it reports kinds and counts, never a value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import duckdb

from flows.audit.verify_access import VerifyError, attach_read_only
from flows.common.sql import load_sql, load_statements

PERSONAL_COLUMNS = frozenset({"patient_id", "title", "content", "keyword", "birth_date"})
"""Columns of the warehouse that hold personnummer or journal text: never in the
analysts' database under these names."""

ANALYTICS_SCHEMA = "a"
"""The name the analysts' database is attached under in verify's session."""


class Findings(Protocol):
    """Where the layer reports (flows/audit/verify.py `VerifyReport`)."""

    checked: list[str]
    notes: list[str]

    def add(self, kind: str, count: int = 1, *, file: str | None = None) -> None: ...


def attach_analytics(connection: duckdb.DuckDBPyConnection, analytics: Path) -> None:
    """The analysts' database attached read-only as `a`, or a VerifyError saying why not."""
    if not analytics.is_file():
        raise VerifyError(f"no analysts' database at {analytics}: nothing to verify")
    attach_read_only(
        connection,
        analytics,
        ANALYTICS_SCHEMA,
        what=f"the analysts' database {analytics}",
        writer="(a run committing, or an analyst's read-write session); verify when it is free",
    )


def check_analytics(
    connection: duckdb.DuckDBPyConnection,
    *,
    published: str | None,
    pseudonym_key: str | None,
    report: Findings,
) -> None:
    """Layer 4: the attached analysts' database against the attached warehouse (`w`)."""
    personal = _count(
        connection,
        "SELECT count(*) FROM duckdb_columns() "
        "WHERE database_name = $db AND column_name IN (SELECT unnest($names))",
        {"db": ANALYTICS_SCHEMA, "names": sorted(PERSONAL_COLUMNS)},
    )
    report.add("analytics_holds_a_personal_data_column", personal)
    missing_tables = [
        t
        for t in ("build_info", "record_visibility", "decision_changes")
        if not _has_table(connection, t)
    ]
    report.add("analytics_table_missing", len(missing_tables))
    if missing_tables:
        return
    if published is None:
        report.notes.append("no run has published: the analysts' database was not compared")
        return
    built_by = connection.execute(f"SELECT run_id FROM {ANALYTICS_SCHEMA}.build_info").fetchall()
    if [row[0] for row in built_by] != [published]:
        report.add("analytics_not_from_latest_published_run")
        report.notes.append(
            f"the analysts' database does not hold run {published}'s build (the latest "
            "published run): its rows were not compared; the next run rebuilds it"
        )
        return
    started = connection.execute(load_sql("verify/run_started_at"), {"run": published}).fetchone()
    foreign = connection.execute(
        load_sql("verify/decisions_of_other_runs"),
        {"run": published, "t": started[0] if started else None},
    ).fetchall()[0][0]
    if foreign:
        report.notes.append(
            "the warehouse's decisions include a run that did not publish: the analysts' "
            "records were not compared with them"
        )
        return
    for statement in load_statements("verify/analytics_sources"):
        connection.execute(statement)
    _check_records(connection, pseudonym_key, report)
    _check_changes(connection, report)
    keys = "recomputed" if pseudonym_key is not None else "checked for consistency only"
    report.checked.append(
        f"the analysts' database against the warehouse's decisions and changes of run "
        f"{published} (patient keys {keys})"
    )


def _check_records(
    connection: duckdb.DuckDBPyConnection, pseudonym_key: str | None, report: Findings
) -> None:
    # Without the key the keys are not compared: any key fills the column.
    parameters: dict[str, object] = {
        "key": pseudonym_key or "no key: keys are not compared",
        "only_records": None,
    }
    if not _expected(connection, "record_visibility", parameters):
        report.add("analytics_columns_differ_from_decisions")
        return
    counts = connection.execute(load_sql("verify/analytics_records")).fetchall()[0]
    report.add("analytics_record_not_in_decisions", int(counts[0]))
    report.add("decision_missing_from_analytics", int(counts[1]))
    report.add("analytics_record_differs_from_decision", int(counts[2]))
    report.add("analytics_record_id_repeated", int(counts[3]))
    if pseudonym_key is not None:
        report.add(
            "analytics_patient_key_differs",
            _count(connection, load_sql("verify/analytics_patient_keys")),
        )
    else:
        report.add(
            "analytics_patient_keys_inconsistent",
            _count(connection, load_sql("verify/analytics_patient_key_consistency")),
        )
        report.notes.append(
            "no pseudonym key set (JVN_PSEUDONYM_KEY): the analysts' patient keys were "
            "checked for consistency, not recomputed"
        )


def _check_changes(connection: duckdb.DuckDBPyConnection, report: Findings) -> None:
    if not _expected(connection, "decision_changes", {"only_run": None}):
        report.add("analytics_columns_differ_from_changes")
        return
    counts = connection.execute(load_sql("verify/analytics_changes")).fetchall()[0]
    report.add("analytics_change_not_in_warehouse", int(counts[0]))
    report.add("warehouse_change_missing_from_analytics", int(counts[1]))
    report.add("analytics_change_differs_from_warehouse", int(counts[2]))
    report.add("change_repeated", int(counts[3]))


def _has_table(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        _count(
            connection,
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = $db AND table_name = $t",
            {"db": ANALYTICS_SCHEMA, "t": table},
        )
    )


def _expected(
    connection: duckdb.DuckDBPyConnection, table: str, parameters: dict[str, object]
) -> bool:
    """`expected_<table>`: what the analysts' build query for `table` gives from the
    warehouse; whether the analysts' table has its columns (names, types, order)."""
    expected = f"expected_{table}"
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {expected} AS {load_sql(f'analytics/{table}')}",
        parameters,
    )
    return _same_columns(connection, table, expected)


def _same_columns(connection: duckdb.DuckDBPyConnection, table: str, expected: str) -> bool:
    """The analysts' table has the expected table's columns, names and types, in order."""
    query = (
        "SELECT list(column_name || ' ' || data_type ORDER BY column_index) "
        "FROM duckdb_columns() WHERE database_name = $db AND table_name = $t"
    )
    found = connection.execute(query, {"db": ANALYTICS_SCHEMA, "t": table}).fetchone()
    wanted = connection.execute(query, {"db": "temp", "t": expected}).fetchone()
    return found is not None and wanted is not None and found[0] == wanted[0]


def _count(
    connection: duckdb.DuckDBPyConnection, query: str, parameters: dict[str, object] | None = None
) -> int:
    row = connection.execute(query, parameters or {}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
