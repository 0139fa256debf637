"""Per-delivery builders: a system's whole history (in chunks), a day's delta, the blocks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from flows.sample.dates import epoch_days, local_naive, local_to_utc
from flows.sample.generator import Generator, Plan, apply_bad
from flows.sample.patients import scenario_pnr
from flows.sample.raw import INTERNAL_SCHEMA, raw_rows
from flows.sample.rng import weighted
from flows.sample.scenarios import BLOCK_SCENARIOS, SCENARIO_ROWS
from flows.sample.serialise import DeliveryWriter, serialise, wrong_field_count
from flows.sample.settings import CHUNK_RECORDS, ENGINE, UTC_DT
from flows.sample.systems import BLOCK_ID_OFFSET, HISTORY_START, SYSTEMS, System
from flows.sample.units import UNITS


def _chunks(lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
    start = lo
    while start < hi:
        yield start, min(hi, start + size)
        start += size


@dataclass
class Counters:
    rows: int = 0
    bad: int = 0


def write_history(
    gen: Generator,
    system: System,
    writer: DeliveryWriter,
    counters: Counters,
    progress: Callable[[str], None],
) -> None:
    plan = gen.plan
    n = plan.counts[system.name]
    fixed_lo = len(SCENARIO_ROWS[system.name])
    last = gen.last_history_index(system)
    stream = f"{system.name}.bad.history"
    header = True
    for a, b in _chunks(fixed_lo, n, CHUNK_RECORDS):
        index = pl.int_range(a, b, dtype=pl.Int64, eager=True)
        internal = (
            gen.records(system, index, lo=HISTORY_START, hi=plan.first, fresh=False)
            .with_columns(bad=gen.history_bad(system, pl.col("i")))
            .collect(engine=ENGINE)
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
            signed_utc=pl.lit(None, dtype=UTC_DT),
            retracted=pl.lit(False),
            text=pl.concat_str(pl.lit("Utkast. "), pl.col("text")),
        )
        parts = [internal, earlier]
        if a == fixed_lo:
            parts.insert(0, gen.scenario_internal(system, plan.first))
        frame = pl.concat(parts)
        raw = apply_bad(
            system, raw_rows(system, frame.lazy()), plan.first, gen.rng, stream
        ).collect(engine=ENGINE)
        special = raw.filter((pl.col("_i") == last) & pl.col("_bad").is_null() & gen.bad_rows)
        if not special.is_empty():
            raw = raw.filter(pl.col("_i") != last)
        writer.write(serialise(system, raw, header=header), raw.height)
        header = False
        counters.bad += int(raw["_bad"].is_not_null().sum())
        if not special.is_empty():
            writer.write(wrong_field_count(system, special), special.height)
            counters.bad += special.height
        # The caller reports the whole delivery once it is closed; only a history
        # still being written gets a line of its own, so no line repeats another.
        if b < n:
            progress(f"{system.name} {plan.first}: {writer.rows} rows so far")


def write_delta(
    gen: Generator, system: System, day: int, writer: DeliveryWriter, counters: Counters
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
        gen.records(system, targets, lo=HISTORY_START, hi=plan.first, fresh=False)
        .with_columns(_pos=pl.int_range(pl.len()), _hist_bad=gen.history_bad(system, i))
        .filter(pl.col("_hist_bad").is_null())
    )
    is_update = pl.col("_pos") < plan.updates_per_day[s]
    u_kind = rng.uniform(i, f"{s}.update.kind.d{day}")
    retract = u_kind < 0.15
    sign = ~retract & ~pl.col("signed")
    sign_seconds = 8 * 3600 + rng.integers(i, f"{s}.update.signtime.d{day}", 9 * 3600)
    sign_seconds = sign_seconds - sign_seconds % 60
    sign_utc = local_to_utc(local_naive(pl.lit(epoch_days(bd)), sign_seconds))
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
    columns = list(INTERNAL_SCHEMA)
    parts = [new.select(columns), updates.select(columns), stales.select(columns)]
    if day == 1:
        parts.append(_scenario_actions(gen, system).lazy())
    frame = (
        pl.concat(parts)
        .with_columns(_order=rng.bits(pl.col("i"), f"{s}.order.d{day}"))
        .sort("_order", "i", "version")
        .drop("_order")
    )
    raw = apply_bad(system, raw_rows(system, frame), bd, rng, f"{s}.bad.d{day}").collect(
        engine=ENGINE
    )
    writer.write(serialise(system, raw, header=True), raw.height)
    counters.bad += int(raw["_bad"].is_not_null().sum())


def _scenario_actions(gen: Generator, system: System) -> pl.DataFrame:
    """The second delivery's changes to scenario records."""
    history = gen.scenario_internal(system, gen.plan.first)
    actions = {
        n: sc.action for n, sc in enumerate(SCENARIO_ROWS[system.name]) if sc.action is not None
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


def block_rows(plan: Plan, gen: Generator) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """All block versions: the first delivery's, and each later delivery's."""
    rng = gen.rng
    first, end = plan.first, plan.end_date
    b = pl.col("b")
    fb = len(BLOCK_SCENARIOS)
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
        system=weighted(
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
        recs = gen.records(system, index, lo=HISTORY_START, hi=first, fresh=False).collect(
            engine=ENGINE
        )
        found.append(mine.select("b").with_columns(pnr=recs["pnr"], hsa=recs["hsa"]))
    people = pl.concat(found).sort("b")

    start_d, first_d, end_d = epoch_days(date(2015, 1, 1)), epoch_days(first), epoch_days(end)
    state = weighted(
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
        .collect(engine=ENGINE)
    )
    in_history = blocks.filter(pl.col("b") < plan.blocks)
    revoked_in_history = in_history.filter(pl.col("state") == "revoked").with_columns(
        version=pl.lit(2, dtype=pl.Int64), revoked=pl.lit(True)
    )

    # Scenario blocks.
    scenario_history: list[dict[str, object]] = []
    scenario_delta: list[dict[str, object]] = []
    for n, bs in enumerate(BLOCK_SCENARIOS):
        valid_from_day = (
            end + timedelta(days=int(bs.valid_from[1:]))
            if bs.valid_from.startswith("+")
            else date.fromisoformat(bs.valid_from)
        )
        common = {
            "b": n,
            "pnr": scenario_pnr(bs.patient),
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


def block_bytes(frame: pl.DataFrame, *, header: bool = True) -> bytes:
    raw = frame.select(
        block_id=pl.concat_str(pl.lit("B-"), (pl.col("b") + BLOCK_ID_OFFSET).cast(pl.String)),
        version=pl.col("version").cast(pl.String),
        pnr=pl.col("pnr"),
        scope=pl.col("scope"),
        hsa_id=pl.col("hsa"),
        valid_from=pl.col("valid_from").dt.strftime("%Y-%m-%d"),
        valid_to=pl.col("valid_to").dt.strftime("%Y-%m-%d"),
        status=pl.when(pl.col("revoked")).then(pl.lit("revoked")).otherwise(pl.lit("active")),
    )
    return raw.write_csv(None, include_header=header, quote_style="necessary").encode("utf-8")
