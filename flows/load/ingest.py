"""Loading one delivery into the warehouse: check, read, adapt, store, all or nothing.

The order is the contract's: the control file is checked first, then the
bytes' checksum, encoding and header, then the rows are parsed and counted; only
a delivery that passes all of that is stored, in one transaction, so a crash
leaves it either wholly loaded or not at all (and a rerun loads it then).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Literal

import duckdb
import polars as pl

from flows.common.errors import DeliveryFileError, LocalFailure, errno_of
from flows.common.faults import checkpoint
from flows.common.sql import load_sql, load_statements, preload
from flows.common.warehouse import WORK_FILE_COMPRESSION, first_row
from flows.load import reader
from flows.load.encoding import prepare_utf8
from flows.load.inbox import DeliveryFolder, DeliveryRejected, read_control, unreadable_reason
from transforms.canonical import BLOCKS_FEED, DeliveryContext
from transforms.sources.base import SourceFormat
from transforms.sources.registry import adapter_for

Status = Literal["loaded", "rejected", "duplicate", "already_loaded"]

# The statements are read at import: while a delivery is judged, the only files
# opened are the delivery's own (tests/load/test_fuzz_adapters.py watches).
preload("ingest")

ROWS_PER_SLICE = 1_000_000
"""Parsed rows the adapter streams in one query: bounds loading memory (~0.5 GiB)."""


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
    """Judge and (if it passes) store one delivery. Never raises for bad input.

    Whatever the sender's files hold or are (nested, huge, a FIFO, unreadable),
    the delivery is rejected with a reason. Only this machine's own failure (the
    work folder full, say) raises: `LocalFailure`, with nothing recorded,
    so that the run fails and the next one judges the delivery again.
    """
    adapter = adapter_for(delivery.feed)
    fmt: SourceFormat = adapter.FORMAT
    data_path = delivery.path / fmt.file_name
    sha256: str | None = None

    def reject(error: str, rows: int | None = None) -> DeliveryOutcome:
        return _record_rejection(connection, delivery, fmt, sha256, rows, error, run_id)

    try:
        # Checksummed first, so a rejection names these bytes; never through a
        # link out of the inbox. Why the data file cannot be read is told only
        # once the control file holds: its problems are reported first.
        unreadable_data: DeliveryFileError | None = None
        try:
            sha256 = reader.sha256_of(data_path).sha256
        except DeliveryFileError as error:
            unreadable_data = error
        control = read_control(delivery, fmt)
        if unreadable_data is not None:
            raise unreadable_data
    except (DeliveryRejected, DeliveryFileError) as rejection:
        return reject(str(rejection))
    except OSError as error:
        return reject(unreadable_reason(error, delivery, fmt.file_name))
    assert sha256 is not None  # sha256_of read the data file
    known = _known_status(connection, delivery, sha256)
    if known == "loaded":
        return DeliveryOutcome(delivery.label, delivery.feed, "already_loaded")
    if known == "other_date":
        return _record_duplicate(connection, delivery, fmt, sha256, run_id)
    if sha256 != control.sha256:
        return reject("checksum mismatch: the data file's sha256 differs from the control file's")

    delivery_work = work_dir / "deliveries" / delivery.feed
    shutil.rmtree(delivery_work, ignore_errors=True)
    try:
        utf8_path = prepare_utf8(data_path, fmt, delivery_work)
        reader.check_header(utf8_path, fmt)
        raw = reader.parse_rows(utf8_path, fmt, delivery_work)
    except DeliveryFileError as error:
        return reject(str(error))
    except OSError as error:
        if _inside(error.filename, delivery.path):
            return reject(unreadable_reason(error, delivery, fmt.file_name))
        raise LocalFailure.of(error, delivery_work, "writing the work folder") from None
    if raw.row_count != control.rows:
        return reject(
            f"row count mismatch: the control file says {control.rows}, "
            f"the file holds {raw.row_count} data rows",
            rows=raw.row_count,
        )

    delivery_id = f"{delivery.label}/{sha256[:16]}"
    context = DeliveryContext(delivery_id, delivery.feed, delivery.business_date)
    rejects_path = delivery_work / "rejects.parquet"
    try:
        canonical_paths, bad_text_paths = _adapt_in_slices(
            raw, fmt, adapter, context, delivery_work, ROWS_PER_SLICE
        )
        _rejects_with_ids(raw.rejects, fmt).write_parquet(rejects_path)
    except (OSError, pl.exceptions.ComputeError) as error:
        # Writing the work folder failed (disk full): this machine's failure.
        if errno_of(error) is None:
            raise
        raise LocalFailure.of(error, delivery_work, "writing the work folder") from None
    canonical_files = [str(path) for path in canonical_paths]
    bad_text_files = [str(path) for path in bad_text_paths]

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
                "texts": bad_text_files,
            },
        )
        connection.execute(
            load_sql("ingest/quarantine_rejected_rows"),
            {
                "delivery_id": delivery_id,
                "system": delivery.feed,
                "prefix_ids": not is_blocks,
                "path": str(rejects_path),
            },
        )
        quarantined = raw.row_count - loaded
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
                "rows": raw.row_count,
                "loaded": loaded,
                "quarantined": quarantined,
                "run_id": run_id,
                "now": datetime.now(UTC),
            },
        )
        checkpoint(f"load:{delivery.feed}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        shutil.rmtree(delivery_work, ignore_errors=True)
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


def _adapt_in_slices(
    raw: reader.RawDelivery,
    fmt: SourceFormat,
    adapter: ModuleType,
    context: DeliveryContext,
    delivery_work: Path,
    rows_per_slice: int,
) -> tuple[list[Path], list[Path]]:
    """Run the adapter over the parsed rows a slice at a time, into Parquet parts.

    polars' streaming engine holds more memory the more rows one query streams
    (a 22.6 M-line history delivery took 7.6 GiB in one query, under 0.9 GiB in
    slices of 2 M), so a delivery of any size is adapted in fixed slices: peak
    memory is set by the slice, not the file. Each slice also keeps the sender's
    text of its bad rows, for quarantine. Returns the canonical parts and the
    bad-row text parts, in file order; there is always at least one of each.
    """
    canonical_dir = delivery_work / "canonical"
    bad_text_dir = delivery_work / "bad_rows_text"
    canonical_dir.mkdir(parents=True, exist_ok=True)
    bad_text_dir.mkdir(parents=True, exist_ok=True)
    parsed_rows = raw.row_count - raw.rejects.height
    canonical_paths: list[Path] = []
    bad_text_paths: list[Path] = []
    # One slice even for a file with no parsed rows, so that the parts have a schema.
    for number, offset in enumerate(range(0, max(parsed_rows, 1), rows_per_slice)):
        raw_rows = reader.scan_raw(raw, fmt, offset, rows_per_slice)
        canonical_path = canonical_dir / f"part-{number:05d}.parquet"
        adapter.to_canonical(raw_rows, context).sink_parquet(
            canonical_path, compression=WORK_FILE_COMPRESSION
        )
        bad_rows = pl.scan_parquet(canonical_path).filter(pl.col("error").is_not_null())
        bad_text_path = bad_text_dir / f"part-{number:05d}.parquet"
        raw_rows.join(bad_rows.select("source_row"), on="source_row", how="semi").select(
            "source_row", raw_text=reader.raw_text(fmt)
        ).sink_parquet(bad_text_path, compression=WORK_FILE_COMPRESSION)
        canonical_paths.append(canonical_path)
        bad_text_paths.append(bad_text_path)
    return canonical_paths, bad_text_paths


def _rejects_with_ids(rejects: pl.DataFrame, fmt: SourceFormat) -> pl.DataFrame:
    """Structural rejects, with the record id and version when they are still readable.

    The reader read them from the whole row in the file (a reject's `raw_text`
    is cut to 10,000 characters): in every CSV contract the id is the first
    field and the version the second; NDJSON lines are asked for `id` and `rev`.
    """
    version = pl.col("record_version")
    version_number = (
        pl.when(version.str.contains(r"^\s*[0-9]{1,15}\s*$"))
        .then(version.str.strip_chars())
        .cast(pl.Int64, strict=False)
    )
    return rejects.select(
        "source_row",
        record_key=pl.when(pl.col("record_key").str.len_chars() > 0).then(pl.col("record_key")),
        record_version=pl.when(version_number >= 1).then(version_number),
        error=pl.col("error"),
        raw_text=pl.col("raw_text"),
    )


def _inside(filename: object, folder: Path) -> bool:
    """Is the path an OSError names inside `folder`? False when it names none."""
    if not isinstance(filename, (str, bytes)) or not filename:
        return False
    return Path(os.fsdecode(filename)).is_relative_to(folder)


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
