"""Obstetrix (maternity care): UTF-8 without BOM, `,`-separated, `"` quoted, header row.

Quirks:

- `document_date` is a local date only (`YYYY-MM-DD`), no time: the documentation
  instant is local midnight in Europe/Stockholm (as UTC), and the documentation
  date is the written date.
- The personnummer is 12 digits; the same number written `YYYYMMDD-NNNN` is read
  too (no guess), anything else is invalid.
- Flags are lower-case words: `signed` is `true` / `false`, `status` is
  `active` / `retracted`; any other spelling is unreadable.
- No keyword and no specialty are delivered (null).
- A row with the wrong number of fields never reaches the adapter: the reader
  quarantines it.
"""

from __future__ import annotations

import polars as pl

from transforms.canonical import DeliveryContext
from transforms.sources import common
from transforms.sources.base import SourceFormat

FORMAT = SourceFormat(
    system="obstetrix",
    file_name="journal.csv",
    kind="csv",
    encoding="utf-8",
    delimiter=",",
    columns=(
        "record_id",
        "version",
        "personal_number",
        "unit_hsa_id",
        "unit_name",
        "document_type",
        "document_date",
        "signed",
        "status",
        "title",
        "text",
    ),
)

INFO_TYPES = {
    "SAMMANFATTNING": "journal_summary",
    "ANTECKNING": "note",
    "MATVARDE": "measurement",
    "FORLOSSNINGSJOURNAL": "delivery_record",
}

_DATE_FORMAT = "%Y-%m-%d"


def to_canonical(raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
    """Obstetrix rows (all strings) -> canonical record versions plus `error`."""
    # What two columns read is parsed once (see `common`).
    staged = raw.with_columns(
        common.personnummer(pl.col("personal_number")),
        # A date-only value parses as local midnight, which no DST switch skips.
        _documented_local=common.naive_local_timestamp(pl.col("document_date"), _DATE_FORMAT),
    )
    pnr = common.personnummer_parts()
    documented_local = pl.col("_documented_local")
    parsed = staged.with_columns(
        source_record_id=common.text("record_id"),
        record_version=common.positive_int(pl.col("version")),
        patient_id=pnr.patient_id,
        birth_date=pnr.birth_date,
        care_unit_hsa_id=common.text("unit_hsa_id"),
        care_unit_name=common.text("unit_name"),
        specialty=pl.lit(None, dtype=pl.String),
        source_code=common.text("document_type"),
        info_type=common.coded(pl.col("document_type"), INFO_TYPES, unknown="other"),
        keyword=pl.lit(None, dtype=pl.String),
        documented_at=common.local_naive_to_utc(documented_local),
        documented_date=documented_local.dt.date(),
        signed=common.flag(pl.col("signed"), ["true"], ["false"]),
        retracted=common.flag(pl.col("status"), ["retracted"], ["active"]),
        title=pl.col("title").fill_null(""),
        content=pl.col("text").fill_null(""),
    )
    return common.finish_records(parsed, context, checks=[])
