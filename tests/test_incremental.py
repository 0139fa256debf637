"""Incremental nightly runs: deciding only touched partitions gives the full run's result.

A nightly run reuses the partitions no new delivery or block date touched
(hard links to the previous snapshot's files). Whatever it reuses, its feed and
decisions must equal those of a run that decided everything from scratch.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.common.feed_folder import live_snapshot
from tests.inbox_builder import block_row, melior_row, t4_row, write_delivery
from tests.test_nightly import Job
from tests.trust_support import SAMPLE_INBOX

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1, DAY_2, DAY_3 = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)
# Valid personnummer whose digits 9-11 put them in different partitions of 4.
PATIENTS = ["191212121212", "194107086995", "198112189876", "200002292381", "197001012405"]


def _history_inbox(inbox: Path) -> None:
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
    # Night 2: one record of one patient changes.
    write_delivery(
        inbox,
        "melior",
        DAY_2,
        [
            melior_row("D-1", 2, Personnummer=PATIENTS[1], Status="MAKULERAD"),
        ],
    )
    # Night 3: a block for another patient that starts holding on DAY_3,
    # delivered on DAY_1's night already: only the date moving makes it hold.
    write_delivery(
        inbox,
        "blocks",
        DAY_1,
        [
            block_row("B-1", pnr=PATIENTS[2], valid_from=DAY_3.isoformat()),
        ],
    )


def _decisions(job: Job) -> pl.DataFrame:
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        return connection.sql("SELECT * EXCLUDE (run_id) FROM decisions ORDER BY record_id").pl()


def _visibility(job: Job) -> pl.DataFrame:
    """The analysts' table, built incrementally or whole (run ids aside)."""
    with duckdb.connect(str(job.analytics), read_only=True) as connection:
        return connection.sql(
            "SELECT * EXCLUDE (run_id) FROM record_visibility ORDER BY record_id"
        ).pl()


def _runs(job: Job) -> list[tuple[int, int]]:
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        return connection.execute(
            "SELECT partitions, partitions_decided FROM runs ORDER BY run_seq"
        ).fetchall()


def test_nightly_runs_equal_a_full_run_on_the_same_inbox(tmp_path: Path) -> None:
    nightly, full = Job(tmp_path / "nightly"), Job(tmp_path / "full")
    _history_inbox(nightly.inbox)
    _history_inbox(full.inbox)

    assert [nightly.run(day) for day in (DAY_1, DAY_2, DAY_3)] == [0, 0, 0]
    assert full.run(DAY_3) == 0

    assert nightly.feed_rows().equals(full.feed_rows())
    assert _decisions(nightly).equals(_decisions(full))
    assert nightly.decisions()["melior:D-1"] == "retracted"
    assert nightly.decisions()["t4:T-2"] == "patient_block"


def test_nightly_run_decides_only_the_touched_partitions(tmp_path: Path) -> None:
    job = Job(tmp_path)
    _history_inbox(job.inbox)

    assert job.run(DAY_1) == 0
    assert job.run(DAY_2) == 0

    assert _runs(job) == [(4, 4), (4, 1)]


def test_untouched_partitions_are_hard_links_to_the_previous_snapshot(tmp_path: Path) -> None:
    job = Job(tmp_path)
    _history_inbox(job.inbox)
    assert job.run(DAY_1) == 0
    first = live_snapshot(job.feed)

    assert job.run(DAY_2) == 0

    second = live_snapshot(job.feed)
    assert first is not None and second is not None
    shared = [
        entry["name"]
        for entry in second.manifest["files"]
        if (first.path / entry["name"]).exists()
        and (first.path / entry["name"]).stat().st_ino
        == (second.path / entry["name"]).stat().st_ino
    ]
    assert len(shared) == len(second.manifest["files"]) - 1


def test_changed_rules_decide_every_partition(tmp_path: Path) -> None:
    job = Job(tmp_path)
    _history_inbox(job.inbox)
    assert job.run(DAY_1) == 0
    from transforms.rules import default_rules_path

    rules = tmp_path / "rules.toml"
    rules.write_text(
        default_rules_path()
        .read_text(encoding="utf-8")
        .replace('version = "2026.1"', 'version = "2026.2"'),
        encoding="utf-8",
    )

    assert job.run(DAY_2, "--rules", str(rules)) == 0

    assert _runs(job) == [(4, 4), (4, 4)]


def test_nightly_runs_over_the_sample_equal_one_full_run(tmp_path: Path) -> None:
    nightly, full = Job(tmp_path / "nightly"), Job(tmp_path / "full")
    shutil.copytree(SAMPLE_INBOX, nightly.inbox)
    shutil.copytree(SAMPLE_INBOX, full.inbox)
    nights = sorted({path.name for path in SAMPLE_INBOX.glob("*/*")})

    assert [nightly.run(date.fromisoformat(night)) for night in nights] == [0] * len(nights)
    assert full.run(date.fromisoformat(nights[-1])) == 0

    assert nightly.feed_rows().equals(full.feed_rows())
    assert _decisions(nightly).equals(_decisions(full))
    assert _visibility(nightly).equals(_visibility(full))
    decided = [decided for _, decided in _runs(nightly)]
    assert decided[0] == 4 and min(decided[1:]) >= 1
