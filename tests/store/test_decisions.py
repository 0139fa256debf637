"""Storing a run's decisions keeps every record id once, or stores nothing.

`flows/store/decisions.py`: a full run replaces the table and counts every
id; an incremental run replaces the records it decided anew and counts only
those ids, whose old decisions it must have removed. Either way a second row
for a record fails the run, and the transaction leaves the previous decisions
as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.common.errors import RunFailed
from flows.common.warehouse import connect
from flows.store.decisions import store_decisions
from flows.store.state import DIRTY_RECORDS_FILE
from tests.decide_fixtures import default_rules, record, run_decide
from transforms.schemas import STORED_DECISION_COLUMNS


def _decisions(record_ids: Iterable[str], run_id: str) -> pl.DataFrame:
    """Decided rows of the warehouse's shape for these record ids."""
    rows = [record(record_id=record_id) for record_id in record_ids]
    return (
        run_decide(rows, rules=default_rules(), as_of=date(2024, 6, 1))
        .with_columns(run_id=pl.lit(run_id), partition_key=pl.lit(0, dtype=pl.Int32))
        .select(STORED_DECISION_COLUMNS)
    )


def _work_dir(root: Path, parts: list[list[str]], *, dirty: list[str] | None, run_id: str) -> Path:
    work = root / run_id
    (work / "decisions").mkdir(parents=True)
    for number, record_ids in enumerate(parts):
        _decisions(record_ids, run_id).write_parquet(
            work / "decisions" / f"part-{number:04d}.parquet"
        )
    if dirty is not None:
        pl.DataFrame({"record_id": dirty}).write_parquet(work / DIRTY_RECORDS_FILE)
    return work


def _stored(warehouse: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "SELECT record_id, run_id FROM decisions ORDER BY record_id"
        ).fetchall()
    return [(str(record_id), str(run_id)) for record_id, run_id in rows]


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A warehouse whose decisions hold melior:A and melior:B from a full run."""
    path = tmp_path / "warehouse.duckdb"
    with connect(path):
        pass
    full = _work_dir(tmp_path, [["melior:A"], ["melior:B"]], dirty=None, run_id="full")
    store_decisions(path, full)
    return path


def test_a_full_run_replaces_every_decision(warehouse: Path, tmp_path: Path) -> None:
    work = _work_dir(tmp_path, [["melior:A"], ["melior:C"]], dirty=None, run_id="second")

    store_decisions(warehouse, work)

    assert _stored(warehouse) == [("melior:A", "second"), ("melior:C", "second")]


def test_a_full_run_that_decides_a_record_twice_fails_and_keeps_the_old_decisions(
    warehouse: Path, tmp_path: Path
) -> None:
    work = _work_dir(tmp_path, [["melior:A"], ["melior:A"]], dirty=None, run_id="second")

    with pytest.raises(RunFailed, match="1 record ids decided twice"):
        store_decisions(warehouse, work)

    assert _stored(warehouse) == [("melior:A", "full"), ("melior:B", "full")]


def test_an_incremental_run_replaces_only_the_records_it_decided_anew(
    warehouse: Path, tmp_path: Path
) -> None:
    work = _work_dir(tmp_path, [["melior:A", "melior:C"]], dirty=["melior:A"], run_id="nightly")

    store_decisions(warehouse, work)

    assert _stored(warehouse) == [
        ("melior:A", "nightly"),
        ("melior:B", "full"),
        ("melior:C", "nightly"),
    ]


def test_an_incremental_run_that_decides_a_record_twice_fails(
    warehouse: Path, tmp_path: Path
) -> None:
    work = _work_dir(tmp_path, [["melior:A"], ["melior:A"]], dirty=["melior:A"], run_id="nightly")

    with pytest.raises(RunFailed, match="1 record ids decided twice"):
        store_decisions(warehouse, work)

    assert _stored(warehouse) == [("melior:A", "full"), ("melior:B", "full")]


def test_an_incremental_run_that_decides_a_record_it_did_not_remove_fails(
    warehouse: Path, tmp_path: Path
) -> None:
    # melior:B is decided again but is not among the records the run took out.
    work = _work_dir(tmp_path, [["melior:A", "melior:B"]], dirty=["melior:A"], run_id="nightly")

    with pytest.raises(RunFailed, match="1 record ids decided twice"):
        store_decisions(warehouse, work)

    assert _stored(warehouse) == [("melior:A", "full"), ("melior:B", "full")]


def test_an_incremental_run_that_decided_nothing_keeps_the_rest(
    warehouse: Path, tmp_path: Path
) -> None:
    work = _work_dir(tmp_path, [], dirty=["melior:A"], run_id="nightly")

    store_decisions(warehouse, work)

    assert _stored(warehouse) == [("melior:B", "full")]
