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

from flows.common.faults import checkpoint
from flows.common.sql import load_sql
from flows.common.warehouse import WORK_FILE_COMPRESSION, first_row
from flows.load import reader
from flows.load.inbox import DeliveryFolder, DeliveryRejected, read_control, unreadable_reason
from transforms.canonical import BLOCKS_FEED, DeliveryContext
from transforms.sources.base import SourceFormat
from transforms.sources.registry import adapter_for

Status = Literal["loaded", "rejected", "duplicate", "already_loaded"]

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
    work folder full, say) raises: `reader.LocalFailure`, with nothing recorded,
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
        unreadable_data: reader.DeliveryFileError | None = None
        try:
            sha256 = reader.sha256_of(data_path).sha256
        except reader.DeliveryFileError as error:
            unreadable_data = error
        control = read_control(delivery, fmt)
        if unreadable_data is not None:
            raise unreadable_data
    except (DeliveryRejected, reader.DeliveryFileError) as rejection:
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
        utf8_path = reader.prepare_utf8(data_path, fmt, delivery_work)
        reader.check_header(utf8_path, fmt)
        raw = reader.parse_rows(utf8_path, fmt, delivery_work)
    except reader.DeliveryFileError as error:
        return reject(str(error))
    except OSError as error:
        if _inside(error.filename, delivery.path):
            return reject(unreadable_reason(error, delivery, fmt.file_name))
        raise reader.LocalFailure.of(error, delivery_work, "writing the work folder") from None
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
        if reader.errno_of(error) is None:
            raise
        raise reader.LocalFailure.of(error, delivery_work, "writing the work folder") from None
    canonical_files = [str(path) for path in canonical_paths]
    bad_text_files = [str(path) for path in bad_text_paths]

    is_blocks = delivery.feed == BLOCKS_FEED
    connection.execute("BEGIN TRANSACTION")
    try:
        if is_blocks:
            connection.execute(
                "INSERT INTO block_versions BY NAME SELECT * EXCLUDE (error) "
                "FROM read_parquet($path) WHERE error IS NULL",
                {"path": canonical_files},
            )
            id_column, version_column, patient = "block_id", "block_version", "c.patient_id"
        else:
            connection.execute(
                "INSERT INTO record_versions BY NAME SELECT * EXCLUDE (error) "
                "FROM read_parquet($path) WHERE error IS NULL",
                {"path": canonical_files},
            )
            id_column, version_column, patient = "record_id", "record_version", "NULL"
        loaded = _count(connection, canonical_files, "error IS NULL")
        connection.execute(
            f"""INSERT INTO quarantine
                SELECT $delivery_id, $system, c.source_row, c.{id_column}, c.{version_column},
                       {patient}, c.error, t.raw_text
                FROM read_parquet($canonical) AS c
                LEFT JOIN read_parquet($texts) AS t USING (source_row)
                WHERE c.error IS NOT NULL""",
            {
                "delivery_id": delivery_id,
                "system": delivery.feed,
                "canonical": canonical_files,
                "texts": bad_text_files,
            },
        )
        connection.execute(
            """INSERT INTO quarantine
               SELECT $delivery_id, $system, source_row,
                      CASE WHEN $prefix_ids THEN $system || ':' || record_key ELSE record_key END,
                      record_version, NULL, error, raw_text
               FROM read_parquet($path)""",
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
            "SELECT count(*) FROM quarantine WHERE delivery_id = $delivery_id "
            "AND record_id IS NULL",
            {"delivery_id": delivery_id},
        )
        connection.execute(
            """INSERT INTO deliveries VALUES ($delivery_id, $system, $business_date, $folder,
               $file, $sha256, $rows, 'loaded', NULL, nextval('load_seq'), $loaded,
               $quarantined, $run_id, $now)""",
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


def _count(connection: duckdb.DuckDBPyConnection, paths: list[str], condition: str) -> int:
    row = first_row(
        connection,
        f"SELECT count(*) FROM read_parquet($paths) WHERE {condition}",
        {"paths": paths},
    )
    return int(row[0]) if row else 0


def _known_status(
    connection: duckdb.DuckDBPyConnection, delivery: DeliveryFolder, sha256: str
) -> str | None:
    """'loaded' if these bytes were loaded for this date; 'other_date' if for another."""
    rows = connection.execute(
        "SELECT business_date FROM deliveries WHERE system = $system AND sha256 = $sha256 "
        "AND status = 'loaded'",
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
        """INSERT INTO deliveries VALUES ($delivery_id, $system, $business_date, $folder, $file,
           $sha256, $rows, 'rejected', $error, NULL, 0, 0, $run_id, $now)
           ON CONFLICT DO NOTHING RETURNING delivery_id""",
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
        """INSERT INTO deliveries
           SELECT $delivery_id, $system, $business_date, $folder, $file, NULL, NULL, 'later',
                  'business date after the run''s date: left for a later run',
                  NULL, 0, 0, $run_id, $now
           WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE folder = $folder)
           ON CONFLICT DO NOTHING RETURNING delivery_id""",
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
    checks = connection.execute(
        "SELECT expression FROM duckdb_constraints() "
        "WHERE table_name = 'deliveries' AND constraint_type = 'CHECK'"
    ).fetchall()
    if any("'later'" in (expression or "") for (expression,) in checks):
        return
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute("ALTER TABLE deliveries RENAME TO deliveries_before_later")
        connection.execute(load_sql("warehouse/create_deliveries"))
        connection.execute("INSERT INTO deliveries SELECT * FROM deliveries_before_later")
        connection.execute("DROP TABLE deliveries_before_later")
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
        """INSERT INTO deliveries VALUES ($delivery_id, $system, $business_date, $folder, $file,
           $sha256, NULL, 'duplicate', 'identical to a delivery already loaded for another date',
           NULL, 0, 0, $run_id, $now)
           ON CONFLICT DO NOTHING RETURNING delivery_id""",
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
