"""Constants shared by the generator: time zone, query engine, chunk size, rates, bad-row kinds."""

from __future__ import annotations

from datetime import date
from typing import Final
from zoneinfo import ZoneInfo

import polars as pl

TZ: Final = "Europe/Stockholm"
ZONE: Final = ZoneInfo(TZ)
UTC_DT: Final = pl.Datetime("us", "UTC")
EPOCH: Final = date(1970, 1, 1)

ENGINE: Final = "in-memory"
"""Many small queries over wide expressions: the in-memory engine starts faster."""

CHUNK_RECORDS: Final = 250_000
"""History records generated and written per step: bounds memory at any size."""

BAD_RATE: Final = 0.001
"""Share of random rows written as bad rows (sources.md "Bad rows")."""

DELTA_SHARE: Final = 0.003
"""Each later delivery changes about this share of a system's records."""

BAD_KINDS: Final = (
    "bad_date",
    "bad_checksum",
    "impossible_birth",
    "bad_version",
    "empty_id",
    "future_date",
    "bad_flag",
)
"""The kinds of bad row written (besides wrong field counts and a truncated JSON line)."""
