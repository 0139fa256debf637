"""pandera models for the decided records and the portal feed, and batch validation.

The flow validates every batch of decisions and every batch of feed rows before
it publishes anything; a failure stops the run and leaves the previous feed
live. These models check what holds row by row: types, allowed codes, and the
invariants that tie `visible`, `reason` and `reasons` together. Uniqueness of
ids and facts across tables are checked in DuckDB, which spills to disk
(pandera's `unique=True` holds a whole column in memory: field notes).

Error messages name checks, columns and counts only, never a failing value:
the values are personnummer and journal text, and the message ends up in logs
and run summaries. `ValidationFailed` is raised `from None` for the same reason:
pandera's own exception text lists failure cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.config import ValidationDepth, config_context
from pandera.errors import SchemaError, SchemaErrors

from transforms.canonical import INFO_TYPES, SYSTEMS
from transforms.decide import REASONS, SHOWN

PATIENT_ID_PATTERN: Final = r"^[0-9]{12}$"

FEED_COLUMN_TYPES: Final[dict[str, str]] = {
    "record_id": "VARCHAR",
    "source_system": "VARCHAR",
    "record_version": "BIGINT",
    "patient_id": "VARCHAR",
    "care_unit_hsa_id": "VARCHAR",
    "care_unit_name": "VARCHAR",
    "info_type": "VARCHAR",
    "documented_at": "TIMESTAMPTZ",
    "documented_date": "DATE",
    "signed": "BOOLEAN",
    "title": "VARCHAR",
    "content": "VARCHAR",
    "rules_version": "VARCHAR",
}
"""The portal's columns, in order (interfaces.md), with their DuckDB types."""

FEED_COLUMNS: Final[tuple[str, ...]] = tuple(FEED_COLUMN_TYPES)
"""The portal's columns, in order: a feed part holds these and nothing else."""

STORED_DECISION_COLUMNS: Final[tuple[str, ...]] = (
    "record_id",
    "source_system",
    "record_version",
    "patient_id",
    "care_unit_hsa_id",
    "care_unit_name",
    "info_type",
    "source_code",
    "documented_date",
    "visible",
    "reason",
    "reasons",
    "exempt_unit_by_name_only",
    "rules_version",
    "run_id",
    "partition_key",
)
"""The warehouse's `decisions` table, in order: one row per record id, per run."""
ALLOWED_REASONS: Final = (*REASONS, SHOWN)

UtcDatetime = Annotated[pl.Datetime, "us", "UTC"]
StringList = Annotated[pl.List, pl.String()]


def _in_rule_order(codes: tuple[str, ...]) -> str:
    """A pattern for the codes, each followed by a comma, at most once each, in order."""
    if any(not re.fullmatch(r"[a-z_]+", code) for code in codes):
        raise ValueError("reason codes are lower-case words")
    return "^" + "".join(f"(?:{code},)?" for code in codes) + "$"


_REASONS_IN_RULE_ORDER: Final = _in_rule_order(REASONS)


class DecisionModel(pa.DataFrameModel):
    """A decided record: the canonical record, `invalid`, and the decision columns.

    Every record column except the ids may be null: an invalid record's latest
    version could not be read. Extra columns (e.g. `jvn explain`'s verdicts) are allowed.
    """

    record_id: str
    source_system: str
    record_version: pl.Int64
    patient_id: str = pa.Field(nullable=True, str_matches=PATIENT_ID_PATTERN)
    birth_date: pl.Date = pa.Field(nullable=True)
    care_unit_hsa_id: str = pa.Field(nullable=True)
    care_unit_name: str = pa.Field(nullable=True)
    specialty: str = pa.Field(nullable=True)
    source_code: str = pa.Field(nullable=True)
    info_type: str = pa.Field(nullable=True)
    keyword: str = pa.Field(nullable=True)
    documented_at: UtcDatetime = pa.Field(nullable=True)
    documented_date: pl.Date = pa.Field(nullable=True)
    signed: bool = pa.Field(nullable=True)
    retracted: bool = pa.Field(nullable=True)
    title: str = pa.Field(nullable=True)
    content: str = pa.Field(nullable=True)
    delivery_id: str = pa.Field(nullable=True)
    source_row: pl.Int64 = pa.Field(nullable=True)
    invalid: bool
    visible: bool
    reason: str
    reasons: StringList
    rules_version: str
    exempt_unit_by_name_only: bool

    class Config:
        name = "decisions"
        strict = False  # extra columns are allowed
        coerce = False  # a wrong type is a bug upstream, not something to paper over

    @pa.check("info_type", name="info_type_is_known")
    @classmethod
    def _info_type_known(cls, data: PolarsData) -> pl.LazyFrame:
        column = pl.col(data.key)
        return data.lazyframe.select(column.is_in(list(INFO_TYPES)) | column.is_null())

    @pa.check("reason", name="reason_is_known")
    @classmethod
    def _reason_known(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(list(ALLOWED_REASONS)))

    @pa.dataframe_check(name="visible_iff_reason_shown")
    @classmethod
    def _visible_iff_shown(cls, data: PolarsData) -> pl.LazyFrame:
        shown = pl.col("reason") == SHOWN
        return data.lazyframe.select((pl.col("visible") == shown).fill_null(False))

    @pa.dataframe_check(name="reasons_empty_iff_shown")
    @classmethod
    def _reasons_empty_iff_shown(cls, data: PolarsData) -> pl.LazyFrame:
        empty = pl.col("reasons").list.len() == 0
        return data.lazyframe.select((empty == (pl.col("reason") == SHOWN)).fill_null(False))

    @pa.dataframe_check(name="first_reason_is_reason")
    @classmethod
    def _first_reason(cls, data: PolarsData) -> pl.LazyFrame:
        reason = pl.col("reason")
        ok = (reason == SHOWN) | (pl.col("reasons").list.first() == reason)
        return data.lazyframe.select(ok.fill_null(False))

    @pa.dataframe_check(name="reasons_known_and_in_rule_order")
    @classmethod
    def _reasons_in_order(cls, data: PolarsData) -> pl.LazyFrame:
        # Each code once at most, known, in rule order: the codes joined, each with
        # a comma after it, match the rule order's optional codes in turn. (Ranking
        # each element with `list.eval` took two thirds of a partition's validation.)
        reasons = pl.col("reasons")
        joined = pl.concat_str([reasons.list.join(",", ignore_nulls=False), pl.lit(",")])
        ordered = (reasons.list.len() == 0) | joined.str.contains(_REASONS_IN_RULE_ORDER)
        return data.lazyframe.select(ordered.fill_null(False))

    @pa.dataframe_check(name="invalid_has_only_invalid_record")
    @classmethod
    def _invalid_only(cls, data: PolarsData) -> pl.LazyFrame:
        reasons = pl.col("reasons")
        only = (reasons.list.len() == 1) & (reasons.list.first() == "invalid_record")
        return data.lazyframe.select((~pl.col("invalid") | only).fill_null(False))

    @pa.dataframe_check(name="exempt_by_name_only_is_exempt")
    @classmethod
    def _name_only_is_exempt(cls, data: PolarsData) -> pl.LazyFrame:
        exempt = pl.col("reasons").list.contains("exempt_unit")
        flagged = pl.col("exempt_unit_by_name_only")
        return data.lazyframe.select((~flagged | exempt).fill_null(False))


class FeedModel(pa.DataFrameModel):
    """A row of the portal feed: a visible record, as the portal reads it.

    Extra columns are allowed; `visible`, when present, must be True on every row.
    """

    record_id: str
    source_system: str = pa.Field(isin=list(SYSTEMS))
    record_version: pl.Int64 = pa.Field(ge=1)
    patient_id: str = pa.Field(str_matches=PATIENT_ID_PATTERN)
    care_unit_hsa_id: str
    care_unit_name: str
    info_type: str
    documented_at: UtcDatetime
    documented_date: pl.Date
    signed: bool
    title: str = pa.Field(nullable=True)
    content: str = pa.Field(nullable=True)
    rules_version: str
    visible: bool | None = pa.Field(nullable=False)

    class Config:
        name = "feed"
        strict = False
        coerce = False

    @pa.check("info_type", name="info_type_is_known")
    @classmethod
    def _info_type_known(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_in(list(INFO_TYPES)))

    @pa.check("visible", name="feed_row_is_visible")
    @classmethod
    def _all_visible(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).fill_null(False))


@dataclass(frozen=True)
class Failure:
    """One failed check: which, on which column (None: a row check), on how many rows.

    `rows` is None for checks on the frame's shape (a missing column, a wrong type).
    """

    check: str
    column: str | None
    rows: int | None

    def __str__(self) -> str:
        where = f"column {self.column}" if self.column else "row check"
        if self.rows is None:
            if self.check == "missing":
                return f"{where}: missing"
            if self.check.startswith("dtype("):
                return f"{where}: wrong type, expected {self.check}"
            # A check that raised (e.g. a column it reads is missing or mistyped).
            return f"{where}: {self.check} (could not run)"
        unit = "row" if self.rows == 1 else "rows"
        return f"{where}: {self.check} ({self.rows} {unit})"


class ValidationFailed(Exception):
    """A batch broke its schema. The message holds checks, columns and counts, never values."""

    def __init__(self, message: str, failures: tuple[Failure, ...] = ()) -> None:
        super().__init__(message)
        self.failures = failures


def _failures(
    model: type[pa.DataFrameModel], df: pl.DataFrame, cases: pl.DataFrame
) -> list[Failure]:
    """Count failing rows per (column, check); the `failure_case` values are never read."""
    schema = model.to_schema()
    # Missing columns are worked out from the schema, not read from the failure cases.
    found = [
        Failure(check="missing", column=name, rows=None)
        for name, column in schema.columns.items()
        if column.required and name not in df.columns
    ]
    counted = (
        cases.lazy()
        .select("column", "check", "index")
        .filter(pl.col("check") != "column_in_dataframe")
        .group_by("column", "check")
        .agg(
            pl.col("index").drop_nulls().n_unique().alias("rows"),
            pl.col("index").is_null().all().alias("shape_only"),
        )
        .sort("column", "check")
        .collect()
    )
    for column, check, rows, shape_only in counted.iter_rows():
        found.append(
            Failure(
                check=str(check),
                column=None if column == schema.name else str(column),
                rows=None if shape_only else int(rows),
            )
        )
    return found


def _validate(model: type[pa.DataFrameModel], df: pl.DataFrame, what: str) -> None:
    # SCHEMA_AND_DATA explicitly: an environment set to SCHEMA_ONLY would make
    # every data check pass silently (field notes).
    with config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        try:
            model.validate(df, lazy=True)
        except SchemaErrors as errors:
            failures = tuple(_failures(model, df, errors.failure_cases))
            detail = "; ".join(str(failure) for failure in failures) or "unspecified failure"
            message = f"{what} batch of {df.height} rows failed validation: {detail}"
            raise ValidationFailed(message, failures) from None
        except SchemaError as error:
            # lazy=True collects failures into SchemaErrors; a lone SchemaError
            # means pandera stopped early. Report its kind, not its text.
            check = getattr(error, "reason_code", None)
            failure = Failure(check=str(getattr(check, "name", check)), column=None, rows=None)
            message = f"{what} batch of {df.height} rows failed validation: {failure.check}"
            raise ValidationFailed(message, (failure,)) from None


def validate_decisions_batch(df: pl.DataFrame) -> None:
    """Check a batch of decided records; raise `ValidationFailed` listing what broke."""
    _validate(DecisionModel, df, "decisions")


def validate_feed_batch(df: pl.DataFrame) -> None:
    """Check a batch of feed rows; raise `ValidationFailed` listing what broke."""
    _validate(FeedModel, df, "feed")
