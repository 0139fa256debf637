"""Loading one delivery into the warehouse: its outcome recorded, its rows stored, all or nothing.

The order is the contract's: the control file is checked first, then the
bytes' checksum, encoding and header, then the rows are parsed and counted
(all of that is the file side, `flows/load/prepare.py`, which may run on
another process); only a delivery that passes all of that is stored, here, in
one transaction, so a crash leaves it either wholly loaded or not at all (and
a rerun loads it then).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb

from flows.common.faults import checkpoint
from flows.common.sql import load_sql, load_statements, preload
from flows.common.warehouse import first_row
from flows.load.inbox import DeliveryFolder, FileStamp
from flows.load.prepare import PreparedDelivery, delivery_id_of, prepare_delivery
from transforms.canonical import BLOCKS_FEED, FEEDS
from transforms.sources.base import SourceFormat
from transforms.sources.registry import adapter_for

Status = Literal["loaded", "rejected", "duplicate", "already_loaded"]

# The statements are read at import: while a delivery is judged, the only files
# opened are the delivery's own (tests/load/test_fuzz_adapters.py watches).
preload("ingest")


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one delivery folder in this run."""

    label: str
    feed: str
    status: Status
    delivery_id: str | None = None
    error: str | None = None
    records_loaded: int = 0
    rows_quarantined: int = 0
    rows_quarantined_without_id: int = 0
    """Quarantined rows whose record (or block) id could not be read: nothing hides them."""
    newly_recorded: bool = False
    """False when this exact outcome was already in the warehouse (seen on an earlier run)."""


def load_delivery(
    connection: duckdb.DuckDBPyConnection,
    delivery: DeliveryFolder,
    *,
    run_id: str,
    work_dir: Path,
) -> DeliveryOutcome:
    """Judge and (if it passes) store one delivery, in this process. Never raises for bad input.

    Whatever the sender's files hold or are (nested, huge, a FIFO, unreadable),
    the delivery is rejected with a reason. Only this machine's own failure (the
    work folder full, say) raises: `LocalFailure`, with nothing recorded,
    so that the run fails and the next one judges the delivery again.
    """
    prepared = prepare_delivery(delivery, work_dir, known_sha256(connection, delivery.feed))
    return store_delivery(connection, delivery, prepared, run_id=run_id, work_dir=work_dir)


def known_sha256(connection: duckdb.DuckDBPyConnection, system: str) -> frozenset[str]:
    """Digests of the bytes loaded from `system` so far: such a delivery is not parsed again."""
    rows = connection.execute(load_sql("ingest/loaded_bytes"), {"system": system}).fetchall()
    return frozenset(str(row[0]) for row in rows)


@dataclass(frozen=True)
class KnownDeliveries:
    """What the warehouse holds before loading starts: a hint for preparing only.

    Storing asks the warehouse again, so a stale hint costs work, never an outcome.
    """

    folders: frozenset[str]
    """Delivery folders (`melior/2026-11-25`) loaded on an earlier run."""
    sha256: dict[str, frozenset[str]]
    """Per system, the digests of the bytes loaded from it."""
    stamps: dict[str, frozenset[FileStamp]] = field(default_factory=dict)
    """Per system, how the files of its loaded deliveries looked when hashed."""


def known_deliveries_in(connection: duckdb.DuckDBPyConnection) -> KnownDeliveries:
    """The loaded folders and, per system, the loaded digests and file stamps."""
    folders = connection.execute(load_sql("ingest/loaded_folders")).fetchall()
    return KnownDeliveries(
        folders=frozenset(str(row[0]) for row in folders),
        sha256={feed: known_sha256(connection, feed) for feed in FEEDS},
        stamps={feed: known_stamps(connection, feed) for feed in FEEDS},
    )


def known_stamps(connection: duckdb.DuckDBPyConnection, system: str) -> frozenset[FileStamp]:
    """How the files of the deliveries loaded from `system` looked when last hashed."""
    rows = connection.execute(load_sql("ingest/loaded_stamps"), {"system": system}).fetchall()
    return frozenset(
        FileStamp(str(folder), str(sha256), int(size), int(mtime_ns))
        for folder, sha256, size, mtime_ns in rows
    )


def store_delivery(
    connection: duckdb.DuckDBPyConnection,
    delivery: DeliveryFolder,
    prepared: PreparedDelivery,
    *,
    run_id: str,
    work_dir: Path,
) -> DeliveryOutcome:
    """Record a prepared delivery's outcome in the warehouse; store its rows if it passed.

    The verdicts that need the warehouse are taken here, in the one writing
    process and in delivery order: whether these bytes were loaded before is
    asked again, so a delivery prepared beside another with the same bytes is
    recorded as their duplicate, exactly as if they had been loaded one by one.
    The delivery's work folder is removed whatever the outcome.
    """
    fmt: SourceFormat = adapter_for(delivery.feed).FORMAT
    try:
        if prepared.verdict == "rejected" and not prepared.past_known_check:
            return _record_rejection(
                connection,
                delivery,
                fmt,
                prepared.sha256,
                prepared.rows,
                prepared.error or "rejected",
                run_id,
            )
        sha256 = prepared.sha256
        assert sha256 is not None  # only a rejection can come without a digest
        known = _known_status(connection, delivery, sha256)
        if known == "loaded":
            if prepared.file_stamp is not None:
                _stamp(connection, delivery_id_of(delivery, sha256), prepared.file_stamp)
            return DeliveryOutcome(delivery.label, delivery.feed, "already_loaded")
        if known == "other_date":
            return _record_duplicate(connection, delivery, fmt, sha256, run_id)
        if prepared.verdict == "rejected":
            return _record_rejection(
                connection,
                delivery,
                fmt,
                sha256,
                prepared.rows,
                prepared.error or "rejected",
                run_id,
            )
        if prepared.verdict == "known":
            # Prepared against a warehouse that knew these bytes and no longer does
            # (a rolled-back run in between): judge the files again, here.
            prepared.discard()
            prepared = prepare_delivery(delivery, work_dir)
            return store_delivery(connection, delivery, prepared, run_id=run_id, work_dir=work_dir)
        return _store_rows(connection, delivery, fmt, prepared, run_id)
    finally:
        prepared.discard()


def _store_rows(
    connection: duckdb.DuckDBPyConnection,
    delivery: DeliveryFolder,
    fmt: SourceFormat,
    prepared: PreparedDelivery,
    run_id: str,
) -> DeliveryOutcome:
    """Store a prepared delivery's rows and quarantine, and record it loaded: one transaction."""
    sha256 = prepared.sha256
    rows = prepared.rows
    assert sha256 is not None and rows is not None and prepared.rejects_file is not None
    delivery_id = delivery_id_of(delivery, sha256)
    canonical_files = prepared.canonical_files
    is_blocks = delivery.feed == BLOCKS_FEED
    connection.execute("BEGIN TRANSACTION")
    try:
        kind = "block" if is_blocks else "record"
        connection.execute(load_sql(f"ingest/insert_{kind}_versions"), {"path": canonical_files})
        valid = first_row(
            connection, load_sql("ingest/count_valid_rows"), {"paths": canonical_files}
        )
        loaded = int(valid[0]) if valid else 0
        connection.execute(
            load_sql(f"ingest/quarantine_bad_{kind}_rows"),
            {
                "delivery_id": delivery_id,
                "system": delivery.feed,
                "canonical": canonical_files,
                "texts": prepared.bad_text_files,
            },
        )
        connection.execute(
            load_sql("ingest/quarantine_rejected_rows"),
            {
                "delivery_id": delivery_id,
                "system": delivery.feed,
                "prefix_ids": not is_blocks,
                "path": prepared.rejects_file,
            },
        )
        quarantined = rows - loaded
        without_id = first_row(
            connection,
            load_sql("ingest/count_quarantined_without_id"),
            {"delivery_id": delivery_id},
        )
        connection.execute(
            load_sql("ingest/record_loaded"),
            {
                "delivery_id": delivery_id,
                "system": delivery.feed,
                "business_date": delivery.business_date,
                "folder": delivery.label,
                "file": fmt.file_name,
                "sha256": sha256,
                "rows": rows,
                "loaded": loaded,
                "quarantined": quarantined,
                "run_id": run_id,
                "now": datetime.now(UTC),
            },
        )
        if prepared.file_stamp is not None:
            _stamp(connection, delivery_id, prepared.file_stamp)
        checkpoint(f"load:{delivery.feed}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return DeliveryOutcome(
        delivery.label,
        delivery.feed,
        "loaded",
        delivery_id=delivery_id,
        records_loaded=loaded,
        rows_quarantined=quarantined,
        rows_quarantined_without_id=int(without_id[0]) if without_id else 0,
        newly_recorded=True,
    )


def _stamp(connection: duckdb.DuckDBPyConnection, delivery_id: str, stamp: FileStamp) -> None:
    """Keep how a loaded delivery's file looked when its bytes were last hashed."""
    connection.execute(
        load_sql("ingest/stamp_delivery"),
        {"delivery_id": delivery_id, "file_bytes": stamp.size, "file_mtime_ns": stamp.mtime_ns},
    )


def _known_status(
    connection: duckdb.DuckDBPyConnection, delivery: DeliveryFolder, sha256: str
) -> str | None:
    """'loaded' if these bytes were loaded for this date; 'other_date' if for another."""
    rows = connection.execute(
        load_sql("ingest/loaded_dates_of_bytes"),
        {"system": delivery.feed, "sha256": sha256},
    ).fetchall()
    dates = {row[0] for row in rows}
    if delivery.business_date in dates:
        return "loaded"
    return "other_date" if dates else None


def _record_rejection(
    connection: duckdb.DuckDBPyConnection,
    delivery: DeliveryFolder,
    fmt: SourceFormat,
    sha256: str | None,
    rows: int | None,
    error: str,
    run_id: str,
) -> DeliveryOutcome:
    """Record a rejection once; seeing the same bytes rejected again adds no row."""
    error_tag = hashlib.sha256(error.encode()).hexdigest()[:8]
    delivery_id = f"{delivery.label}/{(sha256 or 'no-data')[:16]}!{error_tag}"
    inserted = connection.execute(
        load_sql("ingest/record_rejected"),
        {
            "delivery_id": delivery_id,
            "system": delivery.feed,
            "business_date": delivery.business_date,
            "folder": delivery.label,
            "file": fmt.file_name,
            "sha256": sha256,
            "rows": rows,
            "error": error,
            "run_id": run_id,
            "now": datetime.now(UTC),
        },
    ).fetchall()
    return DeliveryOutcome(
        delivery.label,
        delivery.feed,
        "rejected",
        delivery_id=delivery_id,
        error=error,
        newly_recorded=bool(inserted),
    )


def record_later(
    connection: duckdb.DuckDBPyConnection, delivery: DeliveryFolder, run_id: str
) -> bool:
    """Record that a delivery dated after the run's date was seen and left for later.

    Its files are not opened (a later run judges them). Recorded once per folder,
    and only while the folder has not been judged: a rerun for an earlier date
    leaves no `later` row beside a loaded delivery. A `later` row never counts as
    loaded, so the run whose date reaches the delivery loads it. True if new.
    """
    _allow_later_status(connection)
    fmt: SourceFormat = adapter_for(delivery.feed).FORMAT
    inserted = connection.execute(
        load_sql("ingest/record_later"),
        {
            "delivery_id": f"{delivery.label}!later",
            "system": delivery.feed,
            "business_date": delivery.business_date,
            "folder": delivery.label,
            "file": fmt.file_name,
            "run_id": run_id,
            "now": datetime.now(UTC),
        },
    ).fetchall()
    return bool(inserted)


def _allow_later_status(connection: duckdb.DuckDBPyConnection) -> None:
    """Give a warehouse made before the `later` status the current `deliveries` table.

    DuckDB cannot alter a CHECK constraint: the table is rebuilt from its current
    definition, every row kept, in one transaction. A no-op once done.
    """
    checks = connection.execute(load_sql("ingest/deliveries_checks")).fetchall()
    if any("'later'" in (expression or "") for (expression,) in checks):
        return
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(load_sql("ingest/set_aside_deliveries"))
        connection.execute(load_sql("warehouse/create_deliveries"))
        for statement in load_statements("ingest/restore_set_aside_deliveries"):
            connection.execute(statement)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _record_duplicate(
    connection: duckdb.DuckDBPyConnection,
    delivery: DeliveryFolder,
    fmt: SourceFormat,
    sha256: str,
    run_id: str,
) -> DeliveryOutcome:
    """The same bytes were already loaded under another date: recorded, not loaded again."""
    delivery_id = f"{delivery.label}/{sha256[:16]}!duplicate"
    inserted = connection.execute(
        load_sql("ingest/record_duplicate"),
        {
            "delivery_id": delivery_id,
            "system": delivery.feed,
            "business_date": delivery.business_date,
            "folder": delivery.label,
            "file": fmt.file_name,
            "sha256": sha256,
            "run_id": run_id,
            "now": datetime.now(UTC),
        },
    ).fetchall()
    return DeliveryOutcome(
        delivery.label,
        delivery.feed,
        "duplicate",
        delivery_id=delivery_id,
        newly_recorded=bool(inserted),
    )
