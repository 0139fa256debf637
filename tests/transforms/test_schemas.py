"""pandera models: decide's output passes, each broken invariant is caught and named.

Every failure message is checked for what it must never contain: the failing
values (personnummer, journal text).
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pandera.config
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandera.api.polars.types import PolarsData
from pandera.config import ValidationDepth, config_context

from tests.decide_fixtures import (
    LISTED_EXEMPT_HSA,
    OTHER_PATIENT,
    block,
    invalid_record,
    record,
    run_decide,
)
from transforms.decide import REASONS, SHOWN
from transforms.schemas import (
    FEED_COLUMNS,
    DecisionModel,
    FeedModel,
    ValidationFailed,
    validate_decisions_batch,
    validate_feed_batch,
)

SECRET_TEXT = "Hemlig journaltext 4711"


def _decided() -> pl.DataFrame:
    """A realistic batch: shown, hidden for several reasons, invalid, name-only exempt."""
    return run_decide(
        [
            record(record_id="melior:1", content=SECRET_TEXT),
            record(record_id="melior:2", retracted=True, care_unit_hsa_id=LISTED_EXEMPT_HSA),
            record(record_id="melior:3", care_unit_name="Ungdomsmottagningen City"),
            record(record_id="melior:4", patient_id=OTHER_PATIENT),
            invalid_record(record_id="melior:5"),
        ],
        [block(patient_id=OTHER_PATIENT)],
    )


def _feed() -> pl.DataFrame:
    return _decided().filter(pl.col("visible")).select(FEED_COLUMNS)


def _failure(validate: Any, df: pl.DataFrame) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate(df)
    return caught.value


def _checks(error: ValidationFailed) -> set[tuple[str | None, str]]:
    return {(failure.column, failure.check) for failure in error.failures}


def _set_row(df: pl.DataFrame, record_id: str, **values: Any) -> pl.DataFrame:
    """Overwrite columns on one row (by record_id), keeping dtypes."""
    target = pl.col("record_id") == record_id
    return df.with_columns(
        pl.when(target)
        .then(pl.lit(value, dtype=df.schema[name]))
        .otherwise(pl.col(name))
        .alias(name)
        for name, value in values.items()
    )


# --- decisions --------------------------------------------------------------------------


def test_decide_output_passes_the_decision_model() -> None:
    validate_decisions_batch(_decided())


def test_decide_output_with_verdicts_passes_the_decision_model() -> None:
    validate_decisions_batch(run_decide([record(), invalid_record()], with_verdicts=True))


def test_empty_batch_passes() -> None:
    validate_decisions_batch(_decided().head(0))


def test_extra_columns_are_allowed() -> None:
    validate_decisions_batch(_decided().with_columns(run_id=pl.lit("run-1")))


def test_visible_row_with_a_hiding_reason_fails() -> None:
    bad = _set_row(_decided(), "melior:2", visible=True)
    assert (None, "visible_iff_reason_shown") in _checks(_failure(validate_decisions_batch, bad))


def test_shown_row_with_reasons_fails() -> None:
    bad = _set_row(_decided(), "melior:1", reasons=["exempt_unit"])
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert (None, "reasons_empty_iff_shown") in checks


def test_hidden_row_without_reasons_fails() -> None:
    bad = _set_row(_decided(), "melior:2", reasons=[])
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert (None, "reasons_empty_iff_shown") in checks
    assert (None, "first_reason_is_reason") in checks


def test_reason_that_is_not_the_first_of_reasons_fails() -> None:
    bad = _set_row(_decided(), "melior:2", reason="exempt_unit")
    assert (None, "first_reason_is_reason") in _checks(_failure(validate_decisions_batch, bad))


def test_unknown_reason_fails() -> None:
    bad = _set_row(_decided(), "melior:2", reason="because", reasons=["because"])
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert ("reason", "reason_is_known") in checks
    assert (None, "reasons_known_and_in_rule_order") in checks


def test_reasons_out_of_rule_order_fail() -> None:
    bad = _set_row(
        _decided(), "melior:2", reason="exempt_unit", reasons=["exempt_unit", "retracted"]
    )
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert (None, "reasons_known_and_in_rule_order") in checks


def test_a_reason_listed_twice_fails() -> None:
    bad = _set_row(_decided(), "melior:2", reason="retracted", reasons=["retracted", "retracted"])
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert (None, "reasons_known_and_in_rule_order") in checks


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*REASONS, SHOWN, "because", "", None]), max_size=5) | st.none())
def test_rule_order_check_is_strictly_increasing_rank_of_known_codes(
    reasons: list[str | None] | None,
) -> None:
    # The check matches a pattern over the joined codes; this is what it must mean.
    expected = reasons is not None and all(code in REASONS for code in reasons)
    if expected and reasons:
        ranks = [REASONS.index(code) for code in reasons if code is not None]
        expected = all(low < high for low, high in itertools.pairwise(ranks))
    frame = pl.DataFrame({"reasons": [reasons]}, schema={"reasons": pl.List(pl.String)})
    check = DecisionModel._reasons_in_order(PolarsData(frame.lazy(), "reasons"))
    assert check.collect().to_series().to_list() == [expected]


def test_invalid_row_with_other_reasons_fails() -> None:
    bad = _set_row(_decided(), "melior:5", reasons=["invalid_record", "retracted"])
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert (None, "invalid_has_only_invalid_record") in checks


def test_name_only_flag_on_a_row_not_exempt_fails() -> None:
    bad = _set_row(_decided(), "melior:1", exempt_unit_by_name_only=True)
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert (None, "exempt_by_name_only_is_exempt") in checks


def test_unknown_info_type_fails() -> None:
    bad = _set_row(_decided(), "melior:1", info_type="horoscope")
    assert ("info_type", "info_type_is_known") in _checks(_failure(validate_decisions_batch, bad))


def test_malformed_patient_id_fails() -> None:
    bad = _set_row(_decided(), "melior:1", patient_id="19850312-2384")
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert ("patient_id", "str_matches('^[0-9]{12}$')") in checks


def test_null_decision_columns_fail() -> None:
    bad = _set_row(_decided(), "melior:1", visible=None, rules_version=None)
    checks = _checks(_failure(validate_decisions_batch, bad))
    assert ("visible", "not_nullable") in checks
    assert ("rules_version", "not_nullable") in checks


def test_missing_column_is_named() -> None:
    error = _failure(validate_decisions_batch, _decided().drop("rules_version"))
    assert ("rules_version", "missing") in _checks(error)
    assert "column rules_version: missing" in str(error)


def test_wrong_type_is_named() -> None:
    bad = _decided().with_columns(pl.col("record_version").cast(pl.Int32))
    error = _failure(validate_decisions_batch, bad)
    assert "column record_version: wrong type" in str(error)


def test_failure_message_counts_rows_per_check() -> None:
    bad = _decided().with_columns(visible=pl.lit(True))
    error = _failure(validate_decisions_batch, bad)
    [failure] = [f for f in error.failures if f.check == "visible_iff_reason_shown"]
    assert failure.rows == 4
    assert "visible_iff_reason_shown (4 rows)" in str(error)


def test_failure_message_never_contains_the_failing_values() -> None:
    bad = _set_row(
        _decided(),
        "melior:1",
        patient_id="19850312-2384",
        info_type=SECRET_TEXT,
        reasons=[SECRET_TEXT],
    )
    error = _failure(validate_decisions_batch, bad)
    message = str(error)
    for secret in ("19850312-2384", "198503122384", SECRET_TEXT, "4711"):
        assert secret not in message
    assert error.__cause__ is None and error.__suppress_context__


def test_failure_message_is_one_line() -> None:
    error = _failure(validate_decisions_batch, _decided().with_columns(visible=pl.lit(True)))
    assert "\n" not in str(error)


def test_validation_checks_data_even_when_configured_for_schema_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What PANDERA_VALIDATION_DEPTH=SCHEMA_ONLY sets: data checks would pass silently.
    monkeypatch.setattr(pandera.config.CONFIG, "validation_depth", ValidationDepth.SCHEMA_ONLY)
    bad = _set_row(_decided(), "melior:2", visible=True)
    with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
        DecisionModel.validate(bad)  # pandera alone lets it through
        _failure(validate_decisions_batch, bad)


def test_decision_model_does_not_check_id_uniqueness() -> None:
    # Uniqueness is DuckDB's job (pandera's unique=True holds a column in memory).
    doubled = pl.concat([_decided(), _decided()])
    validate_decisions_batch(doubled)
    assert not any(column.unique for column in DecisionModel.to_schema().columns.values())


# --- feed ---------------------------------------------------------------------------------


def test_feed_rows_pass_the_feed_model() -> None:
    feed = _feed()
    assert feed.height == 1
    validate_feed_batch(feed)


def test_feed_with_extra_columns_and_a_true_visible_column_passes() -> None:
    validate_feed_batch(_feed().with_columns(visible=pl.lit(True), partition=pl.lit(3)))


def test_feed_row_that_is_not_visible_fails() -> None:
    bad = _decided().filter(pl.col("record_id") == "melior:2").select(*FEED_COLUMNS, "visible")
    error = _failure(validate_feed_batch, bad)
    assert ("visible", "feed_row_is_visible") in _checks(error)


def test_feed_patient_id_must_be_12_digits() -> None:
    bad = _feed().with_columns(patient_id=pl.lit("8503122384"))
    error = _failure(validate_feed_batch, bad)
    assert ("patient_id", "str_matches('^[0-9]{12}$')") in _checks(error)
    assert "8503122384" not in str(error)


def test_feed_patient_id_must_not_be_null() -> None:
    bad = _feed().with_columns(patient_id=pl.lit(None, dtype=pl.String))
    assert ("patient_id", "not_nullable") in _checks(_failure(validate_feed_batch, bad))


def test_feed_info_type_must_be_known() -> None:
    bad = _feed().with_columns(info_type=pl.lit("gossip"))
    assert ("info_type", "info_type_is_known") in _checks(_failure(validate_feed_batch, bad))


def test_feed_documented_at_must_be_a_utc_timestamp() -> None:
    bad = _feed().with_columns(pl.col("documented_at").dt.replace_time_zone(None))
    error = _failure(validate_feed_batch, bad)
    assert "column documented_at: wrong type" in str(error)


def test_feed_documented_date_must_be_a_date() -> None:
    bad = _feed().with_columns(documented_date=pl.lit("2021-03-15"))
    assert "column documented_date: wrong type" in str(_failure(validate_feed_batch, bad))


def test_feed_missing_column_is_named() -> None:
    error = _failure(validate_feed_batch, _feed().drop("content"))
    assert ("content", "missing") in _checks(error)


def test_feed_title_and_content_may_be_null() -> None:
    validate_feed_batch(_feed().with_columns(title=pl.lit(None, dtype=pl.String)))


def test_feed_model_requires_the_columns_of_the_portal_contract() -> None:
    required = {name for name, column in FeedModel.to_schema().columns.items() if column.required}
    assert required == set(FEED_COLUMNS)


def test_feed_documented_date_type_is_date() -> None:
    assert _feed().schema["documented_date"] == pl.Date
    assert _feed()["documented_date"].to_list() == [date(2021, 3, 15)]
