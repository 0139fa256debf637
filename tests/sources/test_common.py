"""The shared parsing pieces: exact shapes, fail to null, never raise."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from transforms.canonical import DeliveryContext
from transforms.sources import common
from transforms.sources.common import (
    local_date,
    naive_local_timestamp,
    offset_timestamp,
    personnummer,
    personnummer_parts,
)
from transforms.sources.registry import RECORD_ADAPTERS, adapter_for


def _parse_instant(text: str) -> datetime | None:
    return pl.select(offset_timestamp(pl.lit(text))).item()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-10-31T23:30:00Z", datetime(2016, 10, 31, 23, 30, tzinfo=UTC)),
        ("2019-11-01T00:30:00+01:00", datetime(2019, 10, 31, 23, 30, tzinfo=UTC)),
        ("2019-06-01T00:30:00+02:00", datetime(2019, 5, 31, 22, 30, tzinfo=UTC)),
        ("2019-06-01T00:30:00.5+02:00", datetime(2019, 5, 31, 22, 30, 0, 500000, tzinfo=UTC)),
        ("2019-06-01T00:30:00.123456Z", datetime(2019, 6, 1, 0, 30, 0, 123456, tzinfo=UTC)),
        # Nanoseconds are read and cut to the microsecond the canonical schema holds.
        ("2019-06-01T00:30:00.123456789Z", datetime(2019, 6, 1, 0, 30, 0, 123456, tzinfo=UTC)),
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
        "2019-11-01T24:00:00Z",  # no such hour
        "2019-11-01T00:30:00.+01:00",  # a dot without a fraction
        "2019-11-01T00:30:00.1234567890Z",  # a fraction finer than nanoseconds
        "2019-11-01T00:30:00+0100",  # offset without its colon
        "2019-11-01T00:30:00z",  # lower-case zone letter
        " 2019-11-01T00:30:00Z x",
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
    parts = personnummer_parts(personnummer(pl.lit(text)))
    assert pl.select(parts.birth_date).item() == birth


def _parse_local(text: str, fmt: str) -> datetime | None:
    return pl.select(naive_local_timestamp(pl.lit(text), fmt)).item()


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("2019-03-31 02:30", "%Y-%m-%d %H:%M", datetime(2019, 3, 31, 2, 30)),
        (" 2019-03-31 02:30 ", "%Y-%m-%d %H:%M", datetime(2019, 3, 31, 2, 30)),
        ("2019-12-31 23:59:59", "%Y-%m-%d %H:%M:%S", datetime(2019, 12, 31, 23, 59, 59)),
        ("2020-02-29", "%Y-%m-%d", datetime(2020, 2, 29)),
    ],
)
def test_naive_local_timestamp_reads_the_exact_shape(
    text: str, fmt: str, expected: datetime
) -> None:
    assert _parse_local(text, fmt) == expected


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2019-3-31 02:30", "%Y-%m-%d %H:%M"),  # unpadded month
        ("2019-03-31 2:30", "%Y-%m-%d %H:%M"),  # unpadded hour
        ("2019-03-31 24:00", "%Y-%m-%d %H:%M"),  # no such hour
        ("2019-03-31 02:60", "%Y-%m-%d %H:%M"),  # no such minute
        ("2019-03-31 02:30:60", "%Y-%m-%d %H:%M:%S"),  # leap second
        ("2019-03-31 02:30", "%Y-%m-%d %H:%M:%S"),  # seconds missing
        ("2019-03-31 02:30:00", "%Y-%m-%d %H:%M"),  # seconds not in the contract
        ("2019-02-29", "%Y-%m-%d"),  # no such day
        ("2019-03-31T02:30", "%Y-%m-%d %H:%M"),
        ("20190331", "%Y-%m-%d"),
        ("+2019-03-31", "%Y-%m-%d"),
        ("", "%Y-%m-%d"),
    ],
)
def test_naive_local_timestamp_refuses_other_shapes(text: str, fmt: str) -> None:
    assert _parse_local(text, fmt) is None


@pytest.mark.parametrize("system", [*RECORD_ADAPTERS, "blocks"])
def test_each_adapter_parses_a_personnummer_once(
    system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # polars evaluates an expression once per use: read off one expression, the
    # patient id and the birth date parsed every number twice (a third of an
    # adapter's time). The parse is a column of its own, read by both.
    calls: list[int] = []
    parse = common._parse_personnummer_batch

    def counted(values: pl.Series) -> pl.Series:
        calls.append(values.len())
        return parse(values)

    monkeypatch.setattr(common, "_parse_personnummer_batch", counted)
    adapter = adapter_for(system)
    raw = pl.DataFrame(
        {name: ["x", "y"] for name in adapter.FORMAT.raw_columns} | {"source_row": [1, 2]}
    )
    context = DeliveryContext("delivery", system, date(2026, 11, 25))
    adapter.to_canonical(raw.lazy(), context).collect(engine="in-memory")
    assert calls == [2]
