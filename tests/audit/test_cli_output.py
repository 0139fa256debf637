"""How the `jvn` commands print: counts in the right number, a closed pipe ends quietly.

One real run on one record (module fixture): a unit caught by its name only,
so that the run summary, `jvn diff` and `jvn stats` each have a count of one.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from flows.cli import main
from flows.common.words import plural
from tests.audit.test_rule_change_scenarios import TEST_KEY, Job
from tests.inbox_builder import melior_row, write_delivery

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

DAY = date(2026, 11, 25)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class OneRecord:
    job: Job
    summary: str


@pytest.fixture(scope="module")
def one_record(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[OneRecord]:
    job = Job(tmp_path_factory.mktemp("one-record"))
    # An HSA-id the rule file does not list, a name its patterns catch.
    unlisted_bup = {"HSAid": "SE2321000131-E000000099999", "Enhetsnamn": "BUP Göteborg"}
    write_delivery(job.inbox, "melior", DAY, [melior_row("D-1", **unlisted_bup)])
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("JVN_PSEUDONYM_KEY", TEST_KEY)
        assert job.run(DAY) == 0
    yield OneRecord(job, printed.getvalue())


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 records"), (1, "1 record"), (2, "2 records"), (-1, "-1 records")],
)
def test_plural_writes_the_noun_in_the_number_of_the_count(count: int, expected: str) -> None:
    assert plural(count, "record") == expected


def test_plural_takes_an_irregular_plural() -> None:
    assert plural(1, "delivery", "deliveries") == "1 delivery"
    assert plural(3, "delivery", "deliveries") == "3 deliveries"


def test_run_summary_counts_one_record_in_the_singular(one_record: OneRecord) -> None:
    (exempt,) = [line for line in one_record.summary.splitlines() if "EXEMPT BY NAME" in line]

    assert "(1 record)" in exempt


def test_diff_counts_one_record_in_the_singular(
    one_record: OneRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert main(["diff", "--warehouse", str(one_record.job.warehouse)]) == 0

    out = capsys.readouterr().out
    assert "1 record changed: new_hidden 1" in out
    assert "1 records" not in out


def test_stats_into_a_closed_pipe_exits_141_without_a_traceback(one_record: OneRecord) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # as `jvn stats | head -1` once head has read its line and gone
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "flows.cli", "stats", "--warehouse",
             str(one_record.job.warehouse)],
            stdout=writer,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            timeout=120,
            check=False,
        )  # fmt: skip
    finally:
        os.close(writer)

    assert finished.returncode == 128 + signal.SIGPIPE
    assert finished.stderr == b""


def test_stats_piped_into_head_prints_its_first_line(one_record: OneRecord) -> None:
    command = (
        f"{sys.executable} -m flows.cli stats --warehouse '{one_record.job.warehouse}' | head -1"
    )

    finished = subprocess.run(
        ["sh", "-c", command], capture_output=True, cwd=ROOT, timeout=120, check=False
    )

    assert finished.returncode == 0
    assert finished.stdout.decode().startswith("run ")
    assert finished.stdout.count(b"\n") == 1
    assert finished.stderr == b""


def test_a_run_whose_reader_went_away_still_exits_with_the_runs_status(
    tmp_path: Path, prefect_api_url: str
) -> None:
    """`jvn run | head -1` (a log collector that stops reading): the run publishes, and
    its exit status says so, not 141; no traceback."""
    from tests.trust_support import job_env

    job = Job(tmp_path / "job")
    write_delivery(job.inbox, "melior", DAY, [melior_row("D-1")])
    env = job_env(tmp_path / "prefect", api_url=prefect_api_url)
    env["JVN_PSEUDONYM_KEY"] = TEST_KEY
    reader, writer = os.pipe()
    os.close(reader)
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", "--as-of", DAY.isoformat(),
             "--inbox", str(job.inbox), "--warehouse", str(job.warehouse),
             "--analytics", str(job.analytics), "--feed", str(job.feed), "--partitions", "4"],
            stdout=writer,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            timeout=600,
            check=False,
        )  # fmt: skip
    finally:
        os.close(writer)

    assert finished.returncode == 0, finished.stderr.decode(errors="replace")[-2000:]
    assert b"Traceback" not in finished.stderr
    assert (job.feed / "CURRENT").exists()
