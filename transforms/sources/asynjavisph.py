"""AsynjaVisph (primary care, habilitation, aids centre): UTF-8 NDJSON, one object a line.

Quirks:

- The reader hands over each line whole as `line`, plus the fields named in
  `FORMAT.json_fields`, picked out by JSON path in one parse of the line
  (`$.patient.pnr`, `$.unit.hsaId` are nested), and `json_object`. A line that
  is not a JSON object (bad JSON, an array, a bare value, a blank line) is a
  row error "not a JSON object"; its record id is unreadable. A blank line is
  not a row: the reader skips it.
- A key written twice (`"rev": 1, "rev": 2`, `patient.pnr` twice) is a row error
  "duplicate key in the JSON object": the reader gives no value for that key
  (no guess at first or last), so the record id is read only when `id` itself
  is written once.
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
    json_fields=(
        ("_id", "$.id", "text"),
        ("_pnr", "$.patient.pnr", "text"),
        ("_hsa_id", "$.unit.hsaId", "text"),
        ("_unit_name", "$.unit.name", "text"),
        ("_type", "$.type", "text"),
        ("_keyword", "$.keyword", "text"),
        ("_documented_at", "$.documentedAt", "text"),
        ("_signed_at", "$.signedAt", "text"),
        ("_title", "$.title", "text"),
        ("_body", "$.body", "text"),
        # JSON text, so that types can be checked: `2` not `"2"`, `true` not `"true"`.
        ("_rev", "$.rev", "json"),
        ("_signed", "$.signed", "json"),
        ("_retracted", "$.retracted", "json"),
    ),
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


def _json_integer(column: str) -> pl.Expr:
    """A JSON number that is an integer >= 1 (a string "2" arrives quoted and fails)."""
    return common.positive_int(pl.col(column))


def _json_boolean(column: str) -> pl.Expr:
    """JSON `true` / `false`; anything else (the strings "true"/"false" too) is null."""
    return common.flag(pl.col(column), ["true"], ["false"])


def to_canonical(raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
    """AsynjaVisph lines (one JSON object each) -> canonical record versions plus `error`."""
    # What two columns read is parsed once (see `common`).
    staged = raw.with_columns(
        common.personnummer(pl.col("_pnr")),
        _is_object=pl.col("json_object") == "true",
        _documented_at_utc=common.offset_timestamp(pl.col("_documented_at")),
        _signed_at_text=common.text("_signed_at"),
    )
    pnr = common.personnummer_parts()
    documented_at = pl.col("_documented_at_utc")
    signed_at_text = pl.col("_signed_at_text")
    signed_at = common.offset_timestamp(signed_at_text)
    parsed = staged.with_columns(
        source_record_id=common.text("_id"),
        record_version=_json_integer("_rev"),
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
        signed=_json_boolean("_signed"),
        retracted=_json_boolean("_retracted"),
        title=pl.col("_title").fill_null(""),
        content=pl.col("_body").fill_null(""),
        _signed_at_bad=signed_at_text.is_not_null() & signed_at.is_null(),
    )
    return common.finish_records(
        parsed,
        context,
        checks=[
            (~pl.col("_is_object"), "not a JSON object"),
            (pl.col("json_duplicate_key") == "true", "duplicate key in the JSON object"),
            (pl.col("_signed_at_bad"), "unreadable signing time"),
        ],
    )
