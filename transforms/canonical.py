"""The canonical record: the one contract inside the house.

Every source adapter turns its system's format into these columns; every later
stage (record store, decisions, feed, analytics) depends on them and never on a
source's quirks. The schemas are polars schemas so that adapters can be checked
against them cheaply (names and types, no data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl

SYSTEMS: Final = ("melior", "asynjavisph", "obstetrix", "journalia", "t4")
"""The source systems that deliver journal records, in the order they are loaded."""

BLOCKS_FEED: Final = "blocks"
"""The citizen-block register: delivered like a source system, but holds blocks."""

FEEDS: Final = (*SYSTEMS, BLOCKS_FEED)

LOCAL_TIME_ZONE: Final = "Europe/Stockholm"

INFO_TYPES: Final = (
    "note",
    "diagnosis",
    "attention_signal",
    "care_contact",
    "lab_result",
    "vaccination",
    "medication",
    "referral",
    "journal_summary",
    "measurement",
    "delivery_record",
    "ak_letter",
    "diabetes_note",
    "lab_value",
    "x_ray",
    "treatment_plan",
    "other",
)
"""Canonical information types. A source code the contract does not list becomes `other`."""

UTC_DATETIME: Final[pl.DataType] = pl.Datetime("us", "UTC")

_RECORD_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "record_id": pl.String,  # "<system>:<source id>"
    "source_system": pl.String,
    "record_version": pl.Int64,
    "patient_id": pl.String,  # 12-digit personnummer / samordningsnummer, no dash
    "birth_date": pl.Date,  # samordningsnummer: day minus 60
    "care_unit_hsa_id": pl.String,
    "care_unit_name": pl.String,
    "specialty": pl.String,  # only Melior delivers one; null elsewhere
    "source_code": pl.String,  # the information-type code exactly as delivered
    "info_type": pl.String,  # one of INFO_TYPES
    "keyword": pl.String,  # note keyword (sökord); null when none
    "documented_at": UTC_DATETIME,
    "documented_date": pl.Date,  # local date in Europe/Stockholm
    "signed": pl.Boolean,
    "retracted": pl.Boolean,
    "title": pl.String,
    "content": pl.String,
    "delivery_id": pl.String,
    "source_row": pl.Int64,  # 1-based data-row position in the delivered file
}
RECORD_SCHEMA: Final = pl.Schema(_RECORD_COLUMNS)
"""One version of one journal record, as every adapter yields it."""

BLOCK_SCHEMA: Final = pl.Schema(
    {
        "block_id": pl.String,
        "block_version": pl.Int64,
        "patient_id": pl.String,
        "scope": pl.String,  # "ALL" or "UNIT"
        "care_unit_hsa_id": pl.String,  # set for scope UNIT, null for ALL
        "valid_from": pl.Date,
        "valid_to": pl.Date,  # null: until further notice
        "revoked": pl.Boolean,
        "delivery_id": pl.String,
        "source_row": pl.Int64,
        # The documentation period the block covers (sources.md); null ends are open.
        "documented_from": pl.Date,
        "documented_to": pl.Date,
    }
)
"""One version of one citizen block."""

ERROR_COLUMN: Final = "error"
"""Adapters add this column: null for a valid row, else why the row is quarantined.

The text names fields and problems only, never a value from the row: it ends up
in logs and in the operators' summaries.
"""

QUARANTINE_KEY_COLUMNS: Final = ("record_id", "record_version")
"""What an invalid row still tells about its record, when readable (else null)."""


@dataclass(frozen=True)
class DeliveryContext:
    """What an adapter may know about the delivery it reads, besides its rows."""

    delivery_id: str
    system: str
    business_date: date


def adapter_output_schema(base: pl.Schema) -> pl.Schema:
    """The schema an adapter's LazyFrame must have: the canonical columns plus `error`."""
    return pl.Schema([*base.items(), (ERROR_COLUMN, pl.String())])
