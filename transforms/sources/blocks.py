"""Citizen blocks: UTF-8, `,`-separated, `"` quoted, header row, versioned like records.

Quirks:

- `scope` is `ALL` (the whole journal) or `UNIT` (one care unit); any other code
  is a row error. `hsa_id` is required for `UNIT` and must be empty for `ALL`.
- Dates are `YYYY-MM-DD` exactly. `valid_from` is required; an empty `valid_to`
  means "until further notice", an unreadable one is a row error, and so is a
  `valid_to` before `valid_from`. Blocks may start after the business date.
- `status` is `active` / `revoked`; any other code is a row error.
- `documented_from` / `documented_to` are optional columns (both or neither):
  the documentation period the block covers, either end empty meaning open. A
  file without them means what it always did (no period). An unreadable date,
  or an end before the start, is a row error like any other bad value.
"""

from __future__ import annotations

import polars as pl

from transforms.canonical import DeliveryContext
from transforms.sources import common
from transforms.sources.base import SourceFormat

FORMAT = SourceFormat(
    system="blocks",
    file_name="blocks.csv",
    kind="csv",
    encoding="utf-8",
    delimiter=",",
    columns=("block_id", "version", "pnr", "scope", "hsa_id", "valid_from", "valid_to", "status"),
    optional_columns=("documented_from", "documented_to"),
)

SCOPES = {"ALL": "ALL", "UNIT": "UNIT"}
"""Scope codes as delivered -> canonical scope. Unlisted codes are errors (no `other`)."""


def _iso_date(value: pl.Expr) -> pl.Expr:
    """A calendar date written exactly `YYYY-MM-DD` (a real date), else null."""
    stripped = value.str.strip_chars()
    return (
        pl.when(stripped.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .then(stripped.str.to_date("%Y-%m-%d", strict=False, exact=True))
        .otherwise(pl.lit(None, dtype=pl.Date))
    )


def to_canonical(raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
    """Block rows (all strings) -> canonical block versions plus `error`."""
    pnr = common.personnummer_parts(common.personnummer(pl.col("pnr")))
    valid_to_text = common.text("valid_to")
    documented_from_text = common.text("documented_from")
    documented_to_text = common.text("documented_to")
    parsed = raw.with_columns(
        block_id=common.text("block_id"),
        block_version=common.positive_int(pl.col("version")),
        patient_id=pnr.patient_id,
        scope=common.coded(pl.col("scope"), SCOPES, unknown=None),
        care_unit_hsa_id=common.text("hsa_id"),
        valid_from=_iso_date(pl.col("valid_from")),
        valid_to=_iso_date(valid_to_text),
        revoked=common.flag(pl.col("status"), ["revoked"], ["active"]),
        _valid_to_bad=valid_to_text.is_not_null() & _iso_date(valid_to_text).is_null(),
        documented_from=_iso_date(documented_from_text),
        documented_to=_iso_date(documented_to_text),
        _documented_from_bad=documented_from_text.is_not_null()
        & _iso_date(documented_from_text).is_null(),
        _documented_to_bad=documented_to_text.is_not_null()
        & _iso_date(documented_to_text).is_null(),
    )
    # row_errors counts a null check as failed: every check here is made null-free.
    is_unit = (pl.col("scope") == "UNIT").fill_null(False)
    is_all = (pl.col("scope") == "ALL").fill_null(False)
    has_unit = pl.col("care_unit_hsa_id").is_not_null()
    return common.finish_blocks(
        parsed,
        context,
        checks=[
            (is_unit & ~has_unit, "missing HSA-id for scope UNIT"),
            (is_all & has_unit, "HSA-id given for scope ALL"),
            (pl.col("_valid_to_bad"), "unreadable valid_to"),
            (
                (pl.col("valid_to") < pl.col("valid_from")).fill_null(False),
                "valid_to before valid_from",
            ),
            (pl.col("_documented_from_bad"), "unreadable documented_from"),
            (pl.col("_documented_to_bad"), "unreadable documented_to"),
            (
                (pl.col("documented_to") < pl.col("documented_from")).fill_null(False),
                "documented_to before documented_from",
            ),
        ],
    )
