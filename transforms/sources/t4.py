"""T4 (public dental care, Folktandvården): UTF-8, `|`-separated, `"` quoted, header row.

Quirks:

- The personnummer is written `YYYYMMDD-NNNN`; the dash-less 12 digits are read
  too (the same value, no guess), anything else is invalid.
- `entry_datetime` is ISO 8601 with an offset; without one it is unreadable. The
  documentation date is its Europe/Stockholm date.
- Flags are `Y` / `N`: `signed`, and `cancelled` (`Y` = retracted).
- No keyword and no specialty are delivered.
- A row with the wrong number of fields never reaches the adapter: the reader
  quarantines it.
"""

from __future__ import annotations

import polars as pl

from transforms.canonical import DeliveryContext
from transforms.sources import common
from transforms.sources.base import SourceFormat

FORMAT = SourceFormat(
    system="t4",
    file_name="entries.csv",
    kind="csv",
    encoding="utf-8",
    delimiter="|",
    columns=(
        "journal_id",
        "rev",
        "patient_pnr",
        "clinic_hsa_id",
        "clinic_name",
        "entry_type",
        "entry_datetime",
        "signed",
        "cancelled",
        "heading",
        "entry_text",
    ),
)

INFO_TYPES = {
    "ANTECKNING": "note",
    "DIAGNOS": "diagnosis",
    "BESOK": "care_contact",
    "RONTGEN": "x_ray",
    "BEHANDLINGSPLAN": "treatment_plan",
}


def to_canonical(raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
    """T4 rows (all strings) -> canonical record versions plus `error`."""
    # What two columns read is parsed once (see `common`).
    staged = raw.with_columns(
        common.personnummer(pl.col("patient_pnr")),
        _documented_at_utc=common.offset_timestamp(pl.col("entry_datetime")),
    )
    pnr = common.personnummer_parts()
    documented_at = pl.col("_documented_at_utc")
    parsed = staged.with_columns(
        source_record_id=common.text("journal_id"),
        record_version=common.positive_int(pl.col("rev")),
        patient_id=pnr.patient_id,
        birth_date=pnr.birth_date,
        care_unit_hsa_id=common.text("clinic_hsa_id"),
        care_unit_name=common.text("clinic_name"),
        specialty=pl.lit(None, dtype=pl.String),
        source_code=common.text("entry_type"),
        info_type=common.coded(pl.col("entry_type"), INFO_TYPES, unknown="other"),
        keyword=pl.lit(None, dtype=pl.String),
        documented_at=documented_at,
        documented_date=common.local_date(documented_at),
        signed=common.flag(pl.col("signed"), ["Y"], ["N"]),
        retracted=common.flag(pl.col("cancelled"), ["Y"], ["N"]),
        title=pl.col("heading").fill_null(""),
        content=pl.col("entry_text").fill_null(""),
    )
    return common.finish_records(parsed, context, checks=[])
