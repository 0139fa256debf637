"""Assembling a run's snapshot: its parts, the change set and the manifest, not yet live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from flows.common.errors import RunFailed
from flows.common.feed_folder import RECORDS_DIR, live_snapshot, part_entries, part_name
from flows.common.files import link_or_copy
from flows.publish.change_set import CHANGE_SET_FILE, write_change_set
from flows.publish.feed import publish_snapshot, staging_dir
from flows.store.state import UNAVAILABLE_PREVIOUS_FILE, PartitionPlan, dirty_record_ids


def assemble_snapshot(
    feed_dir: Path,
    work_dir: Path,
    snapshot_name: str,
    manifest_fields: dict[str, Any],
    plan: PartitionPlan,
    decided_partitions: list[int] | None = None,
) -> str:
    """Assemble the new snapshot, complete in its final folder, not yet live.

    Partitions this run did not decide are hard links to the previous
    snapshot's files (checked against its manifest when the run was planned:
    an incremental plan means every one of them was intact): a quiet night
    rewrites few files, and the snapshot still reads as one complete folder.
    Record parts go to `records/`, whichever layout the previous snapshot had.
    """
    feed_path = feed_dir
    staged = staging_dir(feed_path, snapshot_name)
    records = staged / RECORDS_DIR
    produced = work_dir / "feed"
    if produced.exists():
        # Linked, not moved: a retried publish finds every file where it was.
        for path in sorted(produced.glob("*.parquet")):
            link_or_copy(path, records / path.name)
    known: dict[str, dict[str, Any]] = {}
    if decided_partitions is not None and plan.previous_snapshot:
        previous = live_snapshot(feed_path)
        if previous is None or previous.name != plan.previous_snapshot:
            raise RunFailed("the live snapshot changed while the run was deciding")
        redone = {part_name(key) for key in decided_partitions}
        for name, entry in part_entries(previous).items():
            if name not in redone:
                link_or_copy(previous.path / str(entry["name"]), records / name)
                known[f"{RECORDS_DIR}/{name}"] = entry
    manifest_fields = {**manifest_fields, "rows_per_system": rows_per_system(records)}
    previous_live = live_snapshot(feed_path)
    candidates = (
        dirty_record_ids(work_dir)
        if previous_live is not None and previous_live.name == plan.previous_snapshot
        else None
    )
    unavailable_ids = work_dir / UNAVAILABLE_PREVIOUS_FILE
    manifest_fields["change_set"] = write_change_set(
        staged,
        previous_live,
        work_dir,
        candidates,
        unavailable=set(plan.unavailable_parts),
        unavailable_ids=unavailable_ids if unavailable_ids.exists() else None,
    )
    publish_snapshot(
        feed_path,
        staged,
        snapshot_name,
        manifest_fields,
        known_files=known,
        extra_files=(CHANGE_SET_FILE,),
        make_live=False,
    )
    return snapshot_name


def rows_per_system(produced: Path) -> dict[str, int]:
    """Feed rows per journal system in a folder of parts (the manifest's `rows_per_system`)."""
    if not produced.exists() or not any(produced.glob("*.parquet")):
        return {}
    counts = (
        pl.scan_parquet(produced / "*.parquet")
        .group_by("source_system")
        .len()
        .sort("source_system")
        .collect()
    )
    return {str(system): int(rows) for system, rows in counts.iter_rows()}
