"""What the generator hands back: the summary of an inbox and the scenario catalogue's entries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SampleSummary:
    """What `generate_inbox` wrote."""

    deliveries: list[Path]
    """Delivery folders `<out>/<system>/<date>`, by date, then in load order."""
    records_per_system: dict[str, int]
    """Distinct record ids per journal system (blocks not included)."""
    rows_written: int
    """Data rows in all data files (blocks and bad rows included)."""
    bad_rows: int
    """Rows written on purpose so that the job must quarantine them."""


@dataclass(frozen=True)
class SampleScenario:
    """A fixed row the generator always writes, and what the default rules must say."""

    record_id: str
    what: str
    expected_reason: str
    """First reason at `as_of = end_date` with the region's default rules, for
    `days >= 2`, `bad_deliveries=False` and an `end_date` from 2023 on."""
