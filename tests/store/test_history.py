"""The decision history: one period per stretch of unchanged visibility and reasons.

`flows/store/history.py` compares a run's stored decisions with the open
periods: a record that changed gets its open period closed at this run and a
new one opened; a record that appeared gets only a new one; an unchanged record
keeps its period open. Written against the real warehouse schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from flows.common.warehouse import connect
from flows.store.decisions import store_decisions
from flows.store.history import record_history
from tests.decide_fixtures import default_rules, record, run_decide
from transforms.schemas import STORED_DECISION_COLUMNS


def _run(
    warehouse: Path, root: Path, run_id: str, rows: Iterable[dict[str, Any]]
) -> dict[str, int]:
    """Store `rows`' decisions as run `run_id` and extend the history; its change counts."""
    work = root / run_id
    (work / "decisions").mkdir(parents=True)
    (
        run_decide(list(rows), rules=default_rules(), as_of=date(2024, 6, 1))
        .with_columns(run_id=pl.lit(run_id), partition_key=pl.lit(0, dtype=pl.Int32))
        .select(STORED_DECISION_COLUMNS)
        .write_parquet(work / "decisions" / "part-0000.parquet")
    )
    store_decisions(warehouse, work)
    with connect(warehouse) as connection:
        connection.execute("BEGIN TRANSACTION")
        changes = record_history(connection, run_id=run_id, only_records=None)
        connection.execute("COMMIT")
    return changes


def _periods(warehouse: Path) -> list[tuple[str, bool, str, str | None]]:
    """(record, visible, from_run, to_run) of every period, in order."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "SELECT record_id, visible, from_run, to_run FROM decision_history "
            "ORDER BY record_id, from_seq"
        ).fetchall()
    return [(str(r), bool(v), str(f), None if t is None else str(t)) for r, v, f, t in rows]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with connect(path):
        pass
    return path


def test_first_run_opens_one_period_per_record(warehouse: Path, tmp_path: Path) -> None:
    changes = _run(
        warehouse,
        tmp_path,
        "first",
        [record(record_id="melior:A"), record(record_id="melior:B", retracted=True)],
    )
    assert changes == {"new_hidden": 1, "new_shown": 1}
    assert _periods(warehouse) == [
        ("melior:A", True, "first", None),
        ("melior:B", False, "first", None),
    ]


def test_a_record_that_changes_closes_its_period_and_opens_another(
    warehouse: Path, tmp_path: Path
) -> None:
    _run(warehouse, tmp_path, "first", [record(record_id="melior:A"), record(record_id="melior:B")])
    changes = _run(
        warehouse,
        tmp_path,
        "second",
        [record(record_id="melior:A", retracted=True), record(record_id="melior:B")],
    )
    assert changes == {"hidden": 1}
    assert _periods(warehouse) == [
        ("melior:A", True, "first", "second"),
        ("melior:A", False, "second", None),
        ("melior:B", True, "first", None),
    ]


def test_a_record_that_appears_later_leaves_the_others_open(
    warehouse: Path, tmp_path: Path
) -> None:
    _run(warehouse, tmp_path, "first", [record(record_id="melior:A")])
    changes = _run(
        warehouse, tmp_path, "second", [record(record_id="melior:A"), record(record_id="melior:C")]
    )
    assert changes == {"new_shown": 1}
    assert _periods(warehouse) == [
        ("melior:A", True, "first", None),
        ("melior:C", True, "second", None),
    ]


def test_a_record_that_disappears_has_its_period_closed(warehouse: Path, tmp_path: Path) -> None:
    _run(warehouse, tmp_path, "first", [record(record_id="melior:A"), record(record_id="melior:B")])
    changes = _run(warehouse, tmp_path, "second", [record(record_id="melior:A")])
    assert changes == {"gone": 1}
    assert _periods(warehouse) == [
        ("melior:A", True, "first", None),
        ("melior:B", True, "first", "second"),
    ]
