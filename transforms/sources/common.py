"""Parsing pieces every source adapter shares, as polars expressions.

Adapters receive their delivery as all-string columns (the I/O layer reads the
file, the adapter never does) and build canonical columns from these pieces.
Every parser here is lenient in the same way: a value it cannot read becomes
null, and the adapter turns "required and null" into a row error. Nothing here
raises on bad data, so no exception can carry a personnummer or journal text
into a log.

polars evaluates an expression once per use, so a parse that two canonical
columns read (the personnummer, a documentation time) is put in a column of
its own first, in an adapter's `staged` frame, and both columns read that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from transforms.canonical import (
    BLOCK_SCHEMA,
    ERROR_COLUMN,
    LOCAL_TIME_ZONE,
    RECORD_SCHEMA,
    UTC_DATETIME,
    DeliveryContext,
)

SOURCE_ROW: str = "source_row"
"""The I/O layer adds this Int64 column: the 1-based data-row position in the file."""


def text(column: str) -> pl.Expr:
    """A string field with surrounding white space removed; empty becomes null."""
    return pl.col(column).str.strip_chars().replace("", None)


def positive_int(value: pl.Expr) -> pl.Expr:
    """An integer >= 1 written in plain digits (no sign, no decimals), else null."""
    digits = value.str.strip_chars()
    parsed = (
        pl.when(digits.str.contains(r"^[0-9]{1,15}$"))
        .then(digits)
        .otherwise(None)
        .cast(pl.Int64, strict=False)
    )
    return pl.when(parsed >= 1).then(parsed).otherwise(None)


def flag(value: pl.Expr, true_values: Sequence[str], false_values: Sequence[str]) -> pl.Expr:
    """A boolean written as one of the listed codes; any other code is null (unreadable)."""
    stripped = value.str.strip_chars()
    return (
        pl.when(stripped.is_in(list(true_values)))
        .then(pl.lit(True))
        .when(stripped.is_in(list(false_values)))
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def coded(value: pl.Expr, mapping: Mapping[str, str], unknown: str | None) -> pl.Expr:
    """Map a source code to a canonical value.

    A code missing from `mapping` becomes `unknown` (e.g. the information type
    `other`); with `unknown=None` it becomes null, which adapters treat as a bad
    row. An empty code is always null.
    """
    stripped = value.str.strip_chars()
    mapped = stripped.replace_strict(
        list(mapping.keys()), list(mapping.values()), default=None, return_dtype=pl.String
    )
    fallback = pl.lit(unknown, dtype=pl.String)
    return (
        pl.when(stripped.is_null() | (stripped.str.len_chars() == 0))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(mapped.fill_null(fallback))
    )


@dataclass(frozen=True)
class Personnummer:
    """The parts of a personnummer field, each null when the field is invalid."""

    patient_id: pl.Expr
    """12 digits, no dash."""
    birth_date: pl.Expr
    """Date of birth; for a samordningsnummer the day minus 60."""


PERSONNUMMER_COLUMN = "_personnummer"
"""Where an adapter stages the parsed personnummer (`personnummer`) for its parts."""


def personnummer(value: pl.Expr) -> pl.Expr:
    """Read `YYYYMMDDNNNN` or `YYYYMMDD-NNNN`; Luhn-checked, birth date must exist.

    A samordningsnummer has 60 added to the day. Anything else is invalid. The
    result is a struct named PERSONNUMMER_COLUMN: stage it (`with_columns`) and
    read its parts with `personnummer_parts()` (read off this expression twice,
    every number was parsed twice).
    """
    # Row by row in effect (each value on its own), so streaming needs no whole column.
    return value.map_batches(
        _parse_personnummer_batch, return_dtype=_PNR_STRUCT, is_elementwise=True
    ).alias(PERSONNUMMER_COLUMN)


def personnummer_parts(parsed: pl.Expr | None = None) -> Personnummer:
    """The patient id and birth date of a parsed personnummer, each null when it is
    invalid; by default of the one staged in PERSONNUMMER_COLUMN."""
    if parsed is None:
        parsed = pl.col(PERSONNUMMER_COLUMN)
    return Personnummer(
        patient_id=parsed.struct.field("patient_id"),
        birth_date=parsed.struct.field("birth_date"),
    )


_PNR_STRUCT = pl.Struct({"patient_id": pl.String, "birth_date": pl.Date})


def _parse_personnummer_batch(values: pl.Series) -> pl.Series:
    """The personnummer parts of one batch, computed in stages.

    Written as one nested expression, polars re-evaluated the shared parts
    (the digits, the day) for every use: ten times slower than computing each
    column once here. All arithmetic is on one Int64.
    """
    raw = pl.col("raw").str.strip_chars()
    shaped = raw.str.contains(r"^[0-9]{8}-?[0-9]{4}$")
    frame = (
        pl.DataFrame({"raw": values.cast(pl.String)})
        .with_columns(
            digits=pl.when(shaped).then(raw.str.replace("-", "", literal=True)).otherwise(None)
        )
        .with_columns(number=pl.col("digits").cast(pl.Int64, strict=False))
        .with_columns(
            # Luhn over the last ten digits: double every other digit, the first included.
            luhn=pl.sum_horizontal(
                [
                    _luhn_term((pl.col("number") // 10 ** (9 - position)) % 10, position)
                    for position in range(10)
                ]
            ),
            year=pl.col("number") // 10**8,
            month=(pl.col("number") // 10**6) % 100,
            day=(pl.col("number") // 10**4) % 100,
        )
        .with_columns(
            # A samordningsnummer has 60 added to the day of birth.
            real_day=pl.when(pl.col("day") > 60).then(pl.col("day") - 60).otherwise(pl.col("day")),
            first_of_month=pl.date(pl.col("year").clip(1, 9999), pl.col("month").clip(1, 12), 1),
        )
        .with_columns(
            days_in_month=pl.col("first_of_month").dt.month_end().dt.day().cast(pl.Int64),
        )
        .with_columns(
            valid=pl.col("number").is_not_null()
            & (pl.col("luhn") % 10 == 0)
            & pl.col("month").is_between(1, 12)
            & pl.col("real_day").is_between(1, pl.col("days_in_month"))
            & (pl.col("year") >= 1870)
        )
        .select(
            patient_id=pl.when(pl.col("valid")).then(pl.col("digits")),
            birth_date=pl.when(pl.col("valid")).then(
                pl.col("first_of_month") + pl.duration(days=pl.col("real_day") - 1)
            ),
        )
    )
    return frame.to_struct("personnummer")


def _luhn_term(digit: pl.Expr, position: int) -> pl.Expr:
    if position % 2 == 1:
        return digit
    doubled = digit * 2
    return pl.when(doubled > 9).then(doubled - 9).otherwise(doubled)


def local_naive_to_utc(local: pl.Expr) -> pl.Expr:
    """A naive Europe/Stockholm wall-clock datetime as a UTC instant.

    In the autumn hour that occurs twice the earlier instant is taken; a time in
    the spring gap (which no clock showed) is read as one hour later, the same
    wall-clock reading after the switch. Either way the local date is unchanged.
    """
    localized = local.dt.replace_time_zone(
        LOCAL_TIME_ZONE, ambiguous="earliest", non_existent="null"
    )
    shifted = (local + pl.duration(hours=1)).dt.replace_time_zone(
        LOCAL_TIME_ZONE, ambiguous="earliest", non_existent="null"
    )
    return localized.fill_null(shifted).dt.convert_time_zone("UTC").cast(UTC_DATETIME)


def naive_local_timestamp(value: pl.Expr, fmt: str) -> pl.Expr:
    """Parse a local time without offset (e.g. `%Y-%m-%d %H:%M`) as a naive datetime.

    The text must be written exactly as `fmt` writes it: the parser alone takes
    unpadded fields (`2019-3-31`, `2:30`) and a leap second (`:60`), which no
    contract allows, so the text's shape is checked first (`_exact_shape`); the
    parser then refuses what is no date (`2019-02-29`). Formatting the parsed
    value back and comparing did the same at five times the cost.
    """
    stripped = value.str.strip_chars()
    parsed = stripped.str.to_datetime(fmt, strict=False, exact=True, time_unit="us")
    return pl.when(stripped.str.contains(_exact_shape(fmt))).then(parsed).otherwise(None)


_SHAPES = {
    "%Y": "[0-9]{4}",
    "%m": "[0-9]{2}",
    "%d": "[0-9]{2}",
    "%H": "([01][0-9]|2[0-3])",
    "%M": "[0-5][0-9]",
    "%S": "[0-5][0-9]",
}


def _exact_shape(fmt: str) -> str:
    """A regular expression matching exactly the texts `strftime(fmt)` can write.

    Only the fields the contracts use are known; any other is a programming
    error, raised when the adapter is built, never on data.
    """
    pattern = []
    rest = fmt
    while rest:
        if rest.startswith("%"):
            field = rest[:2]
            if field not in _SHAPES:
                raise ValueError(f"no exact shape known for {field!r} in {fmt!r}")
            pattern.append(_SHAPES[field])
            rest = rest[2:]
        else:
            pattern.append(re.escape(rest[0]))
            rest = rest[1:]
    return "^" + "".join(pattern) + "$"


def offset_timestamp(value: pl.Expr) -> pl.Expr:
    """Parse ISO 8601 with an offset (`Z`, `+01:00`, `+02:00`) to a UTC instant; else null."""
    stripped = value.str.strip_chars()
    # `%.f` reads a fraction when there is one and nothing when there is none:
    # one parse for both shapes (two parses, one per shape, cost twice as much).
    instant = stripped.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, exact=True, time_unit="us", time_zone="UTC"
    )
    # The exact shape, offset required: a bare local time is ambiguous, and an
    # unpadded field or a leap second is not what the contract promises.
    well_formed = stripped.str.contains(
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})$"
    )
    return pl.when(well_formed).then(instant).otherwise(pl.lit(None, dtype=UTC_DATETIME))


def local_date(utc: pl.Expr) -> pl.Expr:
    """The Europe/Stockholm calendar date of a UTC instant."""
    return utc.dt.convert_time_zone(LOCAL_TIME_ZONE).dt.date()


def row_errors(checks: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """Join the messages of the failed checks with "; ", null when all pass.

    Each check is (`is_bad` expression, message). Messages name fields and
    problems, never values.
    """
    if not checks:
        return pl.lit(None, dtype=pl.String)
    parts = [pl.when(is_bad.fill_null(True)).then(pl.lit(message)) for is_bad, message in checks]
    joined = pl.concat_str(parts, separator="; ", ignore_nulls=True)
    return pl.when(joined.str.len_chars() > 0).then(joined).otherwise(None)


def finish_records(
    parsed: pl.LazyFrame,
    context: DeliveryContext,
    checks: Sequence[tuple[pl.Expr, str]],
) -> pl.LazyFrame:
    """Complete an adapter's output: ids, delivery, the common checks, canonical order.

    `parsed` must hold the canonical columns except `record_id`, `source_system`
    and `delivery_id` (it holds `source_record_id` instead), plus `source_row`.
    Rows failing any of `checks`, or the checks every source shares (missing id,
    version, personnummer, unit, type, documentation time, or a documentation
    date after the delivery's business date), get an `error`.
    """
    common_checks: list[tuple[pl.Expr, str]] = [
        (pl.col("source_record_id").is_null(), "missing record id"),
        (pl.col("record_version").is_null(), "version is not an integer >= 1"),
        (pl.col("patient_id").is_null(), "invalid personnummer"),
        (pl.col("care_unit_hsa_id").is_null(), "missing care unit HSA-id"),
        (pl.col("care_unit_name").is_null(), "missing care unit name"),
        (pl.col("info_type").is_null(), "missing information type"),
        (pl.col("documented_at").is_null(), "unreadable documentation time"),
        (
            # An unreadable date is reported as such above, not also as "after".
            (pl.col("documented_date") > pl.lit(context.business_date)).fill_null(False),
            "documentation date after the delivery's business date",
        ),
        (pl.col("signed").is_null(), "unreadable signed flag"),
        (pl.col("retracted").is_null(), "unreadable status"),
    ]
    all_checks = [*common_checks, *checks]
    record_id = pl.concat_str([pl.lit(f"{context.system}:"), pl.col("source_record_id")])
    return parsed.with_columns(
        record_id=record_id,
        source_system=pl.lit(context.system, dtype=pl.String),
        delivery_id=pl.lit(context.delivery_id, dtype=pl.String),
        error=row_errors(all_checks),
    ).select(
        [pl.col(name).cast(dtype) for name, dtype in RECORD_SCHEMA.items()]
        + [pl.col(ERROR_COLUMN).cast(pl.String)]
    )


def finish_blocks(
    parsed: pl.LazyFrame,
    context: DeliveryContext,
    checks: Sequence[tuple[pl.Expr, str]],
) -> pl.LazyFrame:
    """Complete the block adapter's output: delivery, common checks, canonical order."""
    common_checks: list[tuple[pl.Expr, str]] = [
        (pl.col("block_id").is_null(), "missing block id"),
        (pl.col("block_version").is_null(), "version is not an integer >= 1"),
        (pl.col("patient_id").is_null(), "invalid personnummer"),
        (pl.col("scope").is_null(), "unknown scope"),
        (pl.col("valid_from").is_null(), "unreadable valid_from"),
        (pl.col("revoked").is_null(), "unreadable status"),
    ]
    return parsed.with_columns(
        delivery_id=pl.lit(context.delivery_id, dtype=pl.String),
        error=row_errors([*common_checks, *checks]),
    ).select(
        [pl.col(name).cast(dtype) for name, dtype in BLOCK_SCHEMA.items()]
        + [pl.col(ERROR_COLUMN).cast(pl.String)]
    )
