"""A full run reuses the live analysts' database's change list, and builds what a whole
build would.

On a full run every record is decided anew, so `record_visibility` is built
whole; the changes of earlier runs, though, are already in the live database
when the previous published run built it. They are read from there (in their
order) instead of joining and sorting the warehouse's whole history again. The
database must be the same, row for row, as one built whole from the warehouse.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.publish import analytics
from tests.inbox_builder import melior_row, t4_row, write_delivery
from tests.test_nightly import Job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1, DAY_2 = date(2026, 11, 23), date(2026, 11, 24)
PATIENTS = ["191212121212", "194107086995", "198112189876", "200002292381"]


def _inbox(inbox: Path) -> None:
    write_delivery(
        inbox,
        "melior",
        DAY_1,
        [melior_row(f"D-{n}", Personnummer=patient) for n, patient in enumerate(PATIENTS)],
    )
    write_delivery(
        inbox,
        "t4",
        DAY_1,
        [t4_row(f"T-{n}", patient_pnr=patient) for n, patient in enumerate(PATIENTS)],
    )
    write_delivery(
        inbox, "melior", DAY_2, [melior_row("D-1", 2, Personnummer=PATIENTS[1], Status="MAKULERAD")]
    )


def _changed_rules(folder: Path) -> Path:
    """The region's rules under another version: the next run decides everything."""
    from transforms.rules import default_rules_path

    rules = folder / "rules.toml"
    rules.write_text(
        default_rules_path()
        .read_text(encoding="utf-8")
        .replace('version = "2026.1"', 'version = "2026.2"'),
        encoding="utf-8",
    )
    return rules


def _latest_run(job: Job) -> str:
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        rows = connection.execute("SELECT max_by(run_id, run_seq) FROM runs").fetchall()
    return str(rows[0][0])


def _tables(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows in stored order (`runs` without its timestamps)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
            ).fetchall()
        ]
        return {
            name: connection.execute(
                f"SELECT * EXCLUDE (started_at, ended_at) FROM {name}"
                if name == "runs"
                else f"SELECT * FROM {name}"
            ).fetchall()
            for name in names
        }


def _whole_build(job: Job, folder: Path) -> Path:
    """The analysts' database built whole from the job's warehouse (no live one beside it)."""
    whole = folder / "whole" / "analytics.duckdb"
    built = analytics.build(job.warehouse, whole, run_id=_latest_run(job))
    analytics.install(built, whole)
    return whole


@pytest.fixture
def reused(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the builds that read the live database's change list."""
    calls: list[int] = []
    copy = analytics._copy_live_changes

    def counting(connection: duckdb.DuckDBPyConnection) -> None:
        calls.append(1)
        copy(connection)

    monkeypatch.setattr(analytics, "_copy_live_changes", counting)
    return calls


def test_a_full_run_reuses_the_live_change_list_and_equals_a_whole_build(
    tmp_path: Path, reused: list[int]
) -> None:
    job = Job(tmp_path / "job")
    _inbox(job.inbox)
    assert job.run(DAY_1) == 0

    assert job.run(DAY_2, "--rules", str(_changed_rules(tmp_path))) == 0

    assert reused == [1]
    assert _tables(job.analytics) == _tables(_whole_build(job, tmp_path))


def test_a_live_change_list_that_lost_rows_is_not_reused(tmp_path: Path, reused: list[int]) -> None:
    job = Job(tmp_path / "job")
    _inbox(job.inbox)
    assert job.run(DAY_1) == 0
    with duckdb.connect(str(job.analytics)) as connection:
        connection.execute("DELETE FROM decision_changes WHERE record_id = 'melior:D-0'")

    assert job.run(DAY_2, "--rules", str(_changed_rules(tmp_path))) == 0

    assert reused == []
    assert _tables(job.analytics) == _tables(_whole_build(job, tmp_path))
