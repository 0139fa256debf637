"""Dates and times: epoch days, Stockholm local time <-> UTC, timestamp styles, business days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from flows.sample.settings import EPOCH, TZ, UTC_DT, ZONE


def epoch_days(day: date) -> int:
    return (day - EPOCH).days


def local_to_utc(naive: pl.Expr) -> pl.Expr:
    """Naive Stockholm wall-clock time -> UTC instant (gap times move an hour on)."""
    first = naive.dt.replace_time_zone(TZ, ambiguous="earliest", non_existent="null")
    later = (naive + pl.duration(hours=1)).dt.replace_time_zone(
        TZ, ambiguous="earliest", non_existent="null"
    )
    return first.fill_null(later).dt.convert_time_zone("UTC").cast(UTC_DT)


def local_naive(days: pl.Expr, seconds: pl.Expr) -> pl.Expr:
    return ((days.cast(pl.Int64) * 86_400 + seconds) * 1_000_000).cast(pl.Datetime("us"))


def to_local(utc: pl.Expr) -> pl.Expr:
    return utc.dt.convert_time_zone(TZ)


def iso(utc: pl.Expr, style: pl.Expr) -> pl.Expr:
    """ISO 8601 with an offset: style 0 writes UTC `Z`, else the local offset."""
    return (
        pl.when(style == 0)
        .then(utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .otherwise(to_local(utc).dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    )


def py_utc(text: str) -> datetime:
    """A scenario time, written as the source writes it, as a UTC instant."""
    if "T" in text:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    fmt = {10: "%Y-%m-%d", 16: "%Y-%m-%d %H:%M", 19: "%Y-%m-%d %H:%M:%S"}[len(text)]
    local = datetime.strptime(text, fmt).replace(tzinfo=ZONE)
    return local.astimezone(UTC)


def py_local_date(text: str) -> date:
    return py_utc(text).astimezone(ZONE).date()


def business_dates(end_date: date, days: int) -> list[date]:
    """`end_date` and the weekdays before it, oldest first."""
    out = [end_date]
    day = end_date
    while len(out) < days:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    return out[::-1]
