"""Decision history: which records changed visibility or reasons, run after run.

Kept as slowly changing periods (`decision_history`) plus a per-run change list
(`decision_changes`), both written in the same transaction that marks the run
published, so the history never mentions a run whose feed did not go live.
"""

from __future__ import annotations

import duckdb

from flows.common.sql import load_sql, load_statements
from flows.common.warehouse import first_row


def record_history(
    connection: duckdb.DuckDBPyConnection, *, run_id: str, only_records: list[str] | None
) -> dict[str, int]:
    """Compare `decisions` with the open periods; close and open periods; count by direction.

    `only_records`: the records this run decided anew (None: all). Must
    run inside the caller's transaction.
    """
    row = first_row(connection, load_sql("history/next_run_seq"))
    run_seq = int(row[0]) if row else 0
    connection.execute(
        load_sql("history/changes_against_open"),
        {"run_id": run_id, "only_records": only_records},
    )
    parameters = {"run_id": run_id, "run_seq": run_seq}
    connection.execute(load_sql("history/close_changed_periods"), parameters)
    connection.execute(load_sql("history/open_new_periods"), parameters)
    connection.execute(load_sql("history/set_run_seq"), parameters)
    counts = connection.execute(
        load_sql("history/changes_by_direction"), {"run_id": run_id}
    ).fetchall()
    return {str(direction): int(count) for direction, count in counts}


def undo_run(connection: duckdb.DuckDBPyConnection, *, run_id: str) -> None:
    """Take back `record_history` for a run whose feed never went live.

    Must run inside the caller's transaction.
    """
    for statement in load_statements("history/undo_run"):
        connection.execute(statement, {"run_id": run_id})
