"""A nightly run copies the live analysts' database ahead, on a thread, and builds from it.

An incremental build starts from a copy of the live database. The copy is
taken as soon as the run knows it is incremental, so it overlaps exporting and
deciding; the build then starts from it instead of copying. Whatever happens,
the result is the database a build that copied for itself gives, and no copy
is left behind beside the live database.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows import nightly
from flows.common.paths import analytics_building_path
from flows.publish import analytics
from tests.inbox_builder import melior_row, write_delivery
from tests.publish.test_analytics_reuse import _latest_run
from tests.test_nightly import Job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1, DAY_2 = date(2026, 11, 23), date(2026, 11, 24)
PATIENTS = ["191212121212", "194107086995", "198112189876"]


def _two_nights(job: Job) -> None:
    write_delivery(
        job.inbox,
        "melior",
        DAY_1,
        [melior_row(f"D-{n}", Personnummer=patient) for n, patient in enumerate(PATIENTS)],
    )
    write_delivery(
        job.inbox,
        "melior",
        DAY_2,
        [melior_row("D-1", 2, Personnummer=PATIENTS[1], Status="MAKULERAD")],
    )


def _after_the_first_night(*jobs: Job) -> None:
    """Each job's inbox holds both nights, and the first is published."""
    for job in jobs:
        _two_nights(job)
        assert job.run(DAY_1) == 0


def _analysts_tables(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """What analysts read, row for row (run ids and times aside: the two jobs differ there)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        return {
            "record_visibility": connection.execute(
                "SELECT * EXCLUDE (run_id) FROM record_visibility ORDER BY record_id"
            ).fetchall(),
            "decision_changes": connection.execute(
                "SELECT * EXCLUDE (run_id) FROM decision_changes ORDER BY as_of, record_id"
            ).fetchall(),
            "build_info": connection.execute("SELECT incremental FROM build_info").fetchall(),
        }


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The copies made of analysts' databases (their targets), by anyone."""
    made: list[Path] = []
    copyfile = shutil.copyfile

    def counting(source: Any, target: Any, **options: Any) -> Any:
        if Path(source).suffix == ".duckdb":
            made.append(Path(target))
        return copyfile(source, target, **options)

    monkeypatch.setattr(shutil, "copyfile", counting)
    return made


def test_a_nightly_run_builds_from_the_copy_taken_ahead(
    tmp_path: Path, copies: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    job, copied_builds = Job(tmp_path / "job"), []
    _after_the_first_night(job)
    build = analytics.build

    def recording(*arguments: Any, **options: Any) -> Path:
        copied_builds.append(options.get("copied_ahead"))
        return build(*arguments, **options)

    monkeypatch.setattr(analytics, "build", recording)

    assert job.run(DAY_2) == 0

    building = analytics_building_path(job.analytics)
    assert copies == [building]
    assert copied_builds == [True]
    assert not building.exists()


def test_a_nightly_run_from_the_copy_equals_one_that_copies_in_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ahead, in_build = Job(tmp_path / "ahead"), Job(tmp_path / "in_build")
    _after_the_first_night(ahead, in_build)
    assert ahead.run(DAY_2) == 0
    monkeypatch.setattr(nightly.analytics, "LiveCopy", _NoCopy)

    assert in_build.run(DAY_2) == 0

    assert _analysts_tables(ahead.analytics) == _analysts_tables(in_build.analytics)
    assert _analysts_tables(ahead.analytics)["build_info"] == [(True,)]


class _NoCopy:
    """A LiveCopy that copies nothing: the build copies for itself, as before."""

    def __init__(self, analytics_path: Path) -> None:
        pass

    def ready(self) -> bool:
        return False

    def settle(self) -> None:
        pass


def test_a_copy_taken_ahead_is_never_built_on_by_a_whole_build(tmp_path: Path) -> None:
    job = Job(tmp_path / "job")
    _after_the_first_night(job)
    expected = _analysts_tables(job.analytics)
    run_id = _latest_run(job)
    assert analytics.LiveCopy(job.analytics).ready()

    built = analytics.build(job.warehouse, job.analytics, run_id=run_id, copied_ahead=True)

    assert built == analytics_building_path(job.analytics)
    assert _analysts_tables(built) == {**expected, "build_info": [(False,)]}


def test_a_copy_that_failed_leaves_the_build_to_copy_for_itself(tmp_path: Path) -> None:
    missing = tmp_path / "analytics.duckdb"
    copy = analytics.LiveCopy(missing)

    assert not copy.ready()
    copy.settle()
    assert not analytics_building_path(missing).exists()


def test_a_failed_nightly_run_leaves_no_copy_and_the_live_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copies: list[Path]
) -> None:
    job = Job(tmp_path / "job")
    _after_the_first_night(job)
    before = job.analytics.read_bytes()

    def failing(*arguments: Any, **options: Any) -> Any:
        raise RuntimeError("a partition could not be decided")

    monkeypatch.setattr(nightly, "decide_partitions", failing)

    assert job.run(DAY_2) == 1

    assert copies == [analytics_building_path(job.analytics)]
    assert not analytics_building_path(job.analytics).exists()
    assert job.analytics.read_bytes() == before


def test_a_retried_build_starts_again_from_the_live_database_not_the_half_built_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, reference = Job(tmp_path / "job"), Job(tmp_path / "reference")
    _after_the_first_night(job, reference)
    assert reference.run(DAY_2) == 0
    load_sql, failures = analytics.load_sql, []

    def failing_once(name: str) -> str:
        # After this run's rows went into the copy, before the build is complete.
        if name == "analytics/views" and not failures:
            failures.append(name)
            raise OSError("the disk was full for a moment")
        return load_sql(name)

    monkeypatch.setattr(analytics, "load_sql", failing_once)

    assert job.run(DAY_2) == 0

    assert failures == ["analytics/views"]
    assert _analysts_tables(job.analytics) == _analysts_tables(reference.analytics)
