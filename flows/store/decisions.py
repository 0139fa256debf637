"""The warehouse's `decisions`: the latest decision of every record, each id once."""

from __future__ import annotations

from pathlib import Path

from flows.common.errors import RunFailed
from flows.common.faults import checkpoint
from flows.common.sql import load_sql
from flows.common.warehouse import connect, first_row
from flows.store.state import DIRTY_RECORDS_FILE


def store_decisions(warehouse: Path, work_dir: Path) -> None:
    """Replace the decisions this run made, in one transaction; every record id once.

    A full run replaces all; an incremental one the records it decided anew, and
    checks only those ids for a second row (the rest were each held once).
    """
    decisions_glob = str(work_dir / "decisions" / "*.parquet")
    has_files = any((work_dir / "decisions").glob("*.parquet"))
    dirty_path = work_dir / DIRTY_RECORDS_FILE
    with connect(warehouse) as connection:
        connection.execute("BEGIN TRANSACTION")
        try:
            incremental = dirty_path.exists()
            if incremental:
                connection.execute(load_sql("decisions/delete_records"), {"path": str(dirty_path)})
            else:
                connection.execute(load_sql("decisions/delete_all"))
            if has_files:
                connection.execute(
                    load_sql("decisions/insert_from_files"), {"files": decisions_glob}
                )
            if not incremental:
                duplicated = first_row(connection, load_sql("decisions/duplicated_ids"))
            elif has_files:
                duplicated = first_row(
                    connection,
                    load_sql("decisions/duplicated_ids_among"),
                    {"files": decisions_glob},
                )
            else:
                duplicated = None  # nothing was added
            if duplicated and duplicated[0]:
                raise RunFailed(f"validation failed: {duplicated[0]} record ids decided twice")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    checkpoint("store_decisions")


def count_reasons(warehouse: Path) -> dict[str, int]:
    """Records per reason over all partitions, reused ones included."""
    with connect(warehouse) as connection:
        rows = connection.execute(load_sql("decisions/count_by_reason")).fetchall()
    return {str(reason): int(count) for reason, count in rows}
