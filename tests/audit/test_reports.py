"""What operators read: `jvn stats` and `jvn explain` on a real warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli import main
from tests.inbox_builder import melior_row, t4_row, write_delivery
from tests.test_nightly import PATIENT, Job

OTHER_PATIENT = "194107086995"  # another patient partition than PATIENT's

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]


@pytest.fixture
def job(tmp_path: Path) -> Job:
    job = Job(tmp_path)
    write_delivery(
        job.inbox,
        "melior",
        date(2026, 11, 24),
        [
            melior_row("D-1"),
            melior_row(
                "D-2",
                HSAid="SE2321000131-E000000011001",
                Enhetsnamn="BUP Göteborg",
                Sokord="Tidiga hypoteser",
            ),
            # Quarantined with its id readable: an invalid record, its type unknown.
            melior_row("D-3", Dokumenttid="igår"),
            melior_row("D-4", Personnummer=OTHER_PATIENT),
        ],
    )
    write_delivery(job.inbox, "t4", date(2026, 11, 24), [t4_row("T-1")])
    assert job.run() == 0
    return job


def test_stats_counts_the_latest_decisions_by_system(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert main(["stats", "--warehouse", str(job.warehouse)]) == 0

    out = capsys.readouterr().out
    assert "melior" in out and "t4" in out
    assert "50.0" in out and "100.0" in out


def test_stats_by_reason_lists_each_reason(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    assert main(["stats", "--warehouse", str(job.warehouse), "--by", "reason"]) == 0

    out = capsys.readouterr().out
    assert "exempt_unit" in out and "shown" in out


def test_explain_shows_every_rules_verdict_and_the_values_used(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert main(["explain", "melior:D-2", "--warehouse", str(job.warehouse)]) == 0

    out = capsys.readouterr().out
    assert "reason: exempt_unit" in out
    assert "exempt_unit                 APPLIES (hides)" in out
    assert "exempt_term                 APPLIES (hides)" in out
    assert "retracted                   does not apply" in out
    assert "SE2321000131-E000000011001" in out
    assert "history (published runs)" in out


def test_explain_never_prints_personnummer_or_text(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert main(["explain", "melior:D-2", "--warehouse", str(job.warehouse)]) == 0

    out = capsys.readouterr().out
    assert PATIENT not in out
    assert "Patienten mår bra" not in out
    assert "tidiga hypoteser" not in out.lower()


def test_explain_of_an_unknown_record_says_so(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "melior:NOPE", "--warehouse", str(job.warehouse)]) == 1
    assert "no such record" in capsys.readouterr().out


def cells(line: str) -> list[str]:
    """The cells of one row of a printed table."""
    return [cell.strip(" │") for cell in line.split("┆")]


def stats_output(job: Job, capsys: pytest.CaptureFixture[str], *extra: str) -> list[str]:
    capsys.readouterr()
    assert main(["stats", "--warehouse", str(job.warehouse), *extra]) == 0
    return capsys.readouterr().out.splitlines()


def test_stats_by_unit_names_each_unit_beside_its_hsa_id(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = stats_output(job, capsys, "--by", "unit")

    bup = [line for line in lines if "SE2321000131-E000000011001" in line]
    assert len(bup) == 1 and "BUP Göteborg" in bup[0]


def test_stats_by_type_labels_the_records_whose_type_could_not_be_read(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = stats_output(job, capsys, "--by", "type")

    assert not any("null" in line for line in lines)
    (unreadable,) = [line for line in lines if "(unreadable)" in line]
    assert cells(unreadable) == ["(unreadable)", "1", "0", "0.0"]


@pytest.mark.parametrize("by", ["system", "reason", "type", "unit"])
def test_every_stats_view_ends_with_a_total_of_all_records(
    job: Job, capsys: pytest.CaptureFixture[str], by: str
) -> None:
    lines = stats_output(job, capsys, "--by", by)

    (total,) = [line for line in lines if "total" in line]
    assert cells(total)[0] == "total"
    assert cells(total)[-3:] == ["5", "3", "60.0"]


def test_stats_names_the_run_it_reports(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    (run_id,) = job_run_ids(job)

    lines = stats_output(job, capsys)

    assert lines[0].startswith(f"run {run_id}  as of 2026-11-25")
    assert "live" in lines[0]


def job_run_ids(job: Job) -> list[str]:
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        rows = connection.execute(
            "SELECT run_id FROM runs WHERE status = 'published' ORDER BY run_seq"
        ).fetchall()
    return [str(run_id) for (run_id,) in rows]


def explain_output(job: Job, capsys: pytest.CaptureFixture[str], record_id: str) -> str:
    capsys.readouterr()
    assert main(["explain", record_id, "--warehouse", str(job.warehouse)]) == 0
    return capsys.readouterr().out


def test_explain_history_names_each_run_by_id_and_date(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_id,) = job_run_ids(job)

    out = explain_output(job, capsys, "melior:D-2")

    assert f"from run {run_id} (as of 2026-11-25) until now" in out
    assert "run for" not in out


@pytest.mark.parametrize("record_id", ["melior:D-1", "melior:D-4"])
def test_explain_prints_the_stored_partition(
    job: Job, capsys: pytest.CaptureFixture[str], record_id: str
) -> None:
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        (stored,) = connection.execute(
            "SELECT partition_key FROM decisions WHERE record_id = $id", {"id": record_id}
        ).fetchone() or (None,)

    out = explain_output(job, capsys, record_id)

    assert f"    {'partition_key':<28}{stored}\n" in out


def test_explain_of_an_invalid_record_says_which_check_failed(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain_output(job, capsys, "melior:D-3")

    assert "reason: invalid_record" in out
    assert "failed check: unreadable documentation time" in out
    assert "igår" not in out


def test_tables_printed_by_stats_and_diff_escape_control_characters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.audit import diff, reports

    assert diff.print_table is reports.print_table
    reports.print_table(pl.DataFrame({"care_unit_name": ["Enhet\x1b[2J\u202e"]}))

    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out
