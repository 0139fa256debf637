"""A delivery loaded before is not read again while its file looks as it did when hashed.

Every nightly run finds the old deliveries still in the inbox; hashing them all
again costs a read of every byte ever delivered. The warehouse keeps each loaded
delivery's file stamp (size, modification time, taken unchanged around the hash:
`delivery_stamps`), and a folder whose file still has it, and whose control file
names the same digest, is the delivery loaded before. Anything else is hashed.

The tests tell "read" from "not read" by what the verdict says: a file whose
bytes changed under the same size and time is only taken as known if nobody
read it; a read finds the checksum mismatch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.common.warehouse import connect
from flows.load.inbox import DeliveryFolder, FileStamp, file_stat
from flows.load.ingest import known_deliveries_in, load_delivery, store_delivery
from flows.load.prepare import PreparedDelivery, prepare_delivery
from tests.inbox_builder import t4_row, write_delivery
from transforms.sources.registry import adapter_for

DAY_1 = date(2026, 11, 24)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(tmp_path / "data" / "warehouse.duckdb") as connection:
        yield connection


@pytest.fixture
def loaded_delivery(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> DeliveryFolder:
    """A t4 delivery of two records, loaded."""
    path = write_delivery(tmp_path / "inbox", "t4", DAY_1, [t4_row("T-1"), t4_row("T-2")])
    delivery = DeliveryFolder("t4", DAY_1, path)
    outcome = load_delivery(warehouse, delivery, run_id="run-1", work_dir=tmp_path / "work")
    assert outcome.status == "loaded"
    return delivery


def _data_file(delivery: DeliveryFolder) -> Path:
    return delivery.path / adapter_for(delivery.feed).FORMAT.file_name


def _swap_bytes_keeping_size_and_time(path: Path) -> None:
    """Other bytes of the same length, and the modification time put back."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] = ord("X") if data[-2] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _prepare_again(
    warehouse: duckdb.DuckDBPyConnection, delivery: DeliveryFolder, work_dir: Path
) -> PreparedDelivery:
    known = known_deliveries_in(warehouse)
    return prepare_delivery(delivery, work_dir, known.sha256["t4"], known.stamps["t4"])


def test_a_loaded_delivery_keeps_the_stamp_of_its_file(
    warehouse: duckdb.DuckDBPyConnection, loaded_delivery: DeliveryFolder
) -> None:
    size, mtime_ns = file_stat(_data_file(loaded_delivery)) or (None, None)

    stamps = known_deliveries_in(warehouse).stamps["t4"]

    assert [(stamp.folder, stamp.size, stamp.mtime_ns) for stamp in stamps] == [
        ("t4/2026-11-24", size, mtime_ns)
    ]


def test_a_folder_whose_file_looks_as_when_loaded_is_known_without_reading_it(
    warehouse: duckdb.DuckDBPyConnection, loaded_delivery: DeliveryFolder, tmp_path: Path
) -> None:
    _swap_bytes_keeping_size_and_time(_data_file(loaded_delivery))

    again = _prepare_again(warehouse, loaded_delivery, tmp_path / "work")

    assert again.verdict == "known"
    outcome = store_delivery(
        warehouse, loaded_delivery, again, run_id="run-2", work_dir=tmp_path / "work"
    )
    assert outcome.status == "already_loaded"


def test_a_file_touched_since_it_was_loaded_is_read_again(
    warehouse: duckdb.DuckDBPyConnection, loaded_delivery: DeliveryFolder, tmp_path: Path
) -> None:
    path = _data_file(loaded_delivery)
    _swap_bytes_keeping_size_and_time(path)
    stamp = path.stat()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))

    again = _prepare_again(warehouse, loaded_delivery, tmp_path / "work")

    assert again.verdict == "rejected"
    assert "checksum mismatch" in str(again.error)


def test_a_file_grown_since_it_was_loaded_is_read_again(
    warehouse: duckdb.DuckDBPyConnection, loaded_delivery: DeliveryFolder, tmp_path: Path
) -> None:
    path = _data_file(loaded_delivery)
    before = path.stat()
    path.write_bytes(path.read_bytes() + b"\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    again = _prepare_again(warehouse, loaded_delivery, tmp_path / "work")

    assert again.verdict == "rejected"
    assert "checksum mismatch" in str(again.error)


def test_a_link_in_place_of_a_stamped_file_is_never_taken_by_its_stamp(
    warehouse: duckdb.DuckDBPyConnection, loaded_delivery: DeliveryFolder, tmp_path: Path
) -> None:
    path = _data_file(loaded_delivery)
    moved = tmp_path / "elsewhere.csv"
    path.rename(moved)
    path.symlink_to(moved)

    again = _prepare_again(warehouse, loaded_delivery, tmp_path / "work")

    assert again.verdict == "rejected"


def test_a_delivery_loaded_before_stamps_existed_gets_one_when_hashed_again(
    warehouse: duckdb.DuckDBPyConnection, loaded_delivery: DeliveryFolder, tmp_path: Path
) -> None:
    warehouse.execute("DELETE FROM delivery_stamps")

    again = _prepare_again(warehouse, loaded_delivery, tmp_path / "work")
    outcome = store_delivery(
        warehouse, loaded_delivery, again, run_id="run-2", work_dir=tmp_path / "work"
    )

    assert outcome.status == "already_loaded"
    size, mtime_ns = file_stat(_data_file(loaded_delivery)) or (None, None)
    assert known_deliveries_in(warehouse).stamps["t4"] == frozenset(
        {FileStamp("t4/2026-11-24", str(again.sha256), size or 0, mtime_ns or 0)}
    )


def test_a_stamp_is_only_good_for_the_folder_and_digest_it_was_taken_for(
    warehouse: duckdb.DuckDBPyConnection, loaded_delivery: DeliveryFolder, tmp_path: Path
) -> None:
    known = known_deliveries_in(warehouse)
    (stamp,) = known.stamps["t4"]
    path = _data_file(loaded_delivery)
    _swap_bytes_keeping_size_and_time(path)
    other_folder = frozenset({FileStamp("t4/2026-11-23", stamp.sha256, stamp.size, stamp.mtime_ns)})

    again = prepare_delivery(loaded_delivery, tmp_path / "work", known.sha256["t4"], other_folder)

    assert again.verdict == "rejected"
    assert "checksum mismatch" in str(again.error)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_a_nightly_run_takes_an_unchanged_old_delivery_as_loaded_without_reading_it(
    tmp_path: Path,
) -> None:
    from tests.test_nightly import Job

    job = Job(tmp_path / "job")
    day_2 = date(2026, 11, 25)
    old = DeliveryFolder(
        "t4", DAY_1, write_delivery(job.inbox, "t4", DAY_1, [t4_row("T-1"), t4_row("T-2")])
    )
    write_delivery(job.inbox, "t4", day_2, [t4_row("T-3")])
    assert job.run(DAY_1) == 0
    _swap_bytes_keeping_size_and_time(_data_file(old))

    assert job.run(day_2) == 0  # read, the old file would be a checksum mismatch (exit 3)

    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        statuses = connection.execute(
            "SELECT folder, status FROM deliveries WHERE status <> 'later' ORDER BY folder"
        ).fetchall()
    assert statuses == [("t4/2026-11-24", "loaded"), ("t4/2026-11-25", "loaded")]
