"""Melior adapter: Windows-1252 `;`-separated CSV via the real reader into canonical records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.sources.helpers import SAMPLE_DIR, AdapterRun, run_adapter
from transforms.canonical import RECORD_SCHEMA, DeliveryContext, adapter_output_schema
from transforms.sources import melior

SAMPLE = SAMPLE_DIR / "melior" / "journal.csv"

HEADER = ";".join(melior.FORMAT.columns)

PNR = "198503122387"  # born 1985-03-12
SAMORDNINGSNUMMER = "198503722384"  # day 72 = 12 + 60: born 1985-03-12
PNR_BAD_CHECKSUM = "198503122388"
PNR_MONTH_13 = "198513122385"  # Luhn-valid, month 13
PNR_DAY_32 = "198503322383"  # Luhn-valid, day 32
PNR_DAY_0 = "198503002381"  # Luhn-valid, day 00
PNR_29_FEB_1986 = "198602291232"  # Luhn-valid, 1986 is no leap year
PNR_SAMORDNING_DAY_92 = "198503922380"  # Luhn-valid, day 92 - 60 = 32

TITLE = "Inskrivning"
TEXT = "Hemlig journaltext om patienten"

BASE_ROW: dict[str, str] = {
    "DokumentID": "D-1000234",
    "Version": "2",
    "Personnummer": PNR,
    "HSAid": "SE2321000131-E000000000001",
    "Enhetsnamn": "Kirurgkliniken Västerås",
    "Specialitet": "Internmedicin",
    "Informationstyp": "ANTECKNING",
    "Sokord": "Bedömning",
    "Dokumenttid": "2019-11-01 00:30",
    "Signerad": "J",
    "Signeringstid": "2019-11-01 09:12",
    "Status": "AKTIV",
    "Rubrik": TITLE,
    "Text": TEXT,
}


def _line(**changes: str) -> str:
    row = {**BASE_ROW, **changes}
    assert list(row) == list(melior.FORMAT.columns)
    return ";".join(row.values())


def _write(tmp_path: Path, lines: list[str]) -> Path:
    """A Melior file as the contract has it: Windows-1252 bytes, CRLF line ends."""
    path = tmp_path / "journal.csv"
    path.write_bytes("".join(line + "\r\n" for line in [HEADER, *lines]).encode("cp1252"))
    return path


def _run_lines(
    tmp_path: Path, lines: list[str], business_date: date = date(2026, 11, 25)
) -> AdapterRun:
    return run_adapter(melior, _write(tmp_path, lines), tmp_path / "work", business_date)


def _only_row(tmp_path: Path, **changes: str) -> dict[str, Any]:
    run = _run_lines(tmp_path, [_line(**changes)])
    assert run.rejects.is_empty()
    assert run.output.height == 1
    return run.output.to_dicts()[0]


def _only_error(tmp_path: Path, **changes: str) -> str | None:
    error: str | None = _only_row(tmp_path, **changes)["error"]
    return error


# --- a valid file -----------------------------------------------------------

# Hand-written in the contract's exact shape: `;` and doubled quotes inside a quoted
# field, a quoted CRLF, Windows-1252 characters outside Latin-1 (€, curly quotes, –).
VALID_LINE = (
    "D-1000234;2;198503122387;SE2321000131-E000000000001;Kirurgkliniken Västerås;"
    "Psykiatri, vuxen;ANTECKNING;Bedömning;2019-11-01 00:30;J;2019-11-01 09:12;AKTIV;"
    "Inskrivning – ÅÄÖ;"
    '"Pat. säger: ""ont i magen""; kostnad 200 €.\r\n“Citat” ‘enkla’ åäöÅÄÖ"'
)
VALID_TEXT = 'Pat. säger: "ont i magen"; kostnad 200 €.\r\n“Citat” ‘enkla’ åäöÅÄÖ'


def test_file_is_written_in_windows_1252_with_bytes_latin_1_lacks(tmp_path: Path) -> None:
    data = _write(tmp_path, [VALID_LINE]).read_bytes()
    assert b"\x80" in data  # €
    assert b"\x93" in data and b"\x94" in data  # curly double quotes
    assert b"\r\n" in data


def test_valid_row_loads_with_canonical_values(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [VALID_LINE])
    assert run.rejects.is_empty()
    assert run.output.to_dicts() == [
        {
            "record_id": "melior:D-1000234",
            "source_system": "melior",
            "record_version": 2,
            "patient_id": "198503122387",
            "birth_date": date(1985, 3, 12),
            "care_unit_hsa_id": "SE2321000131-E000000000001",
            "care_unit_name": "Kirurgkliniken Västerås",
            "specialty": "Psykiatri, vuxen",
            "source_code": "ANTECKNING",
            "info_type": "note",
            "keyword": "Bedömning",
            # Local 00:30 in winter time (UTC+1) is the evening before in UTC.
            "documented_at": datetime(2019, 10, 31, 23, 30, tzinfo=UTC),
            "documented_date": date(2019, 11, 1),
            "signed": True,
            "retracted": False,
            "title": "Inskrivning – ÅÄÖ",
            "content": VALID_TEXT,
            "delivery_id": "melior/2026-11-25/test",
            "source_row": 1,
            "error": None,
        }
    ]


def test_output_has_the_canonical_schema_plus_error(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [VALID_LINE])
    assert run.output.schema == adapter_output_schema(RECORD_SCHEMA)


def test_to_canonical_is_lazy() -> None:
    raw = pl.LazyFrame(
        {name: [BASE_ROW[name]] for name in melior.FORMAT.columns} | {"source_row": [1]}
    )
    context = DeliveryContext("melior/2026-11-25/x", "melior", date(2026, 11, 25))
    assert isinstance(melior.to_canonical(raw, context), pl.LazyFrame)


def test_committed_sample_loads_without_errors(tmp_path: Path) -> None:
    run = run_adapter(melior, SAMPLE, tmp_path)
    assert run.rejects.is_empty()
    assert run.output["error"].null_count() == run.output.height
    assert run.output.height == run.row_count >= 3


def test_empty_keyword_and_signing_time_are_null_not_errors(tmp_path: Path) -> None:
    row = _only_row(tmp_path, Sokord="", Signeringstid="", Signerad="N")
    assert row["error"] is None
    assert row["keyword"] is None
    assert row["signed"] is False


def test_retracted_status_reads_as_retracted(tmp_path: Path) -> None:
    row = _only_row(tmp_path, Status="MAKULERAD")
    assert row["error"] is None
    assert row["retracted"] is True


# --- times --------------------------------------------------------------------


def test_time_in_autumn_repeated_hour_is_the_earlier_instant(tmp_path: Path) -> None:
    # 2016-10-30 02:30 happened twice (CEST, then CET): the first, 00:30 UTC.
    row = _only_row(tmp_path, Dokumenttid="2016-10-30 02:30")
    assert row["documented_at"] == datetime(2016, 10, 30, 0, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2016, 10, 30)


def test_time_in_spring_gap_is_read_one_hour_on(tmp_path: Path) -> None:
    # No clock showed 2019-03-31 02:30: read as 03:30 CEST = 01:30 UTC, same local date.
    row = _only_row(tmp_path, Dokumenttid="2019-03-31 02:30")
    assert row["error"] is None
    assert row["documented_at"] == datetime(2019, 3, 31, 1, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 3, 31)


def test_summer_time_is_two_hours_ahead_of_utc(tmp_path: Path) -> None:
    row = _only_row(tmp_path, Dokumenttid="2019-07-01 00:30")
    assert row["documented_at"] == datetime(2019, 6, 30, 22, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 7, 1)


def test_documentation_on_the_business_date_is_valid(tmp_path: Path) -> None:
    assert _only_error(tmp_path, Dokumenttid="2026-11-25 23:59") is None


# --- codes --------------------------------------------------------------------


@pytest.mark.parametrize(("code", "info_type"), sorted(melior.INFO_TYPES.items()))
def test_information_type_code_maps_to_canonical_type(
    tmp_path: Path, code: str, info_type: str
) -> None:
    row = _only_row(tmp_path, Informationstyp=code)
    assert (row["source_code"], row["info_type"], row["error"]) == (code, info_type, None)


def test_unknown_information_type_is_other_not_an_error(tmp_path: Path) -> None:
    row = _only_row(tmp_path, Informationstyp="VACCINATION")
    assert (row["source_code"], row["info_type"], row["error"]) == ("VACCINATION", "other", None)


# --- personnummer ---------------------------------------------------------------


def test_samordningsnummer_is_accepted_with_birth_day_minus_60(tmp_path: Path) -> None:
    row = _only_row(tmp_path, Personnummer=SAMORDNINGSNUMMER)
    assert row["error"] is None
    assert row["patient_id"] == SAMORDNINGSNUMMER
    assert row["birth_date"] == date(1985, 3, 12)


def test_dashed_personnummer_reads_as_the_same_12_digits(tmp_path: Path) -> None:
    row = _only_row(tmp_path, Personnummer="19850312-2387")
    assert (row["patient_id"], row["error"]) == (PNR, None)


@pytest.mark.parametrize(
    "pnr",
    [
        PNR_BAD_CHECKSUM,
        PNR_MONTH_13,
        PNR_DAY_32,
        PNR_DAY_0,
        PNR_29_FEB_1986,
        PNR_SAMORDNING_DAY_92,
        PNR[:-1],
        "8503122387",
        "",
    ],
    ids=[
        "checksum",
        "month-13",
        "day-32",
        "day-0",
        "29-feb-1986",
        "samordning-day-92",
        "11-digits",
        "10-digits",
        "empty",
    ],
)
def test_invalid_personnummer_is_quarantined(tmp_path: Path, pnr: str) -> None:
    row = _only_row(tmp_path, Personnummer=pnr)
    assert row["error"] == "invalid personnummer"
    assert row["patient_id"] is None
    assert row["record_id"] == "melior:D-1000234"  # readable: the record is hidden


# --- bad rows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Dokumenttid", "2016-13-01 10:00", "unreadable documentation time"),
        ("Dokumenttid", "2019-02-29 10:00", "unreadable documentation time"),
        ("Dokumenttid", "2019-11-01T00:30", "unreadable documentation time"),
        ("Dokumenttid", "2019-11-01 00:30:00", "unreadable documentation time"),
        ("Dokumenttid", "2019-11-1 0:30", "unreadable documentation time"),
        ("Dokumenttid", "2019-11-01", "unreadable documentation time"),
        ("Dokumenttid", "", "unreadable documentation time"),
        (
            "Dokumenttid",
            "2026-11-26 00:10",
            "documentation date after the delivery's business date",
        ),
        ("Signeringstid", "igår", "unreadable signing time"),
        ("Version", "1.5", "version is not an integer >= 1"),
        ("Version", "0", "version is not an integer >= 1"),
        ("Version", "-1", "version is not an integer >= 1"),
        ("Version", "två", "version is not an integer >= 1"),
        ("Version", "", "version is not an integer >= 1"),
        ("DokumentID", "", "missing record id"),
        ("HSAid", "", "missing care unit HSA-id"),
        ("Enhetsnamn", "", "missing care unit name"),
        ("Informationstyp", "", "missing information type"),
        ("Signerad", "j", "unreadable signed flag"),
        ("Signerad", "Y", "unreadable signed flag"),
        ("Signerad", "1", "unreadable signed flag"),
        ("Signerad", "true", "unreadable signed flag"),
        ("Signerad", "", "unreadable signed flag"),
        ("Status", "Aktiv", "unreadable status"),
        ("Status", "M", "unreadable status"),
        ("Status", "retracted", "unreadable status"),
        ("Status", "", "unreadable status"),
    ],
)
def test_bad_field_quarantines_the_row_with_a_reason(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    assert _only_error(tmp_path, **{field: value}) == message


def test_bad_row_keeps_its_record_id_and_version_when_readable(tmp_path: Path) -> None:
    row = _only_row(tmp_path, Dokumenttid="igår")
    assert (row["record_id"], row["record_version"]) == ("melior:D-1000234", 2)


def test_row_without_id_has_no_record_id(tmp_path: Path) -> None:
    row = _only_row(tmp_path, DokumentID=" ")
    assert row["error"] == "missing record id"
    assert row["record_id"] is None


def test_every_problem_is_named_and_no_value_is_quoted(tmp_path: Path) -> None:
    error = _only_error(
        tmp_path,
        Personnummer=PNR_BAD_CHECKSUM,
        Version="x1",
        Dokumenttid="2019-13-01 10:00",
        Signerad="ja",
        Status="Borttagen",
    )
    assert error is not None
    assert error.split("; ") == [
        "version is not an integer >= 1",
        "invalid personnummer",
        "unreadable documentation time",
        "unreadable signed flag",
        "unreadable status",
    ]
    for value in (PNR_BAD_CHECKSUM, "x1", "2019-13-01", "ja", "Borttagen", TEXT, TITLE):
        assert value not in error


def test_bad_row_does_not_stop_its_neighbours(tmp_path: Path) -> None:
    run = _run_lines(
        tmp_path,
        [_line(DokumentID="D-1"), _line(DokumentID="D-2", Version="x"), _line(DokumentID="D-3")],
    )
    assert run.valid["record_id"].to_list() == ["melior:D-1", "melior:D-3"]
    assert run.invalid["source_row"].to_list() == [2]


# --- structure (the reader) -------------------------------------------------------


def test_row_with_too_many_fields_is_rejected_and_neighbours_keep_their_row(
    tmp_path: Path,
) -> None:
    multi_line = _line(DokumentID="D-1", Text='"rad ett\r\nrad två"')
    run = _run_lines(
        tmp_path,
        [multi_line, _line(DokumentID="D-2") + ";extra", _line(DokumentID="D-3")],
    )
    assert run.rejects.to_dicts() == [
        {
            "source_row": 2,
            "raw_text": _line(DokumentID="D-2") + ";extra",
            "error": "row has more fields than the header",
            "record_key": "D-2",
            "record_version": "2",
        }
    ]
    assert run.output.select("record_id", "source_row").rows() == [
        ("melior:D-1", 1),
        ("melior:D-3", 3),
    ]
    assert run.row_count == 3


def test_row_with_too_few_fields_is_rejected_and_neighbours_keep_their_row(
    tmp_path: Path,
) -> None:
    short = _line(DokumentID="D-2").rsplit(";", 1)[0]
    run = _run_lines(tmp_path, [_line(DokumentID="D-1"), short, _line(DokumentID="D-3")])
    assert run.rejects.select("source_row", "error").rows() == [
        (2, "row has fewer fields than the header")
    ]
    assert run.output.select("record_id", "source_row").rows() == [
        ("melior:D-1", 1),
        ("melior:D-3", 3),
    ]
