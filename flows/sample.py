"""Synthetic inbox generator behind `jvn sample`.

Writes an inbox exactly as the source systems deliver it (shared/spec/sources.md):
`<out>/<system>/<YYYY-MM-DD>/<file>` plus `_control.json`, for the five journal
systems and the citizen-block register, for `days` consecutive business dates
(Monday to Friday) ending at `end_date`. The first date of each system holds its
whole history; each later date holds a small delta: new records, higher versions
of existing ones (edits, signings, retractions) and a few lower or equal versions
that must not replace anything.

The data are made to exercise every rule of shared/spec/rules.md on both sides of
each boundary, so the generator has two layers:

* random rows at realistic rates (units, codes, exempt units and terms, children,
  samordningsnummer, unsigned and retracted rows, bad rows), and
* a fixed set of *scenario* rows with known ids (`SCENARIOS`), placed at the start
  of each system's history, that pin the edge cases (a timestamp 30 minutes either
  side of a start date, a 29 February birthday, a look-alike unit name, a bad
  update in a later delta, ...) whatever the requested size.

Everything is vectorised (polars expressions over record indices) and
deterministic: every value is a pure function of (seed, stream name, index),
drawn from a counter-based hash written in exact integer arithmetic, so the same
arguments give a byte-identical inbox whatever the thread scheduling or polars
version. The history of a big system is generated and appended in chunks of
`CHUNK_RECORDS` records, so memory stays bounded (about 0.7 GB peak at any size);
the checksum is computed over the bytes as they are written.

Nothing is printed: progress goes to the optional `progress` callback.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from math import gcd
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

import polars as pl

__all__ = [
    "BAD_KINDS",
    "SCENARIOS",
    "SYSTEMS",
    "UNITS",
    "SampleScenario",
    "SampleSummary",
    "business_dates",
    "generate_inbox",
]

_TZ: Final = "Europe/Stockholm"
_ZONE: Final = ZoneInfo(_TZ)
_UTC_DT: Final = pl.Datetime("us", "UTC")
_EPOCH: Final = date(1970, 1, 1)

_ENGINE: Final = "in-memory"
"""Many small queries over wide expressions: the in-memory engine starts faster."""

CHUNK_RECORDS: Final = 250_000
"""History records generated and written per step: bounds memory at any size."""

_BAD_RATE: Final = 0.001
"""Share of random rows written as bad rows (sources.md "Bad rows")."""

_DELTA_SHARE: Final = 0.003
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


# ---------------------------------------------------------------------------
# Public result types


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


# ---------------------------------------------------------------------------
# Deterministic randomness: a counter-based hash in exact integer arithmetic.
#
# numpy is not a dependency of the project, and polars' own `hash` is only
# stable within one polars version. Wellons' `lowbias32` mixer on values kept
# below 2**32 (so every product fits in 64 bits) is exact in any version, fast
# as a handful of column operations, and a bijection, so distinct indices get
# distinct draws within a stream. It runs eagerly on the index column (through
# `map_batches`): written as one nested expression, each step would repeat the
# previous ones and the tree would grow exponentially.

_MASK32: Final = 0xFFFFFFFF
_TWO32: Final = 1 << 32


def _hash_series(index: pl.Series, k1: int, k2: int) -> pl.Series:
    """Two rounds of lowbias32 over (index + k1) mod 2**32, keyed by k2; UInt64 < 2**32."""
    # Eager Series arithmetic: each step is computed once, in place.
    x = (index.cast(pl.UInt64) + k1) & _MASK32
    for round_key in (None, k2):
        if round_key is not None:
            x = x ^ round_key
        x = x ^ (x // (1 << 16))
        x = (x * 0x7FEB352D) & _MASK32
        x = x ^ (x // (1 << 15))
        x = (x * 0x846CA68B) & _MASK32
        x = x ^ (x // (1 << 16))
    return x


class _Rng:
    """Named random streams over an index column: `uniform(i, "melior.unit")`."""

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def keys(self, stream: str) -> tuple[int, int]:
        digest = hashlib.blake2b(f"{self._seed}/{stream}".encode(), digest_size=8).digest()
        return int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:], "big")

    def bits(self, index: pl.Expr, stream: str) -> pl.Expr:
        """32 random bits per row, a pure function of (seed, stream, index value)."""
        k1, k2 = self.keys(stream)
        return index.map_batches(
            lambda values: _hash_series(values, k1, k2),
            return_dtype=pl.UInt64,
            is_elementwise=True,
        )

    def uniform(self, index: pl.Expr, stream: str) -> pl.Expr:
        """Floats in [0, 1)."""
        return self.bits(index, stream).cast(pl.Float64) / float(_TWO32)

    def integers(self, index: pl.Expr, stream: str, n: int | pl.Expr) -> pl.Expr:
        """Integers in [0, n) for 1 <= n < 2**32 (Int64)."""
        if isinstance(n, int):
            assert 1 <= n < _TWO32
            count = pl.lit(n, dtype=pl.UInt64)
        else:
            count = n.cast(pl.UInt64)
        return (self.bits(index, stream) * count // pl.lit(_TWO32, dtype=pl.UInt64)).cast(pl.Int64)

    def choice(self, index: pl.Expr, stream: str, values: Sequence[str]) -> pl.Expr:
        """One of `values`, uniformly."""
        return _lookup(self.integers(index, stream, len(values)), values)


def _bucket(u: pl.Expr, weights: Sequence[float]) -> pl.Expr:
    """The index of the weighted bucket each uniform falls in (u is evaluated once)."""
    total = sum(weights)
    bounds: list[float] = []
    acc = 0.0
    for weight in weights[:-1]:
        acc += weight / total
        bounds.append(acc)
    return pl.lit(pl.Series(bounds, dtype=pl.Float64)).search_sorted(u, side="right").cast(pl.Int64)


def _weighted(u: pl.Expr, options: Sequence[tuple[str | None, float]]) -> pl.Expr:
    """Map uniforms to weighted string options (None: null)."""
    bucket = _bucket(u, [weight for _, weight in options])
    return _lookup(bucket, [value for value, _ in options])


def _lookup(index: pl.Expr, values: Sequence[str | None]) -> pl.Expr:
    """`values[index]` as a string column."""
    return index.replace_strict(
        list(range(len(values))), list(values), default=None, return_dtype=pl.String
    )


# ---------------------------------------------------------------------------
# Dates and times


def _days(day: date) -> int:
    return (day - _EPOCH).days


def _local_to_utc(naive: pl.Expr) -> pl.Expr:
    """Naive Stockholm wall-clock time -> UTC instant (gap times move an hour on)."""
    first = naive.dt.replace_time_zone(_TZ, ambiguous="earliest", non_existent="null")
    later = (naive + pl.duration(hours=1)).dt.replace_time_zone(
        _TZ, ambiguous="earliest", non_existent="null"
    )
    return first.fill_null(later).dt.convert_time_zone("UTC").cast(_UTC_DT)


def _local_naive(days: pl.Expr, seconds: pl.Expr) -> pl.Expr:
    return ((days.cast(pl.Int64) * 86_400 + seconds) * 1_000_000).cast(pl.Datetime("us"))


def _local(utc: pl.Expr) -> pl.Expr:
    return utc.dt.convert_time_zone(_TZ)


def _iso(utc: pl.Expr, style: pl.Expr) -> pl.Expr:
    """ISO 8601 with an offset: style 0 writes UTC `Z`, else the local offset."""
    return (
        pl.when(style == 0)
        .then(utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .otherwise(_local(utc).dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    )


def _py_utc(text: str) -> datetime:
    """A scenario time, written as the source writes it, as a UTC instant."""
    if "T" in text:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    fmt = {10: "%Y-%m-%d", 16: "%Y-%m-%d %H:%M", 19: "%Y-%m-%d %H:%M:%S"}[len(text)]
    local = datetime.strptime(text, fmt).replace(tzinfo=_ZONE)
    return local.astimezone(UTC)


def _py_local_date(text: str) -> date:
    return _py_utc(text).astimezone(_ZONE).date()


def business_dates(end_date: date, days: int) -> list[date]:
    """`end_date` and the weekdays before it, oldest first."""
    out = [end_date]
    day = end_date
    while len(out) < days:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    return out[::-1]


# ---------------------------------------------------------------------------
# Personnummer


def _luhn_expr(nine: pl.Expr) -> pl.Expr:
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


def _with_patient(lf: pl.LazyFrame, rng: _Rng) -> pl.LazyFrame:
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
            _luhn_expr(pl.col("_nine")).cast(pl.String),
        )
    )
    return lf.drop("_year", "_samordning", "_serial", "_day", "_month", "_nine")


_SCENARIO_PATIENTS: Final[dict[str, tuple[date, bool]]] = {
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
_SCENARIO_PATIENT_INDEX: Final = {key: n for n, key in enumerate(_SCENARIO_PATIENTS)}


def _scenario_pnr(key: str) -> str:
    birth, samordning = _SCENARIO_PATIENTS[key]
    # Even serials 900-998: women (obstetrix), and out of the random patients' range.
    return _pnr_py(birth, samordning, 900 + 2 * _SCENARIO_PATIENT_INDEX[key])


# ---------------------------------------------------------------------------
# Care units


@dataclass(frozen=True)
class _Unit:
    hsa: str
    name: str
    specialty: str | None = None


def _hsa(number: int) -> str:
    return f"SE2321000131-E{number:012d}"


_PLACES: Final = (
    "Dalen", "Nyby", "Backa", "Biskopsgården", "Frölunda", "Gamlestaden", "Hjällbo",
    "Kortedala", "Lerum", "Partille", "Mölnlycke", "Kungsbacka", "Tjörn", "Stenungsund",
    "Vänersborg", "Åmål", "Mariestad", "Tidaholm", "Ulricehamn", "Herrljunga", "Vara",
    "Götene", "Tibro", "Hjo", "Tranemo", "Svenljunga", "Bengtsfors", "Strömstad",
    "Lysekil", "Orust", "Kungshamn", "Tanumshede", "Härryda", "Öckerö", "Torslanda",
    "Majorna", "Linnéstaden", "Johanneberg", "Guldheden", "Askim",
)  # fmt: skip
_HOSPITALS: Final = (
    "Sahlgrenska", "Östra sjukhuset", "Mölndals sjukhus", "NÄL", "SÄS Borås",
    "Skaraborgs sjukhus Skövde", "Alingsås lasarett", "Kungälvs sjukhus",
    "Uddevalla sjukhus", "Lidköpings sjukhus",
)  # fmt: skip
_CLINICS: Final = (
    ("Medicinkliniken", "Internmedicin"),
    ("Kirurgkliniken", "Kirurgi"),
    ("Psykiatriska kliniken", "Psykiatri, vuxen"),
    ("Ortopedkliniken", "Ortopedi"),
    ("Kvinnokliniken", "Obstetrik och gynekologi"),
    ("Akutmottagningen", "Akutsjukvård"),
    ("Barnmedicinska kliniken", "Barn- och ungdomsmedicin"),
)

_EXEMPT_LISTED: Final = {
    11001: "BUP Göteborg",
    11002: "BUP Borås",
    11003: "BUP Skövde",
    11004: "Borås bedömningsteam försäkringsmedicin",
    11005: "Flykting- barnmottagningen Angered",
    11006: "Göteborg bedömningsteam försäkringsmedicin",
    11007: "Kris och traumaenheten",
    11008: "Mottagningen för unga vuxna",
    11009: "Mödra-barnhälsovårdsteamet i Haga",
    11010: "Rättspsykiatri Sahlgrenska",
    11011: "Rättspsykiatriska regionkliniken",
    11012: "SMC Sexualmedicinskt centrum",
    11013: "STD-STI-mottagningen Sahlgrenska",
    11014: "Könsmottagningen Skövde",
    11015: "Ungdomsmottagningen Angered",
    11016: "Ungdomsmottagningen Trollhättan",
    11017: "Ungdomsmottagningen Borås",
    11018: "Utväg Skövde",
    11019: "Utväg Borås",
}
"""shared/spec/exempt_units.csv: the listed exempt units."""

_EXEMPT_SPECIALTY: Final = {
    11001: "Barn- och ungdomspsykiatri",
    11002: "Barn- och ungdomspsykiatri",
    11003: "Barn- och ungdomspsykiatri",
    11004: "Försäkringsmedicin",
    11006: "Försäkringsmedicin",
    11007: "Psykiatri, vuxen",
    11010: "Rättspsykiatri",
    11011: "Rättspsykiatri",
    11012: "Sexualmedicin",
    11013: "Venereologi",
    11014: "Venereologi",
}


def _name_variants(name: str) -> list[str]:
    """The name as the list has it, and spellings a system may use instead."""
    return [name, name.upper(), "  ".join(name.lower().split(" ")), " " + name + "  "]


@dataclass(frozen=True)
class _UnitTable:
    ordinary: tuple[_Unit, ...]
    exempt: tuple[_Unit, ...]
    """Listed HSA-ids (exempt_units.csv), names in several spellings."""
    name_only: tuple[_Unit, ...]
    """Unlisted HSA-ids whose name matches an exempt pattern."""
    lookalike: tuple[_Unit, ...]
    """Names that resemble an exempt unit but must not match a pattern."""

    @property
    def all(self) -> tuple[_Unit, ...]:
        return self.ordinary + self.exempt + self.name_only + self.lookalike

    def find(self, name: str) -> _Unit:
        for unit in self.all:
            if unit.name == name:
                return unit
        raise KeyError(name)


def _build_units() -> dict[str, _UnitTable]:
    counter = iter(range(1001, 11000))

    def new(name: str, specialty: str | None = None) -> _Unit:
        return _Unit(_hsa(next(counter)), name, specialty)

    def listed(numbers: Sequence[int], with_specialty: bool = False) -> tuple[_Unit, ...]:
        return tuple(
            _Unit(
                _hsa(n),
                variant,
                _EXEMPT_SPECIALTY.get(n, "Psykiatri, vuxen") if with_specialty else None,
            )
            for n in numbers
            for variant in _name_variants(_EXEMPT_LISTED[n])
        )

    name_only_numbers = iter(range(19001, 19100))

    def unlisted(name: str, specialty: str | None = None) -> _Unit:
        return _Unit(_hsa(next(name_only_numbers)), name, specialty)

    melior_ordinary = [new(f"{c} {h}", s) for h in _HOSPITALS for c, s in _CLINICS]
    melior_ordinary += [
        new("Klinisk genetik Sahlgrenska", "Klinisk genetik"),
        new("Onkologiska kliniken Sahlgrenska", "Onkologi"),
        new("Neurologiska kliniken Sahlgrenska", "Neurologi"),
    ]
    melior = _UnitTable(
        ordinary=tuple(melior_ordinary),
        exempt=listed(
            [11001, 11002, 11003, 11004, 11006, 11007, 11010, 11011, 11012, 11013, 11014],
            with_specialty=True,
        ),
        name_only=(
            unlisted("Barn- och ungdomspsykiatri Kungälv", "Barn- och ungdomspsykiatri"),
            unlisted("Könsmottagningen Uddevalla", "Venereologi"),
            unlisted("Kris- och traumaenheten Östra", "Psykiatri, vuxen"),
        ),
        lookalike=(
            new("Bupkiss barnklinik", "Barn- och ungdomsmedicin"),
            new("Smcare ortopedmottagning", "Ortopedi"),
        ),
    )
    primary = [new(f"Vårdcentralen {p}") for p in _PLACES]
    primary += [new(f"Hälsocentralen {p}") for p in _PLACES[:30]]
    primary += [new(f"Habiliteringen {p}") for p in _PLACES[:6]]
    primary += [new(f"Hjälpmedelscentralen {p}") for p in _PLACES[:3]]
    primary += [new(f"Barnavårdscentralen {p}") for p in _PLACES[:8]]
    asynjavisph = _UnitTable(
        ordinary=tuple(primary),
        exempt=listed([11005, 11008, 11009, 11015, 11016, 11017, 11018, 11019]),
        name_only=(
            unlisted("Ungdomsmottagningen Nyby"),
            unlisted("STI-mottagningen Borås"),
            unlisted("Utväg Trollhättan"),
        ),
        lookalike=(
            new("Utvägen hälsocentral"),
            new("Stigens vårdcentral"),
            new("Mottagningen för unga familjer Nyby"),
        ),
    )
    obstetrix = _UnitTable(
        ordinary=tuple(
            [new(f"Barnmorskemottagningen {p}") for p in _PLACES[:10]]
            + [new(f"Förlossningen {h}") for h in _HOSPITALS[:5]]
        ),
        exempt=listed([11009]),
        name_only=(unlisted("Mödra-barnhälsovårdsteamet Nyby"),),
        lookalike=(new("Barnmorskemottagningen Utvägen"),),
    )
    # Journalia runs at the hospitals' medical clinics: same HSA-ids as Melior,
    # names spelt the journalia way.
    shared = [melior.find(f"Medicinkliniken {h}") for h in _HOSPITALS[:5]]
    journalia_ordinary = [
        _Unit(u.hsa, u.name.replace("Medicinkliniken ", "Medicinkliniken, ")) for u in shared[:3]
    ]
    journalia_ordinary += [_Unit(u.hsa, u.name.upper()) for u in shared[3:]]
    journalia_ordinary += [new(f"Diabetesmottagningen {h}") for h in _HOSPITALS[:5]]
    journalia_ordinary += [new(f"AK-mottagningen {h}") for h in _HOSPITALS[:3]]
    journalia = _UnitTable(
        ordinary=tuple(journalia_ordinary),
        exempt=listed([11008]),
        name_only=(unlisted("Mottagningen för unga vuxna Kungälv"),),
        lookalike=(new("Diabetesmottagningen Stigamo"),),
    )
    t4 = _UnitTable(
        ordinary=tuple(new(f"Folktandvården {p}") for p in _PLACES[:26]),
        exempt=listed([11005]),
        name_only=(unlisted("Folktandvården Ungdomsmottagningen Hisingen"),),
        lookalike=(new("Folktandvården Stigen"),),
    )
    return {
        "melior": melior,
        "asynjavisph": asynjavisph,
        "obstetrix": obstetrix,
        "journalia": journalia,
        "t4": t4,
    }


UNITS: Final = _build_units()
"""The care units each system writes (ordinary, exempt, name-only, look-alike)."""


# ---------------------------------------------------------------------------
# Vocabulary

_GENERAL_TEXT: Final = (
    "Mår efter omständigheterna bra.",
    "Åter vid behov.",
    "Ingen feber, äter och dricker som vanligt.",
    'Pat. uppger: "ont i magen; värre på natten".',
    "“Känner mig piggare” enligt patienten – följs upp.",
    "Egenavgift 200 kr (ca 18 €) betald.",
    "Uppföljning om 3–4 veckor; kallelse skickas.",
    "Närstående informerad, önskar återkoppling.",
    "Blodtryck 132/84, puls 72.",
    'Remiss till Öron-näsa-hals; "prio 2".',
    "Café au lait-fläckar, oförändrade.",
    "Överenskommet med patienten att avvakta.",
    "Ökad trötthet – utreds vidare.",
    "Smärta VAS 4/10 | tidigare 7/10.",
    "Hänvisad till 1177 för egenvårdsråd.",
    "ÅÄÖ-test: Åsa Ärlig, Örjan Éklund.",
)
_SYSTEM_TEXT: Final = {
    "melior": (
        "Inkommer med bröstsmärta sedan igår.",
        "EKG utan ischemitecken.",
        "Postoperativt förlopp utan anmärkning.",
        "Diskuterat vid röntgenrond.",
        "Utskrivning planeras till imorgon.",
        "Inläggning för observation.",
    ),
    "asynjavisph": (
        "Söker för halsont sedan 3 dagar.",
        "Hosta och snuva, ingen andnöd.",
        "Vaccination given i vänster överarm.",
        "Hälsosamtal genomfört.",
        "Förnyat recept.",
        "Provtagning: CRP 12, Hb 134.",
    ),
    "obstetrix": (
        "Graviditetsvecka 32+4.",
        "Symfys-fundusmått följer kurvan.",
        "Fosterljud 140 slag/min.",
        "Förlossning planerad vid Östra sjukhuset.",
        "Amning fungerar bra.",
    ),
    "journalia": (
        "INR 2,4 – oförändrad dos.",
        "HbA1c 52 mmol/mol.",
        "Ny dosering Waran enligt bifogat schema.",
        "Insulinpump fungerar väl.",
        "Nästa INR-kontroll om 2 veckor.",
    ),
    "t4": (
        "Undersökning utan anmärkning.",
        "Karies 36 distalt, fyllning planeras.",
        "Tandsten avlägsnad.",
        "Bitewing-röntgen tagen.",
        "Tandvårdsrädsla, lugnt tempo.",
    ),
}
_SEPARATORS: Final = (" ", " ", " ", "\n", "\n\n")

_MELIOR_KEYWORDS: Final = (
    ("Bedömning", 20.0),
    ("Anamnes", 15.0),
    ("Aktuellt", 15.0),
    ("Status", 12.0),
    ("Planering", 12.0),
    ("Åtgärd", 8.0),
    ("Social bakgrund", 5.0),
    ("Läkemedelsgenomgång", 5.0),
    ("Utredning", 5.0),
    (None, 2.0),
    ("Tidiga hypoteser", 0.8),
    ("tidiga hypoteser", 0.3),
    ("  tidiga   HYPOTESER ", 0.2),
    ("Våldsutsatthet i nära relationer", 0.5),
    ("VÅLDSUTSATTHET I NÄRA  RELATIONER", 0.2),
)
_ASYNJA_KEYWORDS: Final = (
    ("Bedömning", 20.0),
    ("Kontaktorsak", 18.0),
    ("Aktuellt", 15.0),
    ("Status", 12.0),
    ("Åtgärd", 10.0),
    ("Planering", 10.0),
    ("Hälsosamtal", 5.0),
    ("Egenvårdsråd", 5.0),
    ("Tidiga hypoteser", 0.6),
    ("TIDIGA HYPOTESER", 0.2),
    ("Våldsutsatthet i nära relationer", 0.5),
    ("våldsutsatthet i  nära relationer ", 0.3),
)


# ---------------------------------------------------------------------------
# The systems: codes, formats and how a raw row is written


@dataclass(frozen=True)
class _Roles:
    """Which raw column plays which part, so deltas and bad rows are generic."""

    id: str
    version: str
    pnr: str
    doc: str
    signed: str
    signed_at: str | None
    retracted: str
    title: str
    text: str
    signed_codes: tuple[str, str]
    retracted_codes: tuple[str, str]


@dataclass(frozen=True)
class _System:
    name: str
    file_name: str
    kind: Literal["csv", "ndjson"]
    encoding: Literal["utf-8", "utf-8-sig", "cp1252"]
    delimiter: str
    line_end: str
    share: float
    id_prefix: str
    id_offset: int
    columns: tuple[str, ...]
    roles: _Roles
    codes: tuple[tuple[str, float], ...]
    titles: dict[str, tuple[str, str, str]]
    bad_dates: tuple[str, ...]
    bad_flag: str
    iso_times: bool
    """Times written as ISO 8601 with an offset (else local wall-clock)."""
    doc_format: str
    """strftime of the local documentation time, for non-ISO systems."""

    def record_id(self, index: int) -> str:
        return f"{self.id_prefix}{self.id_offset + index}"


_MELIOR = _System(
    name="melior",
    file_name="journal.csv",
    kind="csv",
    encoding="cp1252",
    delimiter=";",
    line_end="\r\n",
    share=0.35,
    id_prefix="D-",
    id_offset=1_000_000,
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
    roles=_Roles(
        "DokumentID",
        "Version",
        "Personnummer",
        "Dokumenttid",
        "Signerad",
        "Signeringstid",
        "Status",
        "Rubrik",
        "Text",
        ("J", "N"),
        ("MAKULERAD", "AKTIV"),
    ),
    codes=(
        ("ANTECKNING", 45.0),
        ("DIAGNOS", 12.0),
        ("UPPMARKSAMHETSSIGNAL", 1.0),
        ("VARDKONTAKT", 20.0),
        ("PROVSVAR", 12.0),
        ("LAKEMEDEL", 6.0),
        ("REMISS", 3.5),
        ("INTYG", 0.5),
    ),
    titles={
        "ANTECKNING": ("Daganteckning", "Besöksanteckning", "Inskrivningsanteckning"),
        "DIAGNOS": ("Diagnos", "Huvuddiagnos", "Bidiagnos"),
        "UPPMARKSAMHETSSIGNAL": ("Överkänslighet", "Uppmärksamhetssignal", "Smitta"),
        "VARDKONTAKT": ("Öppenvårdsbesök", "Slutenvårdstillfälle", "Telefonkontakt"),
        "PROVSVAR": ("Klinisk kemi", "Mikrobiologi", "Patologi"),
        "LAKEMEDEL": ("Ordination", "Läkemedelslista", "Utsättning"),
        "REMISS": ("Remiss", "Konsultremiss", "Remissvar"),
        "INTYG": ("Läkarintyg", "Intyg till Försäkringskassan", "Intyg"),
    },
    bad_dates=("2021-13-05 10:15", "igår 14:00", "2021-06-31 08:00", "05/06/2021 10:15"),
    bad_flag="Ja",
    iso_times=False,
    doc_format="%Y-%m-%d %H:%M",
)
_ASYNJA = _System(
    name="asynjavisph",
    file_name="records.ndjson",
    kind="ndjson",
    encoding="utf-8",
    delimiter="",
    line_end="\n",
    share=0.45,
    id_prefix="AV-",
    id_offset=100_000,
    columns=(
        "id",
        "rev",
        "pnr",
        "hsaId",
        "name",
        "type",
        "keyword",
        "documentedAt",
        "signed",
        "signedAt",
        "retracted",
        "title",
        "body",
    ),
    roles=_Roles(
        "id",
        "rev",
        "pnr",
        "documentedAt",
        "signed",
        "signedAt",
        "retracted",
        "title",
        "body",
        ("true", "false"),
        ("true", "false"),
    ),
    codes=(
        ("note", 45.0),
        ("diagnosis", 10.0),
        ("attention_signal", 0.5),
        ("care_contact", 20.0),
        ("lab_result", 12.0),
        ("vaccination", 4.0),
        ("medication", 5.0),
        ("referral", 3.0),
        ("certificate", 0.5),
    ),
    titles={
        "note": ("Besöksanteckning", "Telefonanteckning", "Journalanteckning"),
        "diagnosis": ("Diagnos", "Diagnos", "Bidiagnos"),
        "attention_signal": ("Överkänslighet", "Uppmärksamhetssignal", "Allergi"),
        "care_contact": ("Besök", "Telefonkontakt", "Digital vårdkontakt"),
        "lab_result": ("Provsvar", "Labbsvar", "Snabbtest"),
        "vaccination": ("Vaccination", "Influensavaccination", "Vaccination, barn"),
        "medication": ("Recept", "Läkemedelslista", "Förnyelse"),
        "referral": ("Remiss", "Remiss", "Remissvar"),
        "certificate": ("Intyg", "Läkarintyg", "Intyg för körkort"),
    },
    bad_dates=("2021-06-15 10:00", "2021-06-31T10:00:00+02:00", "igår", "2021-06-15T10:00:00"),
    bad_flag="ja",
    iso_times=True,
    doc_format="",
)
_OBSTETRIX = _System(
    name="obstetrix",
    file_name="journal.csv",
    kind="csv",
    encoding="utf-8",
    delimiter=",",
    line_end="\n",
    share=0.05,
    id_prefix="OX",
    id_offset=5_000_000,
    columns=(
        "record_id",
        "version",
        "personal_number",
        "unit_hsa_id",
        "unit_name",
        "document_type",
        "document_date",
        "signed",
        "status",
        "title",
        "text",
    ),
    roles=_Roles(
        "record_id",
        "version",
        "personal_number",
        "document_date",
        "signed",
        None,
        "status",
        "title",
        "text",
        ("true", "false"),
        ("retracted", "active"),
    ),
    codes=(
        ("SAMMANFATTNING", 15.0),
        ("ANTECKNING", 50.0),
        ("MATVARDE", 25.0),
        ("FORLOSSNINGSJOURNAL", 9.5),
        ("EPIKRIS", 0.5),
    ),
    titles={
        "SAMMANFATTNING": ("Journalsammanfattning", "Sammanfattning", "Graviditetssammanfattning"),
        "ANTECKNING": ("Besök barnmorska", "Telefonsamtal", "Anteckning"),
        "MATVARDE": ("Blodtryck", "Vikt", "SF-mått"),
        "FORLOSSNINGSJOURNAL": ("Förlossningsjournal", "Partogram", "Förlossningsberättelse"),
        "EPIKRIS": ("Epikris", "Epikris", "Utskrivning"),
    },
    bad_dates=("15/06/2021", "2021-13-01", "2021-02-30", "juni 2021"),
    bad_flag="yes",
    iso_times=False,
    doc_format="%Y-%m-%d",
)
_JOURNALIA = _System(
    name="journalia",
    file_name="export.csv",
    kind="csv",
    encoding="utf-8-sig",
    delimiter=",",
    line_end="\n",
    share=0.03,
    id_prefix="JL",
    id_offset=700_000,
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
    roles=_Roles(
        "id",
        "version",
        "pnr",
        "created",
        "signed",
        None,
        "state",
        "title",
        "text",
        ("1", "0"),
        ("M", "A"),
    ),
    codes=(
        ("AK-BREV", 30.0),
        ("DIABETESANTECKNING", 40.0),
        ("LABBVARDE", 29.5),
        ("RECEPT", 0.5),
    ),
    titles={
        "AK-BREV": ("AK-brev", "Doseringsbrev", "AK-brev, ny dos"),
        "DIABETESANTECKNING": ("Diabetesbesök", "Årskontroll", "Telefonkontakt"),
        "LABBVARDE": ("HbA1c", "INR", "Lipider"),
        "RECEPT": ("Recept", "Recept", "Recept"),
    },
    bad_dates=("2021-06-15T10:00:00", "2021-06-15 25:00:00", "15.06.2021 10:00:00"),
    bad_flag="ja",
    iso_times=False,
    doc_format="%Y-%m-%d %H:%M:%S",
)
_T4 = _System(
    name="t4",
    file_name="entries.csv",
    kind="csv",
    encoding="utf-8",
    delimiter="|",
    line_end="\n",
    share=0.12,
    id_prefix="FTV-",
    id_offset=3_000_000,
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
    roles=_Roles(
        "journal_id",
        "rev",
        "patient_pnr",
        "entry_datetime",
        "signed",
        None,
        "cancelled",
        "heading",
        "entry_text",
        ("Y", "N"),
        ("Y", "N"),
    ),
    codes=(
        ("ANTECKNING", 40.0),
        ("DIAGNOS", 10.0),
        ("BESOK", 35.0),
        ("RONTGEN", 8.0),
        ("BEHANDLINGSPLAN", 6.5),
        ("INTYG", 0.5),
    ),
    titles={
        "ANTECKNING": ("Journalanteckning", "Akutbesök", "Revisionsundersökning"),
        "DIAGNOS": ("Diagnos", "Karies", "Parodontit"),
        "BESOK": ("Besök", "Revisionsbesök", "Akutbesök"),
        "RONTGEN": ("Bitewing", "Panoramaröntgen", "Intraoral röntgen"),
        "BEHANDLINGSPLAN": ("Behandlingsplan", "Terapiplan", "Behandlingsförslag"),
        "INTYG": ("Intyg", "Intyg", "Intyg"),
    },
    bad_dates=("2021-06-15 10:00", "2021-06-31T10:00:00+02:00", "15/06/2021 10:00"),
    bad_flag="J",
    iso_times=True,
    doc_format="",
)

SYSTEMS: Final = {s.name: s for s in (_MELIOR, _ASYNJA, _OBSTETRIX, _JOURNALIA, _T4)}
"""The journal systems in load order (the order of transforms.canonical.SYSTEMS)."""

BLOCKS_FILE: Final = "blocks.csv"
BLOCK_COLUMNS: Final = (
    "block_id",
    "version",
    "pnr",
    "scope",
    "hsa_id",
    "valid_from",
    "valid_to",
    "status",
)
_BLOCK_ID_OFFSET: Final = 1_000_000

_HISTORY_START: Final = date(2010, 1, 1)
_T4_CLUSTER: Final = date(2020, 12, 1)


# ---------------------------------------------------------------------------
# Scenario rows


@dataclass(frozen=True)
class _Scenario:
    what: str
    expect: str
    doc: str
    """As the system writes it; its local date must not be after the first delivery."""
    patient: str = "adult"
    unit: str | None = None
    """Unit name in the system's table (None: the system's default unit)."""
    unit_as: str | None = None
    """The unit name as written, when it differs from the table."""
    code: str | None = None
    keyword: str | None = "Bedömning"
    kw_mode: int = 0
    """asynjavisph: 0 keyword present, 1 null, 2 absent (signedAt too when unsigned)."""
    signed: bool = True
    retracted: bool = False
    version: int = 1
    text: str | None = None
    dash: bool = True
    action: str | None = None
    """A change in the second delivery: edit, sign, retract, bad_update, stale_lower,
    stale_equal."""
    also_earlier: bool = False
    """The history also holds version - 1, written after this version."""


_QUIRKY_TEXT: Final = (
    'Pat. säger: "ont; värre på natten".\nÅter om 2 veckor – kostnad 20 €.\n'
    "“Citat” från anhörig; åäö ÅÄÖ é."
)
_DEFAULT_UNIT: Final = {
    "melior": "Medicinkliniken Sahlgrenska",
    "asynjavisph": "Vårdcentralen Dalen",
    "obstetrix": "Barnmorskemottagningen Dalen",
    "journalia": "AK-mottagningen Sahlgrenska",
    "t4": "Folktandvården Dalen",
}
_DEFAULT_CODE: Final = {
    "melior": "ANTECKNING",
    "asynjavisph": "note",
    "obstetrix": "SAMMANFATTNING",
    "journalia": "AK-BREV",
    "t4": "ANTECKNING",
}

_S = _Scenario
_SCENARIO_ROWS: Final[dict[str, tuple[_Scenario, ...]]] = {
    "melior": (
        _S("before system start, 1 minute to midnight", "before_system_start", "2016-05-31 23:59"),
        _S("system start day, just after midnight", "shown", "2016-06-01 00:01"),
        _S("adult psychiatry the day before its start", "before_psychiatry_start",
           "2018-09-02 16:00", unit="Psykiatriska kliniken Sahlgrenska"),
        _S("adult psychiatry on its start date", "shown", "2018-09-03 08:00",
           unit="Psykiatriska kliniken Sahlgrenska"),
        _S("clinical genetics 10 minutes before its start", "before_genetics_start",
           "2019-10-31 23:50", unit="Klinisk genetik Sahlgrenska"),
        _S("clinical genetics on its start date", "shown", "2019-11-01 00:05",
           unit="Klinisk genetik Sahlgrenska"),
        _S("child, day before the children's start", "before_children_start",
           "2019-10-31 10:00", patient="child_2010"),
        _S("child on the children's start date", "shown", "2019-11-01 10:00",
           patient="child_2010"),
        _S("17 years old: the day before the 18th birthday", "before_children_start",
           "2019-10-30 12:00", patient="turns18_2019"),
        _S("on the 18th birthday", "shown", "2019-10-31 12:00", patient="turns18_2019"),
        _S("born 29 February: 28 February of the 18th year, still 17", "before_children_start",
           "2018-02-28 12:00", patient="leap_2000"),
        _S("born 29 February: 18 on 1 March", "shown", "2018-03-01 12:00", patient="leap_2000"),
        _S("samordningsnummer, adult", "shown", "2020-03-10 09:00", patient="samordning"),
        _S("samordningsnummer, child before the children's start", "before_children_start",
           "2019-01-15 09:00", patient="samordning_child"),
        _S("unknown information type INTYG reads as other", "info_type_not_connected",
           "2021-04-12 10:00", code="INTYG", keyword=None),
        _S("listed but unconnected type PROVSVAR", "info_type_not_connected",
           "2021-04-12 10:30", code="PROVSVAR", keyword=None),
        _S("exempt unit by HSA-id, name in odd case/spacing", "exempt_unit", "2021-05-03 11:00",
           unit="BUP Göteborg", unit_as="bup  GÖTEBORG"),
        _S("exempt unit by name only (unlisted HSA-id)", "exempt_unit", "2021-05-03 11:30",
           unit="Barn- och ungdomspsykiatri Kungälv"),
        _S("look-alike unit name that must not match", "shown", "2021-05-03 12:00",
           unit="Bupkiss barnklinik"),
        _S("exempt term in odd case and spacing", "exempt_term", "2021-06-01 09:00",
           keyword="  tidiga   HYPOTESER "),
        _S("exempt term", "exempt_term", "2021-06-01 09:30",
           keyword="Våldsutsatthet i nära relationer"),
        _S("unsigned, documented 2022-02-20 (delay applies before 2022-03-01)", "shown",
           "2022-02-20 14:00", signed=False),
        _S("retracted (MAKULERAD, version 2)", "retracted", "2021-02-01 10:00", retracted=True,
           version=2),
        _S("text with ; quotes newlines åäö € curly quotes and dash", "shown",
           "2021-03-01 10:00", text=_QUIRKY_TEXT),
        _S("diagnosis", "shown", "2021-03-02 10:00", code="DIAGNOS", keyword=None),
        _S("attention signal", "shown", "2021-03-02 10:05", code="UPPMARKSAMHETSSIGNAL",
           keyword=None),
        _S("care contact", "shown", "2021-03-02 10:10", code="VARDKONTAKT", keyword=None),
        _S("patient with an active whole-journal block", "patient_block", "2021-03-03 10:00",
           patient="block_all"),
        _S("patient with a unit block, at that unit", "patient_block", "2021-03-03 10:00",
           patient="block_unit"),
        _S("patient with a unit block, at another unit", "shown", "2021-03-03 10:00",
           patient="block_unit", unit="Kirurgkliniken Sahlgrenska"),
        _S("patient whose block has expired", "shown", "2021-03-03 10:00",
           patient="block_expired"),
        _S("patient whose block starts after end_date", "shown", "2021-03-03 10:00",
           patient="block_future"),
        _S("patient whose block is revoked in the second delivery", "shown",
           "2021-03-03 10:00", patient="block_revoked"),
        _S("patient whose block arrives in the second delivery", "patient_block",
           "2021-03-03 10:00", patient="block_new"),
        _S("patient whose block gets a stale lower revoked version", "patient_block",
           "2021-03-03 10:00", patient="block_lower"),
        _S("unsigned in history, signed (version 2) in the second delivery", "shown",
           "2021-09-01 10:00", signed=False, action="sign"),
        _S("retracted (version 2) in the second delivery", "retracted", "2021-09-01 10:10",
           action="retract"),
        _S("edited (version 2) in the second delivery", "shown", "2021-09-01 10:20",
           action="edit"),
        _S("bad update: version 2 with a bad personnummer checksum", "invalid_record",
           "2021-09-01 10:30", action="bad_update"),
        _S("version 3 in history, stale version 2 in the second delivery", "shown",
           "2021-09-01 10:40", version=3, action="stale_lower"),
        _S("version 2 in history, equal version 2 again in the second delivery", "shown",
           "2021-09-01 10:50", version=2, action="stale_equal"),
        _S("history holds version 2 and then version 1", "shown", "2021-09-02 10:00",
           version=2, also_earlier=True),
        _S("before system start and exempt unit: two reasons", "before_system_start",
           "2015-03-03 10:00", unit="BUP Borås"),
        _S("retracted, unsigned and exempt: retracted comes first", "retracted",
           "2021-09-03 10:00", unit="Rättspsykiatri Sahlgrenska", signed=False,
           retracted=True, version=2),
        _S("autumn DST: the hour that occurs twice", "shown", "2021-10-31 02:30"),
        _S("spring DST: a time no clock showed", "shown", "2021-03-28 02:30"),
        _S("born 29 February 1948, adult", "shown", "2021-03-04 09:00", patient="leap_1948"),
    ),
    "asynjavisph": (
        _S("UTC 22:30 on 31 Oct is local 23:30: before start", "before_system_start",
           "2016-10-31T22:30:00Z"),
        _S("UTC 23:30 on 31 Oct is local 00:30 on the start date", "shown",
           "2016-10-31T23:30:00Z"),
        _S("start date with a +01:00 offset", "shown", "2016-11-01T00:30:00+01:00"),
        _S("child, local 23:59 the day before the children's start", "before_children_start",
           "2019-10-31T22:59:00Z", patient="child_2010"),
        _S("child, UTC 23:30 is local 00:30 on the children's start", "shown",
           "2019-10-31T23:30:00Z", patient="child_2010"),
        _S("unknown type certificate reads as other", "info_type_not_connected",
           "2021-04-12T10:00:00+02:00", code="certificate", kw_mode=1),
        _S("listed but unconnected type medication", "info_type_not_connected",
           "2021-04-12T10:30:00+02:00", code="medication", kw_mode=2),
        _S("vaccination", "shown", "2021-04-13T09:00:00+02:00", code="vaccination", kw_mode=1),
        _S("lab result", "shown", "2021-04-13T09:10:00Z", code="lab_result", kw_mode=2),
        _S("keyword null", "shown", "2021-04-13T09:20:00+02:00", kw_mode=1),
        _S("unsigned, keyword and signedAt absent", "shown", "2023-01-10T09:00:00+01:00",
           kw_mode=2, signed=False),
        _S("exempt unit by HSA-id, name upper case", "exempt_unit", "2021-05-03T11:00:00+02:00",
           unit="UNGDOMSMOTTAGNINGEN ANGERED"),
        _S("exempt unit by name only (unlisted HSA-id)", "exempt_unit",
           "2021-05-03T11:30:00+02:00", unit="Ungdomsmottagningen Nyby"),
        _S("look-alike Utvägen must not match \\butvag\\b", "shown",
           "2021-05-03T12:00:00+02:00", unit="Utvägen hälsocentral"),
        _S("look-alike Stigens must not match \\bsti\\b", "shown", "2021-05-03T12:10:00+02:00",
           unit="Stigens vårdcentral"),
        _S("exempt term, lower case and double space", "exempt_term",
           "2021-06-01T09:00:00+02:00", keyword="våldsutsatthet i  nära relationer "),
        _S("summer time +02:00 late evening", "shown", "2020-06-15T23:30:00+02:00"),
        _S("personnummer without dash", "shown", "2021-02-02T10:00:00+01:00", dash=False),
        _S("samordningsnummer with dash", "shown", "2021-02-02T10:10:00+01:00",
           patient="samordning"),
        _S("retracted", "retracted", "2021-02-03T10:00:00+01:00", retracted=True, version=2),
        _S("unsigned, documented 2022-02-20", "shown", "2022-02-20T13:00:00+01:00",
           signed=False),
        _S("retracted in the second delivery", "retracted", "2021-09-01T10:00:00+02:00",
           action="retract"),
        _S("bad update: rev 2 with documentedAt without offset", "invalid_record",
           "2021-09-01T10:10:00+02:00", action="bad_update"),
        _S("patient with an active whole-journal block", "patient_block",
           "2021-03-03T10:00:00+01:00", patient="block_all"),
        _S("unit-blocked patient at a unit without block", "shown",
           "2021-03-03T10:00:00+01:00", patient="block_unit"),
        _S("born 29 February 1948", "shown", "2021-03-04T09:00:00+01:00", patient="leap_1948"),
        _S("attention signal", "shown", "2021-03-04T09:10:00+01:00", code="attention_signal",
           kw_mode=2),
    ),
    "obstetrix": (
        _S("journal summary the day before the start", "before_system_start", "2019-05-14",
           patient="adult2"),
        _S("journal summary on the start date", "shown", "2019-05-15", patient="adult2"),
        _S("note: not connected", "info_type_not_connected", "2020-01-10", patient="adult2",
           code="ANTECKNING"),
        _S("unknown type EPIKRIS reads as other", "info_type_not_connected", "2020-01-11",
           patient="adult2", code="EPIKRIS"),
        _S("16-year-old mother before 2019-11-01: child rule does not apply", "shown",
           "2019-06-01", patient="mother_16"),
        _S("retracted", "retracted", "2020-02-01", patient="adult2", retracted=True, version=2),
        _S("exempt unit by HSA-id, upper case", "exempt_unit", "2020-02-02", patient="adult2",
           unit="MÖDRA-BARNHÄLSOVÅRDSTEAMET I HAGA"),
        _S("edited in the second delivery", "shown", "2020-02-03", patient="adult2",
           action="edit"),
    ),
    "journalia": (
        _S("AK letter 1 second before the start", "before_system_start", "2019-03-31 23:59:59"),
        _S("AK letter at the start", "shown", "2019-04-01 00:00:00"),
        _S("diabetes note: not connected", "info_type_not_connected", "2020-01-10 10:00:00",
           code="DIABETESANTECKNING"),
        _S("unknown type RECEPT reads as other", "info_type_not_connected",
           "2020-01-10 10:05:00", code="RECEPT"),
        _S("retracted (state M)", "retracted", "2020-02-01 10:00:00", retracted=True,
           version=2),
        _S("unsigned, documented 2022-02-20", "shown", "2022-02-20 08:00:00", signed=False),
        _S("child AK letter before 2019-11-01: child rule does not apply", "shown",
           "2019-06-01 10:00:00", patient="child_2010"),
        _S("version 3 in history, stale version 2 in the second delivery", "shown",
           "2020-03-01 10:00:00", version=3, action="stale_lower"),
    ),
    "t4": (
        _S("UTC 22:59 on 30 Nov is local 23:59: before start", "before_system_start",
           "2020-11-30T22:59:00Z"),
        _S("UTC 23:30 on 30 Nov is local 00:30 on 1 Dec: start date", "shown",
           "2020-11-30T23:30:00Z"),
        _S("7 Dec late evening: shown, hidden if the start moves to 2020-12-08", "shown",
           "2020-12-07T23:30:00+01:00"),
        _S("8 Dec just after midnight", "shown", "2020-12-08T00:10:00+01:00"),
        _S("visit (BESOK) is a care contact", "shown", "2021-01-11T09:00:00+01:00", code="BESOK"),
        _S("x-ray: not connected", "info_type_not_connected", "2021-01-11T09:30:00+01:00",
           code="RONTGEN"),
        _S("diagnosis: not connected for T4", "info_type_not_connected",
           "2021-01-11T09:40:00+01:00", code="DIAGNOS"),
        _S("unknown type INTYG reads as other", "info_type_not_connected",
           "2021-01-11T09:50:00+01:00", code="INTYG"),
        _S("cancelled (retracted)", "retracted", "2021-01-12T09:00:00+01:00", retracted=True,
           version=2),
        _S("child in T4: child rule does not apply", "shown", "2020-12-03T10:00:00+01:00",
           patient="child_2010"),
        _S("unsigned in history, signed in the second delivery", "shown",
           "2021-09-01T10:00:00+02:00", signed=False, action="sign"),
        _S("bad update: rev 2 with signed flag J", "invalid_record",
           "2021-09-01T10:10:00+02:00", action="bad_update"),
    ),
}  # fmt: skip
del _S


@dataclass(frozen=True)
class _BlockScenario:
    what: str
    patient: str
    scope: str
    unit: str | None
    valid_from: str
    valid_to: str | None
    history: tuple[tuple[int, str], ...]
    """(version, status) rows in the first delivery, in file order."""
    delta: tuple[tuple[int, str], ...] = ()
    """(version, status) rows in the second delivery."""


_BLOCK_SCENARIOS: Final = (
    _BlockScenario("whole journal, open-ended", "block_all", "ALL", None, "2020-01-01", None,
                   ((1, "active"),)),
    _BlockScenario("one unit, until 2030", "block_unit", "UNIT", "Medicinkliniken Sahlgrenska",
                   "2021-01-01", "2030-12-31", ((1, "active"),)),
    _BlockScenario("expired", "block_expired", "ALL", None, "2018-01-01", "2019-12-31",
                   ((1, "active"),)),
    _BlockScenario("not yet valid (from end_date + 60 days)", "block_future", "ALL", None,
                   "+60", None, ((1, "active"),)),
    _BlockScenario("revoked in the second delivery", "block_revoked", "ALL", None,
                   "2020-05-01", None, ((1, "active"),), ((2, "revoked"),)),
    _BlockScenario("new in the second delivery", "block_new", "ALL", None, "2021-01-01", None,
                   (), ((1, "active"),)),
    _BlockScenario("version 2 active; stale version 1 revoked later", "block_lower", "ALL",
                   None, "2020-06-01", None, ((2, "active"),), ((1, "revoked"),)),
    _BlockScenario("unit block revoked already in history", "adult2", "UNIT",
                   "Kirurgkliniken Sahlgrenska", "2019-01-01", None,
                   ((1, "active"), (2, "revoked"))),
)  # fmt: skip


def _scenario_catalogue() -> tuple[SampleScenario, ...]:
    out: list[SampleScenario] = []
    for name, system in SYSTEMS.items():
        rows = _SCENARIO_ROWS[name]
        out += [
            SampleScenario(f"{name}:{system.record_id(n)}", row.what, row.expect)
            for n, row in enumerate(rows)
        ]
        # The forced bad rows right after the scenario rows (one of each kind).
        out += [
            SampleScenario(f"{name}:{system.record_id(len(rows) + k)}", f"bad row: {kind}",
                           "invalid_record")
            for k, kind in enumerate(BAD_KINDS)
            if kind != "empty_id"
        ]  # fmt: skip
    return tuple(out)


SCENARIOS: Final = _scenario_catalogue()
"""Fixed rows every sample holds, with the reason the default rules must give."""


# ---------------------------------------------------------------------------
# Internal record columns -> raw rows


_INTERNAL_SCHEMA: Final = pl.Schema(
    {
        "i": pl.Int64(),
        "pnr": pl.String(),
        "hsa": pl.String(),
        "unit_name": pl.String(),
        "specialty": pl.String(),
        "code": pl.String(),
        "keyword": pl.String(),
        "kw_mode": pl.Int64(),
        "doc_utc": _UTC_DT,
        "style": pl.Int64(),
        "signed": pl.Boolean(),
        "signed_utc": _UTC_DT,
        "retracted": pl.Boolean(),
        "version": pl.Int64(),
        "title": pl.String(),
        "text": pl.String(),
        "dash": pl.Boolean(),
        "bad": pl.String(),
    }
)
"""One record version before it is written in its system's format."""


def _flag(condition: pl.Expr, codes: tuple[str, str]) -> pl.Expr:
    return pl.when(condition).then(pl.lit(codes[0])).otherwise(pl.lit(codes[1]))


def _doc_text(system: _System, utc: pl.Expr, style: pl.Expr) -> pl.Expr:
    if system.iso_times:
        return _iso(utc, style)
    return _local(utc).dt.strftime(system.doc_format)


def _raw(system: _System, internal: pl.LazyFrame) -> pl.LazyFrame:
    """Internal columns -> the system's columns as strings, plus `_i`, `_bad`, ... helpers."""
    r = system.roles
    ident = pl.concat_str(
        pl.lit(system.id_prefix), (pl.col("i") + system.id_offset).cast(pl.String)
    )
    pnr = pl.col("pnr")
    dashed = pl.concat_str(pnr.str.slice(0, 8), pl.lit("-"), pnr.str.slice(8, 4))
    doc = _doc_text(system, pl.col("doc_utc"), pl.col("style"))
    signed_at = _doc_text(system, pl.col("signed_utc"), pl.col("style"))
    text = pl.col("text")
    if system.line_end == "\r\n":
        text = text.str.replace_all("\n", "\r\n", literal=True)
    helpers = {
        "_i": pl.col("i"),
        "_bad": pl.col("bad"),
        "_kw_absent": pl.col("kw_mode") == 2,
        "_sa_absent": (pl.col("kw_mode") == 2) & pl.col("signed_utc").is_null(),
    }
    by_role: dict[str, pl.Expr] = {
        r.id: ident,
        r.version: pl.col("version").cast(pl.String),
        r.doc: doc,
        r.signed: _flag(pl.col("signed"), r.signed_codes),
        r.retracted: _flag(pl.col("retracted"), r.retracted_codes),
        r.title: pl.col("title"),
        r.text: text,
    }
    if r.signed_at is not None:
        by_role[r.signed_at] = signed_at
    if system.name == "melior":
        by_role |= {
            "HSAid": pl.col("hsa"),
            "Enhetsnamn": pl.col("unit_name"),
            "Specialitet": pl.col("specialty"),
            "Informationstyp": pl.col("code"),
            "Sokord": pl.col("keyword"),
            r.pnr: pnr,
        }
    elif system.name == "asynjavisph":
        by_role |= {
            "hsaId": pl.col("hsa"),
            "name": pl.col("unit_name"),
            "type": pl.col("code"),
            "keyword": pl.col("keyword"),
            r.pnr: pl.when(pl.col("dash")).then(dashed).otherwise(pnr),
        }
    elif system.name == "obstetrix":
        by_role |= {
            "unit_hsa_id": pl.col("hsa"),
            "unit_name": pl.col("unit_name"),
            "document_type": pl.col("code"),
            r.pnr: pnr,
        }
    elif system.name == "journalia":
        by_role |= {
            "hsa_id": pl.col("hsa"),
            "unit_name": pl.col("unit_name"),
            "doc_kind": pl.col("code"),
            r.pnr: pnr,
        }
    else:  # t4 always writes the dash
        by_role |= {
            "clinic_hsa_id": pl.col("hsa"),
            "clinic_name": pl.col("unit_name"),
            "entry_type": pl.col("code"),
            r.pnr: dashed,
        }
    return internal.select(**{c: by_role[c] for c in system.columns}, **helpers)


# ---------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class _Plan:
    """Sizes and dates fixed up front, so every delivery is a pure function of them."""

    dates: tuple[date, ...]
    end_date: date
    patients: int
    counts: dict[str, int]
    """History records per system (scenario rows included)."""
    new_per_day: dict[str, int]
    updates_per_day: dict[str, int]
    stales_per_day: dict[str, int]
    blocks: int
    blocks_new_per_day: int
    blocks_revoked_per_day: int

    @property
    def first(self) -> date:
        return self.dates[0]


def _plan(records: int, days: int, end_date: date) -> _Plan:
    dates = tuple(business_dates(end_date, days))
    counts: dict[str, int] = {}
    new: dict[str, int] = {}
    upd: dict[str, int] = {}
    stale: dict[str, int] = {}
    for name, system in SYSTEMS.items():
        fixed = len(_SCENARIO_ROWS[name]) + len(BAD_KINDS)
        n = max(round(records * system.share), fixed + 20)
        counts[name] = n
        changes = max(3, round(n * _DELTA_SHARE))
        new[name] = max(1, round(changes * 0.4))
        stale[name] = max(1, round(changes * 0.08))
        upd[name] = max(1, changes - new[name] - stale[name])
        # The delta targets are distinct records drawn without replacement.
        available = n - fixed - 1
        while (days - 1) * (upd[name] + stale[name]) > available and upd[name] > 1:
            upd[name] -= 1
    patients = max(records // 12, 100)
    blocks = max(20, round(patients * 0.004))
    return _Plan(
        dates=dates,
        end_date=end_date,
        patients=patients,
        counts=counts,
        new_per_day=new,
        updates_per_day=upd,
        stales_per_day=stale,
        blocks=blocks,
        blocks_new_per_day=max(1, round(blocks * 0.01)),
        blocks_revoked_per_day=max(1, round(blocks * 0.01)),
    )


class _Generator:
    def __init__(self, plan: _Plan, seed: int, *, bad_rows: bool) -> None:
        self.plan = plan
        self.rng = _Rng(seed)
        self.bad_rows = bad_rows
        self.bad_rate = _BAD_RATE if bad_rows else 0.0

    # -- random records -------------------------------------------------

    def fixed(self, system: _System) -> int:
        """Indices below this are scenario rows and the forced bad rows."""
        return len(_SCENARIO_ROWS[system.name]) + len(BAD_KINDS)

    def last_history_index(self, system: _System) -> int:
        """Written with a wrong field count (CSV) or truncated (NDJSON)."""
        return self.plan.counts[system.name] - 1

    def records(
        self, system: _System, index: pl.Series, *, lo: date, hi: date, fresh: bool
    ) -> pl.LazyFrame:
        """Random record versions for `index`, documented in [lo, hi] (local dates)."""
        rng = self.rng
        s = system.name
        i = pl.col("i")
        n_scen = len(_SCENARIO_PATIENTS)
        n_random = max(self.plan.patients - n_scen, 2)
        if s == "obstetrix":  # even patients are women
            p = n_scen + rng.integers(i, f"{s}.patient", n_random // 2) * 2
            p = p + p % 2
        else:
            p = n_scen + rng.integers(i, f"{s}.patient", n_random)
        lf = pl.DataFrame({"i": index.cast(pl.Int64)}).lazy().with_columns(p=p)
        lf = _with_patient(lf, rng)

        # The unit: ordinary mostly, some exempt (listed), a few caught by name
        # only, a few look-alikes; then uniformly within the chosen group.
        units = UNITS[s]
        groups = [units.ordinary, units.exempt, units.name_only, units.lookalike]
        offsets = [sum(len(g) for g in groups[:n]) for n in range(len(groups))]
        group = _bucket(rng.uniform(i, f"{s}.unit.group"), [0.962, 0.03, 0.003, 0.005])
        unit_index = group.replace_strict(list(range(4)), offsets, return_dtype=pl.Int64) + (
            rng.uniform(i, f"{s}.unit.pick")
            * group.replace_strict(
                list(range(4)), [len(g) for g in groups], return_dtype=pl.Float64
            )
        ).floor().cast(pl.Int64)
        table = units.all
        code = _weighted(rng.uniform(i, f"{s}.code"), system.codes)

        # Documentation day: after the patient's birth, inside the window.
        lo_d, hi_d = _days(lo), _days(hi)
        birth_d = pl.col("birth").cast(pl.Int32).cast(pl.Int64)
        start = pl.min_horizontal(pl.max_horizontal(pl.lit(lo_d), birth_d), pl.lit(hi_d))
        if fresh:
            back = (rng.uniform(i, f"{s}.day") ** 2 * (hi_d - lo_d + 1)).floor().cast(pl.Int64)
            day = pl.max_horizontal(pl.lit(hi_d) - back, start)
        else:
            day = start + rng.integers(i, f"{s}.day", (pl.lit(hi_d) - start + 1))
            if s == "t4" and _days(_T4_CLUSTER) + 7 <= hi_d:
                # T4's connection week: a visible cluster on 1-7 December 2020,
                # and some on the 8th, the date the portal's Q&A page gives.
                u_cluster = rng.uniform(i, "t4.cluster")
                cluster_day = _days(_T4_CLUSTER) + rng.integers(i, "t4.cluster.day", 7)
                day = (
                    pl.when(u_cluster < 0.03)
                    .then(cluster_day)
                    .when(u_cluster < 0.036)
                    .then(pl.lit(_days(_T4_CLUSTER) + 7))
                    .otherwise(day)
                )
        office = rng.uniform(i, f"{s}.tod") < 0.85
        seconds = (
            pl.when(office)
            .then(7 * 3600 + rng.integers(i, f"{s}.tod.office", 11 * 3600))
            .otherwise(rng.integers(i, f"{s}.tod.any", 86_400))
        )
        if s == "obstetrix":  # date only
            seconds = pl.lit(12 * 3600, dtype=pl.Int64)
        elif not system.iso_times and system.doc_format.endswith("%M"):
            seconds = seconds - seconds % 60
        doc_utc = _local_to_utc(_local_naive(day, seconds))

        # Signing: within hours mostly, days sometimes, never after the delivery.
        cap = datetime.combine(hi, datetime.min.time()).replace(tzinfo=_ZONE) + timedelta(
            hours=23, minutes=59
        )
        cap_utc = pl.lit(cap.astimezone(UTC)).cast(_UTC_DT)
        signed = rng.uniform(i, f"{s}.signed") < (0.75 if fresh else 0.95)
        delay = (
            pl.when(rng.uniform(i, f"{s}.signdelay") < 0.7)
            .then(60 + rng.integers(i, f"{s}.signdelay.short", 4 * 3600))
            .otherwise(rng.integers(i, f"{s}.signdelay.long", 5 * 86_400))
        )
        if not system.iso_times:
            delay = delay - delay % 60
        signed_at = pl.col("doc_utc") + pl.duration(seconds=delay)
        signed_utc = (
            pl.when(~pl.col("signed"))
            .then(pl.lit(None, dtype=_UTC_DT))
            .when(signed_at > cap_utc)
            .then(pl.max_horizontal(pl.col("doc_utc"), cap_utc))
            .otherwise(signed_at)
        )

        version = _weighted(
            rng.uniform(i, f"{s}.version"), [("1", 82.0), ("2", 13.0), ("3", 4.0), ("4", 1.0)]
        ).cast(pl.Int64)
        retracted = rng.uniform(i, f"{s}.retracted") < (0.0 if fresh else 0.01)
        if fresh:
            version = pl.lit(1, dtype=pl.Int64)

        keyword: pl.Expr
        kw_mode: pl.Expr
        if s == "melior":
            keyword = pl.when(pl.col("code") == "ANTECKNING").then(
                _weighted(rng.uniform(i, f"{s}.keyword"), _MELIOR_KEYWORDS)
            )
            kw_mode = pl.lit(0, dtype=pl.Int64)
        elif s == "asynjavisph":
            u_kw = rng.uniform(i, f"{s}.kw_mode")
            is_note = pl.col("code") == "note"
            kw_mode = (
                pl.when(is_note & (u_kw < 0.88))
                .then(0)
                .when(is_note & (u_kw < 0.95))
                .then(1)
                .when(is_note)
                .then(2)
                .when(u_kw < 0.6)
                .then(1)
                .otherwise(2)
                .cast(pl.Int64)
            )
            keyword = pl.when(pl.col("kw_mode") == 0).then(
                _weighted(rng.uniform(i, f"{s}.keyword"), _ASYNJA_KEYWORDS)
            )
        else:
            keyword = pl.lit(None, dtype=pl.String)
            kw_mode = pl.lit(0, dtype=pl.Int64)

        title_key = pl.concat_str(
            pl.col("code"), pl.lit("|"), rng.integers(i, f"{s}.title", 3).cast(pl.String)
        )
        title_map = {f"{c}|{k}": t for c, ts in system.titles.items() for k, t in enumerate(ts)}
        separator = [rng.choice(i, f"{s}.sep.{n}", _SEPARATORS) for n in range(2)]
        text = pl.concat_str(
            rng.choice(i, f"{s}.text.0", _SYSTEM_TEXT[s]),
            separator[0],
            rng.choice(i, f"{s}.text.1", _GENERAL_TEXT),
            pl.when(rng.uniform(i, f"{s}.text.more") < 0.5)
            .then(pl.concat_str(separator[1], rng.choice(i, f"{s}.text.2", _GENERAL_TEXT)))
            .otherwise(pl.lit("")),
        )
        return (
            lf.with_columns(
                unit=unit_index,
                code=code,
                doc_utc=doc_utc,
                signed=signed,
                retracted=retracted,
                version=version,
            )
            .with_columns(
                hsa=_lookup(pl.col("unit"), [u.hsa for u in table]),
                unit_name=_lookup(pl.col("unit"), [u.name for u in table]),
                specialty=_lookup(pl.col("unit"), [u.specialty for u in table]),
                kw_mode=kw_mode,
                style=(rng.uniform(i, f"{s}.style") < 0.6).cast(pl.Int64),
                signed_utc=signed_utc,
                version=pl.when(pl.col("retracted"))
                .then(pl.max_horizontal(pl.col("version"), 2))
                .otherwise(pl.col("version")),
                title=title_key.replace_strict(title_map, default="Anteckning"),
                text=text,
                dash=rng.uniform(i, f"{s}.dash") < 0.7,
                bad=pl.lit(None, dtype=pl.String),
            )
            .with_columns(keyword=keyword)
            .select(list(_INTERNAL_SCHEMA))
        )

    def history_bad(self, system: _System, i: pl.Expr) -> pl.Expr:
        """The bad-row kind of history record `i`, or null."""
        if not self.bad_rows:
            return pl.lit(None, dtype=pl.String)
        fixed_lo = len(_SCENARIO_ROWS[system.name])
        forced = _lookup(i - fixed_lo, list(BAD_KINDS))
        random_kind = _lookup(
            self.rng.integers(i, f"{system.name}.bad.history.kind", len(BAD_KINDS)), BAD_KINDS
        )
        return (
            pl.when((i >= fixed_lo) & (i < fixed_lo + len(BAD_KINDS)))
            .then(forced)
            .when(i == self.last_history_index(system))
            .then(pl.lit(None, dtype=pl.String))
            .when(self.rng.uniform(i, f"{system.name}.bad.history") < self.bad_rate)
            .then(random_kind)
            .otherwise(pl.lit(None, dtype=pl.String))
        )

    def delta_bad(self, system: _System, i: pl.Expr, day: int) -> pl.Expr:
        stream = f"{system.name}.bad.d{day}"
        kind = _lookup(self.rng.integers(i, f"{stream}.kind", len(BAD_KINDS)), BAD_KINDS)
        return pl.when(self.rng.uniform(i, stream) < self.bad_rate).then(kind)

    # -- scenario rows --------------------------------------------------

    def scenario_internal(self, system: _System, bound: date) -> pl.DataFrame:
        """Scenario rows documented on or before `bound` (plus earlier versions)."""
        rows: list[dict[str, object]] = []
        table = UNITS[system.name]
        for n, sc in enumerate(_SCENARIO_ROWS[system.name]):
            if _py_local_date(sc.doc) > bound:
                continue
            unit = table.find(sc.unit or _DEFAULT_UNIT[system.name])
            doc_utc = _py_utc(sc.doc)
            row: dict[str, object] = {
                "i": n,
                "pnr": _scenario_pnr(sc.patient),
                "hsa": unit.hsa,
                "unit_name": sc.unit_as or unit.name,
                "specialty": unit.specialty if system.name == "melior" else None,
                "code": sc.code or _DEFAULT_CODE[system.name],
                "keyword": sc.keyword if sc.kw_mode == 0 else None,
                "kw_mode": sc.kw_mode,
                "doc_utc": doc_utc,
                "style": 0 if sc.doc.endswith("Z") else 1,
                "signed": sc.signed,
                "signed_utc": doc_utc + timedelta(minutes=30) if sc.signed else None,
                "retracted": sc.retracted,
                "version": sc.version,
                "title": system.titles[sc.code or _DEFAULT_CODE[system.name]][0],
                "text": sc.text or f"Scenario: {sc.what}.",
                "dash": sc.dash,
                "bad": None,
            }
            rows.append(row)
            if sc.also_earlier:
                rows.append(row | {"version": sc.version - 1, "text": f"Utkast. {row['text']}"})
        return pl.DataFrame(rows, schema=_INTERNAL_SCHEMA, orient="row")

    # -- deltas ---------------------------------------------------------

    def permutation(self, system: _System, positions: pl.Series) -> pl.Series:
        """Distinct record indices for delta targets: an affine permutation of the
        random records, consumed in order across the deliveries."""
        lo = self.fixed(system)
        size = self.plan.counts[system.name] - 1 - lo  # the last row is never a target
        k1, k2 = self.rng.keys(f"{system.name}.permutation")
        a = max(2, k1 % size) if size > 2 else 1
        while gcd(a, size) != 1:
            a += 1
        return (positions.cast(pl.Int64) * a + k2 % size) % size + lo


def _apply_bad(
    system: _System, raw: pl.LazyFrame, business_date: date, rng: _Rng, stream: str
) -> pl.LazyFrame:
    """Rewrite the field that each row's `_bad` kind names."""
    r = system.roles
    bad = pl.col("_bad")
    i = pl.col("_i")
    pnr = pl.col(r.pnr)
    digits = pnr.str.replace("-", "", literal=True)
    has_dash = pnr.str.contains("-", literal=True)

    def keep_dash(value: pl.Expr) -> pl.Expr:
        with_dash = pl.concat_str(value.str.slice(0, 8), pl.lit("-"), value.str.slice(8, 4))
        return pl.when(has_dash).then(with_dash).otherwise(value)

    last = digits.str.slice(11, 1).cast(pl.Int64)
    bad_checksum = pl.concat_str(digits.str.slice(0, 11), ((last + 1) % 10).cast(pl.String))
    # Month 13 with a correct check digit: only the birth date is wrong.
    nine = pl.concat_str(digits.str.slice(2, 2), pl.lit("13"), digits.str.slice(6, 5)).cast(
        pl.Int64
    )
    impossible = pl.concat_str(
        digits.str.slice(0, 4),
        pl.lit("13"),
        digits.str.slice(6, 5),
        _luhn_expr(nine).cast(pl.String),
    )
    future_day = pl.lit(_days(business_date) + 1) + rng.integers(i, f"{stream}.future", 30)
    future = _doc_text(
        system,
        _local_to_utc(_local_naive(future_day, pl.lit(10 * 3600, dtype=pl.Int64))),
        pl.lit(1),
    )
    empty_id = pl.lit("" if system.kind == "ndjson" else None, dtype=pl.String)
    # Only the few bad rows are rewritten; the row order is kept.
    raw = raw.with_row_index("_row")
    spoilt = raw.filter(bad.is_not_null()).with_columns(
        **{
            r.id: pl.when(bad == "empty_id").then(empty_id).otherwise(pl.col(r.id)),
            r.version: pl.when(bad == "bad_version")
            .then(rng.choice(i, f"{stream}.version", ("1.5", "två", "0", "2a")))
            .otherwise(pl.col(r.version)),
            r.pnr: pl.when(bad == "bad_checksum")
            .then(keep_dash(bad_checksum))
            .when(bad == "impossible_birth")
            .then(keep_dash(impossible))
            .otherwise(pnr),
            r.doc: pl.when(bad == "bad_date")
            .then(rng.choice(i, f"{stream}.date", system.bad_dates))
            .when(bad == "future_date")
            .then(future)
            .otherwise(pl.col(r.doc)),
            r.signed: pl.when(bad == "bad_flag")
            .then(pl.lit(system.bad_flag))
            .otherwise(pl.col(r.signed)),
        }
    )
    return pl.concat([raw.filter(bad.is_null()), spoilt]).sort("_row").drop("_row")


# ---------------------------------------------------------------------------
# Serialising


def _json_value(expr: pl.Expr) -> pl.Expr:
    """The JSON text of a value (string escaping by polars' JSON encoder)."""
    return (
        pl.struct(expr.alias("v"))
        .struct.json_encode()
        .str.strip_prefix('{"v":')
        .str.strip_suffix("}")
    )


def _ndjson_lines(raw: pl.LazyFrame) -> pl.LazyFrame:
    """One JSON object per row, in the order of `raw`."""
    raw = raw.with_row_index("_row")
    by_field = pl.col("_bad").is_in(["bad_version", "bad_flag"]).fill_null(False)
    # The common case in one JSON encoding of a nested struct, per combination of
    # absent keys (`keyword`, and `signedAt` when unsigned).
    fields: dict[str, pl.Expr] = {
        "id": pl.col("id"),
        "rev": pl.col("rev").cast(pl.Int64),
        "patient": pl.struct(pnr=pl.col("pnr")),
        "unit": pl.struct(hsaId=pl.col("hsaId"), name=pl.col("name")),
        "type": pl.col("type"),
        "keyword": pl.col("keyword"),
        "documentedAt": pl.col("documentedAt"),
        "signed": pl.col("signed") == "true",
        "signedAt": pl.col("signedAt"),
        "retracted": pl.col("retracted") == "true",
        "title": pl.col("title"),
        "body": pl.col("body"),
    }
    parts: list[pl.LazyFrame] = []
    for kw_absent in (False, True):
        for sa_absent in (False, True):
            absent = {"keyword"} if kw_absent else set()
            absent |= {"signedAt"} if sa_absent else set()
            struct = pl.struct([v.alias(k) for k, v in fields.items() if k not in absent])
            rows = raw.filter(
                ~by_field
                & (pl.col("_kw_absent") == kw_absent)
                & (pl.col("_sa_absent") == sa_absent)
            )
            parts.append(rows.select("_row", line=struct.struct.json_encode()))
    special = _ndjson_lines_by_field(raw.filter(by_field)).select("_row", "line")
    return pl.concat([*parts, special]).sort("_row").select("line")


def _ndjson_lines_by_field(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Field by field: slow, but a bad row may write any field as a string."""
    bad = pl.col("_bad")
    # Booleans and the version are JSON literals; a bad row writes its bad value
    # as a string instead (e.g. "rev": "1.5", "signed": "ja").
    rev = pl.when(bad == "bad_version").then(_json_value(pl.col("rev"))).otherwise(pl.col("rev"))
    signed = (
        pl.when(bad == "bad_flag").then(_json_value(pl.col("signed"))).otherwise(pl.col("signed"))
    )
    keyword = (
        pl.when(pl.col("_kw_absent"))
        .then(pl.lit(""))
        .otherwise(pl.concat_str(pl.lit(',"keyword":'), _json_value(pl.col("keyword"))))
    )
    signed_at = (
        pl.when(pl.col("_sa_absent"))
        .then(pl.lit(""))
        .otherwise(pl.concat_str(pl.lit(',"signedAt":'), _json_value(pl.col("signedAt"))))
    )
    line = pl.concat_str(
        pl.lit('{"id":'),
        _json_value(pl.col("id")),
        pl.lit(',"rev":'),
        rev,
        pl.lit(',"patient":{"pnr":'),
        _json_value(pl.col("pnr")),
        pl.lit('},"unit":{"hsaId":'),
        _json_value(pl.col("hsaId")),
        pl.lit(',"name":'),
        _json_value(pl.col("name")),
        pl.lit('},"type":'),
        _json_value(pl.col("type")),
        keyword,
        pl.lit(',"documentedAt":'),
        _json_value(pl.col("documentedAt")),
        pl.lit(',"signed":'),
        signed,
        signed_at,
        pl.lit(',"retracted":'),
        pl.col("retracted"),
        pl.lit(',"title":'),
        _json_value(pl.col("title")),
        pl.lit(',"body":'),
        _json_value(pl.col("body")),
        pl.lit("}"),
    )
    return raw.with_columns(line=line)


def _serialise(system: _System, raw: pl.DataFrame, *, header: bool) -> bytes:
    if system.kind == "ndjson":
        # A JSON line holds no raw newline, so unquoted CSV of one column is NDJSON.
        buffer = io.BytesIO()
        _ndjson_lines(raw.lazy()).collect(engine=_ENGINE).write_csv(
            buffer, include_header=False, quote_style="never", line_terminator="\n"
        )
        return buffer.getvalue()
    text = raw.select(system.columns).write_csv(
        None,
        separator=system.delimiter,
        line_terminator=system.line_end,
        quote_style="necessary",
        include_header=header,
    )
    return text.encode("cp1252" if system.encoding == "cp1252" else "utf-8")


def _wrong_field_count(system: _System, raw: pl.DataFrame) -> bytes:
    """The row with one field too many (Melior, Obstetrix) or too few (the others)."""
    if system.kind == "ndjson":
        line = _ndjson_lines(raw.lazy()).collect(engine=_ENGINE)["line"].item()
        return (line[: len(line) // 2] + "\n").encode("utf-8")
    frame = raw.select(system.columns)
    if system.name in ("melior", "obstetrix"):
        frame = frame.with_columns(extra=pl.lit("överskott"))
    else:
        frame = frame.drop(system.columns[-1])
    text = frame.write_csv(
        None,
        separator=system.delimiter,
        line_terminator=system.line_end,
        quote_style="necessary",
        include_header=False,
    )
    return text.encode("cp1252" if system.encoding == "cp1252" else "utf-8")


class _DeliveryWriter:
    """Appends chunks to a delivery's data file; hashes and counts what it wrote."""

    def __init__(self, folder: Path, file_name: str, bom: bool) -> None:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        self.folder = folder
        self.file_name = file_name
        self._handle = (folder / file_name).open("wb")
        self._sha = hashlib.sha256()
        self.rows = 0
        if bom:
            self.write(b"\xef\xbb\xbf", 0)

    def write(self, data: bytes, rows: int) -> None:
        self._handle.write(data)
        self._sha.update(data)
        self.rows += rows

    def close(self, system_name: str, business_date: date) -> dict[str, object]:
        self._handle.close()
        return {
            "system": system_name,
            "business_date": business_date.isoformat(),
            "file": self.file_name,
            "rows": self.rows,
            "sha256": self._sha.hexdigest(),
        }


def _write_control(folder: Path, control: dict[str, object]) -> None:
    (folder / "_control.json").write_text(json.dumps(control, indent=2) + "\n", encoding="utf-8")


def _chunks(lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
    start = lo
    while start < hi:
        yield start, min(hi, start + size)
        start += size


# ---------------------------------------------------------------------------
# Per-delivery builders


@dataclass
class _Counters:
    rows: int = 0
    bad: int = 0


def _write_history(
    gen: _Generator,
    system: _System,
    writer: _DeliveryWriter,
    counters: _Counters,
    progress: Callable[[str], None],
) -> None:
    plan = gen.plan
    n = plan.counts[system.name]
    fixed_lo = len(_SCENARIO_ROWS[system.name])
    last = gen.last_history_index(system)
    stream = f"{system.name}.bad.history"
    header = True
    for a, b in _chunks(fixed_lo, n, CHUNK_RECORDS):
        index = pl.int_range(a, b, dtype=pl.Int64, eager=True)
        internal = (
            gen.records(system, index, lo=_HISTORY_START, hi=plan.first, fresh=False)
            .with_columns(bad=gen.history_bad(system, pl.col("i")))
            .collect(engine=_ENGINE)
        )
        # "Whole history": some records also show an earlier version, after the
        # latest one, so a loader must keep the highest version, not the last row.
        earlier = internal.filter(
            pl.col("bad").is_null()
            & (pl.col("version") >= 2)
            & (pl.col("i") != last)
            & (gen.rng.uniform(pl.col("i"), f"{system.name}.earlier") < 0.03)
        ).with_columns(
            version=pl.col("version") - 1,
            signed=pl.lit(False),
            signed_utc=pl.lit(None, dtype=_UTC_DT),
            retracted=pl.lit(False),
            text=pl.concat_str(pl.lit("Utkast. "), pl.col("text")),
        )
        parts = [internal, earlier]
        if a == fixed_lo:
            parts.insert(0, gen.scenario_internal(system, plan.first))
        frame = pl.concat(parts)
        raw = _apply_bad(system, _raw(system, frame.lazy()), plan.first, gen.rng, stream).collect(
            engine=_ENGINE
        )
        special = raw.filter((pl.col("_i") == last) & pl.col("_bad").is_null() & gen.bad_rows)
        if not special.is_empty():
            raw = raw.filter(pl.col("_i") != last)
        writer.write(_serialise(system, raw, header=header), raw.height)
        header = False
        counters.bad += int(raw["_bad"].is_not_null().sum())
        if not special.is_empty():
            writer.write(_wrong_field_count(system, special), special.height)
            counters.bad += special.height
        progress(f"{system.name} {plan.first}: {writer.rows} rows written")


def _write_delta(
    gen: _Generator, system: _System, day: int, writer: _DeliveryWriter, counters: _Counters
) -> None:
    plan = gen.plan
    s = system.name
    rng = gen.rng
    bd = plan.dates[day]
    i = pl.col("i")
    n = plan.counts[s]

    # New records, documented in the last few days up to the business date.
    first_new = n + (day - 1) * plan.new_per_day[s]
    new_index = pl.int_range(first_new, first_new + plan.new_per_day[s], dtype=pl.Int64, eager=True)
    new = gen.records(system, new_index, lo=bd - timedelta(days=4), hi=bd, fresh=True).with_columns(
        bad=gen.delta_bad(system, i, day)
    )

    # Changes to history records: distinct targets, none of them a bad row.
    per_day = plan.updates_per_day[s] + plan.stales_per_day[s]
    positions = pl.int_range((day - 1) * per_day, day * per_day, dtype=pl.Int64, eager=True)
    targets = gen.permutation(system, positions)
    base = (
        gen.records(system, targets, lo=_HISTORY_START, hi=plan.first, fresh=False)
        .with_columns(_pos=pl.int_range(pl.len()), _hist_bad=gen.history_bad(system, i))
        .filter(pl.col("_hist_bad").is_null())
    )
    is_update = pl.col("_pos") < plan.updates_per_day[s]
    u_kind = rng.uniform(i, f"{s}.update.kind.d{day}")
    retract = u_kind < 0.15
    sign = ~retract & ~pl.col("signed")
    sign_seconds = 8 * 3600 + rng.integers(i, f"{s}.update.signtime.d{day}", 9 * 3600)
    sign_seconds = sign_seconds - sign_seconds % 60
    sign_utc = _local_to_utc(_local_naive(pl.lit(_days(bd)), sign_seconds))
    step = pl.when(rng.uniform(i, f"{s}.update.step.d{day}") < 0.1).then(2).otherwise(1)
    updates = base.filter(is_update).with_columns(
        version=pl.col("version") + step,
        retracted=pl.col("retracted") | retract,
        signed=pl.col("signed") | sign,
        signed_utc=pl.when(sign).then(sign_utc).otherwise(pl.col("signed_utc")),
        text=pl.when(retract | sign)
        .then(pl.col("text"))
        .otherwise(pl.concat_str(pl.lit("Korrigerad. "), pl.col("text"))),
        bad=gen.delta_bad(system, i, day),
    )
    # Stale copies: a lower (or the same) version than the one already delivered.
    lower = (pl.col("version") >= 2) & (rng.uniform(i, f"{s}.stale.d{day}") < 0.5)
    stales = base.filter(~is_update).with_columns(
        version=pl.when(lower).then(pl.col("version") - 1).otherwise(pl.col("version")),
        text=pl.concat_str(pl.lit("Inaktuell kopia. "), pl.col("text")),
    )
    columns = list(_INTERNAL_SCHEMA)
    parts = [new.select(columns), updates.select(columns), stales.select(columns)]
    if day == 1:
        parts.append(_scenario_actions(gen, system).lazy())
    frame = (
        pl.concat(parts)
        .with_columns(_order=rng.bits(pl.col("i"), f"{s}.order.d{day}"))
        .sort("_order", "i", "version")
        .drop("_order")
    )
    raw = _apply_bad(system, _raw(system, frame), bd, rng, f"{s}.bad.d{day}").collect(
        engine=_ENGINE
    )
    writer.write(_serialise(system, raw, header=True), raw.height)
    counters.bad += int(raw["_bad"].is_not_null().sum())


def _scenario_actions(gen: _Generator, system: _System) -> pl.DataFrame:
    """The second delivery's changes to scenario records."""
    history = gen.scenario_internal(system, gen.plan.first)
    actions = {
        n: sc.action for n, sc in enumerate(_SCENARIO_ROWS[system.name]) if sc.action is not None
    }
    rows = history.filter(pl.col("i").is_in(list(actions))).unique(
        "i", keep="first", maintain_order=True
    )
    action = pl.col("i").replace_strict(actions, return_dtype=pl.String)
    sign_utc = pl.col("doc_utc") + pl.duration(days=2)
    bad_kind = {"melior": "bad_checksum", "asynjavisph": "bad_date", "t4": "bad_flag"}.get(
        system.name, "bad_checksum"
    )
    return rows.with_columns(
        version=pl.when(action.is_in(["stale_lower"]))
        .then(pl.col("version") - 1)
        .when(action == "stale_equal")
        .then(pl.col("version"))
        .otherwise(pl.col("version") + 1),
        signed=pl.col("signed") | (action == "sign"),
        signed_utc=pl.when(action == "sign").then(sign_utc).otherwise(pl.col("signed_utc")),
        retracted=pl.col("retracted") | (action == "retract"),
        text=pl.concat_str(pl.lit("Version från leverans 2: "), pl.col("text")),
        bad=pl.when((action == "bad_update") & gen.bad_rows).then(pl.lit(bad_kind)),
    )


def _block_rows(plan: _Plan, gen: _Generator) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """All block versions: the first delivery's, and each later delivery's."""
    rng = gen.rng
    first, end = plan.first, plan.end_date
    b = pl.col("b")
    fb = len(_BLOCK_SCENARIOS)
    schema = pl.Schema(
        {
            "b": pl.Int64,
            "version": pl.Int64,
            "pnr": pl.String,
            "scope": pl.String,
            "hsa": pl.String,
            "valid_from": pl.Date,
            "valid_to": pl.Date,
            "revoked": pl.Boolean,
        }
    )

    # Random blocks: the patient (and for UNIT the unit) of a random record, so
    # that every block covers rows that exist.
    random_b = pl.int_range(
        fb,
        plan.blocks + (len(plan.dates) - 1) * plan.blocks_new_per_day,
        dtype=pl.Int64,
        eager=True,
    )
    owners = pl.DataFrame({"b": random_b}).with_columns(
        system=_weighted(
            rng.uniform(b, "blocks.system"), [(s.name, s.share) for s in SYSTEMS.values()]
        )
    )
    found: list[pl.DataFrame] = []
    for system in SYSTEMS.values():
        mine = owners.filter(pl.col("system") == system.name)
        lo = gen.fixed(system)
        span = plan.counts[system.name] - 1 - lo
        index = mine.select(
            (lo + rng.integers(b, f"blocks.record.{system.name}", span)).alias("j")
        )["j"]
        recs = gen.records(system, index, lo=_HISTORY_START, hi=first, fresh=False).collect(
            engine=_ENGINE
        )
        found.append(mine.select("b").with_columns(pnr=recs["pnr"], hsa=recs["hsa"]))
    people = pl.concat(found).sort("b")

    start_d, first_d, end_d = _days(date(2015, 1, 1)), _days(first), _days(end)
    state = _weighted(
        rng.uniform(b, "blocks.state"),
        [("open", 55.0), ("until", 15.0), ("expired", 12.0), ("future", 8.0), ("revoked", 10.0)],
    )
    from_any = start_d + rng.integers(b, "blocks.from", max(first_d - start_d, 1))
    from_expired = start_d + rng.integers(b, "blocks.from", max(first_d - 400 - start_d, 1))
    from_future = end_d + 5 + rng.integers(b, "blocks.from.future", 120)
    valid_from = (
        pl.when(pl.col("state") == "expired")
        .then(from_expired)
        .when(pl.col("state") == "future")
        .then(from_future)
        .otherwise(from_any)
    )
    valid_to = (
        pl.when(pl.col("state") == "expired")
        .then(pl.col("vf") + 30 + rng.integers(b, "blocks.to", 335))
        .when(pl.col("state") == "until")
        .then(end_d + 30 + rng.integers(b, "blocks.to", 900))
    )
    blocks = (
        people.lazy()
        .with_columns(state=state)
        .with_columns(vf=valid_from)
        .with_columns(
            version=pl.lit(1, dtype=pl.Int64),
            scope=pl.when(rng.uniform(b, "blocks.scope") < 0.35)
            .then(pl.lit("ALL"))
            .otherwise(pl.lit("UNIT")),
            valid_from=pl.col("vf").cast(pl.Int32).cast(pl.Date),
            valid_to=valid_to.cast(pl.Int32).cast(pl.Date),
            revoked=pl.lit(False),
        )
        .with_columns(hsa=pl.when(pl.col("scope") == "UNIT").then(pl.col("hsa")))
        .collect(engine=_ENGINE)
    )
    in_history = blocks.filter(pl.col("b") < plan.blocks)
    revoked_in_history = in_history.filter(pl.col("state") == "revoked").with_columns(
        version=pl.lit(2, dtype=pl.Int64), revoked=pl.lit(True)
    )

    # Scenario blocks.
    scenario_history: list[dict[str, object]] = []
    scenario_delta: list[dict[str, object]] = []
    for n, bs in enumerate(_BLOCK_SCENARIOS):
        valid_from_day = (
            end + timedelta(days=int(bs.valid_from[1:]))
            if bs.valid_from.startswith("+")
            else date.fromisoformat(bs.valid_from)
        )
        common = {
            "b": n,
            "pnr": _scenario_pnr(bs.patient),
            "scope": bs.scope,
            "hsa": UNITS["melior"].find(bs.unit).hsa if bs.unit else None,
            "valid_from": valid_from_day,
            "valid_to": date.fromisoformat(bs.valid_to) if bs.valid_to else None,
        }
        scenario_history += [
            common | {"version": v, "revoked": st == "revoked"} for v, st in bs.history
        ]
        scenario_delta += [
            common | {"version": v, "revoked": st == "revoked"} for v, st in bs.delta
        ]
    columns = list(schema)
    history = pl.concat(
        [
            pl.DataFrame(scenario_history, schema=schema, orient="row"),
            in_history.select(columns),
            revoked_in_history.select(columns),
        ]
    )
    deltas: list[pl.DataFrame] = []
    candidates = in_history.filter(pl.col("state") != "revoked")["b"]
    for day in range(1, len(plan.dates)):
        lo = plan.blocks + (day - 1) * plan.blocks_new_per_day
        new = blocks.filter((pl.col("b") >= lo) & (pl.col("b") < lo + plan.blocks_new_per_day))
        k = plan.blocks_revoked_per_day
        chosen = candidates.slice((day - 1) * k, k)
        revoked = in_history.filter(pl.col("b").is_in(chosen.implode())).with_columns(
            version=pl.lit(2, dtype=pl.Int64), revoked=pl.lit(True)
        )
        parts = [new.select(columns), revoked.select(columns)]
        if day == 1:
            parts.insert(0, pl.DataFrame(scenario_delta, schema=schema, orient="row"))
        deltas.append(pl.concat(parts))
    return history, deltas


def _block_bytes(frame: pl.DataFrame, *, header: bool = True) -> bytes:
    raw = frame.select(
        block_id=pl.concat_str(pl.lit("B-"), (pl.col("b") + _BLOCK_ID_OFFSET).cast(pl.String)),
        version=pl.col("version").cast(pl.String),
        pnr=pl.col("pnr"),
        scope=pl.col("scope"),
        hsa_id=pl.col("hsa"),
        valid_from=pl.col("valid_from").dt.strftime("%Y-%m-%d"),
        valid_to=pl.col("valid_to").dt.strftime("%Y-%m-%d"),
        status=pl.when(pl.col("revoked")).then(pl.lit("revoked")).otherwise(pl.lit("active")),
    )
    return raw.write_csv(None, include_header=header, quote_style="necessary").encode("utf-8")


# ---------------------------------------------------------------------------
# Entry point


def generate_inbox(
    out: Path,
    *,
    records: int,
    seed: int,
    days: int = 5,
    end_date: date = date(2026, 11, 25),
    bad_rows: bool = True,
    bad_deliveries: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SampleSummary:
    """Write a contract-conformant synthetic inbox under `out`; see the module docstring.

    `records` is the approximate number of history records across the five
    journal systems. Each delivery folder written is replaced whole; other
    folders under `out` are left alone. With `bad_rows=False` no row is bad; with
    `bad_deliveries=True` four deliveries of the last date are spoiled so that
    the job must reject them whole: Obstetrix (wrong sha256), Journalia (wrong
    row count), T4 (no `_control.json`) and blocks (control names another system).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if records < 0:
        raise ValueError("records must not be negative")
    dates = business_dates(end_date, days)
    if dates[0] < date(2011, 1, 1):
        raise ValueError("the first business date must be in 2011 or later")
    report = progress or (lambda _message: None)
    plan = _plan(records, days, end_date)
    gen = _Generator(plan, seed, bad_rows=bad_rows)
    counters = _Counters()
    deliveries: list[Path] = []
    block_history, block_deltas = _block_rows(plan, gen)
    for day, business_date in enumerate(plan.dates):
        for system in SYSTEMS.values():
            folder = out / system.name / business_date.isoformat()
            writer = _DeliveryWriter(folder, system.file_name, system.encoding == "utf-8-sig")
            if day == 0:
                _write_history(gen, system, writer, counters, report)
            else:
                _write_delta(gen, system, day, writer, counters)
            # The sender writes the control file last, after the data file is closed.
            _write_control(folder, writer.close(system.name, business_date))
            counters.rows += writer.rows
            deliveries.append(folder)
            report(f"{system.name} {business_date}: {writer.rows} rows")
        folder = out / "blocks" / business_date.isoformat()
        writer = _DeliveryWriter(folder, BLOCKS_FILE, bom=False)
        frame = block_history if day == 0 else block_deltas[day - 1]
        writer.write(_block_bytes(frame), frame.height)
        _write_control(folder, writer.close("blocks", business_date))
        counters.rows += writer.rows
        deliveries.append(folder)
        report(f"blocks {business_date}: {writer.rows} rows")
    if bad_deliveries:
        _spoil_last_date(out, plan.dates[-1])
    per_system = {name: plan.counts[name] + (days - 1) * plan.new_per_day[name] for name in SYSTEMS}
    return SampleSummary(deliveries, per_system, counters.rows, counters.bad)


def _spoil_last_date(out: Path, business_date: date) -> None:
    """Four deliveries that the job must reject whole, each for its own reason."""
    day = business_date.isoformat()

    def control_of(system: str) -> tuple[Path, dict[str, object]]:
        path = out / system / day / "_control.json"
        return path, json.loads(path.read_text(encoding="utf-8"))

    path, control = control_of("obstetrix")
    digest = str(control["sha256"])
    control["sha256"] = ("0" if digest[0] != "0" else "1") + digest[1:]
    _write_control(path.parent, control)

    path, control = control_of("journalia")
    control["rows"] = int(str(control["rows"])) + 1
    _write_control(path.parent, control)

    path, _ = control_of("t4")
    path.unlink()

    path, control = control_of("blocks")
    control["system"] = "t4"
    _write_control(path.parent, control)
