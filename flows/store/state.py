"""The records' state on the business date, and what a run must decide anew.

`plan_partitions` chooses a full run or an incremental one (only the records
new deliveries or block dates touched); `export_state` writes each record's
state on as_of, partitioned by patient, and the blocks' state, into the run's
work folder, where `flows/decide/` reads it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from flows.common.faults import checkpoint
from flows.common.feed_folder import LiveSnapshot, live_snapshot, part_entries, unavailable_parts
from flows.common.files import sql_literal
from flows.common.sql import load_sql
from flows.common.warehouse import WORK_FILE_COMPRESSION, connect, first_row
from transforms.rules import RuleSet

DIRTY_RECORDS_FILE = "dirty_records.parquet"
"""In a run's work folder: the record ids an incremental run decides anew."""


@dataclass(frozen=True)
class PartitionPlan:
    """What this run decides anew; everything else is kept from `previous_snapshot`."""

    dirty_records: int | None
    """How many records are decided anew (their ids in DIRTY_RECORDS_FILE); None: all."""
    affected: list[int]
    """Incremental: the partitions the dirty records were in (their files are rebuilt)."""
    previous_snapshot: str | None
    reason: str
    previous_run: str | None = None
    unavailable_parts: dict[str, str] = field(default_factory=dict)
    """Parts of the live snapshot that are missing or damaged (name -> which): never
    reused or read; the run rebuilds every partition and says so."""
    previous_ids_known: bool = True
    """With unavailable parts: whether the warehouse could say which records they
    held (UNAVAILABLE_PREVIOUS_FILE), so the change set still lists them."""

    @property
    def incremental(self) -> bool:
        return self.dirty_records is not None

    def warnings(self) -> list[str]:
        """What the operator must hear about parts the run could not reuse."""
        if not self.unavailable_parts:
            return []
        listed = ", ".join(
            f"{name} {state}" for name, state in sorted(self.unavailable_parts.items())
        )
        change_set = (
            "its change set lists their records as changed or disappeared"
            if self.previous_ids_known
            else "its change set is a full reload (since_snapshot empty)"
        )
        return [
            f"the live snapshot's parts could not be reused ({listed}): every partition "
            f"was decided anew; {change_set}; run `jvn verify` on the old snapshot"
        ]


def plan_partitions(
    warehouse: Path, feed_dir: Path, work_dir: Path, as_of: date, partitions: int, rules: RuleSet
) -> PartitionPlan:
    """Decide everything, or only the records new deliveries or block dates touched.

    Keeping the rest is safe only when nothing but the deliveries and the date
    moved since the previous published run, whose snapshot is still the live one
    and whose decisions are still the warehouse's.
    """
    live = live_snapshot(feed_dir)
    # Every part of the live snapshot is checked against its manifest before
    # anything reuses it (hard links) or reads it (kept rows, the change set).
    unavailable = unavailable_parts(live) if live is not None else {}
    ids_known = True

    def full(reason: str) -> PartitionPlan:
        return PartitionPlan(
            None, [], None, reason, unavailable_parts=unavailable, previous_ids_known=ids_known
        )

    with connect(warehouse) as connection:
        if live is not None and unavailable:
            ids_known = write_unavailable_previous_ids(connection, live, unavailable, work_dir)
        previous = first_row(connection, load_sql("state/previous_published_run"))
        if previous is None:
            return full("first run")
        run_id, previous_as_of, rules_version, previous_partitions, snapshot = previous
        if live is None or live.name != snapshot:
            return full("the live feed is not the previous run's snapshot")
        if unavailable:
            return full(f"{len(unavailable)} parts of the live snapshot missing or damaged")
        if rules_version != rules.rules_version:
            return full("the rules changed")
        if previous_partitions != partitions:
            return full("the partition count changed")
        if as_of < previous_as_of:
            return full("a rerun for an earlier business date")
        if rules.unsigned_delay_days(as_of) != 0 or rules.unsigned_delay_days(previous_as_of) != 0:
            return full("an unsigned-entry delay is in force, so visibility moves with the date")
        if rules.release_delay_in_force(as_of) or rules.release_delay_in_force(previous_as_of):
            return full("a release delay is in force, so visibility moves with the date")
        stray = first_row(connection, load_sql("state/stray_decisions"))
        if stray and stray[0]:
            return full("the warehouse holds decisions of an unpublished run")
        dirty_path = work_dir / DIRTY_RECORDS_FILE
        connection.execute(
            f"COPY ({load_sql('state/dirty_records')}) TO '{sql_literal(dirty_path)}' "
            "(FORMAT parquet)",
            {"as_of": as_of, "previous_run": run_id, "previous_as_of": previous_as_of},
        )
        affected = connection.execute(
            load_sql("state/affected_partitions"), {"path": str(dirty_path)}
        ).fetchall()
    dirty = pl.scan_parquet(dirty_path).select(pl.len()).collect().item()
    return PartitionPlan(
        dirty_records=int(dirty),
        affected=[int(key) for (key,) in affected],
        previous_snapshot=snapshot,
        reason=f"{dirty} records touched since the previous run",
        previous_run=run_id,
    )


UNAVAILABLE_PREVIOUS_FILE = "unavailable_previous_ids.parquet"
"""In a run's work folder: ids of the records the live snapshot's unavailable parts held."""


def write_unavailable_previous_ids(
    connection: Any, live: LiveSnapshot, unavailable: dict[str, str], work_dir: Path
) -> bool:
    """Write the ids the live snapshot's missing or damaged parts held; False if unknown.

    They are the records the warehouse's decision history shows as visible at
    the live snapshot's run, less those in its intact parts. The change set
    lists them as changed (when still shown) or disappeared, so a portal that
    applies it still drops what must no longer be shown.
    """
    row = first_row(
        connection,
        load_sql("state/published_snapshot_run_seq"),
        {"run": str(live.manifest.get("run_id")), "snapshot": live.name},
    )
    if row is None or row[0] is None:
        return False
    intact = [
        str(live.path / str(entry["name"]))
        for name, entry in part_entries(live).items()
        if name not in unavailable
    ]
    # read_parquet refuses an empty list: with no intact part, nothing is subtracted.
    visible = load_sql("state/visible_at_run_outside_parts" if intact else "state/visible_at_run")
    target = work_dir / UNAVAILABLE_PREVIOUS_FILE
    connection.execute(
        f"COPY ({visible}) TO '{sql_literal(target)}' (FORMAT parquet)",
        {"seq": int(row[0]), **({"intact": intact} if intact else {})},
    )
    return True


def partition_state_dir(work_dir: Path, partition: int) -> Path:
    """Where `export_state` puts one patient partition's records (absent: it exported none)."""
    return work_dir / "state" / "records" / f"partition_key={partition}"


def dirty_record_ids(work_dir: str | Path) -> list[str] | None:
    """The ids an incremental run decides anew, or None for a full run."""
    path = Path(work_dir) / DIRTY_RECORDS_FILE
    if not path.exists():
        return None
    return pl.read_parquet(path)["record_id"].to_list()


def export_state(
    warehouse: Path,
    as_of: date,
    partitions: int,
    work_dir: Path,
    run_id: str | None,
    affected: list[int] | None = None,
) -> list[int]:
    """Write each record's state on as_of, partitioned by patient, and the blocks' state.

    An incremental run (a dirty-records file in `work_dir`) writes only those
    records. Returns the partitions to decide: those holding exported records,
    plus `affected` (partitions the records were in before, whose feed files
    must be rebuilt even if they now hold none of them). With `run_id` None
    (`jvn whatif`) the warehouse is only read: no run's deliveries are recorded.
    """
    state_dir = work_dir / "state"
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    with connect(warehouse, read_only=run_id is None) as connection:
        parameters = {
            "as_of": as_of,
            "partitions": partitions,
            "only_records": dirty_record_ids(work_dir),
        }
        connection.execute(
            f"COPY ({load_sql('state/current_records')}) TO '{sql_literal(state_dir / 'records')}' "
            f"(FORMAT parquet, PARTITION_BY (partition_key), COMPRESSION {WORK_FILE_COMPRESSION})",
            parameters,
        )
        connection.execute(
            f"COPY ({load_sql('state/current_blocks')}) TO "
            f"'{sql_literal(state_dir / 'blocks.parquet')}' (FORMAT parquet)",
            {"as_of": as_of},
        )
        if run_id is not None:
            connection.execute(
                load_sql("state/record_run_deliveries"), {"run_id": run_id, "as_of": as_of}
            )
    checkpoint("export_state")
    records_dir = state_dir / "records"
    exported = (
        {int(path.name.split("=", 1)[1]) for path in records_dir.glob("partition_key=*")}
        if records_dir.exists()
        else set()
    )
    return sorted(exported | set(affected or []))
