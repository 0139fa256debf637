"""Personnummer and samordningsnummer: Luhn check digits, random patients, the scenario patients."""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl

from flows.sample.rng import Rng


def luhn_expr(nine: pl.Expr) -> pl.Expr:
    """Check digit for a 9-digit integer YYMMDDNNN (Luhn over the last ten digits)."""
    total: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for position in range(9):
        digit = (nine // (10 ** (8 - position))) % 10
        if position % 2 == 0:
            doubled = digit * 2
            digit = pl.when(doubled > 9).then(doubled - 9).otherwise(doubled)
        total = total + digit
    return (10 - total % 10) % 10


def _luhn_py(nine: str) -> int:
    total = 0
    for position, char in enumerate(nine):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


def _pnr_py(birth: date, samordning: bool, serial: int) -> str:
    day = birth.day + (60 if samordning else 0)
    head = f"{birth.year:04d}{birth.month:02d}{day:02d}{serial:03d}"
    return head + str(_luhn_py(head[2:]))


def with_patient(lf: pl.LazyFrame, rng: Rng) -> pl.LazyFrame:
    """Add `birth` and `pnr` of random patient `p` (the same in every system).

    Staged so that each intermediate value is a column computed once.
    """
    p = pl.col("p")
    child = rng.uniform(p, "patient.child") < 0.2
    lf = lf.with_columns(
        _year=pl.when(child)
        .then(2005 + rng.integers(p, "patient.year", 16))
        .otherwise(1930 + rng.integers(p, "patient.year", 75)),
        _samordning=rng.uniform(p, "patient.samordning") < 0.015,
        # Scenario patients own serials 900-999, so a random patient never collides
        # with one; the last serial digit is even for women (obstetrix uses even p).
        _serial=rng.integers(p, "patient.serial", 450) * 2 + p % 2,
    )
    year = pl.col("_year")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    day_of_year = rng.integers(p, "patient.doy", 365 + leap.cast(pl.Int64))
    lf = lf.with_columns(
        birth=(pl.date(year, 1, 1).cast(pl.Int32) + day_of_year).cast(pl.Int32).cast(pl.Date)
    )
    birth = pl.col("birth")
    lf = lf.with_columns(
        _day=birth.dt.day().cast(pl.Int64) + pl.when(pl.col("_samordning")).then(60).otherwise(0),
        _month=birth.dt.month().cast(pl.Int64),
    )
    lf = lf.with_columns(
        _nine=((year % 100) * 10_000 + pl.col("_month") * 100 + pl.col("_day")) * 1000
        + pl.col("_serial")
    )
    lf = lf.with_columns(
        pnr=pl.concat_str(
            year.cast(pl.String),
            pl.col("_month").cast(pl.String).str.zfill(2),
            pl.col("_day").cast(pl.String).str.zfill(2),
            pl.col("_serial").cast(pl.String).str.zfill(3),
            luhn_expr(pl.col("_nine")).cast(pl.String),
        )
    )
    return lf.drop("_year", "_samordning", "_serial", "_day", "_month", "_nine")


SCENARIO_PATIENTS: Final[dict[str, tuple[date, bool]]] = {
    "adult": (date(1962, 4, 17), False),
    "adult2": (date(1975, 8, 3), False),
    "child_2010": (date(2010, 5, 5), False),
    "turns18_2019": (date(2001, 10, 31), False),
    "leap_2000": (date(2000, 2, 29), False),
    "leap_1948": (date(1948, 2, 29), False),
    "samordning": (date(1985, 3, 12), True),
    "samordning_child": (date(2008, 6, 10), True),
    "mother_16": (date(2003, 1, 15), False),
    "block_all": (date(1970, 1, 20), False),
    "block_unit": (date(1971, 2, 21), False),
    "block_expired": (date(1972, 3, 22), False),
    "block_future": (date(1973, 4, 23), False),
    "block_revoked": (date(1974, 5, 24), False),
    "block_new": (date(1976, 6, 25), False),
    "block_lower": (date(1977, 7, 26), False),
}
_SCENARIO_PATIENT_INDEX: Final = {key: n for n, key in enumerate(SCENARIO_PATIENTS)}


def scenario_pnr(key: str) -> str:
    birth, samordning = SCENARIO_PATIENTS[key]
    # Even serials 900-998: women (obstetrix), and out of the random patients' range.
    return _pnr_py(birth, samordning, 900 + 2 * _SCENARIO_PATIENT_INDEX[key])
