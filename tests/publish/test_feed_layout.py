"""The feed's layout for its readers: `records/` holds the parts, `changes/` the change set.

A portal engineer points pyarrow, polars or DuckDB at a snapshot's `records/`
folder and reads the feed; snapshots published before that layout (parts at
the snapshot's root) are still verified, reused by the next run and rolled
back to.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from flows.cli import main
from flows.common.feed_folder import CURRENT, RECORDS_DIR, live_snapshot
from flows.common.files import file_sha256
from tests.audit.test_rule_change_scenarios import snapshot_rows
from tests.inbox_builder import melior_row, t4_row, write_delivery
from tests.test_nightly import Job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1, DAY_2 = date(2026, 11, 24), date(2026, 11, 25)
PATIENTS = ["191212121212", "194107086995", "198112189876", "200002292381", "197001012405"]


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


@pytest.fixture
def job(tmp_path: Path) -> Job:
    job = Job(tmp_path / "job")
    _inbox(job.inbox)
    assert job.run(DAY_1) == 0
    return job


def _verify(job: Job, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["verify", "--warehouse", str(job.warehouse), "--feed", str(job.feed)])
    out = capsys.readouterr()
    return status, out.out + out.err


def _to_old_layout(snapshot: Path) -> None:
    """Rewrite a snapshot as jvn published it before `records/`: parts at its root."""
    manifest_path = snapshot / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        old_name = Path(entry["name"]).name
        os.rename(snapshot / entry["name"], snapshot / old_name)
        entry["name"] = old_name
    (snapshot / RECORDS_DIR).rmdir()
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_snapshot_keeps_records_and_change_set_in_folders_of_their_own(job: Job) -> None:
    live = live_snapshot(job.feed)
    assert live is not None

    assert sorted(p.name for p in live.path.iterdir()) == ["changes", "manifest.json", "records"]
    names = [entry["name"] for entry in live.manifest["files"]]
    assert names and all(name.startswith("records/part-") for name in names)
    assert sorted(f"records/{p.name}" for p in (live.path / "records").iterdir()) == sorted(names)


def test_records_folder_reads_as_the_feed_with_pyarrow_polars_and_duckdb(job: Job) -> None:
    live = live_snapshot(job.feed)
    assert live is not None
    records = live.path / "records"
    expected = snapshot_rows(live.path)

    with_pyarrow = pl.from_arrow(pq.read_table(records))
    with_polars = pl.scan_parquet(records).collect()
    with_polars_glob = pl.scan_parquet(records / "*.parquet").collect()
    with duckdb.connect() as connection:
        with_duckdb = connection.sql(f"SELECT * FROM read_parquet('{records}/*.parquet')").pl()

    assert isinstance(with_pyarrow, pl.DataFrame)
    # DuckDB hands timestamps over in its session's zone name (Etc/UTC): same instants.
    with_duckdb = with_duckdb.with_columns(pl.col("documented_at").dt.convert_time_zone("UTC"))
    readers = {
        "pyarrow": with_pyarrow,
        "polars": with_polars,
        "polars glob": with_polars_glob,
        "duckdb": with_duckdb,
    }
    for reader, frame in readers.items():
        # Compared to a bool first: a failure must not print the feed's rows.
        same = frame.sort("record_id").select(expected.columns).equals(expected)
        assert frame.height == live.manifest["row_count"], reader
        assert same, f"{reader} reads other rows from records/ than the manifest lists"


def test_same_inputs_give_byte_identical_record_parts(job: Job, tmp_path: Path) -> None:
    """Only the parts' paths moved: their bytes are still a function of the inputs."""
    live = live_snapshot(job.feed)
    assert live is not None
    for entry in live.manifest["files"]:
        assert file_sha256(live.path / entry["name"]) == entry["sha256"]
    again = Job(tmp_path / "again")
    _inbox(again.inbox)
    assert again.run(DAY_1) == 0
    other = live_snapshot(again.feed)
    assert other is not None
    assert [f["sha256"] for f in live.manifest["files"]] == [
        f["sha256"] for f in other.manifest["files"]
    ]


def test_an_old_layout_live_snapshot_verifies_is_reused_and_can_be_rolled_back_to(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = live_snapshot(job.feed)
    assert old is not None
    _to_old_layout(old.path)
    old_rows = snapshot_rows(old.path)
    assert _verify(job, capsys)[0] == 0

    assert job.run(DAY_2) == 0

    new = live_snapshot(job.feed)
    assert new is not None and new.name != old.name
    names = [entry["name"] for entry in new.manifest["files"]]
    assert all(name.startswith("records/") for name in names)
    reused = [name for name in names if (new.path / name).samefile(old.path / Path(name).name)]
    assert len(reused) == len(names) - 1, "untouched partitions are hard links to the old parts"
    fresh = Job(tmp_path / "fresh")
    _inbox(fresh.inbox)
    assert fresh.run(DAY_2) == 0
    same = job.feed_rows().equals(fresh.feed_rows())
    assert same, "the run after the old layout published another feed than a full run"
    assert _verify(job, capsys)[0] == 0

    rollback = ["rollback", "--feed", str(job.feed), "--warehouse", str(job.warehouse)]
    assert main(rollback) == 0
    assert (job.feed / CURRENT).read_text(encoding="utf-8").strip() == old.name
    same = snapshot_rows(old.path).equals(old_rows)
    assert same, "the old-layout snapshot changed"
    status, text = _verify(job, capsys)
    assert status == 0, text
