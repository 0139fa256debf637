"""Journalia adapter: UTF-8 with BOM, `,`-separated CSV with local times into canonical records."""

from __future__ import annotations

import codecs
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.sources.helpers import SAMPLE_DIR, AdapterRun, run_adapter
from transforms.canonical import RECORD_SCHEMA, adapter_output_schema
from transforms.sources import journalia

SAMPLE = SAMPLE_DIR / "journalia" / "export.csv"

HEADER = ",".join(journalia.FORMAT.columns)

PNR = "198503122387"  # born 1985-03-12
SAMORDNINGSNUMMER = "198503722384"  # day 72 = 12 + 60: born 1985-03-12
PNR_BAD_CHECKSUM = "198503122388"
PNR_MONTH_13 = "198513122385"  # Luhn-valid, month 13
PNR_DAY_32 = "198503322383"  # Luhn-valid, day 32

TITLE = "Årskontroll"
TEXT = "Hemlig journaltext om patienten"

BASE_ROW: dict[str, str] = {
    "id": "J-501",
    "version": "1",
    "pnr": PNR,
    "hsa_id": "SE2321000131-E000000005001",
    "unit_name": "Diabetesmottagningen",
    "doc_kind": "DIABETESANTECKNING",
    "created": "2019-11-01 00:30:15",
    "signed": "1",
    "state": "A",
    "title": TITLE,
    "text": TEXT,
}


def _line(**changes: str) -> str:
    row = {**BASE_ROW, **changes}
    assert list(row) == list(journalia.FORMAT.columns)
    return ",".join(row.values())


def _run_lines(tmp_path: Path, lines: list[str]) -> AdapterRun:
    """A Journalia file as the contract has it: a byte-order mark, then UTF-8."""
    path = tmp_path / "export.csv"
    body = "".join(line + "\r\n" for line in [HEADER, *lines]).encode("utf-8")
    path.write_bytes(codecs.BOM_UTF8 + body)
    return run_adapter(journalia, path, tmp_path / "work")


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
    "J-501,4,198503122387,SE2321000131-E000000005001,Diabetesmottagningen Västerås,"
    "AK-BREV,2019-11-01 00:30:15,0,M,Doseringsbesked – ÅÄÖ,"
    '"Waran 2 tabletter, ""kvällstid"".\r\nNästa PK åäö."'
)
VALID_TEXT = 'Waran 2 tabletter, "kvällstid".\r\nNästa PK åäö.'


def test_valid_row_loads_with_canonical_values(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [VALID_LINE])
    assert run.rejects.is_empty()
    assert run.output.to_dicts() == [
        {
            "record_id": "journalia:J-501",
            "source_system": "journalia",
            "record_version": 4,
            "patient_id": "198503122387",
            "birth_date": date(1985, 3, 12),
            "care_unit_hsa_id": "SE2321000131-E000000005001",
            "care_unit_name": "Diabetesmottagningen Västerås",
            "specialty": None,
            "source_code": "AK-BREV",
            "info_type": "ak_letter",
            "keyword": None,
            # Local 00:30:15 in winter time (UTC+1), seconds kept.
            "documented_at": datetime(2019, 10, 31, 23, 30, 15, tzinfo=UTC),
            "documented_date": date(2019, 11, 1),
            "signed": False,
            "retracted": True,
            "title": "Doseringsbesked – ÅÄÖ",
            "content": VALID_TEXT,
            "delivery_id": "journalia/2026-11-25/test",
            "source_row": 1,
            "error": None,
        }
    ]


def test_output_has_the_canonical_schema_plus_error(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [VALID_LINE])
    assert run.output.schema == adapter_output_schema(RECORD_SCHEMA)


def test_committed_sample_loads_without_errors(tmp_path: Path) -> None:
    assert SAMPLE.read_bytes().startswith(codecs.BOM_UTF8)
    run = run_adapter(journalia, SAMPLE, tmp_path)
    assert run.rejects.is_empty()
    assert run.output["error"].null_count() == run.output.height
    assert run.output.height == run.row_count >= 3


def test_signed_active_codes_read_as_true_and_false(tmp_path: Path) -> None:
    row = _only_row(tmp_path, signed="1", state="A")
    assert (row["signed"], row["retracted"], row["error"]) == (True, False, None)


# --- times --------------------------------------------------------------------


def test_time_in_autumn_repeated_hour_is_the_earlier_instant(tmp_path: Path) -> None:
    row = _only_row(tmp_path, created="2016-10-30 02:30:15")
    assert row["documented_at"] == datetime(2016, 10, 30, 0, 30, 15, tzinfo=UTC)
    assert row["documented_date"] == date(2016, 10, 30)


def test_time_in_spring_gap_is_read_one_hour_on(tmp_path: Path) -> None:
    row = _only_row(tmp_path, created="2019-03-31 02:30:00")
    assert row["error"] is None
    assert row["documented_at"] == datetime(2019, 3, 31, 1, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 3, 31)


def test_summer_time_is_two_hours_ahead_of_utc(tmp_path: Path) -> None:
    row = _only_row(tmp_path, created="2019-07-01 00:30:59")
    assert row["documented_at"] == datetime(2019, 6, 30, 22, 30, 59, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 7, 1)


def test_documentation_on_the_business_date_is_valid(tmp_path: Path) -> None:
    assert _only_error(tmp_path, created="2026-11-25 23:59:59") is None


# --- codes --------------------------------------------------------------------


@pytest.mark.parametrize(("code", "info_type"), sorted(journalia.INFO_TYPES.items()))
def test_doc_kind_maps_to_canonical_type(tmp_path: Path, code: str, info_type: str) -> None:
    row = _only_row(tmp_path, doc_kind=code)
    assert (row["source_code"], row["info_type"], row["error"]) == (code, info_type, None)


def test_unknown_doc_kind_is_other_not_an_error(tmp_path: Path) -> None:
    row = _only_row(tmp_path, doc_kind="INSULINPUMP")
    assert (row["source_code"], row["info_type"], row["error"]) == ("INSULINPUMP", "other", None)


# --- personnummer ---------------------------------------------------------------


def test_samordningsnummer_is_accepted_with_birth_day_minus_60(tmp_path: Path) -> None:
    row = _only_row(tmp_path, pnr=SAMORDNINGSNUMMER)
    assert row["error"] is None
    assert (row["patient_id"], row["birth_date"]) == (SAMORDNINGSNUMMER, date(1985, 3, 12))


@pytest.mark.parametrize(
    "pnr",
    [PNR_BAD_CHECKSUM, PNR_MONTH_13, PNR_DAY_32, "19850312238X", ""],
    ids=["checksum", "month-13", "day-32", "letter", "empty"],
)
def test_invalid_personnummer_is_quarantined(tmp_path: Path, pnr: str) -> None:
    row = _only_row(tmp_path, pnr=pnr)
    assert row["error"] == "invalid personnummer"
    assert row["record_id"] == "journalia:J-501"


# --- bad rows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("created", "2019-11-01 00:30", "unreadable documentation time"),
        ("created", "2019-11-01", "unreadable documentation time"),
        ("created", "2019-11-01T00:30:15", "unreadable documentation time"),
        ("created", "2019-11-01 00:30:15+01:00", "unreadable documentation time"),
        ("created", "2019-11-31 00:30:15", "unreadable documentation time"),
        ("created", "2019-11-01 24:00:00", "unreadable documentation time"),
        ("created", "2019-11-01 00:30:60", "unreadable documentation time"),
        ("created", "", "unreadable documentation time"),
        ("created", "2026-11-26 00:00:00", "documentation date after the delivery's business date"),
        ("version", "1e3", "version is not an integer >= 1"),
        ("version", "0", "version is not an integer >= 1"),
        ("version", "", "version is not an integer >= 1"),
        ("id", "", "missing record id"),
        ("hsa_id", "", "missing care unit HSA-id"),
        ("unit_name", "", "missing care unit name"),
        ("doc_kind", "", "missing information type"),
        ("signed", "true", "unreadable signed flag"),
        ("signed", "J", "unreadable signed flag"),
        ("signed", "2", "unreadable signed flag"),
        ("signed", "", "unreadable signed flag"),
        ("state", "a", "unreadable status"),
        ("state", "R", "unreadable status"),
        ("state", "active", "unreadable status"),
        ("state", "", "unreadable status"),
    ],
)
def test_bad_field_quarantines_the_row_with_a_reason(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    assert _only_error(tmp_path, **{field: value}) == message


def test_error_names_fields_and_quotes_no_value(tmp_path: Path) -> None:
    error = _only_error(tmp_path, pnr=PNR_DAY_32, state="X", version="v2")
    assert error == "version is not an integer >= 1; invalid personnummer; unreadable status"
    for value in (PNR_DAY_32, "v2", TEXT, TITLE):
        assert value not in error


# --- structure (the reader) -------------------------------------------------------


def test_rows_with_wrong_field_counts_are_rejected_and_neighbours_keep_their_row(
    tmp_path: Path,
) -> None:
    too_many = _line(id="J-2") + ",extra"
    too_few = _line(id="J-3").rsplit(",", 1)[0]
    run = _run_lines(
        tmp_path, [_line(id="J-1", text='"två\r\nrader"'), too_many, too_few, _line(id="J-4")]
    )
    assert run.rejects.to_dicts() == [
        {
            "source_row": 2,
            "raw_text": too_many,
            "error": "row has more fields than the header",
            "record_key": "J-2",
            "record_version": "1",
        },
        {
            "source_row": 3,
            "raw_text": too_few,
            "error": "row has fewer fields than the header",
            "record_key": "J-3",
            "record_version": "1",
        },
    ]
    assert run.output.select("record_id", "source_row").rows() == [
        ("journalia:J-1", 1),
        ("journalia:J-4", 4),
    ]
    assert run.row_count == 4
