"""AsynjaVisph adapter: NDJSON lines through the real reader into canonical records."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.sources.helpers import SAMPLE_DIR, AdapterRun, run_adapter
from transforms.canonical import RECORD_SCHEMA, adapter_output_schema
from transforms.sources import asynjavisph

SAMPLE = SAMPLE_DIR / "asynjavisph" / "records.ndjson"

PNR_DASH = "19121212-1212"
PNR_PLAIN = "194912244474"
SAMORDNINGSNUMMER = "19850372-2384"  # born 1985-03-12
PNR_BAD_CHECKSUM = "19121212-1213"
PNR_IMPOSSIBLE_DATE = "19900230-1233"  # Luhn-valid, but 30 February

BODY = "Hemlig journaltext om patienten"
TITLE = "Besöksanteckning"

BASE_RECORD: dict[str, Any] = {
    "id": "AV-1",
    "rev": 1,
    "patient": {"pnr": PNR_DASH},
    "unit": {"hsaId": "SE2321000131-E000000004567", "name": "Vårdcentralen Dalen"},
    "type": "note",
    "keyword": "Bedömning",
    "documentedAt": "2019-11-01T00:30:00+01:00",
    "signed": True,
    "signedAt": "2019-11-01T09:12:00+01:00",
    "retracted": False,
    "title": TITLE,
    "body": BODY,
}

_ABSENT = object()


def _luhn_valid(pnr: str) -> bool:
    digits = [int(c) for c in pnr.replace("-", "")[2:]]
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def _record(**changes: Any) -> dict[str, Any]:
    """BASE_RECORD with top-level keys replaced; `_ABSENT` removes a key."""
    record = copy.deepcopy(BASE_RECORD)
    for key, value in changes.items():
        if value is _ABSENT:
            del record[key]
        else:
            record[key] = value
    return record


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "records.ndjson"
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def _run_lines(tmp_path: Path, lines: list[str]) -> AdapterRun:
    return run_adapter(asynjavisph, _write(tmp_path, lines), tmp_path / "work")


def _run_records(tmp_path: Path, *records: dict[str, Any]) -> AdapterRun:
    return _run_lines(tmp_path, [json.dumps(r, ensure_ascii=False) for r in records])


def _only_error(tmp_path: Path, **changes: Any) -> str | None:
    run = _run_records(tmp_path, _record(**changes))
    assert run.output.height == 1
    return run.output["error"][0]


@pytest.fixture
def sample(tmp_path: Path) -> AdapterRun:
    return run_adapter(asynjavisph, SAMPLE, tmp_path)


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


def test_valid_sample_file_loads_every_line_without_error(sample: AdapterRun) -> None:
    assert sample.rejects.is_empty()
    assert sample.row_count == 3
    assert sample.output["error"].to_list() == [None, None, None]
    assert sample.output["source_row"].to_list() == [1, 2, 3]


def test_output_schema_is_the_canonical_record_schema_plus_error(sample: AdapterRun) -> None:
    assert sample.output.schema == adapter_output_schema(RECORD_SCHEMA)


def test_record_id_is_system_prefixed_and_fields_are_read(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88121")
    assert row["source_system"] == "asynjavisph"
    assert row["record_version"] == 2
    assert row["delivery_id"] == "asynjavisph/2026-11-25/test"
    assert row["info_type"] == "note"
    assert row["source_code"] == "note"
    assert row["keyword"] == "Bedömning"
    assert row["specialty"] is None
    assert row["signed"] is True
    assert row["retracted"] is False
    assert row["title"] == "Besöksanteckning"
    assert row["content"] == 'Mår bra.\nÅter om två veckor, "vid behov".'


def test_nested_patient_and_unit_objects_are_read(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88121")
    assert row["patient_id"] == "191212121212"
    assert row["birth_date"] == date(1912, 12, 12)
    assert row["care_unit_hsa_id"] == "SE2321000131-E000000004567"
    assert row["care_unit_name"] == "Vårdcentralen Dalen"


def test_utc_time_just_before_midnight_is_the_next_day_in_stockholm(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88121")
    assert row["documented_at"] == datetime(2016, 10, 31, 23, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2016, 11, 1)


def test_summer_offset_plus_two_is_converted_to_utc(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88122")
    assert row["documented_at"] == datetime(2019, 6, 30, 22, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 7, 1)


def test_winter_offset_plus_one_is_converted_to_utc(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88123")
    assert row["documented_at"] == datetime(2019, 10, 31, 23, 30, tzinfo=UTC)
    assert row["documented_date"] == date(2019, 11, 1)


def test_personnummer_without_dash_is_read(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88122")
    assert row["patient_id"] == "194912244474"
    assert row["birth_date"] == date(1949, 12, 24)


def test_samordningsnummer_birth_date_is_the_day_minus_60(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88123")
    assert row["patient_id"] == "198503722384"
    assert row["birth_date"] == date(1985, 3, 12)


def test_absent_keyword_and_signed_at_load_as_valid(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88122")
    assert row["error"] is None
    assert row["keyword"] is None


def test_null_keyword_and_signed_at_load_as_valid(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88123")
    assert row["error"] is None
    assert row["keyword"] is None


def test_false_signed_and_true_retracted_are_read(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88122")
    assert row["signed"] is False
    assert row["retracted"] is True


def test_unknown_type_is_other_and_keeps_its_source_code(sample: AdapterRun) -> None:
    row = _row(sample, "asynjavisph:AV-88123")
    assert row["error"] is None
    assert row["info_type"] == "other"
    assert row["source_code"] == "aid_prescription"


def test_every_contract_type_maps_to_itself(tmp_path: Path) -> None:
    codes = [
        "note",
        "diagnosis",
        "attention_signal",
        "care_contact",
        "lab_result",
        "vaccination",
        "medication",
        "referral",
    ]
    records = [_record(id=f"AV-{i}", type=code) for i, code in enumerate(codes)]
    run = _run_records(tmp_path, *records)
    assert run.output["error"].to_list() == [None] * len(codes)
    assert run.output["info_type"].to_list() == codes


def test_key_order_and_white_space_do_not_matter(tmp_path: Path) -> None:
    reordered = dict(reversed(list(_record().items())))
    run = _run_lines(
        tmp_path, ["  " + json.dumps(reordered, indent=None, separators=(" , ", " : "))]
    )
    assert run.output["error"][0] is None
    assert run.output["record_id"][0] == "asynjavisph:AV-1"


# --- bad rows ---------------------------------------------------------------


def test_unparseable_documentation_time_is_a_row_error(tmp_path: Path) -> None:
    error = _only_error(tmp_path, documentedAt="2019-13-01T00:30:00+01:00")
    assert error == "unreadable documentation time"


def test_documentation_time_without_offset_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, documentedAt="2019-11-01T00:30:00") == (
        "unreadable documentation time"
    )


def test_missing_documentation_time_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, documentedAt=_ABSENT) == "unreadable documentation time"


def test_unreadable_signing_time_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, signedAt="igår") == "unreadable signing time"


def test_personnummer_with_bad_checksum_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, patient={"pnr": PNR_BAD_CHECKSUM}) == "invalid personnummer"


def test_personnummer_with_impossible_birth_date_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, patient={"pnr": PNR_IMPOSSIBLE_DATE}) == "invalid personnummer"


def test_missing_patient_object_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, patient=_ABSENT) == "invalid personnummer"


def test_fractional_rev_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, rev=2.5) == "version is not an integer >= 1"


def test_rev_written_as_a_string_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, rev="2") == "version is not an integer >= 1"


def test_rev_zero_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, rev=0) == "version is not an integer >= 1"


def test_empty_id_is_a_row_error_without_record_id(tmp_path: Path) -> None:
    run = _run_records(tmp_path, _record(id=""))
    assert run.output["error"][0] == "missing record id"
    assert run.output["record_id"][0] is None


def test_missing_unit_hsa_id_is_a_row_error(tmp_path: Path) -> None:
    error = _only_error(tmp_path, unit={"name": "Vårdcentralen Dalen"})
    assert error == "missing care unit HSA-id"


def test_missing_type_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, type=None) == "missing information type"


def test_documentation_date_after_business_date_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, documentedAt="2026-11-26T08:00:00+01:00") == (
        "documentation date after the delivery's business date"
    )


def test_late_evening_utc_on_business_date_is_already_the_next_local_day(tmp_path: Path) -> None:
    # 2026-11-25 23:30 UTC is 2026-11-26 00:30 in Stockholm: after the business date.
    assert _only_error(tmp_path, documentedAt="2026-11-25T23:30:00Z") == (
        "documentation date after the delivery's business date"
    )


def test_documentation_on_the_business_date_is_valid(tmp_path: Path) -> None:
    assert _only_error(tmp_path, documentedAt="2026-11-25T22:59:59Z") is None


def test_signed_written_as_a_string_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, signed="true") == "unreadable signed flag"


def test_signed_as_a_number_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, signed=1) == "unreadable signed flag"


def test_missing_retracted_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, retracted=_ABSENT) == "unreadable status"


def test_null_retracted_is_a_row_error(tmp_path: Path) -> None:
    assert _only_error(tmp_path, retracted=None) == "unreadable status"


def test_malformed_json_line_is_a_row_error_without_record_id(tmp_path: Path) -> None:
    line = json.dumps(_record())[:-1]  # the closing brace is lost
    run = _run_lines(tmp_path, [line])
    assert "not a JSON object" in run.output["error"][0]
    assert run.output["record_id"][0] is None


def test_json_array_line_is_not_a_json_object(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [json.dumps([_record()])])
    assert "not a JSON object" in run.output["error"][0]


def test_blank_and_white_space_lines_are_not_rows(tmp_path: Path) -> None:
    # sources.md (clarified): skipped, not counted against `rows`, not quarantined.
    valid = json.dumps(_record())
    run = _run_lines(tmp_path, [valid, "", "  \t ", valid.replace("AV-1", "AV-2"), " "])
    assert run.row_count == 2
    assert run.output["source_row"].to_list() == [1, 2]
    assert run.output["error"].to_list() == [None, None]
    assert run.rejects.is_empty()


def test_line_with_white_space_before_its_object_is_a_row(tmp_path: Path) -> None:
    # Only a line of nothing but white space is blank; the filter looks past a
    # line's first byte only when it is not an opening brace.
    valid = json.dumps(_record())
    run = _run_lines(tmp_path, [" \t" + valid, "\t", valid.replace("AV-1", "AV-2")])
    assert run.row_count == 2
    assert run.output["source_row"].to_list() == [1, 2]


def test_rejected_row_after_blank_lines_keeps_its_row_position(tmp_path: Path) -> None:
    valid = json.dumps(_record())
    too_long = json.dumps(_record(id="AV-9", body="x" * (9 << 20)))
    run = _run_lines(tmp_path, [valid, "", "   ", too_long, valid.replace("AV-1", "AV-3")])
    assert run.row_count == 3
    assert run.rejects["source_row"].to_list() == [2]
    assert run.output["source_row"].to_list() == [1, 3]


# --- duplicate keys (never guess which one is meant) -------------------------


def _with_duplicate(key: str, first: str, second: str) -> str:
    """A valid line with `key` written twice: `"key": first, "key": second`."""
    line = json.dumps(_record(), ensure_ascii=False)
    needle = f'"{key}": '
    start = line.index(needle)
    value_end = line.index(",", start)
    return line[:start] + f"{needle}{first}, {needle}{second}" + line[value_end:]


@pytest.mark.parametrize(
    ("key", "first", "second"),
    [("rev", "1", "2"), ("retracted", "false", "true"), ("signed", "true", "false")],
)
def test_top_level_key_written_twice_is_a_row_error_with_the_record_id(
    tmp_path: Path, key: str, first: str, second: str
) -> None:
    run = _run_lines(tmp_path, [_with_duplicate(key, first, second)])
    assert "duplicate key in the JSON object" in run.output["error"][0]
    assert run.output["record_id"][0] == "asynjavisph:AV-1"


@pytest.mark.parametrize("key", ["pnr", "hsaId"])
def test_nested_key_written_twice_is_a_row_error(tmp_path: Path, key: str) -> None:
    line = json.dumps(_record(), ensure_ascii=False)
    value_start = line.index(f'"{key}": ')
    value_end = line.index("}", value_start)
    repeated = line[value_start:value_end]
    run = _run_lines(tmp_path, [line[:value_end] + ", " + repeated + line[value_end:]])
    assert "duplicate key in the JSON object" in run.output["error"][0]
    assert run.output["record_id"][0] == "asynjavisph:AV-1"


def test_key_written_twice_with_an_escape_is_a_duplicate(tmp_path: Path) -> None:
    line = _with_duplicate("rev", "1", "2").replace('"rev": 2', '"r\\u0065v": 2')
    run = _run_lines(tmp_path, [line])
    assert "duplicate key in the JSON object" in run.output["error"][0]


def test_id_written_twice_is_unreadable(tmp_path: Path) -> None:
    run = _run_lines(tmp_path, [_with_duplicate("id", '"AV-1"', '"AV-2"')])
    assert "duplicate key in the JSON object" in run.output["error"][0]
    assert run.output["record_id"][0] is None


def test_object_written_twice_leaves_every_field_below_it_unread(tmp_path: Path) -> None:
    line = json.dumps(_record(), ensure_ascii=False)
    start = line.index('"patient": ')
    end = line.index("}", start) + 1
    twice = line[:end] + ", " + line[start:end] + line[end:]
    run = _run_lines(tmp_path, [twice])
    assert "duplicate key in the JSON object" in run.output["error"][0]
    assert run.output["patient_id"][0] is None
    assert run.output["record_id"][0] == "asynjavisph:AV-1"


def test_unknown_key_written_twice_is_a_duplicate(tmp_path: Path) -> None:
    line = json.dumps(_record(), ensure_ascii=False)
    run = _run_lines(tmp_path, ['{"extra": 1, "extra": 2, ' + line[1:]])
    assert "duplicate key in the JSON object" in run.output["error"][0]
    assert run.output["record_id"][0] == "asynjavisph:AV-1"


def test_a_key_written_twice_leaves_the_lines_beside_it_whole(tmp_path: Path) -> None:
    run = _run_lines(
        tmp_path,
        [
            json.dumps(_record(id="AV-1", rev=3)),
            _with_duplicate("rev", "1", "2"),
            json.dumps(_record(id="AV-3", rev=4)),
        ],
    )
    assert run.valid["record_id"].to_list() == ["asynjavisph:AV-1", "asynjavisph:AV-3"]
    assert run.valid["record_version"].to_list() == [3, 4]
    assert run.invalid["source_row"].to_list() == [2]
    assert run.invalid["record_version"].to_list() == [None]


def test_one_key_written_twice_among_fifty_thousand_is_found(tmp_path: Path) -> None:
    many = "".join(f'"k{number}": {number}, ' for number in range(50_000))
    line = json.dumps(_record(), ensure_ascii=False)
    run = _run_lines(
        tmp_path,
        ["{" + many + line[1:], '{"k7": 0, ' + many + line[1:]],
    )
    assert run.output["error"][0] is None
    assert "duplicate key in the JSON object" in run.output["error"][1]
    assert run.output["record_id"].to_list() == ["asynjavisph:AV-1"] * 2


def test_unknown_key_written_once_is_not_a_duplicate(tmp_path: Path) -> None:
    record = _record()
    record["extra"] = {"rev": 5}
    run = _run_records(tmp_path, record)
    assert run.output["error"][0] is None


def test_bad_lines_do_not_stop_their_neighbours_loading(tmp_path: Path) -> None:
    run = _run_lines(
        tmp_path,
        [
            json.dumps(_record(id="AV-1")),
            "{ this is not json",
            json.dumps(_record(id="AV-3", rev=0)),
            json.dumps(_record(id="AV-4")),
        ],
    )
    assert run.rejects.is_empty()
    assert run.valid["record_id"].to_list() == ["asynjavisph:AV-1", "asynjavisph:AV-4"]
    assert run.valid["source_row"].to_list() == [1, 4]
    assert run.invalid["source_row"].to_list() == [2, 3]
    # A bad version still names its record, so the record can be hidden.
    assert run.invalid["record_id"].to_list() == [None, "asynjavisph:AV-3"]


def test_error_text_never_contains_personnummer_or_journal_text(tmp_path: Path) -> None:
    bad = [
        _record(patient={"pnr": PNR_BAD_CHECKSUM}),
        _record(documentedAt="2019-11-01 00:30"),
        _record(rev="x"),
        _record(signed="ja"),
        _record(type=""),
        _record(documentedAt="2030-01-01T00:00:00Z"),
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in bad]
    lines.append(json.dumps(_record(), ensure_ascii=False)[:-1])
    run = _run_lines(tmp_path, lines)
    errors = run.output["error"].to_list()
    assert all(errors)
    for error in errors:
        for secret in (PNR_DASH, PNR_DASH.replace("-", ""), PNR_BAD_CHECKSUM, BODY, TITLE):
            assert secret not in error
        assert PNR_DASH[2:8] not in error
