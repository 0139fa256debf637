"""Melior (hospitals): Windows-1252, `;`-separated, CRLF, quoted fields with newlines.

Quirks:

- The file is Windows-1252 (`€`, curly quotes, `åäö`): the reader transcodes it to
  UTF-8 and rejects the delivery on bytes cp1252 leaves undefined, or when the
  file is really UTF-8.
- Fields may hold `;`, doubled quotes and CRLF newlines inside quotes.
- `Dokumenttid` and `Signeringstid` are local wall-clock times without offset
  (`YYYY-MM-DD HH:MM`): read in Europe/Stockholm, the earlier instant in the
  autumn's repeated hour, one hour on in the spring gap (see
  `common.local_naive_to_utc`); the documentation date is the written date.
  `Signeringstid` may be empty, but if given it must be readable.
- The personnummer is 12 digits; the same number written `YYYYMMDD-NNNN` is read
  too (no guess), anything else is invalid.
- Flags are Swedish codes: `Signerad` `J` / `N`, `Status` `AKTIV` / `MAKULERAD`.
- The only source with a specialty (`Specialitet`) and, with AsynjaVisph, a
  keyword (`Sokord`, empty is null).
"""

from __future__ import annotations

import polars as pl

from transforms.canonical import DeliveryContext
from transforms.sources import common
from transforms.sources.base import SourceFormat

FORMAT = SourceFormat(
    system="melior",
    file_name="journal.csv",
    kind="csv",
    encoding="cp1252",
    delimiter=";",
    columns=(
        "DokumentID",
        "Version",
        "Personnummer",
        "HSAid",
        "Enhetsnamn",
        "Specialitet",
        "Informationstyp",
        "Sokord",
        "Dokumenttid",
        "Signerad",
        "Signeringstid",
        "Status",
        "Rubrik",
        "Text",
    ),
)

INFO_TYPES = {
    "ANTECKNING": "note",
    "DIAGNOS": "diagnosis",
    "UPPMARKSAMHETSSIGNAL": "attention_signal",
    "VARDKONTAKT": "care_contact",
    "PROVSVAR": "lab_result",
    "LAKEMEDEL": "medication",
    "REMISS": "referral",
}

_TIME_FORMAT = "%Y-%m-%d %H:%M"


def to_canonical(raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
    """Melior rows (all strings) -> canonical record versions plus `error`."""
    # What two columns read is parsed once (see `common`).
    staged = raw.with_columns(
        common.personnummer(pl.col("Personnummer")),
        _documented_local=common.naive_local_timestamp(pl.col("Dokumenttid"), _TIME_FORMAT),
        _signed_at_text=common.text("Signeringstid"),
    )
    pnr = common.personnummer_parts()
    documented_local = pl.col("_documented_local")
    signed_at_text = pl.col("_signed_at_text")
    signed_at_local = common.naive_local_timestamp(signed_at_text, _TIME_FORMAT)
    parsed = staged.with_columns(
        source_record_id=common.text("DokumentID"),
        record_version=common.positive_int(pl.col("Version")),
        patient_id=pnr.patient_id,
        birth_date=pnr.birth_date,
        care_unit_hsa_id=common.text("HSAid"),
        care_unit_name=common.text("Enhetsnamn"),
        specialty=common.text("Specialitet"),
        source_code=common.text("Informationstyp"),
        info_type=common.coded(pl.col("Informationstyp"), INFO_TYPES, unknown="other"),
        keyword=common.text("Sokord"),
        documented_at=common.local_naive_to_utc(documented_local),
        # The contract's times are already local: the date is the written one.
        documented_date=documented_local.dt.date(),
        signed=common.flag(pl.col("Signerad"), ["J"], ["N"]),
        retracted=common.flag(pl.col("Status"), ["MAKULERAD"], ["AKTIV"]),
        title=pl.col("Rubrik").fill_null(""),
        content=pl.col("Text").fill_null(""),
        _signed_at_bad=signed_at_text.is_not_null() & signed_at_local.is_null(),
    )
    return common.finish_records(
        parsed,
        context,
        checks=[(pl.col("_signed_at_bad"), "unreadable signing time")],
    )
