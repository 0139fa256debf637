"""Deciding patient partitions: the pure rules applied to their state, validated.

Each partition (or a group of small ones: a night's, a small region's) is
decided in a task of its own (threads, or Dask workers), from the state
`flows/store/state.py` exported; it writes the partition's decisions (for the
warehouse) and its feed part (for the snapshot) into the work folder.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import polars as pl

from flows.common.faults import checkpoint
from flows.common.feed_folder import listed_part, part_name
from flows.common.files import private_dir
from flows.common.warehouse import WORK_FILE_COMPRESSION
from flows.store.state import DIRTY_RECORDS_FILE, partition_state_dir
from transforms.decide import decide
from transforms.rules import RuleSet
from transforms.schemas import (
    FEED_COLUMNS,
    STORED_DECISION_COLUMNS,
    validate_decisions_batch,
    validate_feed_batch,
)

VALIDATION_BATCH_ROWS = 250_000

GROUP_STATE_BYTES: Final = 8 * 1024 * 1024
"""Consecutive partitions are decided in one task while their exported state adds up
to at most this (a night's few records per partition, a small region's full run)."""

FEED_ZSTD_LEVEL: Final = 1
"""The zstd level of the feed's parts: level 1 wrote a 10 M-record feed's 50 parts
(4.2 M rows) in 1.29 s against 1.56 s at polars' default 3, and 1 % smaller."""


@dataclass
class PartitionResult:
    """What deciding one patient partition produced."""

    partition: int
    records: int
    visible: int
    reasons: dict[str, int]
    feed_file: str | None


def decide_groups(partitions: list[int], work_dir: Path, *, workers: int) -> list[list[int]]:
    """How the partitions to decide go to tasks, in order.

    Where a partition holds few records (an incremental run's night, a small
    region's or a test's full run) a task's fixed cost (a decision, two
    validations, Prefect's task run: about 0.15-0.3 s) outweighs the work:
    consecutive partitions go together, as many as spreads them evenly over the
    `workers` tasks that run at once, while their exported state is small
    (GROUP_STATE_BYTES). A partition whose state is large goes alone, so a full
    run over a large region still decides each partition in a task of its own
    (each holds a partition's worth of records in memory). (A 10 M-record
    night, 50 partitions on 2 threads: 2 groups decided in 4.6 s against 7
    groups of at most 8 in 4.8-5.6 s; the bundled sample's full run, 16
    partitions: 2 groups against 16 tasks.)
    """
    per_group = max(1, -(-len(partitions) // max(1, workers)))
    groups: list[list[int]] = []
    current: list[int] = []
    held = 0
    for partition in partitions:
        size = _state_bytes(work_dir, partition)
        if current and (len(current) >= per_group or held + size > GROUP_STATE_BYTES):
            groups.append(current)
            current, held = [], 0
        current.append(partition)
        held += size
    if current:
        groups.append(current)
    return groups


def group_label(group: list[int], partitions: int) -> str:
    """How a task run is named: `partition 3 of 16`, `partitions 0 to 7 of 50 (8)`."""
    if len(group) == 1:
        return f"partition {group[0]} of {partitions}"
    return f"partitions {group[0]} to {group[-1]} of {partitions} ({len(group)})"


def _state_bytes(work_dir: Path, partition: int) -> int:
    folder = partition_state_dir(work_dir, partition)
    if not folder.exists():
        return 0
    return sum(path.stat().st_size for path in folder.glob("*.parquet"))


def decide_partition(
    partition: int,
    work_dir: Path,
    rules: RuleSet,
    as_of: date,
    run_id: str,
    previous_snapshot: Path | None = None,
) -> PartitionResult:
    """Decide, validate and stage the feed file of one patient partition.

    Callable without Prefect: the flow's task, Dask workers and `jvn whatif` call it.
    """
    (result,) = decide_partitions([partition], work_dir, rules, as_of, run_id, previous_snapshot)
    return result


def decide_partitions(
    partitions: list[int],
    work_dir: Path,
    rules: RuleSet,
    as_of: date,
    run_id: str,
    previous_snapshot: Path | None = None,
) -> list[PartitionResult]:
    """Decide, validate and stage the decisions and feed file of each of `partitions`.

    Their records are decided and validated together (the rules are per record
    and per patient, and a patient lies in one partition, so each decision is
    the one deciding its partition alone gives); each partition still gets its
    own decisions file and feed part. A night's few records per partition thus
    pay the fixed cost of a decision and a validation once, not per partition.

    With `previous_snapshot` (an incremental run), a partition's feed file is
    the previous one's rows minus every record decided anew, plus the newly
    decided visible rows: exactly what deciding the whole partition would give.
    """
    decided_by_partition = _decide_together(partitions, work_dir, rules, as_of, run_id)
    return _stage_partitions(partitions, decided_by_partition, work_dir, previous_snapshot)


def _decide_together(
    partitions: list[int], work_dir: Path, rules: RuleSet, as_of: date, run_id: str
) -> dict[int, pl.DataFrame]:
    """The partitions' decided records (those with exported state), validated, by partition."""
    state_dir = work_dir / "state"
    present = [
        partition for partition in partitions if partition_state_dir(work_dir, partition).exists()
    ]
    if not present:
        return {}
    records = pl.concat(
        [
            pl.scan_parquet(
                partition_state_dir(work_dir, partition) / "*.parquet", hive_partitioning=False
            ).with_columns(partition_key=pl.lit(partition, dtype=pl.Int32))
            for partition in present
        ]
    )
    blocks = pl.scan_parquet(state_dir / "blocks.parquet")
    # A partition fits in memory, where polars' in-memory engine decides it in
    # 140 ms against the streaming engine's 240; and sorted once collected: the
    # same sort in the lazy plan cost 220 ms of a 200,000-record partition.
    decided = (
        decide(records, blocks, rules, as_of)
        .with_columns(run_id=pl.lit(run_id))
        .collect(engine="in-memory")
        .sort("partition_key", "record_id")
    )
    for batch in decided.iter_slices(VALIDATION_BATCH_ROWS):
        validate_decisions_batch(batch)
    if len(present) == 1:
        return {present[0]: decided}
    return {
        int(key[0]): frame
        for key, frame in decided.partition_by(
            "partition_key", as_dict=True, maintain_order=True
        ).items()
    }


def _stage_partitions(
    partitions: list[int],
    decided_by_partition: dict[int, pl.DataFrame],
    work_dir: Path,
    previous_snapshot: Path | None,
) -> list[PartitionResult]:
    """Write each partition's decisions and its feed part (kept rows plus the new visible),
    once every newly decided visible row of them is validated as a feed row.

    Validated together, before any part is written: pandera costs about 10 ms a
    call however few the rows, and a night's group of 8 partitions holds a few
    hundred visible rows each. The kept rows are the live snapshot's, validated
    when their run published them and checked against its manifest before this
    run reuses them (`plan_partitions`), as a partition with nothing to decide
    is reused whole, by hard link.
    """
    if decided_by_partition:
        shown = pl.concat(
            [
                decided.filter(pl.col("visible")).select(FEED_COLUMNS)
                for decided in decided_by_partition.values()
            ],
            rechunk=False,
        )
        for batch in shown.with_columns(visible=pl.lit(True)).iter_slices(VALIDATION_BATCH_ROWS):
            validate_feed_batch(batch)
    # Read once for the group: each partition's kept rows are its previous part's
    # minus these (an is_in filter read 83,000 feed rows in 53 ms against an anti
    # join's 61).
    decided_anew = (
        pl.read_parquet(work_dir / DIRTY_RECORDS_FILE, columns=["record_id"])
        .get_column("record_id")
        .implode()
        if previous_snapshot is not None
        else None
    )
    return [
        _stage_partition(
            partition,
            decided_by_partition.get(partition),
            work_dir,
            previous_snapshot,
            decided_anew,
        )
        for partition in partitions
    ]


def _stage_partition(
    partition: int,
    decided: pl.DataFrame | None,
    work_dir: Path,
    previous_snapshot: Path | None,
    decided_anew: pl.Series | None,
) -> PartitionResult:
    """Write one partition's decisions and its feed part; its new visible rows are
    validated (`_stage_partitions`). `decided_anew`: the ids this run decides anew,
    which the previous snapshot's part must not keep."""
    name = part_name(partition)
    if decided is not None:
        decided.select(STORED_DECISION_COLUMNS).write_parquet(
            private_dir(work_dir / "decisions") / name, compression=WORK_FILE_COMPRESSION
        )
    checkpoint("decide")
    parts = []
    if decided is not None:
        parts.append(decided.filter(pl.col("visible")).select(FEED_COLUMNS))
    previous_part = listed_part(previous_snapshot, name) if previous_snapshot is not None else None
    if previous_part is not None:
        assert decided_anew is not None  # read whenever there is a previous snapshot
        kept = pl.scan_parquet(previous_part).filter(~pl.col("record_id").is_in(decided_anew))
        parts.append(kept.collect())
    feed_rows = (
        pl.concat(parts).sort("record_id").rechunk()
        if parts
        else pl.DataFrame(schema=dict.fromkeys(FEED_COLUMNS, pl.String))
    )
    feed_file = None
    if feed_rows.height:
        feed_file = name
        feed_rows.write_parquet(
            private_dir(work_dir / "feed") / feed_file,
            compression="zstd",
            compression_level=FEED_ZSTD_LEVEL,
            statistics=True,
        )
    reasons = (
        Counter(dict(decided.group_by("reason").len().iter_rows())) if decided is not None else {}
    )
    return PartitionResult(
        partition=partition,
        records=decided.height if decided is not None else 0,
        visible=feed_rows.height,
        reasons={str(k): int(v) for k, v in reasons.items()},
        feed_file=feed_file,
    )
