"""What operators read: `jvn stats` and `jvn explain` on a real warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flows.cli import main
from tests.inbox_builder import melior_row, t4_row, write_delivery
from tests.test_nightly import PATIENT, Job

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
