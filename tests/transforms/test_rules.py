"""The rule file: the default loads as rules.md says, and a broken file is refused clearly."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from tests.decide_fixtures import default_rules, rules_text, rules_with, write_rules
from transforms.decide import REASONS
from transforms.rules import (
    LATER_SCOPE_REASONS,
    RuleFileError,
    default_rules_path,
    load_rules,
    normalise_text,
)

SPEC_EXEMPT_UNITS = Path("/work/shared/spec/exempt_units.csv")


def _refused(tmp_path: Path, old: str, new: str) -> str:
    """Edit the default file, load it, and return the RuleFileError message."""
    text = rules_text()
    assert text.count(old) == 1, old
    path = write_rules(tmp_path, text.replace(old, new))
    with pytest.raises(RuleFileError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert "\n" not in message, "the message must be one line"
    assert message.startswith(f"{path}: ")
    return message


# --- the default file ---------------------------------------------------------


def test_default_rule_file_path_is_rules_region_toml_in_the_project() -> None:
    path = default_rules_path()
    assert path.parts[-2:] == ("rules", "region.toml")
    assert path.is_file()


def test_default_rule_file_loads_with_a_version() -> None:
    rules = default_rules()
    assert rules.version
    assert rules.rules_version == f"{rules.version}+{rules.content_sha256[:12]}"


def test_default_rules_connect_the_five_systems_with_their_start_dates() -> None:
    starts = {name: rule.start for name, rule in default_rules().systems.items()}
    assert starts == {
        "melior": date(2016, 6, 1),
        "asynjavisph": date(2016, 11, 1),
        "obstetrix": date(2019, 5, 15),
        "journalia": date(2019, 4, 1),
        "t4": date(2020, 12, 1),
    }


def test_default_rules_connect_the_information_types_of_rules_md() -> None:
    types = {name: set(rule.info_types) for name, rule in default_rules().systems.items()}
    assert types == {
        "melior": {"note", "diagnosis", "attention_signal", "care_contact"},
        "asynjavisph": {
            "note",
            "diagnosis",
            "attention_signal",
            "care_contact",
            "lab_result",
            "vaccination",
        },
        "obstetrix": {"journal_summary"},
        "journalia": {"ak_letter"},
        "t4": {"note", "care_contact"},
    }


def test_default_rules_hold_the_three_later_connected_scopes() -> None:
    scopes = {
        (s.reason, s.systems, s.start, s.specialty, s.patient_under_age)
        for s in default_rules().later_scopes
    }
    assert scopes == {
        ("before_psychiatry_start", ("melior",), date(2018, 9, 3), "Psykiatri, vuxen", None),
        ("before_genetics_start", ("melior",), date(2019, 11, 1), "Klinisk genetik", None),
        ("before_children_start", ("melior", "asynjavisph"), date(2019, 11, 1), None, 18),
    }


def test_default_rules_list_all_19_exempt_units_of_the_spec_csv() -> None:
    listed = {(u.hsa_id, u.name) for u in default_rules().exempt_units.hsa_ids}
    if SPEC_EXEMPT_UNITS.exists():
        with SPEC_EXEMPT_UNITS.open(encoding="utf-8") as handle:
            expected = {(row["hsa_id"], row["name"]) for row in csv.DictReader(handle)}
        assert listed == expected
    assert len(listed) == 19


def test_default_rules_hold_the_exempt_terms_of_rules_md() -> None:
    assert set(default_rules().exempt_terms.terms) == {
        "Tidiga hypoteser",
        "Våldsutsatthet i nära relationer",
    }


def test_unsigned_delay_is_14_days_before_2022_03_01_and_0_from_then() -> None:
    rules = default_rules()
    assert rules.unsigned_delay_days(date(2022, 2, 28)) == 14
    assert rules.unsigned_delay_days(date(2022, 3, 1)) == 0
    assert rules.unsigned_delay_days(date(1900, 1, 1)) == 14


def test_unsigned_delay_is_infinite_when_no_value_is_in_force() -> None:
    assert default_rules().unsigned_delay_days(date(1899, 12, 31)) is None


def test_later_scope_reasons_are_rule_reasons_in_rule_order() -> None:
    positions = [REASONS.index(code) for code in LATER_SCOPE_REASONS]
    assert positions == sorted(positions)


# --- the content hash -----------------------------------------------------------


def test_content_hash_ignores_comments_and_line_endings(tmp_path: Path) -> None:
    text = "# a new comment\n" + rules_text().replace("\n", "\r\n")
    edited = load_rules(write_rules(tmp_path, text))
    assert edited.content_sha256 == default_rules().content_sha256
    assert edited.rules_version == default_rules().rules_version


def test_content_hash_changes_when_a_rule_changes(tmp_path: Path) -> None:
    edited = rules_with(tmp_path, "start = 2020-12-01", "start = 2020-12-08")
    assert edited.version == default_rules().version
    assert edited.rules_version != default_rules().rules_version


def test_rule_set_is_frozen() -> None:
    rules = default_rules()
    with pytest.raises(ValueError, match="frozen"):
        rules.version = "x"  # type: ignore[misc]


# --- normalisation shared with decide ---------------------------------------------


def test_normalise_text_lowers_strips_accents_and_folds_spaces() -> None:
    assert normalise_text("  Våldsutsatthet \t i  NÄRA\nrelationer ") == (
        "valdsutsatthet i nara relationer"
    )
    assert normalise_text("Mödra-barnhälsovårdsteamet é") == "modra-barnhalsovardsteamet e"


# --- refused files ----------------------------------------------------------------


def test_missing_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(RuleFileError, match=r"nope\.toml: cannot read file"):
        load_rules(path)


def test_bad_toml_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, 'version = "', 'version = = "')
    assert "invalid TOML" in message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "start = 2016-06-01", "start = 2016-06-01\nstrat = 2016-06-01")
    assert "systems.melior.strat: unknown key" in message


def test_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, 'version = "', 'colour = "blue"\nversion = "')
    assert "colour: unknown key" in message


def test_missing_field_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "start = 2020-12-01", "")
    assert "systems.t4.start: missing field" in message


def test_missing_version_is_refused(tmp_path: Path) -> None:
    text = "\n".join(line for line in rules_text().splitlines() if not line.startswith("version ="))
    with pytest.raises(RuleFileError, match=r": version: missing field"):
        load_rules(write_rules(tmp_path, text))


def test_quoted_date_is_refused_as_invalid_date(tmp_path: Path) -> None:
    message = _refused(tmp_path, "start = 2020-12-01", 'start = "2020-12-01"')
    assert "systems.t4.start: invalid date" in message


def test_datetime_instead_of_date_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "start = 2020-12-01", "start = 2020-12-01T00:00:00")
    assert "systems.t4.start: invalid date" in message


def test_impossible_date_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "start = 2020-12-01", "start = 2020-02-30")
    assert "invalid TOML" in message


def test_bad_regex_is_refused_with_the_pattern(tmp_path: Path) -> None:
    message = _refused(tmp_path, "'rattspsykiatri',", "'rattspsykiatri(',")
    assert "exempt_units.name_patterns.7" in message
    assert "invalid regular expression" in message


def test_regex_that_polars_cannot_compile_is_refused(tmp_path: Path) -> None:
    # Look-behind compiles in Python's re but not in polars (Rust regex).
    message = _refused(tmp_path, "'rattspsykiatri',", "'(?<=x)rattspsykiatri',")
    assert "invalid regular expression" in message
    assert "polars" in message


def test_upper_case_pattern_is_refused_because_it_could_never_match(tmp_path: Path) -> None:
    message = _refused(tmp_path, "'rattspsykiatri',", "'Rättspsykiatri',")
    assert "lower case without accents" in message


def test_unknown_info_type_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, 'info_types = ["ak_letter"]', 'info_types = ["ak_letter", "x_files"]'
    )
    assert "systems.journalia.info_types: unknown information type 'x_files'" in message


def test_unknown_system_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "[systems.t4]", "[systems.t5]")
    assert "systems: unknown system 't5'" in message


def test_unknown_system_in_a_later_scope_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, 'systems = ["melior", "asynjavisph"]', 'systems = ["melior", "cosmic"]'
    )
    assert "later_scopes.2.systems: unknown system 'cosmic'" in message


def test_unknown_reason_code_in_a_later_scope_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, 'reason = "before_genetics_start"', 'reason = "before_dentistry_start"'
    )
    assert "later_scopes.1.reason: unknown reason code" in message


def test_later_scope_with_both_matchers_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path,
        'specialty = "Klinisk genetik"',
        'specialty = "Klinisk genetik"\npatient_under_age = 18',
    )
    assert "later_scopes.1: give exactly one of specialty, patient_under_age" in message


def test_quoted_number_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "days = 14", 'days = "14"')
    assert "unsigned_delay.0.days: must be an integer" in message


def test_negative_delay_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "days = 14", "days = -1")
    assert "unsigned_delay.0.days" in message


def test_duplicate_exempt_hsa_id_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path,
        '"SE2321000131-E000000011019"',
        '"se2321000131-e000000011001"',
    )
    assert "exempt_units.hsa_ids: an HSA-id is listed twice" in message


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(rules_text().encode("utf-8").replace("å".encode(), b"\xe5"))
    with pytest.raises(RuleFileError, match="not UTF-8"):
        load_rules(path)


# --- the rule kinds of rules.md §8 (other regions' rules) -------------------------

ASYN_START = "start = 2016-11-01"
UNIT_SCOPE = """
[[later_scopes]]
reason = "before_scope_start"
name = "Kvinnokliniken och vuxenpsykiatrin"
systems = ["melior", "asynjavisph"]
start = 2018-10-01

[later_scopes.units]
hsa_ids = [{ hsa_id = "SE2321000131-E000000077001", name = "Kvinnokliniken" }]
name_patterns = ['vuxenpsykiatri']
"""
LAB_DELAY = """
[[release_delay]]
info_type = "lab_result"
from = 2020-01-01
days = 14

[[release_delay]]
info_type = "lab_result"
from = 2023-01-01
days = 7
"""


def _with_appended(tmp_path: Path, extra: str) -> Path:
    return write_rules(tmp_path, rules_text() + extra)


def _appended_refused(tmp_path: Path, extra: str) -> str:
    path = _with_appended(tmp_path, extra)
    with pytest.raises(RuleFileError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert "\n" not in message, "the message must be one line"
    return message


def test_default_rules_version_is_unchanged_by_the_new_rule_kinds() -> None:
    # The region's file uses none of §8's kinds: its decisions carry the same version.
    assert default_rules().rules_version == "2026.1+1af464428307"


def test_new_reason_codes_stand_in_the_order_of_rules_md() -> None:
    assert REASONS.index("before_scope_start") == REASONS.index("before_children_start") + 1
    assert REASONS.index("before_scope_start") + 1 == REASONS.index("exempt_unit")
    assert REASONS[-1] == "release_delay"
    assert REASONS[-2] == "unsigned_delay"


def test_info_type_start_applies_to_its_type_and_the_system_start_to_the_others(
    tmp_path: Path,
) -> None:
    rules = rules_with(
        tmp_path, ASYN_START, ASYN_START + "\ninfo_type_starts = { vaccination = 2019-12-01 }"
    )
    assert rules.start_for("asynjavisph", "vaccination") == date(2019, 12, 1)
    assert rules.start_for("asynjavisph", "note") == date(2016, 11, 1)


def test_info_type_start_for_an_unknown_type_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, ASYN_START, ASYN_START + "\ninfo_type_starts = { x_files = 2019-12-01 }"
    )
    assert "systems.asynjavisph.info_type_starts: unknown information type 'x_files'" in message


def test_info_type_start_for_a_type_not_connected_for_the_system_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, ASYN_START, ASYN_START + "\ninfo_type_starts = { journal_summary = 2019-12-01 }"
    )
    assert "'journal_summary' is not connected for this system" in message


def test_info_type_start_before_its_system_start_is_refused(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, ASYN_START, ASYN_START + "\ninfo_type_starts = { vaccination = 2015-01-01 }"
    )
    assert "systems.asynjavisph: the start of 'vaccination' is before the system's start" in message


def test_later_scope_by_unit_loads_with_its_ids_and_patterns(tmp_path: Path) -> None:
    scope = load_rules(_with_appended(tmp_path, UNIT_SCOPE)).later_scopes[-1]
    assert scope.reason == "before_scope_start"
    assert scope.units is not None
    assert scope.units.normalised_hsa_ids == ("SE2321000131-E000000077001",)
    assert scope.units.name_patterns == ("vuxenpsykiatri",)


def test_later_scope_by_unit_without_ids_or_patterns_is_refused(tmp_path: Path) -> None:
    extra = UNIT_SCOPE.split("[later_scopes.units]")[0] + "units = {}\n"
    message = _appended_refused(tmp_path, extra)
    assert "later_scopes.3.units: give at least one HSA-id or name pattern" in message


def test_later_scope_with_a_unit_and_a_specialty_is_refused(tmp_path: Path) -> None:
    extra = UNIT_SCOPE.replace(
        "[later_scopes.units]", 'specialty = "Psykiatri, vuxen"\n\n[later_scopes.units]'
    )
    message = _appended_refused(tmp_path, extra)
    assert "later_scopes.3: give exactly one of specialty, patient_under_age, units" in message


def test_later_scope_by_unit_with_a_bad_pattern_is_refused(tmp_path: Path) -> None:
    message = _appended_refused(tmp_path, UNIT_SCOPE.replace("'vuxenpsykiatri'", "'vuxen('"))
    assert "later_scopes.3.units.name_patterns.0" in message
    assert "invalid regular expression" in message


def test_before_scope_start_is_a_later_scope_reason() -> None:
    assert "before_scope_start" in LATER_SCOPE_REASONS


def test_release_delay_uses_the_value_in_force_on_the_business_date(tmp_path: Path) -> None:
    rules = load_rules(_with_appended(tmp_path, LAB_DELAY))
    assert rules.release_delay_days("lab_result", date(2022, 12, 31)) == 14
    assert rules.release_delay_days("lab_result", date(2023, 1, 1)) == 7


def test_release_delay_is_infinite_before_its_first_value(tmp_path: Path) -> None:
    rules = load_rules(_with_appended(tmp_path, LAB_DELAY))
    assert rules.release_delay_days("lab_result", date(2019, 12, 31)) is None


def test_type_without_release_delay_has_none(tmp_path: Path) -> None:
    rules = load_rules(_with_appended(tmp_path, LAB_DELAY))
    assert rules.release_delay_days("note", date(2024, 1, 1)) == 0
    assert not default_rules().release_delay_in_force(date(2024, 1, 1))


def test_release_delay_in_force_unless_every_value_on_the_date_is_zero(tmp_path: Path) -> None:
    extra = LAB_DELAY.replace("from = 2023-01-01\ndays = 7", "from = 2025-01-01\ndays = 0")
    rules = load_rules(_with_appended(tmp_path, extra))
    assert rules.release_delay_in_force(date(2019, 1, 1))  # infinite before the first value
    assert rules.release_delay_in_force(date(2024, 12, 31))
    assert not rules.release_delay_in_force(date(2025, 1, 1))


def test_release_delay_without_a_date_is_refused(tmp_path: Path) -> None:
    message = _appended_refused(
        tmp_path, '\n[[release_delay]]\ninfo_type = "lab_result"\ndays = 14\n'
    )
    assert "release_delay.0: a release delay needs `from`" in message


def test_release_delay_for_an_unknown_type_is_refused(tmp_path: Path) -> None:
    message = _appended_refused(tmp_path, LAB_DELAY.replace("lab_result", "x_files", 1))
    assert "release_delay.0.info_type: unknown information type 'x_files'" in message


def test_overlapping_release_delay_values_are_refused(tmp_path: Path) -> None:
    message = _appended_refused(tmp_path, LAB_DELAY.replace("2023-01-01", "2020-01-01"))
    assert "release_delay: two values for 'lab_result' start on the same date 2020-01-01" in message
