"""The generator: a plan of sizes and dates fixed up front, and the vectorised record builder.

`Generator` draws every column as a polars expression over record indices, so
each value is a pure function of (seed, stream name, index); `apply_bad` turns
the rows marked bad into the kind of bad row each mark names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from math import gcd

import polars as pl

from flows.sample.dates import (
    business_dates,
    epoch_days,
    local_naive,
    local_to_utc,
    py_local_date,
    py_utc,
)
from flows.sample.patients import SCENARIO_PATIENTS, luhn_expr, scenario_pnr, with_patient
from flows.sample.raw import INTERNAL_SCHEMA, doc_text
from flows.sample.rng import Rng, lookup, weighted, weighted_bucket
from flows.sample.scenarios import DEFAULT_CODE, DEFAULT_UNIT, SCENARIO_ROWS
from flows.sample.settings import BAD_KINDS, BAD_RATE, DELTA_SHARE, UTC_DT, ZONE
from flows.sample.systems import SYSTEMS, T4_CLUSTER, System
from flows.sample.units import UNITS
from flows.sample.vocabulary import (
    ASYNJA_KEYWORDS,
    GENERAL_TEXT,
    MELIOR_KEYWORDS,
    SEPARATORS,
    SYSTEM_TEXT,
)


@dataclass(frozen=True)
class Plan:
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


def make_plan(records: int, days: int, end_date: date) -> Plan:
    dates = tuple(business_dates(end_date, days))
    counts: dict[str, int] = {}
    new: dict[str, int] = {}
    upd: dict[str, int] = {}
    stale: dict[str, int] = {}
    for name, system in SYSTEMS.items():
        fixed = len(SCENARIO_ROWS[name]) + len(BAD_KINDS)
        n = max(round(records * system.share), fixed + 20)
        counts[name] = n
        changes = max(3, round(n * DELTA_SHARE))
        new[name] = max(1, round(changes * 0.4))
        stale[name] = max(1, round(changes * 0.08))
        upd[name] = max(1, changes - new[name] - stale[name])
        # The delta targets are distinct records drawn without replacement.
        available = n - fixed - 1
        while (days - 1) * (upd[name] + stale[name]) > available and upd[name] > 1:
            upd[name] -= 1
    patients = max(records // 12, 100)
    blocks = max(20, round(patients * 0.004))
    return Plan(
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


class Generator:
    def __init__(self, plan: Plan, seed: int, *, bad_rows: bool) -> None:
        self.plan = plan
        self.rng = Rng(seed)
        self.bad_rows = bad_rows
        self.bad_rate = BAD_RATE if bad_rows else 0.0

    # -- random records -------------------------------------------------

    def fixed(self, system: System) -> int:
        """Indices below this are scenario rows and the forced bad rows."""
        return len(SCENARIO_ROWS[system.name]) + len(BAD_KINDS)

    def last_history_index(self, system: System) -> int:
        """Written with a wrong field count (CSV) or truncated (NDJSON)."""
        return self.plan.counts[system.name] - 1

    def records(
        self, system: System, index: pl.Series, *, lo: date, hi: date, fresh: bool
    ) -> pl.LazyFrame:
        """Random record versions for `index`, documented in [lo, hi] (local dates)."""
        rng = self.rng
        s = system.name
        i = pl.col("i")
        n_scen = len(SCENARIO_PATIENTS)
        n_random = max(self.plan.patients - n_scen, 2)
        if s == "obstetrix":  # even patients are women
            p = n_scen + rng.integers(i, f"{s}.patient", n_random // 2) * 2
            p = p + p % 2
        else:
            p = n_scen + rng.integers(i, f"{s}.patient", n_random)
        lf = pl.DataFrame({"i": index.cast(pl.Int64)}).lazy().with_columns(p=p)
        lf = with_patient(lf, rng)

        # The unit: ordinary mostly, some exempt (listed), a few caught by name
        # only, a few look-alikes; then uniformly within the chosen group.
        units = UNITS[s]
        groups = [units.ordinary, units.exempt, units.name_only, units.lookalike]
        offsets = [sum(len(g) for g in groups[:n]) for n in range(len(groups))]
        group = weighted_bucket(rng.uniform(i, f"{s}.unit.group"), [0.962, 0.03, 0.003, 0.005])
        unit_index = group.replace_strict(list(range(4)), offsets, return_dtype=pl.Int64) + (
            rng.uniform(i, f"{s}.unit.pick")
            * group.replace_strict(
                list(range(4)), [len(g) for g in groups], return_dtype=pl.Float64
            )
        ).floor().cast(pl.Int64)
        table = units.all
        code = weighted(rng.uniform(i, f"{s}.code"), system.codes)

        # Documentation day: after the patient's birth, inside the window.
        lo_d, hi_d = epoch_days(lo), epoch_days(hi)
        birth_d = pl.col("birth").cast(pl.Int32).cast(pl.Int64)
        start = pl.min_horizontal(pl.max_horizontal(pl.lit(lo_d), birth_d), pl.lit(hi_d))
        if fresh:
            back = (rng.uniform(i, f"{s}.day") ** 2 * (hi_d - lo_d + 1)).floor().cast(pl.Int64)
            day = pl.max_horizontal(pl.lit(hi_d) - back, start)
        else:
            day = start + rng.integers(i, f"{s}.day", (pl.lit(hi_d) - start + 1))
            if s == "t4" and epoch_days(T4_CLUSTER) + 7 <= hi_d:
                # T4's connection week: a visible cluster on 1-7 December 2020,
                # and some on the 8th, the date the portal's Q&A page gives.
                u_cluster = rng.uniform(i, "t4.cluster")
                cluster_day = epoch_days(T4_CLUSTER) + rng.integers(i, "t4.cluster.day", 7)
                day = (
                    pl.when(u_cluster < 0.03)
                    .then(cluster_day)
                    .when(u_cluster < 0.036)
                    .then(pl.lit(epoch_days(T4_CLUSTER) + 7))
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
        doc_utc = local_to_utc(local_naive(day, seconds))

        # Signing: within hours mostly, days sometimes, never after the delivery.
        cap = datetime.combine(hi, datetime.min.time()).replace(tzinfo=ZONE) + timedelta(
            hours=23, minutes=59
        )
        cap_utc = pl.lit(cap.astimezone(UTC)).cast(UTC_DT)
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
            .then(pl.lit(None, dtype=UTC_DT))
            .when(signed_at > cap_utc)
            .then(pl.max_horizontal(pl.col("doc_utc"), cap_utc))
            .otherwise(signed_at)
        )

        version = weighted(
            rng.uniform(i, f"{s}.version"), [("1", 82.0), ("2", 13.0), ("3", 4.0), ("4", 1.0)]
        ).cast(pl.Int64)
        retracted = rng.uniform(i, f"{s}.retracted") < (0.0 if fresh else 0.01)
        if fresh:
            version = pl.lit(1, dtype=pl.Int64)

        keyword: pl.Expr
        kw_mode: pl.Expr
        if s == "melior":
            keyword = pl.when(pl.col("code") == "ANTECKNING").then(
                weighted(rng.uniform(i, f"{s}.keyword"), MELIOR_KEYWORDS)
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
                weighted(rng.uniform(i, f"{s}.keyword"), ASYNJA_KEYWORDS)
            )
        else:
            keyword = pl.lit(None, dtype=pl.String)
            kw_mode = pl.lit(0, dtype=pl.Int64)

        title_key = pl.concat_str(
            pl.col("code"), pl.lit("|"), rng.integers(i, f"{s}.title", 3).cast(pl.String)
        )
        title_map = {f"{c}|{k}": t for c, ts in system.titles.items() for k, t in enumerate(ts)}
        separator = [rng.choice(i, f"{s}.sep.{n}", SEPARATORS) for n in range(2)]
        text = pl.concat_str(
            rng.choice(i, f"{s}.text.0", SYSTEM_TEXT[s]),
            separator[0],
            rng.choice(i, f"{s}.text.1", GENERAL_TEXT),
            pl.when(rng.uniform(i, f"{s}.text.more") < 0.5)
            .then(pl.concat_str(separator[1], rng.choice(i, f"{s}.text.2", GENERAL_TEXT)))
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
                hsa=lookup(pl.col("unit"), [u.hsa for u in table]),
                unit_name=lookup(pl.col("unit"), [u.name for u in table]),
                specialty=lookup(pl.col("unit"), [u.specialty for u in table]),
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
            .select(list(INTERNAL_SCHEMA))
        )

    def history_bad(self, system: System, i: pl.Expr) -> pl.Expr:
        """The bad-row kind of history record `i`, or null."""
        if not self.bad_rows:
            return pl.lit(None, dtype=pl.String)
        fixed_lo = len(SCENARIO_ROWS[system.name])
        forced = lookup(i - fixed_lo, list(BAD_KINDS))
        random_kind = lookup(
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

    def delta_bad(self, system: System, i: pl.Expr, day: int) -> pl.Expr:
        stream = f"{system.name}.bad.d{day}"
        kind = lookup(self.rng.integers(i, f"{stream}.kind", len(BAD_KINDS)), BAD_KINDS)
        return pl.when(self.rng.uniform(i, stream) < self.bad_rate).then(kind)

    # -- scenario rows --------------------------------------------------

    def scenario_internal(self, system: System, bound: date) -> pl.DataFrame:
        """Scenario rows documented on or before `bound` (plus earlier versions)."""
        rows: list[dict[str, object]] = []
        table = UNITS[system.name]
        for n, sc in enumerate(SCENARIO_ROWS[system.name]):
            if py_local_date(sc.doc) > bound:
                continue
            unit = table.find(sc.unit or DEFAULT_UNIT[system.name])
            doc_utc = py_utc(sc.doc)
            row: dict[str, object] = {
                "i": n,
                "pnr": scenario_pnr(sc.patient),
                "hsa": unit.hsa,
                "unit_name": sc.unit_as or unit.name,
                "specialty": unit.specialty if system.name == "melior" else None,
                "code": sc.code or DEFAULT_CODE[system.name],
                "keyword": sc.keyword if sc.kw_mode == 0 else None,
                "kw_mode": sc.kw_mode,
                "doc_utc": doc_utc,
                "style": 0 if sc.doc.endswith("Z") else 1,
                "signed": sc.signed,
                "signed_utc": doc_utc + timedelta(minutes=30) if sc.signed else None,
                "retracted": sc.retracted,
                "version": sc.version,
                "title": system.titles[sc.code or DEFAULT_CODE[system.name]][0],
                "text": sc.text or f"Scenario: {sc.what}.",
                "dash": sc.dash,
                "bad": None,
            }
            rows.append(row)
            if sc.also_earlier:
                rows.append(row | {"version": sc.version - 1, "text": f"Utkast. {row['text']}"})
        return pl.DataFrame(rows, schema=INTERNAL_SCHEMA, orient="row")

    # -- deltas ---------------------------------------------------------

    def permutation(self, system: System, positions: pl.Series) -> pl.Series:
        """Distinct record indices for delta targets: an affine permutation of the
        random records, consumed in order across the deliveries."""
        lo = self.fixed(system)
        size = self.plan.counts[system.name] - 1 - lo  # the last row is never a target
        k1, k2 = self.rng.keys(f"{system.name}.permutation")
        a = max(2, k1 % size) if size > 2 else 1
        while gcd(a, size) != 1:
            a += 1
        return (positions.cast(pl.Int64) * a + k2 % size) % size + lo


def apply_bad(
    system: System, raw: pl.LazyFrame, business_date: date, rng: Rng, stream: str
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
        luhn_expr(nine).cast(pl.String),
    )
    future_day = pl.lit(epoch_days(business_date) + 1) + rng.integers(i, f"{stream}.future", 30)
    future = doc_text(
        system,
        local_to_utc(local_naive(future_day, pl.lit(10 * 3600, dtype=pl.Int64))),
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
