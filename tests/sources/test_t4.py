"""T4 adapter: `|`-separated CSV through the real reader into canonical records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.sources.helpers import SAMPLE_DIR, AdapterRun, run_adapter
from transforms.canonical import RECORD_SCHEMA, adapter_output_schema
from transforms.sources import t4

SAMPLE = SAMPLE_DIR / "t4" / "entries.csv"

HEADER = "|".join(t4.FORMAT.columns)

PNR_DASH = "19121212-1212"
PNR_PLAIN = "194912244474"
SAMORDNINGSNUMMER = "19850372-2384"  # born 1985-03-12
PNR_BAD_CHECKSUM = "19121212-1213"
PNR_IMPOSSIBLE_DATE = "19900230-1233"  # Luhn-valid, but 30 February

HEADING = "Undersökning"
TEXT = "Hemlig journaltext om patienten"

BASE_ROW: dict[str, str] = {
    "journal_id": "T4-1",
    "rev": "1",
    "patient_pnr": PNR_DASH,
    "clinic_hsa_id": "SE2321000131-E000000007001",
    "clinic_name": "Folktandvården Centrum",
    "entry_type": "ANTECKNING",
    "entry_datetime": "2019-11-01T00:30:00+01:00",
    "signed": "Y",
    "cancelled": "N",
    "heading": HEADING,
    "entry_text": TEXT,
}


def _luhn_valid(pnr: str) -> bool:
    digits = [int(c) for c in pnr.replace("-", "")[2:]]
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def _line(**changes: str) -> str:
    row = {**BASE_ROW, **changes}
    assert list(row) == list(t4.FORMAT.columns)
    return "|".join(row.values())


def _run_lines(tmp_path: Path, lines: list[str]) -> AdapterRun:
    path = tmp_path / "entries.csv"
    path.write_bytes("".join(line + "\n" for line in [HEADER, *lines]).encode("utf-8"))
    return run_adapter(t4, path, tmp_path / "work")


def _only_error(tmp_path: Path, **changes: str) -> str | None:
    run = _run_lines(tmp_path, [_line(**changes)])
    assert run.rejects.is_empty()
    assert run.output.height == 1
    return run.output["error"][0]


@pytest.fixture
def sample(tmp_path: Path) -> AdapterRun:
    return run_adapter(t4, SAMPLE, tmp_path)


def _row(run: AdapterRun, record_id: str) -> dict[str, Any]:
    rows = run.output.filter(pl.col("record_id") == record_id).to_dicts()
    assert len(rows) == 1
    return rows[0]


# --- a valid file -----------------------------------------------------------


def test_test_personnummer_constants_are_what_they_claim() -> None:
    assert _luhn_valid(PNR_DASH)
    assert _luhn_valid(PNR_PLAIN)
    assert _luhn_valid(SAMORDNINGSNUMMER)
    assert _luhn_valid(PNR_IMPOSSIBLE_DATE)
    assert not _luhn_valid(PNR_BAD_CHECKSUM)


def test_valid_sample_file_loads_every_row_without_error(sample: AdapterRun) -> None:
    assert sample.rejects.is_empty()
    assert sample.row_count == 3
    assert sample.output["error"].to_list() == [None, None, None]
    assert sample.output["source_row"].to_list() == [1, 2, 3]


def test_output_schema_is_the_canonical_record_schema_plus_error(sample: AdapterRun) -> None:
    assert sample.output.schema == adapter_output_schema(RECORD_SCHEMA)


def test_record_id_is_system_prefixed_and_fields_are_read(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5001")
    assert row["source_system"] == "t4"
    assert row["record_version"] == 1
    assert row["delivery_id"] == "t4/2026-11-25/test"
    assert row["patient_id"] == "191212121212"
    assert row["birth_date"] == date(1912, 12, 12)
    assert row["care_unit_hsa_id"] == "SE2321000131-E000000007001"
    assert row["care_unit_name"] == "Folktandvården Centrum"
    assert row["info_type"] == "note"
    assert row["source_code"] == "ANTECKNING"
    assert row["keyword"] is None
    assert row["specialty"] is None
    assert row["signed"] is True
    assert row["retracted"] is False
    assert row["title"] == "Undersökning"


def test_quoted_entry_text_keeps_delimiter_quotes_and_newline(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5001")
    assert row["content"] == 'Karies 16 distalt | "djup"\nÅtgärdas nästa besök.'


def test_utc_time_just_before_midnight_is_the_next_day_in_stockholm(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5001")
    assert row["documented_at"] == datetime(2016, 10, 31, 23, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2016, 11, 1)


def test_summer_offset_plus_two_is_converted_to_utc(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5002")
    assert row["documented_at"] == datetime(2019, 6, 30, 22, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 7, 1)


def test_winter_offset_plus_one_is_converted_to_utc(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5003")
    assert row["documented_at"] == datetime(2019, 10, 31, 23, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 11, 1)


def test_personnummer_without_dash_is_read(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5002")
    assert row["patient_id"] == "194912244474"
    assert row["birth_date"] == date(1949, 12, 24)


def test_samordningsnummer_birth_date_is_the_day_minus_60(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5003")
    assert row["patient_id"] == "198503722384"
    assert row["birth_date"] == date(1985, 3, 12)


def test_unsigned_and_cancelled_flags_are_read(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5002")
    assert row["signed"] is False
    assert row["retracted"] is True


def test_unknown_entry_type_is_other_and_keeps_its_source_code(sample: AdapterRun) -> None:
    row = _row(sample, "t4:T4-5003")
    assert row["error"] is None
    assert row["info_type"] == "other"
    assert row["source_code"] == "TANDSTEN"


def test_every_contract_entry_type_maps_to_its_canonical_type(tmp_path: Path) -> None:
    expected = {
        "ANTECKNING": "note",
        "DIAGNOS": "diagnosis",
        "BESOK": "care_contact",
        "RONTGEN": "x_ray",
        "BEHANDLINGSPLAN": "treatment_plan",
    }
    lines = [_line(journal_id=f"T4-{code}", entry_type=code) for code in expected]
    run = _run_lines(tmp_path, lines)
    assert run.output["error"].to_list() == [None] * len(expected)
    assert run.output["info_type"].to_list() == list(expected.values())


# --- bad rows ---------------------------------------------------------------


def test_unparseable_entry_datetime_is_a_row_error(tmp_path: Path) -> None:
    error = _only_error(tmp_path, entry_datetime="2019-11-31T10:00:00+01:00")
    assert error == "unreadable documentation time"


def test_entry_datetime_without_offset_is_a_row_error(tmp_path: Path) -> None:
    error = _only_error(tmp_path, entry_datetime="2019-11-01T10:00:00")
    assert error == "unreadable documentation time"


def test_personnummer_with_bad_checksum_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, patient_pnr=PNR_BAD_CHECKSUM) == "invalid personnummer"


def test_personnummer_with_impossible_birth_date_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, patient_pnr=PNR_IMPOSSIBLE_DATE) == "invalid personnummer"


def test_non_integer_rev_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, rev="1.5") == "version is not an integer >= 1"


def test_rev_zero_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, rev="0") == "version is not an integer >= 1"


def test_empty_journal_id_is_a_row_error_without_record_id(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [_line(journal_id="")])
    assert run.output["error"][0] == "missing record id"
    assert run.output["record_id"][0] is None


def test_missing_clinic_name_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, clinic_name=" ") == "missing care unit name"


def test_entry_date_after_business_date_is_a_row_error(tmp_path: Path) -> None:
    error = _only_error(tmp_path, entry_datetime="2026-11-25T23:30:00Z")
    assert error == "documentation date after the delivery's business date"


def test_signed_flag_other_than_y_or_n_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, signed="J") == "unreadable signed flag"


def test_cancelled_flag_other_than_y_or_n_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, cancelled="") == "unreadable status"


def test_row_with_too_many_fields_is_rejected_by_the_reader_and_neighbours_load(
    tmp_path: Path,
) -> None:
    run = _run_lines(
        tmp_path,
        [
            _line(journal_id="T4-1"),
            _line(journal_id="T4-2") + "|extra",
            _line(journal_id="T4-3"),
        ],
    )
    assert run.row_count == 3
    assert run.rejects["source_row"].to_list() == [2]
    assert run.rejects["error"].to_list() == ["row has more fields than the header"]
    assert run.output["record_id"].to_list() == ["t4:T4-1", "t4:T4-3"]
    assert run.output["source_row"].to_list() == [1, 3]
    assert run.output["error"].to_list() == [None, None]


def test_row_with_too_few_fields_is_rejected_by_the_reader(tmp_path: Path) -> None:
    short = "|".join(list(BASE_ROW.values())[:-1])
    run = _run_lines(tmp_path, [_line(journal_id="T4-1"), short])
    assert run.rejects["source_row"].to_list() == [2]
    assert run.rejects["error"].to_list() == ["row has fewer fields than the header"]
    assert run.output["source_row"].to_list() == [1]


def test_error_text_never_contains_personnummer_or_journal_text(tmp_path: Path) -> None:
    run = _run_lines(
        tmp_path,
        [
            _line(patient_pnr=PNR_BAD_CHECKSUM),
            _line(entry_datetime="2019-11-01 10:00"),
            _line(rev="x"),
            _line(signed="ja"),
            _line(entry_type=""),
            _line(entry_datetime="2030-01-01T00:00:00Z"),
            _line() + "|extra",
        ],
    )
    errors = [*run.output["error"].to_list(), *run.rejects["error"].to_list()]
    assert len(errors) == 7
    assert all(errors)
    for error in errors:
        for secret in (PNR_DASH, PNR_DASH.replace("-", ""), PNR_BAD_CHECKSUM, TEXT, HEADING):
            assert secret not in error
