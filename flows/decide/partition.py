"""Deciding one patient partition: the pure rules applied to its state, validated.

Each partition is decided on its own (threads, or Dask workers), from the
state `flows/store/state.py` exported; it writes the partition's decisions
(for the warehouse) and its feed part (for the snapshot) into the work folder.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from flows.common.faults import checkpoint
from flows.common.feed_folder import listed_part, part_name
from flows.common.files import private_dir
from flows.common.warehouse import WORK_FILE_COMPRESSION
from flows.store.state import DIRTY_RECORDS_FILE
from transforms.decide import decide
from transforms.rules import RuleSet
from transforms.schemas import (
    FEED_COLUMNS,
    STORED_DECISION_COLUMNS,
    validate_decisions_batch,
    validate_feed_batch,
)

VALIDATION_BATCH_ROWS = 250_000


@dataclass
class PartitionResult:
    """What deciding one patient partition produced."""

    partition: int
    records: int
    visible: int
    reasons: dict[str, int]
    feed_file: str | None


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

    With `previous_snapshot` (an incremental run), the partition's feed file is
    the previous one's rows minus every record decided anew, plus the newly
    decided visible rows: exactly what deciding the whole partition would give.
    """
    state_dir = work_dir / "state"
    partition_dir = state_dir / "records" / f"partition_key={partition}"
    name = part_name(partition)
    decided = None
    if partition_dir.exists():
        records = pl.scan_parquet(partition_dir / "*.parquet", hive_partitioning=False)
        blocks = pl.scan_parquet(state_dir / "blocks.parquet")
        decided = (
            decide(
                records.with_columns(partition_key=pl.lit(partition, dtype=pl.Int32)),
                blocks,
                rules,
                as_of,
            )
            .with_columns(run_id=pl.lit(run_id))
            .sort("record_id")
            .collect()
        )
        for batch in decided.iter_slices(VALIDATION_BATCH_ROWS):
            validate_decisions_batch(batch)
        decided.select(STORED_DECISION_COLUMNS).write_parquet(
            private_dir(work_dir / "decisions") / name, compression=WORK_FILE_COMPRESSION
        )
    checkpoint("decide")
    parts = []
    if decided is not None:
        parts.append(decided.filter(pl.col("visible")).select(FEED_COLUMNS))
    previous_part = listed_part(previous_snapshot, name) if previous_snapshot is not None else None
    if previous_part is not None:
        kept = pl.scan_parquet(previous_part).join(
            pl.scan_parquet(work_dir / DIRTY_RECORDS_FILE), on="record_id", how="anti"
        )
        parts.append(kept.collect())
    feed_rows = (
        pl.concat(parts).sort("record_id").rechunk()
        if parts
        else pl.DataFrame(schema=dict.fromkeys(FEED_COLUMNS, pl.String))
    )
    for batch in feed_rows.with_columns(visible=pl.lit(True)).iter_slices(VALIDATION_BATCH_ROWS):
        validate_feed_batch(batch)
    feed_file = None
    if feed_rows.height:
        feed_file = name
        feed_rows.write_parquet(
            private_dir(work_dir / "feed") / feed_file, compression="zstd", statistics=True
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
