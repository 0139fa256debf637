"""`generate_inbox`, the entry point: each delivery of each business date, then the spoiled ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

from flows.sample.dates import business_dates
from flows.sample.deliveries import Counters, block_bytes, block_rows, write_delta, write_history
from flows.sample.generator import Generator, make_plan
from flows.sample.results import SampleSummary
from flows.sample.serialise import DeliveryWriter, write_control
from flows.sample.systems import BLOCKS_FILE, SYSTEMS


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
    plan = make_plan(records, days, end_date)
    gen = Generator(plan, seed, bad_rows=bad_rows)
    counters = Counters()
    deliveries: list[Path] = []
    block_history, block_deltas = block_rows(plan, gen)
    for day, business_date in enumerate(plan.dates):
        for system in SYSTEMS.values():
            folder = out / system.name / business_date.isoformat()
            writer = DeliveryWriter(folder, system.file_name, system.encoding == "utf-8-sig")
            if day == 0:
                write_history(gen, system, writer, counters, report)
            else:
                write_delta(gen, system, day, writer, counters)
            # The sender writes the control file last, after the data file is closed.
            write_control(folder, writer.close(system.name, business_date))
            counters.rows += writer.rows
            deliveries.append(folder)
            report(f"{system.name} {business_date}: {writer.rows} rows")
        folder = out / "blocks" / business_date.isoformat()
        writer = DeliveryWriter(folder, BLOCKS_FILE, bom=False)
        frame = block_history if day == 0 else block_deltas[day - 1]
        writer.write(block_bytes(frame), frame.height)
        write_control(folder, writer.close("blocks", business_date))
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
    write_control(path.parent, control)

    path, control = control_of("journalia")
    control["rows"] = int(str(control["rows"])) + 1
    write_control(path.parent, control)

    path, _ = control_of("t4")
    path.unlink()

    path, control = control_of("blocks")
    control["system"] = "t4"
    write_control(path.parent, control)
