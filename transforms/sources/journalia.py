"""Journalia (diabetes journal, hospitals): UTF-8 WITH a byte-order mark, `,`-separated.

Quirks:

- The file must start with the UTF-8 byte-order mark (encoding `utf-8-sig`); the
  reader rejects the delivery without it.
- `created` is a local wall-clock time with seconds and no offset
  (`YYYY-MM-DD HH:MM:SS`): read in Europe/Stockholm, the earlier instant in the
  autumn's repeated hour, one hour on in the spring gap (see
  `common.local_naive_to_utc`); the documentation date is the written date.
- The personnummer is 12 digits; the same number written `YYYYMMDD-NNNN` is read
  too (no guess), anything else is invalid.
- Flags are codes: `signed` is `1` / `0`, `state` is `A` active / `M` retracted
  (makulerad); any other code is unreadable.
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
    system="journalia",
    file_name="export.csv",
    kind="csv",
    encoding="utf-8-sig",
    delimiter=",",
    columns=(
        "id",
        "version",
        "pnr",
        "hsa_id",
        "unit_name",
        "doc_kind",
        "created",
        "signed",
        "state",
        "title",
        "text",
    ),
)

INFO_TYPES = {
    "AK-BREV": "ak_letter",
    "DIABETESANTECKNING": "diabetes_note",
    "LABBVARDE": "lab_value",
}

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def to_canonical(raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
    """Journalia rows (all strings) -> canonical record versions plus `error`."""
    # What two columns read is parsed once (see `common`).
    staged = raw.with_columns(
        common.personnummer(pl.col("pnr")),
        _documented_local=common.naive_local_timestamp(pl.col("created"), _TIME_FORMAT),
    )
    pnr = common.personnummer_parts()
    documented_local = pl.col("_documented_local")
    parsed = staged.with_columns(
        source_record_id=common.text("id"),
        record_version=common.positive_int(pl.col("version")),
        patient_id=pnr.patient_id,
        birth_date=pnr.birth_date,
        care_unit_hsa_id=common.text("hsa_id"),
        care_unit_name=common.text("unit_name"),
        specialty=pl.lit(None, dtype=pl.String),
        source_code=common.text("doc_kind"),
        info_type=common.coded(pl.col("doc_kind"), INFO_TYPES, unknown="other"),
        keyword=pl.lit(None, dtype=pl.String),
        documented_at=common.local_naive_to_utc(documented_local),
        # The contract's times are already local: the date is the written one.
        documented_date=documented_local.dt.date(),
        signed=common.flag(pl.col("signed"), ["1"], ["0"]),
        retracted=common.flag(pl.col("state"), ["M"], ["A"]),
        title=pl.col("title").fill_null(""),
        content=pl.col("text").fill_null(""),
    )
    return common.finish_records(parsed, context, checks=[])
