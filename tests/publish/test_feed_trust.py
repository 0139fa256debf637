"""The feed's trust holes: lost or damaged parts, a feed claimed by another warehouse, junk CURRENT.

Each test damages a real published feed (or points a run at it with the wrong
warehouse) and runs the real `jvn` commands in-process: the next run must
rebuild what it cannot reuse and say so, another warehouse must not publish
over the feed, and a garbled `CURRENT` is a one-line refusal, never a traceback.
"""

from __future__ import annotations

import errno
import json
from datetime import date
from pathlib import Path

import pytest

from flows.cli import main
from flows.common import feed_folder as feed_module
from flows.common import files as files_module
from flows.common.feed_folder import CURRENT, live_snapshot
from flows.common.files import file_sha256
from flows.common.lock import RunLock
from tests.inbox_builder import melior_row, t4_row, write_delivery
from tests.test_nightly import Job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1, DAY_2 = date(2026, 11, 24), date(2026, 11, 25)
# Valid personnummer whose digits 9-11 put them in different partitions of 4.
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
    # Night 2: one record of one patient is retracted.
    write_delivery(
        inbox, "melior", DAY_2, [melior_row("D-1", 2, Personnummer=PATIENTS[1], Status="MAKULERAD")]
    )


@pytest.fixture
def job(tmp_path: Path) -> Job:
    job = Job(tmp_path / "job")
    _inbox(job.inbox)
    assert job.run(DAY_1) == 0
    return job


def _full_run_rows(tmp_path: Path) -> object:
    """The feed a fresh installation publishes for DAY_2 from the same inbox."""
    fresh = Job(tmp_path / "fresh")
    _inbox(fresh.inbox)
    assert fresh.run(DAY_2) == 0
    return fresh.feed_rows()


def _parts(job: Job) -> list[Path]:
    live = live_snapshot(job.feed)
    assert live is not None
    return [live.path / entry["name"] for entry in live.manifest["files"]]


def _flip_a_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0xFF
    path.unlink()  # snapshots share files by hard link: never write through one
    path.write_bytes(bytes(data))


def _verify(job: Job, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["verify", "--warehouse", str(job.warehouse), "--feed", str(job.feed)])
    out = capsys.readouterr()
    return status, out.out + out.err


def _no_personal_data(text: str) -> None:
    for patient in PATIENTS:
        assert patient not in text


# --- a lost or damaged part ------------------------------------------------------------


def test_a_lost_part_is_rebuilt_by_the_next_incremental_run_and_named(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = _parts(job)[0]
    lost.unlink()
    capsys.readouterr()

    assert job.run(DAY_2) == 0

    out = capsys.readouterr().out
    assert "WARNING" in out and lost.name in out and "missing" in out
    _no_personal_data(out)
    same = job.feed_rows().equals(_full_run_rows(tmp_path))
    assert same, "the feed differs from a full run's (rows not printed)"
    assert _verify(job, capsys)[0] == 0


def test_a_lost_part_is_rebuilt_by_a_full_run(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _parts(job)[0].unlink()

    # A new partition count decides everything anew: the change set still
    # compares with the previous snapshot, which has lost a part.
    assert job.run(DAY_2, "--partitions", "2") == 0

    same = job.feed_rows().equals(_full_run_rows(tmp_path))
    assert same, "the feed differs from a full run's (rows not printed)"
    assert _verify(job, capsys)[0] == 0


def test_a_damaged_part_is_rebuilt_not_carried_forward(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = _parts(job)[-1]
    _flip_a_byte(damaged)
    capsys.readouterr()

    assert job.run(DAY_2) == 0

    out = capsys.readouterr().out
    assert "WARNING" in out and damaged.name in out and "damaged" in out
    for part in _parts(job):
        assert not part.samefile(damaged)
    same = job.feed_rows().equals(_full_run_rows(tmp_path))
    assert same, "the feed differs from a full run's (rows not printed)"
    assert _verify(job, capsys)[0] == 0


def test_a_manifest_naming_a_file_of_neither_layout_makes_the_next_run_rebuild_everything(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = live_snapshot(job.feed)
    assert live is not None
    manifest_path = live.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"].append({"name": "../elsewhere/part-0009.parquet", "rows": 1, "sha256": "0"})
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    capsys.readouterr()

    assert job.run(DAY_2) == 0

    out = capsys.readouterr().out
    assert "WARNING" in out and "elsewhere" not in out
    same = job.feed_rows().equals(_full_run_rows(tmp_path))
    assert same, "the feed differs from a full run's (rows not printed)"
    assert _runs_decided(job)[-1] == 4


def _runs_decided(job: Job) -> list[int]:
    import duckdb

    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        rows = connection.execute(
            "SELECT partitions_decided FROM runs WHERE status = 'published' ORDER BY run_seq"
        ).fetchall()
    return [int(row[0]) for row in rows]


def test_change_set_against_a_snapshot_with_a_lost_part_still_lists_what_disappeared(
    job: Job,
) -> None:
    from flows.publish.change_set import CHANGE_SET_FILE, apply_change_set
    from tests.audit.test_rule_change_scenarios import snapshot_rows

    previous = live_snapshot(job.feed)
    assert previous is not None
    previous_rows = snapshot_rows(previous.path)
    # Lose the part that holds the record night 2 retracts.
    holder = next(part for part in _parts(job) if "melior:D-1" in set(_read_ids(part)))
    holder.unlink()

    assert job.run(DAY_2) == 0

    live = live_snapshot(job.feed)
    assert live is not None
    import polars as pl

    changes = pl.read_parquet(live.path / CHANGE_SET_FILE)
    disappeared = set(changes.filter(pl.col("change") == "disappeared")["record_id"])
    assert "melior:D-1" in disappeared
    same = apply_change_set(previous_rows, changes).equals(job.feed_rows())
    assert same, "the change set applied to the previous feed is not the new feed"


def _read_ids(part: Path) -> list[str]:
    import polars as pl

    return pl.read_parquet(part)["record_id"].to_list()


def test_verify_reports_the_checksum_mismatch_it_found_before_an_error(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # Early in the first data page: the footer still reads (row counts agree),
    # but DuckDB cannot decode the rows.
    for part in _parts(job):
        _flip_a_byte(part, at=20)

    status, text = _verify(job, capsys)

    assert status == 1
    assert "MISMATCH file_checksum_mismatch" in text
    _no_personal_data(text)


def test_publish_copies_a_reused_part_where_it_cannot_be_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = tmp_path / "a.parquet", tmp_path / "b.parquet"
    source.write_bytes(b"PAR1 rows PAR1")

    def no_links(*_: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(files_module.os, "link", no_links)
    files_module.link_or_copy(source, target)

    assert target.read_bytes() == source.read_bytes()


# --- which warehouse owns the feed --------------------------------------------------


def _run_with_warehouse(job: Job, warehouse: Path, *extra: str) -> int:
    arguments = [
        "run",
        "--as-of",
        DAY_2.isoformat(),
        "--inbox",
        str(job.inbox),
        "--warehouse",
        str(warehouse),
        "--analytics",
        str(warehouse.with_name("analytics-other.duckdb")),
        "--feed",
        str(job.feed),
        "--partitions",
        "4",
        *extra,
    ]
    return main(arguments)


@pytest.mark.parametrize("kind", ["typo", "empty file"])
def test_another_warehouse_cannot_publish_over_the_feed(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    before = (job.feed / CURRENT).read_bytes()
    other = tmp_path / "elsewhere" / "warehouse.duckdb"
    if kind == "empty file":
        other.parent.mkdir()
        other.touch()
    capsys.readouterr()

    assert _run_with_warehouse(job, other) == 2

    error = capsys.readouterr().err.strip()
    assert error.startswith("jvn: ") and "\n" not in error
    assert "--warehouse" in error
    assert (job.feed / CURRENT).read_bytes() == before


def test_adopt_feed_lets_another_warehouse_take_the_feed_over(job: Job, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "warehouse.duckdb"

    assert _run_with_warehouse(job, other, "--adopt-feed") == 0
    assert job.run(DAY_2) == 2, "the old warehouse no longer owns the feed"
    assert _run_with_warehouse(job, other) == 0


def test_a_feed_published_before_owners_were_recorded_is_kept_by_its_warehouse(
    job: Job,
) -> None:
    (job.feed / feed_module.OWNER_FILE).unlink()

    assert job.run(DAY_2) == 0
    assert (job.feed / feed_module.OWNER_FILE).is_file()


def test_the_run_lock_covers_the_feed(job: Job, tmp_path: Path) -> None:
    before = (job.feed / CURRENT).read_bytes()
    with RunLock(tmp_path / "other" / "warehouse.duckdb", feed=job.feed):
        assert job.run(DAY_2) == 1
    assert (job.feed / CURRENT).read_bytes() == before


# --- a garbled CURRENT ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "rollback"])
def test_a_garbled_current_is_refused_with_one_line(
    job: Job, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (job.feed / CURRENT).write_bytes(b"\xff\xfe\x00\x9c junk \x1b[31m\n")
    capsys.readouterr()

    if command == "run":
        status = job.run(DAY_2)
    else:
        status = main(["rollback", "--feed", str(job.feed), "--warehouse", str(job.warehouse)])

    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("jvn: ") and "\n" not in error and "\x1b" not in error


def test_a_rebuilt_part_gets_the_checksum_of_its_own_bytes(job: Job) -> None:
    _flip_a_byte(_parts(job)[0])

    assert job.run(DAY_2) == 0

    live = live_snapshot(job.feed)
    assert live is not None
    for entry in live.manifest["files"]:
        assert file_sha256(live.path / entry["name"]) == entry["sha256"]
