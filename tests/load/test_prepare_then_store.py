"""Preparing deliveries side by side, then storing them in order, judges them as loading
one by one does (flows/load/prepare.py, flows/load/ingest.py store_delivery).

Deliveries are prepared on workers against a view of the warehouse taken before
loading started; storing asks the warehouse again, so a delivery that repeats
bytes loaded earlier in the same run is still recorded as their duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.common.warehouse import connect
from flows.load.inbox import DeliveryFolder
from flows.load.ingest import known_deliveries_in, load_delivery, store_delivery
from flows.load.prepare import prepare_delivery
from tests.inbox_builder import t4_row, write_delivery

DAY_1 = date(2026, 11, 24)
DAY_2 = date(2026, 11, 25)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(tmp_path / "data" / "warehouse.duckdb") as connection:
        yield connection


def _same_bytes_on_two_dates(inbox: Path) -> list[DeliveryFolder]:
    """The same t4 rows delivered for two business dates: the second is a duplicate."""
    rows = [t4_row("T-1"), t4_row("T-2")]
    return [
        DeliveryFolder("t4", day, write_delivery(inbox, "t4", day, rows)) for day in (DAY_1, DAY_2)
    ]


def _statuses(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [
        (str(folder), str(status))
        for folder, status in connection.execute(
            "SELECT folder, status FROM deliveries ORDER BY folder"
        ).fetchall()
    ]


def test_a_repeat_prepared_beside_its_original_is_stored_as_a_duplicate(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    first, second = _same_bytes_on_two_dates(tmp_path / "inbox")
    known = known_deliveries_in(warehouse)
    prepared = [
        prepare_delivery(delivery, tmp_path / "work", known.sha256["t4"])
        for delivery in (first, second)
    ]
    assert [p.verdict for p in prepared] == ["prepared", "prepared"]

    outcomes = [
        store_delivery(warehouse, delivery, ready, run_id="run", work_dir=tmp_path / "work")
        for delivery, ready in zip((first, second), prepared, strict=True)
    ]

    assert [outcome.status for outcome in outcomes] == ["loaded", "duplicate"]
    assert _statuses(warehouse) == [("t4/2026-11-24", "loaded"), ("t4/2026-11-25", "duplicate")]
    assert warehouse.execute("SELECT count(*) FROM record_versions").fetchone() == (2,)


def test_preparing_then_storing_records_what_loading_one_by_one_records(tmp_path: Path) -> None:
    one_by_one, side_by_side = tmp_path / "one", tmp_path / "two"
    for root in (one_by_one, side_by_side):
        deliveries = _same_bytes_on_two_dates(root / "inbox")
        with connect(root / "warehouse.duckdb") as connection:
            if root == one_by_one:
                for delivery in deliveries:
                    load_delivery(connection, delivery, run_id="run", work_dir=root / "work")
            else:
                known = known_deliveries_in(connection)
                ready = [prepare_delivery(d, root / "work", known.sha256["t4"]) for d in deliveries]
                for delivery, prepared in zip(deliveries, ready, strict=True):
                    store_delivery(
                        connection, delivery, prepared, run_id="run", work_dir=root / "work"
                    )

    def recorded(root: Path) -> list[tuple[object, ...]]:
        with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as connection:
            return connection.execute(
                "SELECT * EXCLUDE (judged_at) FROM deliveries ORDER BY delivery_id"
            ).fetchall()

    assert recorded(side_by_side) == recorded(one_by_one)


def test_bytes_loaded_before_are_not_parsed_again(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    first, _ = _same_bytes_on_two_dates(tmp_path / "inbox")
    load_delivery(warehouse, first, run_id="run-1", work_dir=tmp_path / "work")

    again = prepare_delivery(first, tmp_path / "work", known_deliveries_in(warehouse).sha256["t4"])

    assert again.verdict == "known"
    assert again.work_folder is None
    outcome = store_delivery(warehouse, first, again, run_id="run-2", work_dir=tmp_path / "work")
    assert outcome.status == "already_loaded"


def test_storing_removes_the_deliverys_work_folder(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    first, _ = _same_bytes_on_two_dates(tmp_path / "inbox")
    prepared = prepare_delivery(first, tmp_path / "work")
    assert prepared.work_folder is not None and Path(prepared.work_folder).is_dir()

    store_delivery(warehouse, first, prepared, run_id="run", work_dir=tmp_path / "work")

    assert not Path(prepared.work_folder).exists()
