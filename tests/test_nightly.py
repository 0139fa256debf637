"""The nightly job end to end: `jvn run` on small inboxes, through the real flow.

Each test builds its inbox with `tests/inbox_builder.py` and runs the real
command (Prefect flow, DuckDB files, Parquet feed) in a temporary folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli import main
from flows.common.feed_folder import live_snapshot
from tests.inbox_builder import block_row, melior_row, t4_row, write_delivery

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1 = date(2026, 11, 24)
DAY_2 = date(2026, 11, 25)
PATIENT = "191212121212"
OTHER_PATIENT = "194107086995"


@dataclass(frozen=True)
class Job:
    """Paths of one isolated installation of the job."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def warehouse(self) -> Path:
        return self.root / "data" / "warehouse.duckdb"

    @property
    def analytics(self) -> Path:
        return self.root / "data" / "analytics.duckdb"

    @property
    def feed(self) -> Path:
        return self.root / "data" / "feed"

    def run(self, as_of: date = DAY_2, *extra: str) -> int:
        return main(
            [
                "run",
                "--as-of",
                as_of.isoformat(),
                "--inbox",
                str(self.inbox),
                "--warehouse",
                str(self.warehouse),
                "--analytics",
                str(self.analytics),
                "--feed",
                str(self.feed),
                "--partitions",
                "4",
                *extra,
            ]
        )

    def feed_rows(self) -> pl.DataFrame:
        live = live_snapshot(self.feed)
        assert live is not None
        files = sorted((live.path / "records").glob("*.parquet"))
        return pl.concat([pl.read_parquet(f) for f in files]).sort("record_id")

    def decisions(self) -> dict[str, str]:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            rows = connection.execute("SELECT record_id, reason FROM decisions").fetchall()
        return dict(rows)

    def count(self, table: str) -> int:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return Job(tmp_path)


def test_run_publishes_only_visible_records_with_the_contract_columns(job: Job) -> None:
    write_delivery(
        job.inbox,
        "melior",
        DAY_1,
        [
            melior_row("D-1"),
            melior_row("D-2", Dokumenttid="2015-01-01 10:00"),
            melior_row("D-3", HSAid="SE2321000131-E000000011001", Enhetsnamn="BUP Göteborg"),
        ],
    )
    write_delivery(job.inbox, "t4", DAY_1, [t4_row("T-1")])

    assert job.run() == 0

    feed = job.feed_rows()
    assert feed["record_id"].to_list() == ["melior:D-1", "t4:T-1"]
    for column in (
        "record_id",
        "source_system",
        "record_version",
        "patient_id",
        "care_unit_hsa_id",
        "care_unit_name",
        "info_type",
        "documented_at",
        "documented_date",
        "signed",
        "title",
        "content",
        "rules_version",
    ):
        assert column in feed.columns
    assert feed["patient_id"].to_list() == [PATIENT, PATIENT]
    assert job.decisions() == {
        "melior:D-1": "shown",
        "melior:D-2": "before_system_start",
        "melior:D-3": "exempt_unit",
        "t4:T-1": "shown",
    }


def test_manifest_counts_and_checksums_match_the_files(job: Job) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1"), melior_row("D-2")])
    assert job.run() == 0

    live = live_snapshot(job.feed)
    assert live is not None
    manifest = live.manifest
    assert manifest["as_of"] == DAY_2.isoformat()
    assert manifest["row_count"] == 2
    assert manifest["rows_per_system"] == {"melior": 2}
    from flows.common.files import file_sha256

    for entry in manifest["files"]:
        path = live.path / entry["name"]
        assert file_sha256(path) == entry["sha256"]
        assert pl.read_parquet(path).height == entry["rows"]


def test_rerun_with_same_inbox_gives_identical_feed_and_changes_nothing(job: Job) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1"), melior_row("D-2")])
    write_delivery(job.inbox, "t4", DAY_1, [t4_row("T-1"), t4_row("T-2", version=3)])
    assert job.run() == 0
    first = live_snapshot(job.feed)
    tables = {t: job.count(t) for t in ("record_versions", "quarantine", "deliveries")}

    assert job.run() == 0

    second = live_snapshot(job.feed)
    assert first is not None and second is not None and first.name != second.name
    assert [f["sha256"] for f in first.manifest["files"]] == [
        f["sha256"] for f in second.manifest["files"]
    ]
    assert {t: job.count(t) for t in tables} == tables


def test_rejected_delivery_exits_3_and_other_systems_still_load(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    write_delivery(job.inbox, "t4", DAY_1, [t4_row("T-1")], control={"rows": 7})

    assert job.run() == 3

    assert "t4/2026-11-24" in capsys.readouterr().err
    assert job.decisions() == {"melior:D-1": "shown"}
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        status, error = connection.execute(
            "SELECT status, error FROM deliveries WHERE system = 't4'"
        ).fetchone() or ("", "")
    assert status == "rejected"
    assert "row count mismatch" in error


def test_rejected_redelivery_keeps_yesterdays_data(job: Job) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    assert job.run(DAY_1) == 0
    write_delivery(
        job.inbox,
        "melior",
        DAY_2,
        [melior_row("D-1", 2, Status="MAKULERAD")],
        control={"sha256": "0" * 64},
    )

    assert job.run(DAY_2) == 3

    assert job.decisions() == {"melior:D-1": "shown"}


def test_lower_version_arriving_later_changes_nothing(job: Job) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1", 3, Rubrik="third")])
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-1", 2, Status="MAKULERAD")])

    assert job.run() == 0

    assert job.decisions() == {"melior:D-1": "shown"}
    assert job.feed_rows()["title"].to_list() == ["third"]


def test_bad_update_hides_the_record_until_a_valid_higher_version(job: Job) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1", 1)])
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-1", 2, Dokumenttid="not a time")])
    assert job.run(DAY_2) == 0
    assert job.decisions() == {"melior:D-1": "invalid_record"}

    write_delivery(job.inbox, "melior", date(2026, 11, 26), [melior_row("D-1", 3)])
    assert job.run(date(2026, 11, 26)) == 0

    assert job.decisions() == {"melior:D-1": "shown"}


def test_run_for_a_past_date_uses_only_deliveries_up_to_it(job: Job, tmp_path: Path) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-1", 2, Status="MAKULERAD")])

    assert job.run(DAY_1) == 0

    assert job.decisions() == {"melior:D-1": "shown"}


def test_block_hides_the_patients_rows_at_the_unit(job: Job) -> None:
    write_delivery(
        job.inbox,
        "t4",
        DAY_1,
        [
            t4_row("T-1"),
            t4_row("T-2", patient_pnr="19410708-6995"),
        ],
    )
    write_delivery(
        job.inbox,
        "blocks",
        DAY_1,
        [
            block_row("B-1", pnr=OTHER_PATIENT, scope="UNIT", hsa_id="SE2321000131-E000000000201"),
        ],
    )

    assert job.run() == 0

    assert job.decisions() == {"t4:T-1": "shown", "t4:T-2": "patient_block"}


def test_quarantined_rows_keep_raw_text_in_the_warehouse_only(job: Job) -> None:
    write_delivery(
        job.inbox,
        "melior",
        DAY_1,
        [
            melior_row("D-1"),
            melior_row("D-2", Personnummer="191212121213"),
        ],
    )

    assert job.run() == 0

    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        row = connection.execute(
            "SELECT source_row, record_id, error, raw_text FROM quarantine"
        ).fetchone()
    assert row is not None
    assert row[:3] == (2, "melior:D-2", "invalid personnummer")
    assert "191212121213" in row[3]
    with duckdb.connect(str(job.analytics), read_only=True) as connection:
        summary = connection.execute(
            "SELECT system, error, rows FROM quarantine_summary"
        ).fetchall()
    assert summary == [("melior", "invalid personnummer", 1)]


def test_analytics_holds_pseudonyms_not_personnummer(job: Job) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1"), melior_row("D-2")])

    assert job.run() == 0

    with duckdb.connect(str(job.analytics), read_only=True) as connection:
        keys = connection.execute("SELECT DISTINCT patient_key FROM record_visibility").fetchall()
        tables = [t for (t,) in connection.execute("SHOW TABLES").fetchall()]
        dump = json.dumps(
            [connection.execute(f"SELECT * FROM {t}").fetchall() for t in tables], default=str
        )
    assert len(keys) == 1 and len(keys[0][0]) == 32
    assert PATIENT not in dump
    assert "Patienten mår bra" not in dump


def test_missing_pseudonym_key_exits_2_before_touching_anything(
    job: Job, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JVN_PSEUDONYM_KEY")
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])

    assert job.run() == 2

    assert "JVN_PSEUDONYM_KEY" in capsys.readouterr().err
    assert not job.warehouse.exists()


def test_unreadable_rule_file_exits_2_with_one_line(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_rules = tmp_path / "rules.toml"
    bad_rules.write_text('version = "x"\nsurprise = 1\n', encoding="utf-8")

    assert job.run(DAY_2, "--rules", str(bad_rules)) == 2

    error = capsys.readouterr().err.strip()
    assert error.startswith("jvn: ") and "\n" not in error


def test_run_for_an_earlier_date_than_the_live_feed_is_refused(job: Job) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    assert job.run(DAY_2) == 0
    live = live_snapshot(job.feed)

    assert job.run(DAY_1) == 2

    assert live_snapshot(job.feed) == live
