"""The floor under a full run: what the contract makes any job write and read beyond the peer.

    uv run python benchmarks/floor.py WAREHOUSE SCRATCH [--repeat 3]
        [--inbox INBOX --as-of DATE] [--lean] [--json FILE]

Takes a full run's warehouse (attached read only) and writes what the run
stored in it again into fresh DuckDB files in SCRATCH, one table at a time,
with the job's own statements and connection settings:

  record_versions     every valid version with its text, each system in a
                      transaction of its own and checkpointed after it, as
                      the load's connection for that system is when it closes
  decisions           the latest decision of every record
  decision_history    the job's audit trail: one open period per record
  decision_changes    ... and one change per record (a first run's)
  record_visibility   the analysts' table, the keyed pseudonym computed
  analysts' changes   the analysts' copy of the change list

Each write is timed from the rows in the warehouse's own tables to the new
file closed (its checkpoints included): no parsing, no Parquet, no
validation, nothing else the job does. Also timed: the state query's choice
of each record's version on DATE (counted, not written); with --inbox, the
sha256 of the data files dated up to DATE (one core); and, each in a fresh
interpreter, importing the job's flow module (Prefect, polars, pandera,
DuckDB), then the same followed by an empty Prefect flow run (against
PREFECT_API_URL when it is set, as the benchmark's runs are): the fixed cost
of any run. With --lean, also the two tables the spec names whose layout is
the job's choice, in the leanest layouts found (not added to the sum).

Any job that keeps the contract does at least what the peer does plus all
of this: the peer's time plus the sum is a lower bound on a full run on this
machine, and what the targets must leave room for. A benchmark, not a test:
nothing here asserts. Prints a Markdown table (docs/benchmarks.md, fifteenth
sitting, says how to read it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from flows.common.files import file_sha256, sql_literal
from flows.common.sql import load_sql
from flows.common.warehouse import limit_resources

ROOT = Path(__file__).resolve().parents[1]

LEAN_DECISIONS = Path(__file__).with_name("floor_lean_decisions.sql")
LEAN_VISIBILITY = Path(__file__).with_name("floor_lean_visibility.sql")
"""`--lean`: the spec's two tables whose layout is the job's choice, in the leanest
layouts found (each file says which)."""

PSEUDONYM_KEY = "floor-benchmark-key"
"""The analysts' key here: any will do, the cost of the hash does not depend on it."""


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument(
        "scratch",
        type=Path,
        help="a folder for the fresh files: new, empty, or one floor.py made before (emptied)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per write; medians shown")
    parser.add_argument(
        "--inbox", type=Path, help="also time the sha256 of its data files dated <= --as-of"
    )
    parser.add_argument("--as-of", default="2026-11-24", help="the full run's business date")
    parser.add_argument("--json", type=Path, help="also write the figures here (benchmarks/run.py)")
    parser.add_argument(
        "--lean",
        action="store_true",
        help="also time the spec's tables in the leanest layouts found (not added to the sum)",
    )
    args = parser.parse_args()
    if not args.warehouse.is_file():
        raise SystemExit(f"floor.py: no warehouse file at {args.warehouse}")
    if args.inbox is not None and not args.inbox.is_dir():
        raise SystemExit(f"floor.py: no inbox folder at {args.inbox}")
    _fresh_scratch(args.scratch, args.warehouse)

    source = duckdb.connect(str(args.warehouse), read_only=True)
    rows: dict[str, int] = {}
    timings: dict[str, list[Timing]] = {}

    def measure(name: str, count: str, write: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        with duckdb.connect(str(args.warehouse), read_only=True) as counting:
            rows[name] = int(counting.execute(f"SELECT count(*) FROM {count}").fetchall()[0][0])
        for attempt in range(args.repeat):
            target = args.scratch / f"floor-{attempt}.duckdb"
            timings.setdefault(name, []).append(
                _timed(partial(_into_fresh_file, target, args.warehouse, write))
            )
            target.unlink()
            print(f"{name}: {timings[name][-1].wall:.2f} s", file=sys.stderr)

    systems = [
        str(system)
        for (system,) in source.execute(
            "SELECT DISTINCT source_system FROM record_versions ORDER BY 1"
        ).fetchall()
    ]
    source.close()

    def store_versions(connection: duckdb.DuckDBPyConnection) -> None:
        connection.execute(load_sql("warehouse/create_record_versions"))
        connection.execute("CHECKPOINT")
        for system in systems:  # each system in a transaction of its own, as the load does
            connection.execute("BEGIN TRANSACTION")
            connection.execute(
                "INSERT INTO record_versions BY NAME "
                "SELECT * FROM source.record_versions WHERE source_system = $system",
                {"system": system},
            )
            connection.execute("COMMIT")
            connection.execute("CHECKPOINT")

    measure("record_versions", "record_versions", store_versions)
    for table in ("decisions", "decision_history", "decision_changes"):
        measure(table, table, partial(_copy, table=table))
    measure(
        "analysts' record_visibility",
        "decisions",
        lambda connection: _analysts_table(
            connection,
            "record_visibility",
            {"key": PSEUDONYM_KEY, "only_records": None},
        ),
    )
    measure(
        "analysts' decision_changes",
        "decision_changes",
        lambda connection: _analysts_table(connection, "decision_changes", {"only_run": None}),
    )

    lean: dict[str, list[Timing]] = {}
    if args.lean:
        measure("lean: decisions, 6 columns", "decisions", partial(_run, LEAN_DECISIONS, {}))
        measure(
            "lean: the analysts' record_visibility, the spec's columns, a 64-bit key",
            "decisions",
            partial(_run, LEAN_VISIBILITY, {"key": PSEUDONYM_KEY}),
        )
        lean = {name: timings.pop(name) for name in list(timings) if name.startswith("lean:")}

    checks: dict[str, list[Timing]] = {}
    with duckdb.connect(str(args.warehouse), read_only=True) as reading:
        limit_resources(reading, args.scratch / "state.tmp")
        state = f"SELECT count(*) FROM ({load_sql('state/current_records')})"
        # The partition count only numbers the partitions: any will do.
        parameters = {"as_of": args.as_of, "partitions": 50, "only_records": None}
        checks["each record's version on the business date (the state query, counted)"] = [
            _timed(partial(_consume, reading, state, parameters)) for _ in range(args.repeat)
        ]
    if args.inbox is not None:
        files = sorted(
            path
            for path in args.inbox.glob("*/*/*")
            # Regular files only: a FIFO or a device would block the hash.
            if path.is_file() and path.name != "_control.json" and path.parent.name <= args.as_of
        )
        size = sum(path.stat().st_size for path in files) / 1e9
        checks[f"the sha256 of the data files ({size:.2f} GB, one core)"] = [
            _timed(partial(_hash, files)) for _ in range(args.repeat)
        ]

    fixed = {
        "import the job's flow module": _fresh_interpreter("import flows.nightly", args.repeat),
        "the same, then an empty Prefect flow run": _fresh_interpreter(
            "import flows.nightly\n"
            "from prefect import flow\n"
            "@flow(name='floor-empty', persist_result=False)\n"
            "def empty() -> None:\n    pass\n"
            "empty()",
            args.repeat,
        ),
    }
    floor = _summary(rows, timings, checks, fixed, lean)
    print(render(floor), end="")
    if args.json is not None:
        args.json.write_text(json.dumps(floor, indent=2), encoding="utf-8")


SCRATCH_MARK = ".floor-scratch"
"""In a scratch folder this script made: only such a folder is emptied again."""


def _fresh_scratch(scratch: Path, warehouse: Path) -> None:
    """Make `scratch` empty: new, empty already, or one this script made before.

    A mistyped folder (the data folder, say) is refused, never emptied.
    """
    if warehouse.resolve().is_relative_to(scratch.resolve()):
        raise SystemExit(f"floor.py: {scratch} holds the warehouse; give a folder of its own")
    if scratch.exists():
        if any(scratch.iterdir()) and not (scratch / SCRATCH_MARK).exists():
            raise SystemExit(
                f"floor.py: {scratch} is not empty and not a scratch folder of floor.py; "
                "give a new or empty folder"
            )
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    (scratch / SCRATCH_MARK).touch()


def _consume(
    connection: duckdb.DuckDBPyConnection, query: str, parameters: dict[str, object]
) -> None:
    connection.execute(query, parameters).fetchall()


def _hash(files: list[Path]) -> None:
    for path in files:
        file_sha256(path)


def _timed(work: Callable[[], None]) -> Timing:
    cpu = sum(os.times()[:2])
    started = time.perf_counter()
    work()
    return Timing(time.perf_counter() - started, sum(os.times()[:2]) - cpu)


def _into_fresh_file(
    target: Path, warehouse: Path, write: Callable[[duckdb.DuckDBPyConnection], None]
) -> None:
    """`write` into a new DuckDB file, the warehouse attached read only as `source`;
    timed up to the new file closed, so its checkpoint is included."""
    connection = duckdb.connect(":memory:")
    try:
        limit_resources(connection, target.with_name(target.name + ".tmp"))
        connection.execute(f"ATTACH '{sql_literal(warehouse)}' AS source (READ_ONLY)")
        connection.execute(f"ATTACH '{sql_literal(target)}' AS target")
        connection.execute("USE target")
        write(connection)
        connection.execute("USE memory")
        connection.execute("DETACH target")
    finally:
        connection.close()


def _copy(connection: duckdb.DuckDBPyConnection, table: str) -> None:
    """A warehouse table as the job creates it, filled from the source's rows."""
    connection.execute(load_sql(f"warehouse/create_{table}"))
    connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM source.{table}")


def _run(sql: Path, parameters: dict[str, object], connection: duckdb.DuckDBPyConnection) -> None:
    # Without parameters DuckDB runs every statement of the text in turn.
    connection.execute(sql.read_text(encoding="utf-8"), parameters or None)


def _analysts_table(
    connection: duckdb.DuckDBPyConnection, table: str, parameters: dict[str, object]
) -> None:
    """An analysts' table by the job's own query over the warehouse, as the job builds it."""
    connection.execute("USE source")
    connection.execute(
        f"CREATE TABLE target.{table} AS {load_sql(f'analytics/{table}')}", parameters
    )
    connection.execute("USE target")


def _fresh_interpreter(code: str, repeat: int) -> list[Timing]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        found.append(Timing(time.perf_counter() - started, float("nan")))
    return found


def _summary(
    rows: dict[str, int],
    timings: dict[str, list[Timing]],
    checks: dict[str, list[Timing]],
    fixed: dict[str, list[Timing]],
    lean: dict[str, list[Timing]],
) -> dict[str, Any]:
    """Medians per measurement, and what they add to the peer's time together; with
    `lean`, also what the spec's own tables alone add in their leanest layouts."""

    def medians(found: dict[str, list[Timing]], kind: str) -> list[dict[str, Any]]:
        return [
            {
                "what": name,
                "kind": kind,
                "rows": rows.get(name),
                "wall_s": round(statistics.median(timing.wall for timing in runs), 2),
                "cpu_s": round(statistics.median(timing.cpu for timing in runs), 2),
            }
            for name, runs in found.items()
        ]

    items = (
        medians(timings, "write")
        + medians(checks, "read")
        + medians(fixed, "fixed")
        + medians(lean, "lean")
    )
    writes = [item for item in items if item["kind"] == "write"]
    reads = [item for item in items if item["kind"] == "read"]
    # The last fixed cost (the job's imports, then a flow run) includes the first.
    fixed_s = [item for item in items if item["kind"] == "fixed"][-1]["wall_s"]
    floor = {
        "items": items,
        "writes_s": round(sum(item["wall_s"] for item in writes), 2),
        "writes_cpu_s": round(sum(item["cpu_s"] for item in writes), 2),
        "extra_s": round(sum(item["wall_s"] for item in writes + reads) + fixed_s, 2),
    }
    if lean:
        # The spec's tables only: the record versions as stored, the lean two.
        spec = [writes[0], *(item for item in items if item["kind"] == "lean")]
        floor["spec_lean_extra_s"] = round(
            sum(item["wall_s"] for item in spec + reads) + fixed_s, 2
        )
        floor["spec_lean_cpu_s"] = round(sum(item["cpu_s"] for item in spec + reads) + fixed_s, 2)
    return floor


def render(floor: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    lines = ["| what | rows | wall s (median) | CPU s (median) |", "|---|---|---|---|"]

    def row(item: dict[str, Any]) -> str:
        rows = f"{item['rows']:,}" if item["rows"] is not None else ""
        cpu = "" if item["kind"] == "fixed" else f"{item['cpu_s']:.2f}"
        where = " (a fresh interpreter)" if item["kind"] == "fixed" else ""
        return f"| {item['what']}{where} | {rows} | {item['wall_s']:.2f} | {cpu} |"

    for kind in ("write", "read", "fixed"):
        lines += [row(item) for item in floor["items"] if item["kind"] == kind]
        if kind == "write":
            lines.append(
                f"| **the writes together** | | **{floor['writes_s']:.2f}** | "
                f"**{floor['writes_cpu_s']:.2f}** |"
            )
    lines.append(f"| **all of it: to add to the peer's time** | | **{floor['extra_s']:.2f}** | |")
    if "spec_lean_extra_s" in floor:
        lines += [row(item) for item in floor["items"] if item["kind"] == "lean"]
        lines.append(
            "| **the spec's tables only (`record_versions` and the two lean ones), "
            f"the reads and the start** | | **{floor['spec_lean_extra_s']:.2f}** | "
            f"**{floor['spec_lean_cpu_s']:.2f}** |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
