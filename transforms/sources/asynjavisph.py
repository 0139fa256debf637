"""AsynjaVisph (primary care, habilitation, aids centre): UTF-8 NDJSON, one object a line.

Quirks:

- The reader hands over each line whole as the String column `line`; fields are
  picked out with JSON paths (`$.patient.pnr`, `$.unit.hsaId` are nested). A line
  that is not a JSON object (bad JSON, an array, a bare value, a blank line) is a
  row error "not a JSON object"; its record id is unreadable.
- JSON types are checked where the contract gives one: `rev` must be a JSON number
  (an integer >= 1, not the string "2"), `signed` and `retracted` JSON booleans
  (not the strings "true"/"false"). Text fields are read as delivered.
- Timestamps are ISO 8601 with an offset (`Z`, `+01:00`, `+02:00`); one without an
  offset is unreadable. The documentation date is the Europe/Stockholm date of
  the instant (`2016-10-31T23:30:00Z` is 2016-11-01).
- `keyword` and `signedAt` may be null or absent; a `signedAt` that is given must
  be readable. No specialty is delivered.
- `type` codes are already the canonical names; an unlisted one becomes `other`.
"""

from __future__ import annotations

import polars as pl

from transforms.canonical import DeliveryContext
from transforms.sources import common
from transforms.sources.base import SourceFormat

FORMAT = SourceFormat(
    system="asynjavisph",
    file_name="records.ndjson",
    kind="ndjson",
    encoding="utf-8",
    columns=("line",),
)

INFO_TYPES = {
    "note": "note",
    "diagnosis": "diagnosis",
    "attention_signal": "attention_signal",
    "care_contact": "care_contact",
    "lab_result": "lab_result",
    "vaccination": "vaccination",
    "medication": "medication",
    "referral": "referral",
}

_LINE = pl.col("line")

_FIELDS = {
    "_id": "$.id",
    "_rev": "$.rev",
    "_pnr": "$.patient.pnr",
    "_hsa_id": "$.unit.hsaId",
    "_unit_name": "$.unit.name",
    "_type": "$.type",
    "_keyword": "$.keyword",
    "_documented_at": "$.documentedAt",
    "_signed_at": "$.signedAt",
    "_title": "$.title",
    "_body": "$.body",
}
"""Staging column -> JSON path. A JSON null or an absent key reads as null."""


def _is_json_object() -> pl.Expr:
    """The line parses as JSON and its top level is an object."""
    parsed = _LINE.str.json_path_match("$")
    return (_LINE.str.strip_chars().str.starts_with("{") & parsed.is_not_null()).fill_null(False)


def _json_integer(key: str) -> pl.Expr:
    """A top-level key holding a JSON number that is an integer >= 1, else null.

    The filter keeps the object only when the value is a number (a string "2"
    never compares to one); `positive_int` then refuses fractions like `2.5`.
    """
    is_number = _LINE.str.json_path_match(f"$[?(@.{key} >= 1)]").is_not_null()
    value = common.positive_int(_LINE.str.json_path_match(f"$.{key}"))
    return pl.when(is_number).then(value).otherwise(pl.lit(None, dtype=pl.Int64))


def _json_boolean(key: str) -> pl.Expr:
    """A top-level key holding JSON `true` / `false`; anything else (a string too) is null."""
    return (
        pl.when(_LINE.str.json_path_match(f"$[?(@.{key} == true)]").is_not_null())
        .then(pl.lit(True))
        .when(_LINE.str.json_path_match(f"$[?(@.{key} == false)]").is_not_null())
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def to_canonical(raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
    """AsynjaVisph lines (one JSON object each) -> canonical record versions plus `error`."""
    extracted = raw.with_columns(
        _is_object=_is_json_object(),
        **{name: _LINE.str.json_path_match(path) for name, path in _FIELDS.items()},
    )
    pnr = common.personnummer(pl.col("_pnr"))
    documented_at = common.offset_timestamp(pl.col("_documented_at"))
    signed_at_text = common.text("_signed_at")
    signed_at = common.offset_timestamp(signed_at_text)
    parsed = extracted.with_columns(
        source_record_id=common.text("_id"),
        record_version=_json_integer("rev"),
        patient_id=pnr.patient_id,
        birth_date=pnr.birth_date,
        care_unit_hsa_id=common.text("_hsa_id"),
        care_unit_name=common.text("_unit_name"),
        specialty=pl.lit(None, dtype=pl.String),
        source_code=common.text("_type"),
        info_type=common.coded(pl.col("_type"), INFO_TYPES, unknown="other"),
        keyword=common.text("_keyword"),
        documented_at=documented_at,
        documented_date=common.local_date(documented_at),
        signed=_json_boolean("signed"),
        retracted=_json_boolean("retracted"),
        title=pl.col("_title").fill_null(""),
        content=pl.col("_body").fill_null(""),
        _signed_at_bad=signed_at_text.is_not_null() & signed_at.is_null(),
    )
    return common.finish_records(
        parsed,
        context,
        checks=[
            (~pl.col("_is_object"), "not a JSON object"),
            (pl.col("_signed_at_bad"), "unreadable signing time"),
        ],
    )
