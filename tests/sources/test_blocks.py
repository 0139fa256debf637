"""Citizen-block adapter: CSV through the real reader into canonical block versions."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.load import reader
from tests.sources.helpers import SAMPLE_DIR, AdapterRun, run_adapter
from transforms.canonical import BLOCK_SCHEMA, adapter_output_schema
from transforms.sources import blocks

SAMPLE = SAMPLE_DIR / "blocks" / "blocks.csv"

HEADER = ",".join(blocks.FORMAT.columns)

PNR_PLAIN = "191212121212"
PNR_DASH = "19491224-4474"
SAMORDNINGSNUMMER = "198503722384"  # born 1985-03-12
PNR_BAD_CHECKSUM = "191212121213"
HSA_ID = "SE2321000131-E000000004567"

BASE_ROW: dict[str, str] = {
    "block_id": "B-1",
    "version": "1",
    "pnr": PNR_PLAIN,
    "scope": "UNIT",
    "hsa_id": HSA_ID,
    "valid_from": "2026-01-01",
    "valid_to": "2026-12-31",
    "status": "active",
}


def _luhn_valid(pnr: str) -> bool:
    digits = [int(c) for c in pnr.replace("-", "")[2:]]
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def _line(**changes: str) -> str:
    row = {**BASE_ROW, **changes}
    assert list(row) == list(blocks.FORMAT.columns)
    return ",".join(row.values())


def _run_lines(tmp_path: Path, lines: list[str]) -> AdapterRun:
    path = tmp_path / "blocks.csv"
    path.write_bytes("".join(line + "\n" for line in [HEADER, *lines]).encode("utf-8"))
    return run_adapter(blocks, path, tmp_path / "work")


def _only_error(tmp_path: Path, **changes: str) -> str | None:
    run = _run_lines(tmp_path, [_line(**changes)])
    assert run.rejects.is_empty()
    assert run.output.height == 1
    return run.output["error"][0]


@pytest.fixture
def sample(tmp_path: Path) -> AdapterRun:
    return run_adapter(blocks, SAMPLE, tmp_path)


def _row(run: AdapterRun, block_id: str) -> dict[str, Any]:
    rows = run.output.filter(pl.col("block_id") == block_id).to_dicts()
    assert len(rows) == 1
    return rows[0]


# --- a valid file -----------------------------------------------------------


def test_test_personnummer_constants_are_what_they_claim() -> None:
    assert _luhn_valid(PNR_PLAIN)
    assert _luhn_valid(PNR_DASH)
    assert _luhn_valid(SAMORDNINGSNUMMER)
    assert not _luhn_valid(PNR_BAD_CHECKSUM)


def test_valid_sample_file_loads_every_row_without_error(sample: AdapterRun) -> None:
    assert sample.rejects.is_empty()
    assert sample.row_count == 3
    assert sample.output["error"].to_list() == [None, None, None]
    assert sample.output["source_row"].to_list() == [1, 2, 3]


def test_output_schema_is_the_canonical_block_schema_plus_error(sample: AdapterRun) -> None:
    assert sample.output.schema == adapter_output_schema(BLOCK_SCHEMA)


def test_whole_journal_block_has_no_unit_and_is_open_ended(sample: AdapterRun) -> None:
    row = _row(sample, "B-1")
    assert row == {
        "block_id": "B-1",
        "block_version": 1,
        "patient_id": "191212121212",
        "scope": "ALL",
        "care_unit_hsa_id": None,
        "valid_from": date(2026, 1, 1),
        "valid_to": None,
        "revoked": False,
        "delivery_id": "blocks/2026-11-25/test",
        "source_row": 1,
        "documented_from": None,
        "documented_to": None,
        "error": None,
    }


def test_unit_block_keeps_its_unit_and_dates_and_revoked_status(sample: AdapterRun) -> None:
    row = _row(sample, "B-2")
    assert row["block_version"] == 3
    assert row["scope"] == "UNIT"
    assert row["care_unit_hsa_id"] == HSA_ID
    assert row["valid_from"] == date(2026, 2, 1)
    assert row["valid_to"] == date(2026, 12, 31)
    assert row["revoked"] is True


def test_personnummer_with_dash_is_read_as_twelve_digits(sample: AdapterRun) -> None:
    assert _row(sample, "B-2")["patient_id"] == "194912244474"


def test_samordningsnummer_is_accepted(sample: AdapterRun) -> None:
    assert _row(sample, "B-3")["patient_id"] == "198503722384"


def test_block_starting_after_the_business_date_is_valid(sample: AdapterRun) -> None:
    row = _row(sample, "B-3")
    assert row["valid_from"] == date(2027, 3, 1)
    assert row["error"] is None


def test_block_valid_for_a_single_day_is_valid(sample: AdapterRun) -> None:
    row = _row(sample, "B-3")
    assert row["valid_to"] == row["valid_from"]
    assert row["error"] is None


# --- bad rows ---------------------------------------------------------------


def test_unknown_scope_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, scope="SOME") == "unknown scope"


def test_empty_scope_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, scope="", hsa_id="") == "unknown scope"


def test_scope_codes_are_case_sensitive(tmp_path: Path) -> None:
    assert _only_error(tmp_path, scope="unit") == "unknown scope"


def test_unit_scope_without_hsa_id_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, scope="UNIT", hsa_id="") == "missing HSA-id for scope UNIT"


def test_all_scope_with_hsa_id_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, scope="ALL", hsa_id=HSA_ID) == "HSA-id given for scope ALL"


def test_missing_valid_from_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, valid_from="") == "unreadable valid_from"


def test_impossible_valid_from_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, valid_from="2026-02-30") == "unreadable valid_from"


def test_valid_from_without_leading_zeros_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, valid_from="2026-1-5") == "unreadable valid_from"


def test_unreadable_valid_to_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, valid_to="31/12/2026") == "unreadable valid_to"


def test_valid_to_before_valid_from_is_a_row_error(tmp_path: Path) -> None:
    error = _only_error(tmp_path, valid_from="2026-06-01", valid_to="2026-05-31")
    assert error == "valid_to before valid_from"


def test_unknown_status_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, status="paused") == "unreadable status"


def test_non_integer_version_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, version="v2") == "version is not an integer >= 1"


def test_version_zero_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, version="0") == "version is not an integer >= 1"


def test_empty_block_id_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, block_id="") == "missing block id"


def test_personnummer_with_bad_checksum_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, pnr=PNR_BAD_CHECKSUM) == "invalid personnummer"


def test_bad_rows_do_not_stop_their_neighbours_loading(tmp_path: Path) -> None:
    run = _run_lines(
        tmp_path,
        [
            _line(block_id="B-1"),
            _line(block_id="B-2", scope="SOME"),
            _line(block_id="B-3") + ",extra",
            _line(block_id="B-4"),
        ],
    )
    assert run.rejects["source_row"].to_list() == [3]
    assert run.valid["block_id"].to_list() == ["B-1", "B-4"]
    assert run.valid["source_row"].to_list() == [1, 4]
    assert run.invalid["source_row"].to_list() == [2]


def test_error_text_never_contains_personnummer_or_unit(tmp_path: Path) -> None:
    run = _run_lines(
        tmp_path,
        [
            _line(pnr=PNR_BAD_CHECKSUM),
            _line(scope="ALL"),
            _line(valid_to="2025-01-01"),
            _line(status="x", version="x", valid_from="x"),
        ],
    )
    errors = run.output["error"].to_list()
    assert all(errors)
    for error in errors:
        for secret in (PNR_PLAIN, PNR_BAD_CHECKSUM, HSA_ID):
            assert secret not in error


# --- documentation period (optional columns) --------------------------------

PERIOD_HEADER = HEADER + ",documented_from,documented_to"


def _run_period_lines(tmp_path: Path, lines: list[str]) -> AdapterRun:
    path = tmp_path / "blocks.csv"
    path.write_bytes("".join(line + "\n" for line in [PERIOD_HEADER, *lines]).encode("utf-8"))
    return run_adapter(blocks, path, tmp_path / "work")


def _period_line(documented_from: str, documented_to: str, **changes: str) -> str:
    return f"{_line(**changes)},{documented_from},{documented_to}"


def test_file_without_period_columns_loads_with_an_open_period(sample: AdapterRun) -> None:
    assert sample.output["documented_from"].to_list() == [None, None, None]
    assert sample.output["documented_to"].to_list() == [None, None, None]


def test_file_with_period_columns_loads_the_documentation_period(tmp_path: Path) -> None:
    run = _run_period_lines(tmp_path, [_period_line("2019-01-01", "2019-12-31")])
    row = run.output.to_dicts()[0]
    assert row["error"] is None
    assert (row["documented_from"], row["documented_to"]) == (date(2019, 1, 1), date(2019, 12, 31))


def test_empty_period_ends_are_open(tmp_path: Path) -> None:
    run = _run_period_lines(
        tmp_path,
        [_period_line("", "2019-12-31", block_id="B-1"), _period_line("", "", block_id="B-2")],
    )
    assert run.output["error"].to_list() == [None, None]
    assert run.output["documented_from"].to_list() == [None, None]
    assert run.output["documented_to"].to_list() == [date(2019, 12, 31), None]


def test_unreadable_documented_from_is_a_row_error(tmp_path: Path) -> None:
    run = _run_period_lines(tmp_path, [_period_line("2019-02-30", "")])
    assert run.output["error"].to_list() == ["unreadable documented_from"]


def test_unreadable_documented_to_is_a_row_error(tmp_path: Path) -> None:
    run = _run_period_lines(tmp_path, [_period_line("", "31/12/2019")])
    assert run.output["error"].to_list() == ["unreadable documented_to"]


def test_documented_to_before_documented_from_is_a_row_error(tmp_path: Path) -> None:
    run = _run_period_lines(tmp_path, [_period_line("2019-06-01", "2019-05-31")])
    assert run.output["error"].to_list() == ["documented_to before documented_from"]


def test_file_with_only_one_period_column_is_rejected_whole(tmp_path: Path) -> None:
    path = tmp_path / "blocks.csv"
    path.write_bytes(f"{HEADER},documented_from\n{_line()},2019-01-01\n".encode())
    with pytest.raises(reader.DeliveryFileError, match="header does not match"):
        run_adapter(blocks, path, tmp_path / "work")
