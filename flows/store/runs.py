"""The warehouse's record of runs: opening one, closing it, and the runs that were killed.

A run is recorded `running` when it starts and closed `published` or `failed`
(with its exit code) when it ends; a published run extends the decision
history in the same transaction. A run that died is closed by the next one
(`reconcile_killed_runs`), which holds the lock.
"""

from __future__ import annotations

import resource
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flows.common.errors import WarehouseBusy, safe_message
from flows.common.feed_folder import live_snapshot, published_snapshots
from flows.common.paths import JOB_WORK_NAME
from flows.common.sql import load_sql
from flows.common.warehouse import connect
from flows.load.ingest import DeliveryOutcome
from flows.store.history import record_history, undo_run
from flows.store.state import dirty_record_ids
from transforms.rules import RuleSet


@dataclass
class RunSummary:
    """What a run did, for the operator's summary and the exit status."""

    run_id: str
    as_of: str
    rules_version: str
    status: str = "running"
    snapshot: str | None = None
    records: int = 0
    visible: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    deliveries_loaded: int = 0
    deliveries_already_loaded: int = 0
    deliveries_rejected: list[dict[str, str]] = field(default_factory=list)
    deliveries_duplicate: int = 0
    deliveries_later: list[str] = field(default_factory=list)
    """Deliveries dated after as_of, left for a later run (`melior/2026-11-27`)."""
    rows_quarantined: int = 0
    rows_quarantined_without_id: int = 0
    """Quarantined rows whose record id could not be read: their records may still show
    an older version (nothing names the record to hide)."""
    records_loaded: int = 0
    units_exempt_by_name_only: list[dict[str, Any]] = field(default_factory=list)
    unknown_codes: list[dict[str, Any]] = field(default_factory=list)
    ignored_folders: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)
    plan: str = ""
    partitions: int = 0
    partitions_decided: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_peak_rss_mib: dict[str, int] = field(default_factory=dict)
    """This process's peak resident memory so far at the end of each stage: the stage
    where it first reaches its maximum is where the run's memory peaks."""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    """Sortable by start time, unique: `20261126T023000Z-1a2b3c`."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def start_run(warehouse: Path, run_id: str, as_of: date, rules: RuleSet, feed_dir: Path) -> None:
    """Record the run as running (a run killed from here on is closed by the next one)."""
    with connect(warehouse) as connection:
        connection.execute(
            load_sql("runs/start_run"),
            {
                "run_id": run_id,
                "as_of": as_of,
                "rules_version": rules.rules_version,
                "sha": rules.content_sha256,
                "now": datetime.now(UTC),
                "feed": str(feed_dir.resolve()),
            },
        )


def record_failure(warehouse: Path, summary: RunSummary, message: str, *, undo: bool) -> str:
    """Record the failed run; what to add to the message when even that fails.

    The failure must still be reported in one line (the cause is often the same:
    the warehouse held by another process, a full disk). The run's record then
    stays `running` (or `published` with a feed that never went live), and the
    next run closes it as killed and takes its history back.
    """
    try:
        finish_run(warehouse, summary, status="failed", message=message, undo=undo)
    except Exception as error:
        cause = (
            "the warehouse is still held by another process"
            if isinstance(error, WarehouseBusy)
            else safe_message(error)
        )
        return (
            f"; this failure could not be recorded in the warehouse ({cause}): "
            "the next run records the run as killed"
        )
    return ""


def clear_stale_work(work_root: Path) -> int:
    """Remove the run folders a killed run left (staging files, personal data).

    The run holds the lock, so the job's own folders there are stale. Only
    folders with the job's own names (`JOB_WORK_NAME`) are removed: an
    operator's files in the work folder are left alone. Returns how many
    entries were left.
    """
    foreign = 0
    for entry in work_root.iterdir():
        if entry.is_dir() and not entry.is_symlink() and JOB_WORK_NAME.match(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            foreign += 1
    return foreign


class StageClock:
    """`with stage("name"):` adds the stage's wall time and the peak memory so far to
    the summary (for benchmarks)."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = round(time.perf_counter() - started, 3)
            self.summary.stage_seconds[name] = elapsed
            # Linux reports ru_maxrss in KiB.
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.summary.stage_peak_rss_mib[name] = peak_kib // 1024


def reconcile_killed_runs(warehouse: Path, feed_dir: Path) -> None:
    """Close the records of runs that were killed (this run holds the lock).

    A run still `running` died. A run recorded `published` to this feed whose
    snapshot never went live (it died between recording and the swap) did not
    publish: its decision history is taken back, so the audit trail matches
    what the portal showed.
    """
    feed_path = feed_dir
    went_live = set(published_snapshots(feed_path))
    live = live_snapshot(feed_path)
    if live is not None:
        went_live.add(live.name)
    with connect(warehouse) as connection:
        connection.execute(load_sql("runs/close_killed_runs"), {"now": datetime.now(UTC)})
        recorded = connection.execute(
            load_sql("runs/published_to_feed"), {"feed": str(feed_path.resolve())}
        ).fetchall()
        for run_id, snapshot in recorded:
            if snapshot in went_live:
                continue
            connection.execute("BEGIN TRANSACTION")
            undo_run(connection, run_id=run_id)
            connection.execute(load_sql("runs/fail_unpublished"), {"run_id": run_id})
            connection.execute("COMMIT")


def count_outcomes(summary: RunSummary, outcomes: list[DeliveryOutcome]) -> None:
    for outcome in outcomes:
        if outcome.status == "loaded":
            summary.deliveries_loaded += 1
            summary.records_loaded += outcome.records_loaded
            summary.rows_quarantined += outcome.rows_quarantined
            summary.rows_quarantined_without_id += outcome.rows_quarantined_without_id
        elif outcome.status == "already_loaded":
            summary.deliveries_already_loaded += 1
        elif outcome.status == "duplicate":
            summary.deliveries_duplicate += 1
        else:
            summary.deliveries_rejected.append(
                {"delivery": outcome.label, "error": outcome.error or ""}
            )


def finish_run(
    warehouse: Path,
    summary: RunSummary,
    *,
    status: str,
    message: str | None = None,
    work_dir: Path | None = None,
    undo: bool = False,
) -> None:
    """Close the run's record; a published run also extends the decision history.

    `undo`: the run had recorded its publication, but its feed never went live:
    its history is taken back in the same transaction that marks it failed.
    """
    with connect(warehouse) as connection:
        connection.execute("BEGIN TRANSACTION")
        if undo:
            undo_run(connection, run_id=summary.run_id)
        if status == "published":
            summary.changes = record_history(
                connection,
                run_id=summary.run_id,
                only_records=dirty_record_ids(work_dir) if work_dir else None,
            )
        connection.execute(
            load_sql("runs/finish_run"),
            {
                "now": datetime.now(UTC),
                "status": status,
                "snapshot": summary.snapshot,
                "records": summary.records,
                "visible": summary.visible,
                "loaded": summary.deliveries_loaded,
                "rejected": len(summary.deliveries_rejected),
                "quarantined": summary.rows_quarantined,
                "exit_code": exit_code_for(summary, status),
                "message": message,
                "partitions": summary.partitions,
                "partitions_decided": summary.partitions_decided,
                "run_id": summary.run_id,
            },
        )
        connection.execute("COMMIT")


def exit_code_for(summary: RunSummary, status: str) -> int:
    """interfaces.md: 0 published, 3 published with rejected deliveries, 1 failed."""
    if status != "published":
        return 1
    return 3 if summary.deliveries_rejected else 0


def fill_report_lists(warehouse: Path, summary: RunSummary) -> None:
    """The units exempt by name only and the unknown codes, for the operator's summary."""
    with connect(warehouse, read_only=True) as connection:
        units = connection.execute(load_sql("report/units_exempt_by_name_only")).fetchall()
        summary.units_exempt_by_name_only = [
            {"care_unit_hsa_id": hsa, "care_unit_name": name, "records": n}
            for hsa, name, n in units
        ]
        codes = connection.execute(load_sql("report/unknown_codes")).fetchall()
        summary.unknown_codes = [
            {"source_system": system, "source_code": code, "records": n}
            for system, code, n in codes
        ]
