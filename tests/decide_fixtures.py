"""Builders for decide and schema tests: one record or block at a time, sane defaults.

`record()` is a record that the default rules show (an adult's signed note at
an ordinary hospital unit, documented well after every start date); each test
overrides only the fields its behaviour is about. `block()` is an active ALL
block for that record's patient, holding on `AS_OF`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from transforms.canonical import BLOCK_SCHEMA, RECORD_SCHEMA
from transforms.decide import decide
from transforms.rules import RuleSet, default_rules_path, load_rules

AS_OF = date(2024, 6, 1)
PATIENT = "198503122384"
OTHER_PATIENT = "191212121212"
UNIT_HSA = "SE2321000131-E000000000100"
OTHER_UNIT_HSA = "SE2321000131-E000000000200"
LISTED_EXEMPT_HSA = "SE2321000131-E000000011007"  # Kris och traumaenheten
SCOPE_UNIT_HSA = "SE2321000131-E000000077001"  # in EXTENDED_RULES' later scope by unit

RECORD_COLUMNS = pl.Schema({**RECORD_SCHEMA, "invalid": pl.Boolean})
BLOCK_COLUMNS = pl.Schema({**BLOCK_SCHEMA, "invalid": pl.Boolean})


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The region's default rule file, loaded once per test session."""
    return load_rules(default_rules_path())


def record(**overrides: Any) -> dict[str, Any]:
    """A record the default rules show, with `overrides` applied.

    Overriding `documented_date` alone also moves `documented_at` to noon UTC
    that day, so the two never disagree by accident.
    """
    documented_date = overrides.get("documented_date", date(2021, 3, 15))
    documented_at = (
        datetime(documented_date.year, documented_date.month, documented_date.day, 12, tzinfo=UTC)
        if documented_date is not None
        else None
    )
    values: dict[str, Any] = {
        "record_id": "melior:D-1",
        "source_system": "melior",
        "record_version": 1,
        "patient_id": PATIENT,
        "birth_date": date(1985, 3, 12),
        "care_unit_hsa_id": UNIT_HSA,
        "care_unit_name": "Medicinkliniken Östra",
        "specialty": "Internmedicin",
        "source_code": "ANTECKNING",
        "info_type": "note",
        "keyword": "Bedömning",
        "documented_at": documented_at,
        "documented_date": documented_date,
        "signed": True,
        "retracted": False,
        "title": "Besöksanteckning",
        "content": "Patienten mår bra.",
        "delivery_id": "melior/2024-06-01",
        "source_row": 1,
        "invalid": False,
    }
    unknown = set(overrides) - set(values)
    if unknown:
        raise TypeError(f"record() has no field(s) {sorted(unknown)}")
    values.update(overrides)
    return values


def invalid_record(**overrides: Any) -> dict[str, Any]:
    """A record whose latest version could not be read: only its ids are known."""
    values = {name: None for name in RECORD_COLUMNS}
    values.update(record_id="melior:D-1", source_system="melior", record_version=2, invalid=True)
    values.update(overrides)
    return values


def block(**overrides: Any) -> dict[str, Any]:
    """An active ALL block for `PATIENT`, holding on `AS_OF`, with `overrides` applied."""
    values: dict[str, Any] = {
        "block_id": "B-1",
        "block_version": 1,
        "patient_id": PATIENT,
        "scope": "ALL",
        "care_unit_hsa_id": None,
        "valid_from": date(2020, 1, 1),
        "valid_to": None,
        "revoked": False,
        "delivery_id": "blocks/2024-06-01",
        "source_row": 1,
        "documented_from": None,
        "documented_to": None,
        "invalid": False,
    }
    unknown = set(overrides) - set(values)
    if unknown:
        raise TypeError(f"block() has no field(s) {sorted(unknown)}")
    values.update(overrides)
    return values


def records_frame(rows: Iterable[Mapping[str, Any]]) -> pl.LazyFrame:
    """Records as a LazyFrame with the canonical types (plus any extra columns given)."""
    rows = list(rows)
    extra = {name for row in rows for name in row} - set(RECORD_COLUMNS)
    schema = {**RECORD_COLUMNS, **{name: pl.String for name in sorted(extra)}}
    return pl.DataFrame(rows, schema=schema, orient="row").lazy()


def blocks_frame(rows: Iterable[Mapping[str, Any]]) -> pl.LazyFrame:
    """Blocks as a LazyFrame with the canonical types; empty when no rows."""
    return pl.DataFrame(list(rows), schema=BLOCK_COLUMNS, orient="row").lazy()


def run_decide(
    records: Iterable[Mapping[str, Any]],
    blocks: Iterable[Mapping[str, Any]] = (),
    *,
    as_of: date = AS_OF,
    rules: RuleSet | None = None,
    with_verdicts: bool = False,
) -> pl.DataFrame:
    """Decide `records` against `blocks` and collect the result (tests only collect)."""
    return decide(
        records_frame(records),
        blocks_frame(blocks),
        rules or default_rules(),
        as_of,
        with_verdicts=with_verdicts,
    ).collect()


def decide_one(
    row: Mapping[str, Any],
    blocks: Iterable[Mapping[str, Any]] = (),
    *,
    as_of: date = AS_OF,
    rules: RuleSet | None = None,
) -> dict[str, Any]:
    """The decided row of a single record, with verdicts, as a dict."""
    out = run_decide([row], blocks, as_of=as_of, rules=rules, with_verdicts=True)
    assert out.height == 1
    return out.row(0, named=True)


def reasons_of(
    row: Mapping[str, Any],
    blocks: Iterable[Mapping[str, Any]] = (),
    *,
    as_of: date = AS_OF,
    rules: RuleSet | None = None,
) -> list[str]:
    """All reasons that hide a single record ([] when shown)."""
    return list(decide_one(row, blocks, as_of=as_of, rules=rules)["reasons"])


def rules_text() -> str:
    """The default rule file's text, for tests that write an edited copy."""
    return default_rules_path().read_text(encoding="utf-8")


def write_rules(directory: Path, text: str, name: str = "rules.toml") -> Path:
    """Write rule-file text into `directory` and return its path."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def rules_with(directory: Path, old: str, new: str) -> RuleSet:
    """The default rules with one text edit applied (the edit must match exactly once)."""
    text = rules_text()
    assert text.count(old) == 1, f"edit target not unique: {old!r}"
    return load_rules(write_rules(directory, text.replace(old, new)))


EXTENDED_RULES = """
# rules.md §8's kinds on top of the region's file (tests of decide and the oracle).
[[later_scopes]]
reason = "before_scope_start"
name = "Kvinnokliniken"
systems = ["melior", "asynjavisph"]
start = 2018-10-01

[later_scopes.units]
hsa_ids = [{ hsa_id = "SE2321000131-E000000077001", name = "Kvinnokliniken Östra" }]
name_patterns = ['kvinnoklinik']

[[release_delay]]
info_type = "lab_result"
from = 1900-01-01
days = 14

[[release_delay]]
info_type = "lab_result"
from = 2023-01-01
days = 30
"""
VACCINATION_START = date(2019, 12, 1)


@lru_cache(maxsize=1)
def extended_rules() -> RuleSet:
    """The region's rules plus one of each §8 kind: asynjavisph vaccinations from
    2019-12-01, a later scope by unit from 2018-10-01 (`SCOPE_UNIT_HSA` or a name with
    "kvinnoklinik"), and a lab-result release delay of 14 days, 30 from 2023-01-01."""
    text = rules_text().replace(
        "start = 2016-11-01",
        f"start = 2016-11-01\ninfo_type_starts = {{ vaccination = {VACCINATION_START} }}",
    )
    directory = Path(tempfile.mkdtemp(prefix="jvn-extended-rules-"))
    return load_rules(write_rules(directory, text + EXTENDED_RULES))
