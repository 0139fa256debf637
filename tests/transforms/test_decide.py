"""decide(): one behaviour per test, for every rule of rules.md and its edges.

Each test starts from `record()`, which the default rules show, and changes
only what the behaviour is about.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.decide_fixtures import (
    AS_OF,
    LISTED_EXEMPT_HSA,
    OTHER_PATIENT,
    OTHER_UNIT_HSA,
    PATIENT,
    SCOPE_UNIT_HSA,
    UNIT_HSA,
    VACCINATION_START,
    block,
    blocks_frame,
    decide_one,
    default_rules,
    extended_rules,
    invalid_record,
    reasons_of,
    record,
    records_frame,
    rules_with,
    run_decide,
)
from transforms.decide import (
    DECISION_COLUMNS,
    REASONS,
    RULE_COLUMNS,
    SHOWN,
    VERDICT_COLUMNS,
    _reason_table,
    _tmp,
    decide,
)
from transforms.sources.common import local_date

# --- the shape of the output --------------------------------------------------------


def test_the_default_record_is_shown() -> None:
    row = decide_one(record())
    assert row["visible"] is True
    assert row["reason"] == SHOWN
    assert row["reasons"] == []
    assert row["exempt_unit_by_name_only"] is False


def test_every_row_carries_the_rules_version() -> None:
    row = decide_one(record(retracted=True))
    assert row["rules_version"] == default_rules().rules_version


def test_reasons_are_the_fourteen_codes_of_rules_md_in_order() -> None:
    assert REASONS == (
        "invalid_record",
        "retracted",
        "system_not_connected",
        "info_type_not_connected",
        "before_system_start",
        "before_psychiatry_start",
        "before_genetics_start",
        "before_children_start",
        "before_scope_start",
        "exempt_unit",
        "exempt_term",
        "patient_block",
        "unsigned_delay",
        "release_delay",
    )


def test_output_adds_the_decision_columns_after_the_input_columns() -> None:
    out = run_decide([record()])
    added = out.columns[-len(DECISION_COLUMNS) :]
    assert tuple(added) == DECISION_COLUMNS
    assert out.schema["reasons"] == pl.List(pl.String)
    assert out.schema["visible"] == pl.Boolean


def test_extra_input_columns_pass_through_unchanged() -> None:
    out = run_decide([record(), record(record_id="melior:D-2")])
    with_extra = run_decide(
        [
            {**record(), "store_note": "a"},
            {**record(record_id="melior:D-2"), "store_note": None},
        ]
    )
    assert with_extra["store_note"].to_list() == ["a", None]
    assert with_extra.drop("store_note").equals(out)


def test_without_verdicts_no_working_columns_leak_into_the_output() -> None:
    out = run_decide([record()])
    assert not [name for name in out.columns if name.startswith("__")]
    assert not set(VERDICT_COLUMNS) & set(out.columns)


def test_with_verdicts_rule_columns_agree_with_reasons() -> None:
    row = decide_one(
        record(retracted=True, signed=False, documented_date=date(2021, 12, 25)),
        as_of=date(2022, 1, 1),
    )
    applying = [code for code, column in zip(REASONS, RULE_COLUMNS, strict=True) if row[column]]
    assert applying == row["reasons"] == ["retracted", "unsigned_delay"]


def test_with_verdicts_keeps_the_values_the_rules_used() -> None:
    row = decide_one(record(care_unit_name="  BUP  Göteborg "), as_of=date(2022, 1, 1))
    assert row["age_at_documentation"] == 36
    assert row["system_start"] == date(2016, 6, 1)
    assert row["unsigned_delay_days"] == 14
    assert row["normalised_unit_name"] == "bup goteborg"
    assert row["normalised_keyword"] == "bedomning"


def test_several_reasons_are_listed_in_rule_order_and_the_first_is_the_reason() -> None:
    row = decide_one(
        record(
            retracted=True,
            keyword="Tidiga hypoteser",
            care_unit_hsa_id=LISTED_EXEMPT_HSA,
            documented_date=date(2016, 5, 1),
        )
    )
    assert row["reasons"] == ["retracted", "before_system_start", "exempt_unit", "exempt_term"]
    assert row["reason"] == "retracted"
    assert row["visible"] is False


def test_decide_returns_a_lazy_frame_and_runs_on_the_streaming_engine() -> None:
    plan = decide(
        records_frame([record(), record(record_id="melior:D-2", retracted=True)]),
        blocks_frame([block(patient_id=OTHER_PATIENT)]),
        default_rules(),
        AS_OF,
    )
    assert isinstance(plan, pl.LazyFrame)
    streamed = plan.collect(engine="streaming").sort("record_id")
    assert streamed.equals(plan.collect().sort("record_id"))


def test_row_count_is_preserved_when_a_patient_has_many_blocks() -> None:
    rows = [record(record_id=f"melior:D-{i}") for i in range(3)]
    rows.append(record(record_id="melior:D-9", patient_id=None))
    blocks = [
        block(block_id="B-1"),
        block(block_id="B-2"),
        block(block_id="B-3", scope="UNIT", care_unit_hsa_id=UNIT_HSA),
        block(block_id="B-4", scope="UNIT", care_unit_hsa_id=UNIT_HSA.lower()),
        block(block_id="B-5", scope="UNIT", care_unit_hsa_id=OTHER_UNIT_HSA),
        block(block_id="B-6", invalid=True, patient_id=None),
    ]
    out = run_decide(rows, blocks)
    assert out.height == len(rows)
    assert sorted(out["record_id"]) == sorted(row["record_id"] for row in rows)


# --- 1 invalid_record ----------------------------------------------------------------


def test_invalid_record_has_only_invalid_record_even_with_null_fields() -> None:
    row = decide_one(invalid_record())
    assert row["reasons"] == ["invalid_record"]
    assert row["reason"] == "invalid_record"
    assert row["visible"] is False


def test_invalid_record_has_only_invalid_record_even_when_other_rules_would_apply() -> None:
    row = decide_one(record(invalid=True, retracted=True, care_unit_name="BUP Borås"))
    assert row["reasons"] == ["invalid_record"]
    assert row["exempt_unit_by_name_only"] is False


def test_null_invalid_flag_counts_as_invalid() -> None:
    assert reasons_of(record(invalid=None)) == ["invalid_record"]


# --- 2 retracted ----------------------------------------------------------------------


def test_retracted_record_is_hidden() -> None:
    assert reasons_of(record(retracted=True)) == ["retracted"]


def test_null_retracted_flag_counts_as_retracted() -> None:
    assert reasons_of(record(retracted=None)) == ["retracted"]


# --- 3 system_not_connected, 4 info_type_not_connected -----------------------------------


def test_system_without_rules_is_not_connected() -> None:
    reasons = reasons_of(record(source_system="cosmic", record_id="cosmic:1"))
    assert reasons[0] == "system_not_connected"


def test_null_system_is_not_connected() -> None:
    assert reasons_of(record(source_system=None))[0] == "system_not_connected"


def test_info_type_not_listed_for_the_system_is_not_connected() -> None:
    assert reasons_of(record(info_type="lab_result")) == ["info_type_not_connected"]


def test_info_type_other_is_not_connected() -> None:
    assert reasons_of(record(info_type="other")) == ["info_type_not_connected"]


def test_null_info_type_is_not_connected() -> None:
    assert reasons_of(record(info_type=None)) == ["info_type_not_connected"]


def test_info_type_connected_for_one_system_is_shown_there() -> None:
    assert reasons_of(record(source_system="asynjavisph", info_type="lab_result")) == []


# --- 5 before_system_start ---------------------------------------------------------------

SYSTEM_STARTS = [
    ("melior", "note", date(2016, 6, 1)),
    ("asynjavisph", "vaccination", date(2016, 11, 1)),
    ("obstetrix", "journal_summary", date(2019, 5, 15)),
    ("journalia", "ak_letter", date(2019, 4, 1)),
    ("t4", "care_contact", date(2020, 12, 1)),
]


@pytest.mark.parametrize(("system", "info_type", "start"), SYSTEM_STARTS)
def test_record_documented_the_day_before_its_system_start_is_hidden(
    system: str, info_type: str, start: date
) -> None:
    day_before = date.fromordinal(start.toordinal() - 1)
    row = record(source_system=system, info_type=info_type, documented_date=day_before)
    assert reasons_of(row) == ["before_system_start"]


@pytest.mark.parametrize(("system", "info_type", "start"), SYSTEM_STARTS)
def test_record_documented_on_its_system_start_is_shown(
    system: str, info_type: str, start: date
) -> None:
    row = record(source_system=system, info_type=info_type, documented_date=start)
    assert reasons_of(row) == []


def test_melior_record_at_2330_utc_on_31_may_2016_is_documented_1_june_and_shown() -> None:
    documented_at = datetime(2016, 5, 31, 23, 30, tzinfo=UTC)
    local = pl.select(local_date(pl.lit(documented_at))).item()
    assert local == date(2016, 6, 1)
    row = record(documented_date=local)
    row["documented_at"] = documented_at
    assert reasons_of(row) == []


def test_rules_compare_the_documentation_date_not_the_utc_timestamp() -> None:
    row = record(documented_date=date(2016, 5, 31))
    row["documented_at"] = datetime(2016, 6, 1, 12, tzinfo=UTC)
    assert reasons_of(row) == ["before_system_start"]


def test_null_documentation_date_is_before_the_system_start() -> None:
    assert "before_system_start" in reasons_of(record(documented_date=None))


def test_moving_the_t4_start_in_the_rule_file_moves_the_cut_off(tmp_path: Path) -> None:
    rules = rules_with(tmp_path, "start = 2020-12-01", "start = 2020-12-08")
    row = record(source_system="t4", documented_date=date(2020, 12, 7))
    assert reasons_of(row) == []
    assert reasons_of(row, rules=rules) == ["before_system_start"]


# --- 6 before_psychiatry_start, 7 before_genetics_start ------------------------------------


def test_adult_psychiatry_the_day_before_its_start_is_hidden() -> None:
    row = record(specialty="Psykiatri, vuxen", documented_date=date(2018, 9, 2))
    assert reasons_of(row) == ["before_psychiatry_start"]


def test_adult_psychiatry_on_its_start_is_shown() -> None:
    row = record(specialty="Psykiatri, vuxen", documented_date=date(2018, 9, 3))
    assert reasons_of(row) == []


def test_specialty_matches_ignoring_case_and_surrounding_space() -> None:
    row = record(specialty="  psykiatri,  VUXEN ", documented_date=date(2018, 9, 2))
    assert reasons_of(row) == ["before_psychiatry_start"]


def test_psychiatry_scope_applies_to_melior_only() -> None:
    row = record(
        source_system="asynjavisph",
        specialty="Psykiatri, vuxen",
        documented_date=date(2018, 9, 2),
    )
    assert reasons_of(row) == []


def test_clinical_genetics_the_day_before_its_start_is_hidden() -> None:
    row = record(specialty="Klinisk genetik", documented_date=date(2019, 10, 31))
    assert reasons_of(row) == ["before_genetics_start"]


def test_clinical_genetics_on_its_start_is_shown() -> None:
    row = record(specialty="Klinisk genetik", documented_date=date(2019, 11, 1))
    assert reasons_of(row) == []


def test_melior_record_without_specialty_waits_for_every_specialty_start() -> None:
    before = record(specialty=None, documented_date=date(2018, 9, 2))
    assert reasons_of(before) == ["before_psychiatry_start", "before_genetics_start"]
    assert reasons_of(record(specialty=None, documented_date=date(2019, 11, 1))) == []


def test_record_of_another_system_without_specialty_is_not_in_a_specialty_scope() -> None:
    row = record(source_system="asynjavisph", specialty=None, documented_date=date(2018, 1, 1))
    assert reasons_of(row) == []


# --- 8 before_children_start ------------------------------------------------------------


def test_child_record_the_day_before_the_children_start_is_hidden() -> None:
    row = record(birth_date=date(2010, 1, 1), documented_date=date(2019, 10, 31))
    assert reasons_of(row) == ["before_children_start"]


def test_child_record_on_the_children_start_is_shown() -> None:
    row = record(birth_date=date(2010, 1, 1), documented_date=date(2019, 11, 1))
    assert reasons_of(row) == []


def test_child_rule_applies_to_asynjavisph() -> None:
    row = record(
        source_system="asynjavisph", birth_date=date(2010, 1, 1), documented_date=date(2019, 1, 1)
    )
    assert reasons_of(row) == ["before_children_start"]


def test_child_rule_does_not_apply_to_other_systems() -> None:
    row = record(
        source_system="obstetrix",
        info_type="journal_summary",
        birth_date=date(2003, 1, 1),
        documented_date=date(2019, 6, 1),
    )
    assert reasons_of(row) == []


def test_patient_turning_18_on_the_documentation_day_is_an_adult() -> None:
    row = decide_one(record(birth_date=date(2001, 10, 15), documented_date=date(2019, 10, 15)))
    assert row["age_at_documentation"] == 18
    assert row["reasons"] == []


def test_patient_turning_18_the_day_after_documentation_is_a_child() -> None:
    row = decide_one(record(birth_date=date(2001, 10, 15), documented_date=date(2019, 10, 14)))
    assert row["age_at_documentation"] == 17
    assert row["reasons"] == ["before_children_start"]


def test_born_29_february_is_still_17_on_28_february_of_a_non_leap_year() -> None:
    row = decide_one(record(birth_date=date(2000, 2, 29), documented_date=date(2018, 2, 28)))
    assert row["age_at_documentation"] == 17
    assert row["reasons"] == ["before_children_start"]


def test_born_29_february_turns_18_on_1_march_of_a_non_leap_year() -> None:
    row = decide_one(record(birth_date=date(2000, 2, 29), documented_date=date(2018, 3, 1)))
    assert row["age_at_documentation"] == 18
    assert row["reasons"] == []


def test_born_29_february_has_the_birthday_on_29_february_in_a_leap_year() -> None:
    day_before = decide_one(record(birth_date=date(2000, 2, 29), documented_date=date(2016, 2, 28)))
    birthday = decide_one(record(birth_date=date(2000, 2, 29), documented_date=date(2016, 2, 29)))
    assert (day_before["age_at_documentation"], birthday["age_at_documentation"]) == (15, 16)


def test_samordningsnummer_child_is_judged_by_the_resolved_birth_date() -> None:
    # 20011075-xxxx: day 75 = 15 + 60; the adapter has already resolved 2001-10-15.
    row = record(
        patient_id="200110752380", birth_date=date(2001, 10, 15), documented_date=date(2019, 10, 14)
    )
    assert reasons_of(row) == ["before_children_start"]


def test_null_birth_date_counts_as_a_child_before_the_children_start() -> None:
    row = record(birth_date=None, documented_date=date(2019, 10, 31))
    assert reasons_of(row) == ["before_children_start"]


def test_null_birth_date_does_not_hide_after_the_children_start() -> None:
    assert reasons_of(record(birth_date=None, documented_date=date(2019, 11, 1))) == []


# --- 9 exempt_unit ---------------------------------------------------------------------


def test_unit_with_a_listed_hsa_id_is_exempt() -> None:
    row = decide_one(record(care_unit_hsa_id=LISTED_EXEMPT_HSA, care_unit_name="Avdelning 5"))
    assert row["reasons"] == ["exempt_unit"]
    assert row["exempt_unit_by_name_only"] is False


def test_listed_hsa_id_matches_ignoring_case_and_surrounding_space() -> None:
    row = record(care_unit_hsa_id=f"  {LISTED_EXEMPT_HSA.lower()} ", care_unit_name="Avd 5")
    assert reasons_of(row) == ["exempt_unit"]


def test_unit_caught_by_name_only_is_exempt_and_flagged() -> None:
    row = decide_one(record(care_unit_name="Ungdomsmottagningen Nya Staden"))
    assert row["reasons"] == ["exempt_unit"]
    assert row["exempt_unit_by_name_only"] is True


def test_unit_listed_and_matching_by_name_is_not_flagged_as_name_only() -> None:
    row = decide_one(record(care_unit_hsa_id=LISTED_EXEMPT_HSA, care_unit_name="BUP Göteborg"))
    assert row["reasons"] == ["exempt_unit"]
    assert row["exempt_unit_by_name_only"] is False


@pytest.mark.parametrize(
    "name",
    [
        "BUP Göteborg",
        "bup",
        "Barn- och ungdomspsykiatrin Skaraborg",
        "Barn och ungdomspsykiatri",
        "Göteborg BEDÖMNINGSTEAM  försäkringsmedicin",
        "Flykting- barnmottagningen, Angered",
        "Flyktingbarnmottagningen",
        "Kris- och traumaenheten",
        "Kris och traumaenheten",
        "Mottagningen för   unga vuxna",
        "Mödra-barnhälsovårdsteamet i Haga",
        "Mödra- barnhälsovårdsteamet",
        "Rättspsykiatriska regionkliniken",
        "SMC (Sexualmedicinskt centrum)",
        "Sexualmedicinskt centrum",
        "STD-mottagningen",
        "STI-mottagning Sahlgrenska",
        "Könsmottagningen Skövde",
        "UNGDOMSMOTTAGNINGEN",
        "Utväg Skövde",
        "Utvag",
    ],
)
def test_unit_name_matching_an_exempt_pattern_is_exempt(name: str) -> None:
    row = decide_one(record(care_unit_name=name))
    assert row["reasons"] == ["exempt_unit"], row["normalised_unit_name"]
    assert row["exempt_unit_by_name_only"] is True


@pytest.mark.parametrize(
    "name",
    [
        "Bupkiss vårdcentral",
        "Utvägen hälsocentral",
        "Smcab",
        "Stisjöns vårdcentral",
        "Standardkliniken",
        "Kristinedals vårdcentral",
        "Mottagningen för vuxna",
        "Barnmottagningen",
        "Psykiatri, vuxen",
    ],
)
def test_look_alike_unit_name_is_not_exempt(name: str) -> None:
    row = decide_one(record(care_unit_name=name))
    assert row["reasons"] == [], row["normalised_unit_name"]
    assert row["exempt_unit_by_name_only"] is False


def test_null_unit_name_is_exempt_but_not_flagged_as_caught_by_name() -> None:
    row = decide_one(record(care_unit_name=None))
    assert row["reasons"] == ["exempt_unit"]
    assert row["exempt_unit_by_name_only"] is False


def test_null_unit_hsa_id_is_exempt() -> None:
    assert reasons_of(record(care_unit_hsa_id=None)) == ["exempt_unit"]


def test_blank_unit_hsa_id_counts_as_missing() -> None:
    assert reasons_of(record(care_unit_hsa_id="   ")) == ["exempt_unit"]


def test_unit_name_normalisation_folds_accents_case_and_spaces() -> None:
    row = decide_one(record(care_unit_name="  Mödra-Barnhälsovårdsteamet \t i   HAGA  é"))
    assert row["normalised_unit_name"] == "modra-barnhalsovardsteamet i haga e"


# --- 10 exempt_term ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keyword",
    [
        "Tidiga hypoteser",
        "tidiga hypoteser",
        "  TIDIGA   Hypoteser ",
        "Tidiga\thypoteser",
        "Våldsutsatthet i nära relationer",
        "VÅLDSUTSATTHET  I NÄRA RELATIONER",
        "Valdsutsatthet i nara relationer",
    ],
)
def test_keyword_equal_to_an_exempt_term_ignoring_case_spacing_and_accents_is_hidden(
    keyword: str,
) -> None:
    assert reasons_of(record(keyword=keyword)) == ["exempt_term"]


@pytest.mark.parametrize("keyword", ["Tidiga hypoteser och plan", "Hypoteser", "Våld", None])
def test_keyword_that_is_not_an_exempt_term_is_shown(keyword: str | None) -> None:
    assert reasons_of(record(keyword=keyword)) == []


def test_a_term_added_to_the_rule_file_is_hidden(tmp_path: Path) -> None:
    rules = rules_with(tmp_path, '"Tidiga hypoteser",', '"Tidiga hypoteser",\n  "Bedömning",')
    assert reasons_of(record(keyword="BEDÖMNING"), rules=rules) == ["exempt_term"]


# --- 11 patient_block ---------------------------------------------------------------------


def test_active_all_block_hides_every_record_of_the_patient() -> None:
    old = record(documented_date=date(2017, 1, 1))
    assert reasons_of(old, [block(valid_from=date(2024, 1, 1))]) == ["patient_block"]


def test_revoked_block_does_not_hide() -> None:
    assert reasons_of(record(), [block(revoked=True)]) == []


def test_expired_block_does_not_hide() -> None:
    assert reasons_of(record(), [block(valid_to=date(2024, 5, 31))]) == []


def test_block_holds_on_its_last_day() -> None:
    assert reasons_of(record(), [block(valid_to=AS_OF)]) == ["patient_block"]


def test_block_holds_on_its_first_day() -> None:
    assert reasons_of(record(), [block(valid_from=AS_OF)]) == ["patient_block"]


def test_block_not_yet_valid_does_not_hide() -> None:
    assert reasons_of(record(), [block(valid_from=date(2024, 6, 2))]) == []


def test_block_of_another_patient_does_not_hide() -> None:
    assert reasons_of(record(), [block(patient_id=OTHER_PATIENT)]) == []


def test_unit_block_hides_the_records_of_that_unit() -> None:
    unit_block = block(scope="UNIT", care_unit_hsa_id=UNIT_HSA)
    assert reasons_of(record(), [unit_block]) == ["patient_block"]


def test_unit_block_matches_the_unit_ignoring_case_and_space() -> None:
    unit_block = block(scope=" unit ", care_unit_hsa_id=f" {UNIT_HSA.lower()} ")
    assert reasons_of(record(), [unit_block]) == ["patient_block"]


def test_unit_block_does_not_hide_records_of_another_unit() -> None:
    unit_block = block(scope="UNIT", care_unit_hsa_id=OTHER_UNIT_HSA)
    assert reasons_of(record(), [unit_block]) == []


def test_invalid_block_holds_for_the_whole_journal() -> None:
    broken = block(
        invalid=True, scope="UNIT", care_unit_hsa_id=OTHER_UNIT_HSA, revoked=True, valid_to=None
    )
    assert reasons_of(record(), [broken]) == ["patient_block"]


def test_block_without_valid_from_holds_for_the_whole_journal() -> None:
    broken = block(scope="UNIT", care_unit_hsa_id=OTHER_UNIT_HSA, valid_from=None)
    assert reasons_of(record(), [broken]) == ["patient_block"]


def test_block_with_unknown_status_holds() -> None:
    assert reasons_of(record(), [block(revoked=None, valid_from=date(2030, 1, 1))]) == [
        "patient_block"
    ]


def test_unit_block_without_a_unit_widens_to_the_whole_journal() -> None:
    assert reasons_of(record(), [block(scope="UNIT", care_unit_hsa_id=None)]) == ["patient_block"]


def test_block_with_an_unknown_scope_widens_to_the_whole_journal() -> None:
    unknown = block(scope="CLINIC", care_unit_hsa_id=OTHER_UNIT_HSA)
    assert reasons_of(record(), [unknown]) == ["patient_block"]


def test_block_without_a_patient_is_ignored() -> None:
    assert reasons_of(record(), [block(patient_id=None, invalid=True)]) == []


def test_record_without_a_unit_is_hidden_by_any_unit_block_of_its_patient() -> None:
    unit_block = block(scope="UNIT", care_unit_hsa_id=OTHER_UNIT_HSA)
    reasons = reasons_of(record(care_unit_hsa_id=None), [unit_block])
    assert reasons == ["exempt_unit", "patient_block"]


def test_record_without_a_patient_counts_as_blocked() -> None:
    assert reasons_of(record(patient_id=None)) == ["patient_block"]


def test_a_block_hides_only_while_it_holds_on_as_of() -> None:
    summer = block(valid_from=date(2023, 6, 1), valid_to=date(2023, 8, 31))
    assert reasons_of(record(), [summer], as_of=date(2023, 7, 1)) == ["patient_block"]
    assert reasons_of(record(), [summer], as_of=date(2023, 9, 1)) == []


def test_blocks_for_one_patient_leave_other_patients_shown() -> None:
    out = run_decide(
        [record(), record(record_id="melior:D-2", patient_id=OTHER_PATIENT)],
        [block(patient_id=PATIENT)],
    ).sort("record_id")
    assert out["visible"].to_list() == [False, True]


# --- 12 unsigned_delay ---------------------------------------------------------------------


def test_unsigned_record_13_days_old_before_march_2022_is_hidden() -> None:
    row = record(signed=False, documented_date=date(2022, 2, 1))
    assert reasons_of(row, as_of=date(2022, 2, 14)) == ["unsigned_delay"]


def test_unsigned_record_14_days_old_before_march_2022_is_shown() -> None:
    row = record(signed=False, documented_date=date(2022, 2, 1))
    assert reasons_of(row, as_of=date(2022, 2, 15)) == []


def test_unsigned_record_is_shown_at_once_from_march_2022() -> None:
    row = record(signed=False, documented_date=date(2022, 3, 1))
    assert reasons_of(row, as_of=date(2022, 3, 1)) == []


def test_delay_depends_on_the_run_date_not_the_documentation_date() -> None:
    row = record(signed=False, documented_date=date(2022, 2, 27))
    assert reasons_of(row, as_of=date(2022, 2, 28)) == ["unsigned_delay"]
    assert reasons_of(row, as_of=date(2022, 3, 1)) == []


def test_signed_record_has_no_delay() -> None:
    row = record(signed=True, documented_date=date(2022, 2, 1))
    assert reasons_of(row, as_of=date(2022, 2, 2)) == []


def test_null_signed_flag_applies_the_delay_even_when_it_is_zero() -> None:
    assert reasons_of(record(signed=None), as_of=AS_OF) == ["unsigned_delay"]


def test_unsigned_record_stays_hidden_when_no_delay_value_is_in_force(tmp_path: Path) -> None:
    rules = rules_with(tmp_path, "from = 1900-01-01", "from = 2030-01-01")
    rules = rules.model_copy(update={"unsigned_delay": rules.unsigned_delay[:1]})
    row = decide_one(record(signed=False, documented_date=date(2010, 1, 1)), rules=rules)
    assert row["unsigned_delay_days"] is None
    assert "unsigned_delay" in row["reasons"]


# --- rules.md §8: start per information type -------------------------------------------

VACCINATION = {
    "record_id": "asynjavisph:V-1",
    "source_system": "asynjavisph",
    "info_type": "vaccination",
    "source_code": "VACCINATION",
}


def test_type_documented_before_its_own_start_is_before_system_start() -> None:
    row = record(**VACCINATION, documented_date=date(2019, 11, 30))
    assert reasons_of(row, rules=extended_rules()) == ["before_system_start"]


def test_type_documented_on_its_own_start_is_shown() -> None:
    row = record(**VACCINATION, documented_date=VACCINATION_START)
    assert reasons_of(row, rules=extended_rules()) == []


def test_type_start_leaves_the_systems_other_types_at_the_system_start() -> None:
    row = record(**{**VACCINATION, "info_type": "note"}, documented_date=date(2017, 1, 1))
    assert reasons_of(row, rules=extended_rules()) == []


def test_unreadable_type_waits_for_the_latest_type_start_of_its_system() -> None:
    row = record(**{**VACCINATION, "info_type": None}, documented_date=date(2019, 11, 30))
    reasons = reasons_of(row, rules=extended_rules())
    # It could also be a lab result, whose release delay is in force: that holds it too.
    assert reasons == ["info_type_not_connected", "before_system_start", "release_delay"]


# --- rules.md §8: later scope by unit (before_scope_start) --------------------------------


def test_listed_unit_of_a_later_scope_before_its_start_is_hidden() -> None:
    row = record(care_unit_hsa_id=SCOPE_UNIT_HSA, documented_date=date(2018, 9, 30))
    assert reasons_of(row, rules=extended_rules()) == ["before_scope_start"]


def test_listed_unit_of_a_later_scope_on_its_start_is_shown() -> None:
    row = record(care_unit_hsa_id=SCOPE_UNIT_HSA, documented_date=date(2018, 10, 1))
    assert reasons_of(row, rules=extended_rules()) == []


def test_unit_named_like_a_later_scope_pattern_before_its_start_is_hidden() -> None:
    row = record(care_unit_name="Kvinnokliniken Västra", documented_date=date(2018, 1, 1))
    assert reasons_of(row, rules=extended_rules()) == ["before_scope_start"]


def test_other_unit_before_a_unit_scope_start_is_shown() -> None:
    assert reasons_of(record(documented_date=date(2018, 1, 1)), rules=extended_rules()) == []


def test_unit_scope_applies_only_to_its_systems() -> None:
    row = record(
        record_id="t4:1",
        source_system="t4",
        care_unit_hsa_id=SCOPE_UNIT_HSA,
        documented_date=date(2021, 1, 1),
    )
    assert "before_scope_start" not in reasons_of(row, as_of=AS_OF, rules=extended_rules())


def test_record_without_a_unit_id_is_held_by_a_unit_scope() -> None:
    row = record(care_unit_hsa_id=None, documented_date=date(2018, 1, 1))
    assert reasons_of(row, rules=extended_rules()) == ["before_scope_start", "exempt_unit"]


def test_record_without_a_unit_name_is_held_by_a_unit_scope_with_patterns() -> None:
    row = record(care_unit_name=None, documented_date=date(2018, 1, 1))
    assert reasons_of(row, rules=extended_rules()) == ["before_scope_start", "exempt_unit"]


def test_unit_scope_may_carry_a_named_reason(tmp_path: Path) -> None:
    from tests.decide_fixtures import EXTENDED_RULES, rules_text, write_rules
    from transforms.rules import load_rules

    text = rules_text() + EXTENDED_RULES.replace("before_scope_start", "before_psychiatry_start")
    rules = load_rules(write_rules(tmp_path, text))
    row = record(care_unit_hsa_id=SCOPE_UNIT_HSA, documented_date=date(2018, 9, 30))
    assert reasons_of(row, rules=rules) == ["before_psychiatry_start"]


def test_explain_verdicts_name_the_later_scopes_that_apply() -> None:
    row = record(care_unit_hsa_id=SCOPE_UNIT_HSA, documented_date=date(2018, 1, 1))
    verdicts = decide_one(row, rules=extended_rules())
    assert verdicts["later_scopes_applying"] == [len(extended_rules().later_scopes) - 1]


# --- rules.md §8: release delay per information type --------------------------------------

LAB = {
    "record_id": "asynjavisph:L-1",
    "source_system": "asynjavisph",
    "info_type": "lab_result",
    "source_code": "LAB",
}


def test_lab_result_inside_its_release_delay_is_hidden() -> None:
    row = record(**LAB, documented_date=AS_OF - timedelta(days=29))
    assert reasons_of(row, rules=extended_rules()) == ["release_delay"]


def test_lab_result_is_shown_once_its_release_delay_has_passed() -> None:
    row = record(**LAB, documented_date=AS_OF - timedelta(days=30))
    assert reasons_of(row, rules=extended_rules()) == []


def test_rerun_for_an_earlier_date_applies_the_release_delay_then_in_force() -> None:
    as_of = date(2022, 12, 31)
    row = record(**LAB, documented_date=as_of - timedelta(days=14))
    assert reasons_of(row, as_of=as_of, rules=extended_rules()) == []
    row = record(**LAB, documented_date=as_of - timedelta(days=13))
    assert reasons_of(row, as_of=as_of, rules=extended_rules()) == ["release_delay"]


def test_release_delay_leaves_other_types_alone() -> None:
    row = record(**{**LAB, "info_type": "note"}, documented_date=AS_OF)
    assert reasons_of(row, rules=extended_rules()) == []


def test_release_delay_is_infinite_before_its_first_value(tmp_path: Path) -> None:
    rules = extended_rules()
    rules = rules.model_copy(update={"release_delay": rules.release_delay[1:]})
    row = decide_one(
        record(**LAB, documented_date=date(2018, 1, 1)), as_of=date(2022, 1, 1), rules=rules
    )
    assert row["release_delay_days"] is None
    assert row["reasons"] == ["release_delay"]


def test_release_delay_is_last_in_the_reasons() -> None:
    row = record(**LAB, signed=None, documented_date=AS_OF)
    assert reasons_of(row, rules=extended_rules()) == ["unsigned_delay", "release_delay"]


def test_unreadable_type_is_held_by_a_release_delay_in_force() -> None:
    row = record(**{**LAB, "info_type": None}, documented_date=AS_OF)
    assert "release_delay" in reasons_of(row, rules=extended_rules())


def test_unknown_documentation_date_is_held_by_a_release_delay() -> None:
    row = record(**LAB, documented_date=None)
    assert "release_delay" in reasons_of(row, rules=extended_rules())


# --- rules.md §8: block limited to a documentation period ---------------------------------


def test_block_with_a_period_hides_rows_documented_within_it() -> None:
    period = block(documented_from=date(2021, 1, 1), documented_to=date(2021, 12, 31))
    assert reasons_of(record(documented_date=date(2021, 3, 15)), [period]) == ["patient_block"]


def test_block_with_a_period_leaves_rows_documented_outside_it_shown() -> None:
    period = block(documented_from=date(2021, 1, 1), documented_to=date(2021, 12, 31))
    assert reasons_of(record(documented_date=date(2020, 12, 31)), [period]) == []
    assert reasons_of(record(documented_date=date(2022, 1, 1)), [period]) == []


def test_block_period_holds_on_both_end_days() -> None:
    period = block(documented_from=date(2021, 1, 1), documented_to=date(2021, 12, 31))
    assert reasons_of(record(documented_date=date(2021, 1, 1)), [period]) == ["patient_block"]
    assert reasons_of(record(documented_date=date(2021, 12, 31)), [period]) == ["patient_block"]


def test_block_period_with_an_open_end_is_open_that_way() -> None:
    since = block(documented_from=date(2021, 1, 1))
    until = block(block_id="B-2", documented_to=date(2019, 12, 31))
    assert reasons_of(record(documented_date=date(2030, 1, 1)), [since]) == ["patient_block"]
    assert reasons_of(record(documented_date=date(2020, 6, 1)), [since, until]) == []
    assert reasons_of(record(documented_date=date(2017, 1, 1)), [until]) == ["patient_block"]


def test_unit_block_with_a_period_hides_only_that_units_rows_within_it() -> None:
    period = block(scope="UNIT", care_unit_hsa_id=UNIT_HSA, documented_to=date(2021, 12, 31))
    assert reasons_of(record(), [period]) == ["patient_block"]
    assert reasons_of(record(care_unit_hsa_id=OTHER_UNIT_HSA), [period]) == []
    assert reasons_of(record(documented_date=date(2022, 1, 1)), [period]) == []


def test_row_without_a_documentation_date_is_covered_by_a_block_period() -> None:
    period = block(documented_from=date(2021, 1, 1), documented_to=date(2021, 12, 31))
    assert "patient_block" in reasons_of(record(documented_date=None), [period])


def test_row_without_a_unit_is_covered_by_a_unit_block_period_over_its_date() -> None:
    period = block(scope="UNIT", care_unit_hsa_id=OTHER_UNIT_HSA, documented_to=date(2021, 12, 31))
    assert reasons_of(record(care_unit_hsa_id=None), [period]) == ["exempt_unit", "patient_block"]


def test_invalid_block_with_a_period_holds_for_the_whole_journal() -> None:
    period = block(invalid=True, documented_from=date(2030, 1, 1), documented_to=date(2030, 1, 2))
    assert reasons_of(record(), [period]) == ["patient_block"]


def test_block_period_does_not_hide_while_the_block_does_not_hold() -> None:
    period = block(revoked=True, documented_from=date(2021, 1, 1))
    assert reasons_of(record(), [period]) == []


def test_row_count_is_preserved_when_a_patient_has_many_period_blocks() -> None:
    blocks = [block(block_id=f"B-{i}", documented_from=date(2021, 1, i + 1)) for i in range(5)] + [
        block(
            block_id="B-9",
            scope="UNIT",
            care_unit_hsa_id=UNIT_HSA,
            documented_to=date(2021, 12, 31),
        )
    ]
    rows = [record(record_id=f"melior:D-{i}") for i in range(3)]
    out = run_decide(rows, blocks)
    assert out.height == 3
    assert out["reasons"].to_list() == [["patient_block"]] * 3


# --- determinism ----------------------------------------------------------------------------


def test_output_does_not_depend_on_record_or_block_order() -> None:
    rows = [
        record(record_id="melior:D-1"),
        record(record_id="melior:D-2", patient_id=OTHER_PATIENT),
        record(record_id="melior:D-3", care_unit_hsa_id=OTHER_UNIT_HSA),
    ]
    blocks = [
        block(block_id="B-1", scope="UNIT", care_unit_hsa_id=OTHER_UNIT_HSA),
        block(block_id="B-2", patient_id=OTHER_PATIENT, revoked=True),
    ]
    forward = run_decide(rows, blocks).sort("record_id")
    backward = run_decide(rows[::-1], blocks[::-1]).sort("record_id")
    assert forward.equals(backward)
    assert forward["visible"].to_list() == [True, True, False]


def test_output_keeps_the_input_row_order() -> None:
    ids = [f"melior:D-{i}" for i in (5, 1, 9, 3, 7)]
    rows = [
        record(record_id=record_id, patient_id=None if i % 2 else PATIENT)
        for i, record_id in enumerate(ids)
    ]
    blocks = [block(), block(block_id="B-2", scope="UNIT", care_unit_hsa_id=UNIT_HSA)]
    assert run_decide(rows, blocks)["record_id"].to_list() == ids


def test_deciding_an_already_decided_frame_replaces_the_decision_columns() -> None:
    first = run_decide([record(), record(record_id="melior:D-2", retracted=True)])
    again = decide(first.lazy(), blocks_frame([]), default_rules(), AS_OF).collect()
    assert again.columns == first.columns
    assert again.equals(first)


def test_reason_table_lists_each_masks_rules_in_rule_order() -> None:
    table = _reason_table()
    assert table.height == 1 << len(REASONS)
    for mask, reasons, reason in table.iter_rows():
        expected = [code for bit, code in enumerate(REASONS) if mask >> bit & 1]
        assert reasons == expected
        assert reason == (expected[0] if expected else SHOWN)
    assert table.columns == [_tmp("mask"), _tmp("reasons"), _tmp("reason")]
