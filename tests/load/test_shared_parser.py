"""Deliveries parsed one after another in one DuckDB database (`ParsingDatabase`).

Opening a DuckDB database costs about 27 ms, so a batch of small deliveries
shares one, each parsed on a cursor of its own. Sharing must change nothing: the
rows, the rejected rows and the counts are what a database of its own gives,
and one delivery's rejects never reach another's. Its spill folder is private,
lies in the run's work folder, and is gone afterwards; a failure to write there
is this machine's, never the sender's.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.common.errors import DeliveryFileError, LocalFailure
from flows.load import reader
from flows.load.inbox import discover
from flows.load.prepare import prepare_delivery, shared_parser
from tests.inbox_builder import delivery_bytes, t4_row, write_delivery
from transforms.sources import journalia

FMT = journalia.FORMAT


def _row(record_id: str, *, extra: str = "") -> str:
    return (
        f"{record_id},1,198503122387,SE2321000131-E000000005001,Diabetesmottagningen,"
        f"DIABETESANTECKNING,2019-11-01 00:30:15,1,A,Rubrik,Text{extra}"
    )


FILES = {
    "one bad row": [_row("J-1"), _row("J-2", extra=",too,many"), _row("J-3")],
    "clean": [_row("J-4"), _row("J-5")],
    "two bad rows": [_row("J-6", extra=",x"), "J-7,1", _row("J-8")],
}
"""Each file's data lines; the bad ones break the CSV structure (DuckDB rejects them)."""

ERRNO_28 = '{"errno":"28"}'
"""How DuckDB's message carries the operating system's error number (no space left)."""


def _utf8(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True)
    path = folder / FMT.file_name
    path.write_text("\n".join([FMT.delimiter.join(FMT.columns), *lines]) + "\n", "utf-8-sig")
    return reader.prepare_utf8(path, FMT, folder / "work")


def test_deliveries_parsed_in_one_shared_database_equal_each_parsed_in_its_own(
    tmp_path: Path,
) -> None:
    files = {
        name: _utf8(tmp_path / "in" / str(i), lines)
        for i, (name, lines) in enumerate(FILES.items())
    }

    alone = {
        name: reader.parse_rows(utf8, FMT, tmp_path / "alone" / name)
        for name, utf8 in files.items()
    }
    with shared_parser(tmp_path) as database:
        shared = {
            name: reader.parse_rows(utf8, FMT, tmp_path / "shared" / name, database=database)
            for name, utf8 in files.items()
        }

    for name in FILES:
        assert shared[name].rows.equals(alone[name].rows), name
        assert shared[name].rejects.equals(alone[name].rejects), name
        assert shared[name].row_count == alone[name].row_count == len(FILES[name]), name
    assert [shared[name].rejects.height for name in FILES] == [1, 0, 2]


def test_after_a_failed_parse_the_batchs_next_delivery_gets_a_new_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB may invalidate a database on a failure; the next delivery must not
    # inherit it (and be rejected for another file's fault).
    good = _utf8(tmp_path / "in", FILES["one bad row"])
    opened: list[duckdb.DuckDBPyConnection] = []
    connect = duckdb.connect

    def counted_connect() -> duckdb.DuckDBPyConnection:
        opened.append(connect())
        return opened[-1]

    monkeypatch.setattr(reader.duckdb, "connect", counted_connect)

    with shared_parser(tmp_path) as database:
        gone = tmp_path / "in" / "gone.csv"
        with pytest.raises(DeliveryFileError):  # DuckDB finds no file to parse
            next(reader.parse_in_slices(gone, FMT, tmp_path / "w1", 10, database=database))
        parsed = reader.parse_rows(good, FMT, tmp_path / "w2", database=database)
        again = reader.parse_rows(good, FMT, tmp_path / "w3", database=database)

    assert len(opened) == 2  # one for the failed parse, one for the two after it
    assert parsed.rows.equals(reader.parse_rows(good, FMT, tmp_path / "alone").rows)
    assert again.rejects.equals(parsed.rejects)


def test_a_batchs_spill_folder_is_private_in_the_work_folder_and_removed_afterwards(
    tmp_path: Path,
) -> None:
    with shared_parser(tmp_path) as database:
        spill = database.spill_dir
        assert spill.parent == tmp_path
        assert spill.stat().st_mode & 0o077 == 0

    assert not spill.exists()


def test_a_work_folder_that_cannot_take_the_spill_folder_is_this_machines_failure(
    tmp_path: Path,
) -> None:
    with pytest.raises(LocalFailure), shared_parser(tmp_path / "gone"):
        pass


@pytest.mark.parametrize("named", ["spill", "work"])
def test_an_io_error_naming_the_spill_or_work_folder_is_this_machines_failure(
    tmp_path: Path, named: str
) -> None:
    folder = tmp_path / named
    error = duckdb.IOException(f'IO Error: Could not write file "{folder}/x.tmp": ' + ERRNO_28)

    failure = reader._parse_failure(error, FMT, tmp_path / "work", tmp_path / "spill")

    assert isinstance(failure, LocalFailure)
    assert "ENOSPC" in str(failure)


def test_an_io_error_naming_neither_folder_is_the_files(tmp_path: Path) -> None:
    error = duckdb.IOException('IO Error: Could not read "/elsewhere/x": ' + ERRNO_28)

    failure = reader._parse_failure(error, FMT, tmp_path / "work", tmp_path / "spill")

    assert isinstance(failure, DeliveryFileError)


def test_a_batch_with_a_huge_row_and_a_broken_file_prepares_its_good_delivery_as_alone(
    tmp_path: Path,
) -> None:
    inbox, work = tmp_path / "inbox", tmp_path / "work"
    # Over DuckDB's row limit (8 MiB), under the one that refuses a delivery
    # unparsed (64 MiB, `test_one_pass.py`): DuckDB rejects the row in the shared
    # database, and it is quarantined.
    huge = [t4_row("T-1"), t4_row("T-2", entry_text="x" * (9 << 20))]
    broken = delivery_bytes("t4", [t4_row("T-3")]) + b'"T-4;unterminated quote\n' * 3
    good = [t4_row("T-5"), t4_row("T-6")]
    write_delivery(inbox, "t4", date(2026, 11, 23), huge)
    write_delivery(inbox, "t4", date(2026, 11, 24), data=broken, control={"rows": 4})
    write_delivery(inbox, "t4", date(2026, 11, 25), good)
    deliveries = sorted(
        discover(inbox, date(2026, 11, 25)).deliveries, key=lambda d: d.business_date
    )
    work.mkdir()

    with shared_parser(work) as parser:
        batch = [prepare_delivery(delivery, work, parser=parser) for delivery in deliveries]
    alone = prepare_delivery(deliveries[-1], tmp_path / "alone")

    assert batch[0].verdict == "prepared"
    assert batch[0].rejects_file is not None
    assert pl.read_parquet(batch[0].rejects_file)["source_row"].to_list() == [2]
    # Parsed in the shared database (the open quote swallows the lines after it)
    # and judged on its own rows.
    assert (
        batch[1].error == "row count mismatch: the control file says 4, the file holds 3 data rows"
    )
    assert batch[2].verdict == alone.verdict == "prepared"
    assert (
        pl.read_parquet(batch[2].canonical_files)
        .drop("delivery_id")
        .equals(pl.read_parquet(alone.canonical_files).drop("delivery_id"))
    )
