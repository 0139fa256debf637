"""Obstetrix adapter: UTF-8, `,`-separated CSV with date-only times into canonical records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.sources.helpers import SAMPLE_DIR, AdapterRun, run_adapter
from transforms.canonical import RECORD_SCHEMA, adapter_output_schema
from transforms.sources import obstetrix

SAMPLE = SAMPLE_DIR / "obstetrix" / "journal.csv"

HEADER = ",".join(obstetrix.FORMAT.columns)

PNR = "198503122387"  # born 1985-03-12
SAMORDNINGSNUMMER = "198503722384"  # day 72 = 12 + 60: born 1985-03-12
PNR_BAD_CHECKSUM = "198503122388"
PNR_MONTH_13 = "198513122385"  # Luhn-valid, month 13
PNR_DAY_32 = "198503322383"  # Luhn-valid, day 32

TITLE = "Graviditetssammanfattning"
TEXT = "Hemlig journaltext om patienten"

BASE_ROW: dict[str, str] = {
    "record_id": "OB-7001",
    "version": "1",
    "personal_number": PNR,
    "unit_hsa_id": "SE2321000131-E000000003001",
    "unit_name": "Kvinnokliniken Mälarsjukhuset",
    "document_type": "ANTECKNING",
    "document_date": "2019-11-01",
    "signed": "true",
    "status": "active",
    "title": TITLE,
    "text": TEXT,
}


def _line(**changes: str) -> str:
    row = {**BASE_ROW, **changes}
    assert list(row) == list(obstetrix.FORMAT.columns)
    return ",".join(row.values())


def _run_lines(tmp_path: Path, lines: list[str]) -> AdapterRun:
    path = tmp_path / "journal.csv"
    path.write_bytes("".join(line + "\n" for line in [HEADER, *lines]).encode("utf-8"))
    return run_adapter(obstetrix, path, tmp_path / "work")


def _only_row(tmp_path: Path, **changes: str) -> dict[str, Any]:
    run = _run_lines(tmp_path, [_line(**changes)])
    assert run.rejects.is_empty()
    assert run.output.height == 1
    return run.output.to_dicts()[0]


def _only_error(tmp_path: Path, **changes: str) -> str | None:
    error: str | None = _only_row(tmp_path, **changes)["error"]
    return error


# --- a valid file -----------------------------------------------------------

VALID_LINE = (
    "OB-7001,3,198503122387,SE2321000131-E000000003001,Kvinnokliniken Mälarsjukhuset,"
    "SAMMANFATTNING,2019-11-01,true,active,Sammanfattning – ÅÄÖ,"
    '"Förstföderska, vecka 38.\nBlodtryck ""normalt"" åäö."'
)
VALID_TEXT = 'Förstföderska, vecka 38.\nBlodtryck "normalt" åäö.'


def test_valid_row_loads_with_canonical_values(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [VALID_LINE])
    assert run.rejects.is_empty()
    assert run.output.to_dicts() == [
        {
            "record_id": "obstetrix:OB-7001",
            "source_system": "obstetrix",
            "record_version": 3,
            "patient_id": "198503122387",
            "birth_date": date(1985, 3, 12),
            "care_unit_hsa_id": "SE2321000131-E000000003001",
            "care_unit_name": "Kvinnokliniken Mälarsjukhuset",
            "specialty": None,
            "source_code": "SAMMANFATTNING",
            "info_type": "journal_summary",
            "keyword": None,
            # Local midnight in winter time (UTC+1).
            "documented_at": datetime(2019, 10, 31, 23, 0, tzinfo=UTC),
            "documented_date": date(2019, 11, 1),
            "signed": True,
            "retracted": False,
            "title": "Sammanfattning – ÅÄÖ",
            "content": VALID_TEXT,
            "delivery_id": "obstetrix/2026-11-25/test",
            "source_row": 1,
            "error": None,
        }
    ]


def test_output_has_the_canonical_schema_plus_error(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [VALID_LINE])
    assert run.output.schema == adapter_output_schema(RECORD_SCHEMA)


def test_committed_sample_loads_without_errors(tmp_path: Path) -> None:
    run = run_adapter(obstetrix, SAMPLE, tmp_path)
    assert run.rejects.is_empty()
    assert run.output["error"].null_count() == run.output.height
    assert run.output.height == run.row_count >= 3


def test_unsigned_and_retracted_flags_read_as_false_and_true(tmp_path: Path) -> None:
    row = _only_row(tmp_path, signed="false", status="retracted")
    assert (row["signed"], row["retracted"], row["error"]) == (False, True, None)


# --- date-only documentation times --------------------------------------------------


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("2019-01-15", datetime(2019, 1, 14, 23, 0, tzinfo=UTC)),  # winter time
        ("2019-07-01", datetime(2019, 6, 30, 22, 0, tzinfo=UTC)),  # summer time
        ("2019-03-31", datetime(2019, 3, 30, 23, 0, tzinfo=UTC)),  # spring switch day
        ("2016-10-30", datetime(2016, 10, 29, 22, 0, tzinfo=UTC)),  # autumn switch day
    ],
)
def test_document_date_is_local_midnight_and_keeps_its_date(
    tmp_path: Path, written: str, utc: datetime
) -> None:
    row = _only_row(tmp_path, document_date=written)
    assert row["error"] is None
    assert row["documented_at"] == utc
    assert row["documented_date"] == date.fromisoformat(written)


def test_document_date_equal_to_business_date_is_valid(tmp_path: Path) -> None:
    assert _only_error(tmp_path, document_date="2026-11-25") is None


# --- codes --------------------------------------------------------------------


@pytest.mark.parametrize(("code", "info_type"), sorted(obstetrix.INFO_TYPES.items()))
def test_document_type_maps_to_canonical_type(tmp_path: Path, code: str, info_type: str) -> None:
    row = _only_row(tmp_path, document_type=code)
    assert (row["source_code"], row["info_type"], row["error"]) == (code, info_type, None)


def test_unknown_document_type_is_other_not_an_error(tmp_path: Path) -> None:
    row = _only_row(tmp_path, document_type="ULTRALJUD")
    assert (row["source_code"], row["info_type"], row["error"]) == ("ULTRALJUD", "other", None)


# --- personnummer ---------------------------------------------------------------


def test_samordningsnummer_is_accepted_with_birth_day_minus_60(tmp_path: Path) -> None:
    row = _only_row(tmp_path, personal_number=SAMORDNINGSNUMMER)
    assert row["error"] is None
    assert (row["patient_id"], row["birth_date"]) == (SAMORDNINGSNUMMER, date(1985, 3, 12))


@pytest.mark.parametrize(
    "pnr",
    [PNR_BAD_CHECKSUM, PNR_MONTH_13, PNR_DAY_32, "8503122387", ""],
    ids=["checksum", "month-13", "day-32", "10-digits", "empty"],
)
def test_invalid_personnummer_is_quarantined(tmp_path: Path, pnr: str) -> None:
    row = _only_row(tmp_path, personal_number=pnr)
    assert row["error"] == "invalid personnummer"
    assert row["record_id"] == "obstetrix:OB-7001"


# --- bad rows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("document_date", "2019-11-01 10:00", "unreadable documentation time"),
        ("document_date", "2019-02-29", "unreadable documentation time"),
        ("document_date", "2019-13-01", "unreadable documentation time"),
        ("document_date", "01/11/2019", "unreadable documentation time"),
        ("document_date", "2019-11-1", "unreadable documentation time"),
        ("document_date", "", "unreadable documentation time"),
        ("document_date", "2026-11-26", "documentation date after the delivery's business date"),
        ("version", "2.0", "version is not an integer >= 1"),
        ("version", "0", "version is not an integer >= 1"),
        ("version", "", "version is not an integer >= 1"),
        ("record_id", "", "missing record id"),
        ("unit_hsa_id", "", "missing care unit HSA-id"),
        ("unit_name", "", "missing care unit name"),
        ("document_type", "", "missing information type"),
        ("signed", "True", "unreadable signed flag"),
        ("signed", "1", "unreadable signed flag"),
        ("signed", "J", "unreadable signed flag"),
        ("signed", "", "unreadable signed flag"),
        ("status", "Active", "unreadable status"),
        ("status", "AKTIV", "unreadable status"),
        ("status", "A", "unreadable status"),
        ("status", "", "unreadable status"),
    ],
)
def test_bad_field_quarantines_the_row_with_a_reason(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    assert _only_error(tmp_path, **{field: value}) == message


def test_error_names_fields_and_quotes_no_value(tmp_path: Path) -> None:
    error = _only_error(tmp_path, personal_number=PNR_BAD_CHECKSUM, document_date="igår")
    assert error == "invalid personnummer; unreadable documentation time"
    for value in (PNR_BAD_CHECKSUM, "igår", TEXT, TITLE):
        assert value not in error


# --- structure (the reader) -------------------------------------------------------


def test_rows_with_wrong_field_counts_are_rejected_and_neighbours_keep_their_row(
    tmp_path: Path,
) -> None:
    too_many = _line(record_id="OB-2") + ",extra"
    too_few = _line(record_id="OB-4").rsplit(",", 1)[0]
    run = _run_lines(
        tmp_path,
        [
            _line(record_id="OB-1", text='"två\nrader"'),
            too_many,
            _line(record_id="OB-3"),
            too_few,
            _line(record_id="OB-5"),
        ],
    )
    assert run.rejects.to_dicts() == [
        {
            "source_row": 2,
            "raw_text": too_many,
            "error": "row has more fields than the header",
            "record_key": "OB-2",
            "record_version": "1",
        },
        {
            "source_row": 4,
            "raw_text": too_few,
            "error": "row has fewer fields than the header",
            "record_key": "OB-4",
            "record_version": "1",
        },
    ]
    assert run.output.select("record_id", "source_row").rows() == [
        ("obstetrix:OB-1", 1),
        ("obstetrix:OB-3", 3),
        ("obstetrix:OB-5", 5),
    ]
    assert run.row_count == 5
