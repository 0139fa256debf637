"""The shared parsing pieces: exact shapes, fail to null, never raise."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from transforms.sources.common import local_date, offset_timestamp, personnummer


def _parse_instant(text: str) -> datetime | None:
    return pl.select(offset_timestamp(pl.lit(text))).item()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-10-31T23:30:00Z", datetime(2016, 10, 31, 23, 30, tzinfo=UTC)),
        ("2019-11-01T00:30:00+01:00", datetime(2019, 10, 31, 23, 30, tzinfo=UTC)),
        ("2019-06-01T00:30:00+02:00", datetime(2019, 5, 31, 22, 30, tzinfo=UTC)),
    ],
)
def test_offset_timestamp_reads_the_contract_shapes(text: str, expected: datetime) -> None:
    assert _parse_instant(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2019-11-1T0:30:00+01:00",  # unpadded fields
        "2019-11-01T00:30:60Z",  # leap second
        "2019-11-01T00:30:00",  # no offset: ambiguous
        "2019-11-01 00:30:00+01:00",  # space instead of T
        "2019-02-30T10:00:00Z",  # no such day
        "",
    ],
)
def test_offset_timestamp_refuses_other_shapes(text: str) -> None:
    assert _parse_instant(text) is None


def test_local_date_of_late_evening_utc_is_the_next_swedish_day() -> None:
    instant = pl.lit(datetime(2016, 10, 31, 23, 30, tzinfo=UTC))
    assert pl.select(local_date(instant)).item() == date(2016, 11, 1)


@pytest.mark.parametrize(
    ("text", "birth"),
    [
        ("191212121212", date(1912, 12, 12)),
        ("19121212-1212", date(1912, 12, 12)),
        ("198503722381", None),  # coordination number with a wrong check digit
    ],
)
def test_personnummer_gives_birth_date_only_when_valid(text: str, birth: date | None) -> None:
    parts = personnummer(pl.lit(text))
    assert pl.select(parts.birth_date).item() == birth
