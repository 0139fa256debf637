"""A run that cannot finish publishes nothing: exit 1, the previous feed stays live."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest

from flows.common.feed_folder import live_snapshot
from tests.inbox_builder import melior_row, write_delivery
from tests.test_nightly import Job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1, DAY_2 = date(2026, 11, 24), date(2026, 11, 25)


def test_failed_validation_publishes_nothing_and_exits_1(
    job: Job, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    assert job.run(DAY_1) == 0
    live_before = live_snapshot(job.feed)
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-2")])

    import flows.decide.partition

    real_decide = flows.decide.partition.decide

    def inconsistent_decide(*args: object, **kwargs: object) -> pl.LazyFrame:
        # A decision that says shown-and-visible but names a hiding reason.
        return real_decide(*args, **kwargs).with_columns(reason=pl.lit("exempt_unit"))  # type: ignore[arg-type]

    monkeypatch.setattr(flows.decide.partition, "decide", inconsistent_decide)

    assert job.run(DAY_2) == 1

    assert live_snapshot(job.feed) == live_before
    error = capsys.readouterr().err
    assert "jvn: run failed, nothing published" in error
    assert "failed validation" in error
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        status, message = connection.execute(
            "SELECT status, message FROM runs ORDER BY started_at DESC LIMIT 1"
        ).fetchone() or ("", "")
    assert status == "failed"
    assert "visible_iff_reason_shown" in message


def test_after_a_failed_run_the_next_run_publishes_the_full_result(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    assert job.run(DAY_1) == 0
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-2")])
    import flows.nightly

    monkeypatch.setattr(flows.nightly, "publish", _broken_publish)
    assert job.run(DAY_2) == 1
    monkeypatch.undo()
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", "test-only-pseudonym-key-0123456789")

    assert job.run(DAY_2) == 0

    assert job.feed_rows()["record_id"].to_list() == ["melior:D-1", "melior:D-2"]


def _broken_publish(*args: object, **kwargs: object) -> str:
    raise OSError("disk full")


@pytest.fixture
def job(tmp_path: object) -> Job:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    return Job(tmp_path)


class _Killed(BaseException):
    """Stands in for SIGKILL in-process: no `except Exception` handler runs."""


def _killed_go_live(*args: object, **kwargs: object) -> None:
    raise _Killed


def test_run_killed_after_recording_but_before_going_live_is_taken_back(
    job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    assert job.run(DAY_1) == 0
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-2")])
    import flows.nightly

    monkeypatch.setattr(flows.nightly, "go_live", _killed_go_live)
    with pytest.raises(_Killed):
        job.run(DAY_2)
    monkeypatch.undo()
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", "test-only-pseudonym-key-0123456789")
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        killed_run, status = connection.execute(
            "SELECT run_id, status FROM runs ORDER BY started_at DESC LIMIT 1"
        ).fetchall()[0]
    assert status == "published", "precondition: the killed run had recorded itself"

    assert job.run(DAY_2) == 0

    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        status, message = connection.execute(
            "SELECT status, message FROM runs WHERE run_id = $run", {"run": killed_run}
        ).fetchall()[0]
        killed_changes = connection.execute(
            "SELECT count(*) FROM decision_changes WHERE run_id = $run", {"run": killed_run}
        ).fetchall()[0][0]
        new_shown = connection.execute(
            "SELECT record_id FROM decision_changes WHERE direction = 'new_shown' "
            "ORDER BY record_id"
        ).fetchall()
    assert status == "failed" and "before its feed went live" in message
    assert killed_changes == 0
    assert new_shown == [("melior:D-1",), ("melior:D-2",)]
