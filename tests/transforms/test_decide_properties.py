"""Properties of decide() over generated records and blocks (hypothesis).

The generators favour the edges: start dates and the day before, nulls in
every field the rules read, exempt and look-alike unit names, keywords with odd
case and spacing, blocks of every scope and state. An independent oracle,
written in plain Python from rules.md, says which reasons must apply; decide
must agree with it exactly, and nothing the oracle says must be hidden is ever
visible.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.decide_fixtures import (
    LISTED_EXEMPT_HSA,
    OTHER_PATIENT,
    OTHER_UNIT_HSA,
    PATIENT,
    SCOPE_UNIT_HSA,
    UNIT_HSA,
    block,
    default_rules,
    extended_rules,
    record,
    run_decide,
)
from transforms.canonical import INFO_TYPES
from transforms.decide import REASONS, SHOWN, normalised, normalised_by_value
from transforms.rules import RuleSet, normalise_text

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_EDGE_DATES = sorted(
    {
        day + timedelta(days=shift)
        for day in (
            date(2016, 6, 1),
            date(2016, 11, 1),
            date(2018, 9, 3),
            date(2019, 4, 1),
            date(2019, 5, 15),
            date(2019, 11, 1),
            date(2020, 12, 1),
            date(2022, 3, 1),
            # extended_rules(): the unit scope, the vaccination start, the lab delay's step
            date(2018, 10, 1),
            date(2019, 12, 1),
            date(2023, 1, 1),
        )
        for shift in (-30, -14, -1, 0)
    }
)
dates = st.one_of(st.sampled_from(_EDGE_DATES), st.dates(date(2015, 1, 1), date(2024, 12, 31)))
maybe_dates = st.one_of(st.none(), dates)
maybe_bools = st.sampled_from([True, False, False, None])

unit_ids = st.sampled_from(
    [
        UNIT_HSA,
        OTHER_UNIT_HSA,
        LISTED_EXEMPT_HSA,
        f" {LISTED_EXEMPT_HSA.lower()} ",
        SCOPE_UNIT_HSA,
        f"{SCOPE_UNIT_HSA.lower()} ",
        "",
        None,
    ]
)
unit_names = st.sampled_from(
    [
        "Medicinkliniken Östra",
        "Vårdcentralen Dalen",
        "BUP Göteborg",
        "Bupkiss vårdcentral",
        "Utvägen hälsocentral",
        "Utväg Borås",
        "Stisjöns vårdcentral",
        "STI-mottagningen",
        "Smcab",
        "Kris och  traumaenheten",
        "UNGDOMSMOTTAGNINGEN",
        "Kvinnokliniken  Västra",
        "KVINNOKLINIK",
        None,
    ]
)
keywords = st.sampled_from(
    [
        None,
        "Bedömning",
        "Tidiga hypoteser",
        "  tidiga   HYPOTESER ",
        "Valdsutsatthet i nara relationer",
        "Tidiga hypoteser och plan",
    ]
)
specialties = st.sampled_from(
    [None, "Internmedicin", "Psykiatri, vuxen", " KLINISK genetik ", "Psykiatri, barn"]
)
systems = st.sampled_from(["melior", "asynjavisph", "obstetrix", "journalia", "t4", "cosmic", None])
info_types = st.one_of(st.none(), st.sampled_from(INFO_TYPES))
patients = st.sampled_from([PATIENT, PATIENT, OTHER_PATIENT, None])
births = st.one_of(
    st.none(),
    st.sampled_from([date(2000, 2, 29), date(2001, 11, 1), date(1985, 3, 12)]),
    st.dates(date(1930, 1, 1), date(2024, 1, 1)),
)


@st.composite
def records(draw: st.DrawFn, record_id: str) -> dict[str, Any]:
    return record(
        record_id=record_id,
        source_system=draw(systems),
        patient_id=draw(patients),
        birth_date=draw(births),
        care_unit_hsa_id=draw(unit_ids),
        care_unit_name=draw(unit_names),
        specialty=draw(specialties),
        info_type=draw(info_types),
        keyword=draw(keywords),
        documented_date=draw(maybe_dates),
        signed=draw(maybe_bools),
        retracted=draw(st.sampled_from([False, False, True, None])),
        invalid=draw(st.sampled_from([False, False, False, True, None])),
    )


@st.composite
def blocks(draw: st.DrawFn, block_id: str) -> dict[str, Any]:
    return block(
        block_id=block_id,
        patient_id=draw(patients),
        scope=draw(st.sampled_from(["ALL", "UNIT", "UNIT", " unit ", "CLINIC", None])),
        care_unit_hsa_id=draw(unit_ids),
        valid_from=draw(maybe_dates),
        valid_to=draw(maybe_dates),
        revoked=draw(maybe_bools),
        invalid=draw(st.sampled_from([False, False, False, True, None])),
        documented_from=draw(st.one_of(st.none(), st.none(), dates)),
        documented_to=draw(st.one_of(st.none(), st.none(), dates)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], date]:
    n_records = draw(st.integers(1, 8))
    n_blocks = draw(st.integers(0, 4))
    rows = [draw(records(f"r:{i}")) for i in range(n_records)]
    held = [draw(blocks(f"b:{i}")) for i in range(n_blocks)]
    return rows, held, draw(dates)


@st.composite
def period_scenarios(
    draw: st.DrawFn,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], date]:
    """Holding blocks limited to documentation periods, and records on either side of them
    (in `scenarios` a block rarely both holds and has a period). Few dates, so that a
    record's date often falls on a period's first or last day."""
    days = st.sampled_from([None, date(2020, 1, 1), date(2020, 5, 31), date(2020, 6, 1)])
    rows = [
        record(
            record_id=f"r:{i}",
            patient_id=draw(st.sampled_from([PATIENT, PATIENT, OTHER_PATIENT])),
            care_unit_hsa_id=draw(st.sampled_from([UNIT_HSA, OTHER_UNIT_HSA, None])),
            documented_date=draw(days),
        )
        for i in range(draw(st.integers(1, 6)))
    ]
    held = [
        block(
            block_id=f"b:{i}",
            scope=draw(st.sampled_from(["ALL", "UNIT"])),
            care_unit_hsa_id=draw(st.sampled_from([UNIT_HSA, OTHER_UNIT_HSA])),
            valid_from=date(2015, 1, 1),
            invalid=draw(st.sampled_from([False, False, False, True])),
            documented_from=draw(days),
            documented_to=draw(days),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    for b in held:
        if b["scope"] == "ALL":
            b["care_unit_hsa_id"] = None
    return rows, held, date(2025, 1, 1)


# --- the oracle: rules.md in plain Python -------------------------------------------------


def _key(hsa: str | None) -> str | None:
    return hsa.strip().upper() or None if hsa is not None else None


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _block_covers(b: dict[str, Any], row: dict[str, Any], as_of: date) -> bool:
    if b["patient_id"] is None or b["patient_id"] != row["patient_id"]:
        return False
    untrusted = b["invalid"] is not False or b["revoked"] is None or b["valid_from"] is None
    in_window = (
        b["revoked"] is False
        and b["valid_from"] is not None
        and b["valid_from"] <= as_of
        and (b["valid_to"] is None or as_of <= b["valid_to"])
    )
    if not (untrusted or in_window):
        return False
    # A documentation period limits a trusted block; an unknown date cannot be ruled out.
    doc = row["documented_date"]
    if not untrusted and doc is not None:
        if b["documented_from"] is not None and doc < b["documented_from"]:
            return False
        if b["documented_to"] is not None and doc > b["documented_to"]:
            return False
    scope = (b["scope"] or "").strip().upper()
    if untrusted or scope != "UNIT" or _key(b["care_unit_hsa_id"]) is None:
        return True
    unit = _key(row["care_unit_hsa_id"])
    return unit is None or unit == _key(b["care_unit_hsa_id"])


def oracle(row: dict[str, Any], held: list[dict[str, Any]], rules: RuleSet, as_of: date) -> list:
    """The reasons rules.md (with the fail-closed reading of nulls) gives one record."""
    if row["invalid"] is not False:
        return ["invalid_record"]
    system, doc = row["source_system"], row["documented_date"]
    system_rule = rules.systems.get(system) if system is not None else None
    applying = {
        "retracted": row["retracted"] is not False,
        "system_not_connected": system_rule is None,
        "info_type_not_connected": system_rule is None
        or row["info_type"] not in system_rule.info_types,
        "before_system_start": system_rule is None
        or doc is None
        or doc < _start(system_rule.start, system_rule.info_type_starts, row["info_type"]),
    }
    for scope in rules.later_scopes:
        in_scope = system is None or system in scope.systems
        if scope.specialty is not None:
            specialty = row["specialty"]
            matches = specialty is None or normalise_text(specialty) == normalise_text(
                scope.specialty
            )
        elif scope.patient_under_age is not None:
            birth = row["birth_date"]
            matches = birth is None or doc is None or _age(birth, doc) < scope.patient_under_age
        else:
            assert scope.units is not None
            unit, unit_name = _key(row["care_unit_hsa_id"]), row["care_unit_name"]
            matches = (
                unit is None
                or unit in {_key(listed.hsa_id) for listed in scope.units.hsa_ids}
                or (
                    bool(scope.units.name_patterns)
                    and (
                        unit_name is None
                        or any(
                            re.search(pattern, normalise_text(unit_name))
                            for pattern in scope.units.name_patterns
                        )
                    )
                )
            )
        before = doc is None or doc < scope.start
        applying[scope.reason] = applying.get(scope.reason, False) or (
            in_scope and matches and before
        )
    name = row["care_unit_name"]
    listed = {_key(unit.hsa_id) for unit in rules.exempt_units.hsa_ids}
    applying["exempt_unit"] = (
        _key(row["care_unit_hsa_id"]) is None
        or _key(row["care_unit_hsa_id"]) in listed
        or name is None
        or any(re.search(p, normalise_text(name)) for p in rules.exempt_units.name_patterns)
    )
    terms = {normalise_text(term) for term in rules.exempt_terms.terms}
    applying["exempt_term"] = row["keyword"] is not None and normalise_text(row["keyword"]) in terms
    applying["patient_block"] = row["patient_id"] is None or any(
        _block_covers(b, row, as_of) for b in held
    )
    delay = rules.unsigned_delay_days(as_of)
    signed = row["signed"]
    applying["unsigned_delay"] = signed is None or (
        signed is False and (delay is None or doc is None or as_of < doc + timedelta(days=delay))
    )
    days = _release_days(rules, row["info_type"], as_of)
    applying["release_delay"] = days is None or (
        days > 0 and (doc is None or as_of < doc + timedelta(days=days))
    )
    return [code for code in REASONS if applying.get(code, False)]


def _start(system_start: date, type_starts: dict[str, date], info_type: str | None) -> date:
    """rules.md §8: a type's own start, else its system's; an unknown type the latest."""
    if info_type is None:
        return max([system_start, *type_starts.values()])
    return type_starts.get(info_type, system_start)


def _release_days(rules: RuleSet, info_type: str | None, as_of: date) -> int | None:
    """rules.md §8: the type's value with the latest `from <= as_of`; None = for ever."""
    per_type: dict[str, list[tuple[date, int]]] = {}
    for delay in rules.release_delay:
        per_type.setdefault(delay.info_type, []).append((delay.valid_from, delay.days))

    def days_of(values: list[tuple[date, int]]) -> int | None:
        in_force = sorted(value for value in values if value[0] <= as_of)
        return in_force[-1][1] if in_force else None

    if info_type is None:
        # Unreadable: it could be any type with a delay; the longest holds it.
        found = [days_of(values) for values in per_type.values()]
        return 0 if all(days == 0 for days in found) else None
    return days_of(per_type[info_type]) if info_type in per_type else 0


def _must_be_hidden(
    row: dict[str, Any], held: list[dict[str, Any]], as_of: date, rules: RuleSet | None = None
) -> bool:
    reasons = set(oracle(row, held, rules or default_rules(), as_of))
    return bool(
        reasons
        & {
            "invalid_record",
            "retracted",
            "before_system_start",
            "before_psychiatry_start",
            "before_genetics_start",
            "before_children_start",
            "before_scope_start",
            "exempt_unit",
            "exempt_term",
            "patient_block",
            "release_delay",
        }
    )


# --- properties -------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenarios())
def test_visible_iff_reasons_empty_iff_reason_shown(scenario: Any) -> None:
    rows, held, as_of = scenario
    out = run_decide(rows, held, as_of=as_of)
    assert out.height == len(rows)
    for decided in out.iter_rows(named=True):
        shown = decided["reason"] == SHOWN
        assert decided["visible"] is shown
        assert (decided["reasons"] == []) is shown
        if not shown:
            assert decided["reasons"][0] == decided["reason"]


@PROPERTY_SETTINGS
@given(scenarios())
def test_nothing_exempt_early_retracted_blocked_or_invalid_is_ever_visible(scenario: Any) -> None:
    rows, held, as_of = scenario
    out = run_decide(rows, held, as_of=as_of)
    visible = dict(zip(out["record_id"], out["visible"], strict=True))
    for row in rows:
        if _must_be_hidden(row, held, as_of):
            assert visible[row["record_id"]] is False, row


@PROPERTY_SETTINGS
@given(scenarios())
def test_reasons_agree_with_the_plain_python_oracle(scenario: Any) -> None:
    rows, held, as_of = scenario
    out = run_decide(rows, held, as_of=as_of)
    got = dict(zip(out["record_id"].to_list(), out["reasons"].to_list(), strict=True))
    for row in rows:
        assert got[row["record_id"]] == oracle(row, held, default_rules(), as_of), row


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(scenario: Any, rng: random.Random) -> None:
    rows, held, as_of = scenario
    shuffled_rows, shuffled_blocks = rows[:], held[:]
    rng.shuffle(shuffled_rows)
    rng.shuffle(shuffled_blocks)
    first = run_decide(rows, held, as_of=as_of).sort("record_id")
    second = run_decide(shuffled_rows, shuffled_blocks, as_of=as_of).sort("record_id")
    assert first.equals(second)


@PROPERTY_SETTINGS
@given(period_scenarios())
def test_blocks_limited_to_a_period_agree_with_the_oracle(scenario: Any) -> None:
    rows, held, as_of = scenario
    out = run_decide(rows, held, as_of=as_of)
    got = dict(zip(out["record_id"].to_list(), out["reasons"].to_list(), strict=True))
    for row in rows:
        assert got[row["record_id"]] == oracle(row, held, default_rules(), as_of), row


# --- the same properties under rules.md §8's kinds (extended_rules) ---------------------


@PROPERTY_SETTINGS
@given(scenarios())
def test_reasons_under_the_new_rule_kinds_agree_with_the_oracle(scenario: Any) -> None:
    rows, held, as_of = scenario
    out = run_decide(rows, held, as_of=as_of, rules=extended_rules())
    got = dict(zip(out["record_id"].to_list(), out["reasons"].to_list(), strict=True))
    for row in rows:
        assert got[row["record_id"]] == oracle(row, held, extended_rules(), as_of), row


@PROPERTY_SETTINGS
@given(scenarios())
def test_nothing_a_new_rule_kind_covers_is_ever_visible(scenario: Any) -> None:
    rows, held, as_of = scenario
    out = run_decide(rows, held, as_of=as_of, rules=extended_rules())
    visible = dict(zip(out["record_id"], out["visible"], strict=True))
    for row in rows:
        if _must_be_hidden(row, held, as_of, extended_rules()):
            assert visible[row["record_id"]] is False, row


def test_oracle_agrees_on_a_plain_shown_record() -> None:
    # Guards the oracle itself: the default record is shown by both.
    assert oracle(record(), [], default_rules(), date(2024, 6, 1)) == []
    assert run_decide([record()])["reasons"].to_list() == [[]]


def test_oracle_sees_each_new_rule_kind() -> None:
    # Guards the oracle: each §8 kind hides an example under extended_rules().
    rules, as_of = extended_rules(), date(2024, 6, 1)
    lab = record(source_system="asynjavisph", info_type="lab_result", documented_date=as_of)
    vaccination = record(
        source_system="asynjavisph", info_type="vaccination", documented_date=date(2019, 11, 30)
    )
    scoped = record(care_unit_hsa_id=SCOPE_UNIT_HSA, documented_date=date(2018, 9, 30))
    period = block(documented_from=date(2021, 1, 1), documented_to=date(2021, 12, 31))
    assert oracle(lab, [], rules, as_of) == ["release_delay"]
    assert oracle(vaccination, [], rules, as_of) == ["before_system_start"]
    assert oracle(scoped, [], rules, as_of) == ["before_scope_start"]
    assert oracle(record(), [period], rules, as_of) == ["patient_block"]
    assert oracle(record(documented_date=date(2022, 1, 1)), [period], rules, as_of) == []


_UNIT_NAMES = st.sampled_from(
    [
        "Ungdomsmottagningen City",
        "UNGDOMSMOTTAGNINGEN  city ",
        "Ungdomsmottagningen\u0301 City",
        "Vårdcentralen Åby",
        "Vardcentralen Aby",
        "",
        " ",
        None,
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_UNIT_NAMES, max_size=12))
def test_normalising_per_distinct_value_is_normalising_each_row(
    names: list[str | None],
) -> None:
    frame = pl.DataFrame({"name": names}, schema={"name": pl.String})
    by_value = frame.select(normalised_by_value(pl.col("name")))
    by_row = frame.select(normalised(pl.col("name")))
    assert by_value.equals(by_row)
