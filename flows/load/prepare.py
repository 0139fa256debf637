"""Preparing one delivery: the file side of loading, with no warehouse in reach.

Checksum, control file, encoding, header, parsing and the adapter run here, on
whatever process or Dask worker has the inbox and the run's work folder
mounted; what comes out is a `PreparedDelivery`: a verdict (rejected, bytes
already known, or prepared) and, when prepared, the canonical rows as Parquet
parts in the delivery's own work folder. Storing it (`flows/load/ingest.py`)
is the flow's, in the warehouse's one writing process, in delivery order.

Many deliveries can be prepared at once (each has its own work folder); the
verdicts that need the warehouse (were these bytes loaded before?) are taken
again when the delivery is stored, so preparing on a stale view of the
warehouse can cost work, never a wrong outcome.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal

import polars as pl

from flows.common.errors import DeliveryFileError, LocalFailure, errno_of
from flows.common.warehouse import WORK_FILE_COMPRESSION
from flows.load import reader
from flows.load.encoding import LineBreaks, long_line_reason, read_delivered
from flows.load.inbox import (
    ControlFile,
    DeliveryFolder,
    DeliveryRejected,
    FileStamp,
    file_stat,
    read_control,
    unreadable_reason,
)
from transforms.canonical import DeliveryContext
from transforms.sources.base import SourceFormat
from transforms.sources.registry import adapter_for

ROWS_PER_SLICE = 1_000_000
"""Parsed rows the adapter streams in one query: bounds loading memory (~0.5 GiB)."""

Verdict = Literal["prepared", "rejected", "known"]


@dataclass(frozen=True)
class PreparedDelivery:
    """What the file side found in one delivery; plain values, safe to send between processes.

    `known`: these exact bytes were loaded before (for this date or another), so
    nothing was parsed; the warehouse tells which when the delivery is stored.
    """

    verdict: Verdict
    sha256: str | None = None
    error: str | None = None
    """Why the delivery is rejected: names files and positions, never their content."""
    rows: int | None = None
    """Data rows in the file (parsed plus rejected), once counted."""
    work_folder: str | None = None
    canonical_files: list[str] = field(default_factory=list)
    bad_text_files: list[str] = field(default_factory=list)
    rejects_file: str | None = None
    past_known_check: bool = False
    """The verdict was reached after asking whether the bytes were known: storing asks
    again first (a delivery that repeats known bytes is their duplicate, whatever
    else is wrong with it), as loading one by one would."""
    file_stamp: FileStamp | None = None
    """How the data file looked while its bytes were hashed (unchanged throughout):
    kept with the delivery when it is stored as loaded, or found loaded before."""

    def discard(self) -> None:
        """Remove the delivery's work folder (stored, or not to be stored)."""
        if self.work_folder:
            shutil.rmtree(self.work_folder, ignore_errors=True)


def delivery_work_folder(work_dir: Path, delivery: DeliveryFolder) -> Path:
    """The delivery's own folder in the run's work folder: one per delivery, so that
    deliveries can be prepared side by side."""
    return work_dir / "deliveries" / delivery.feed / delivery.business_date.isoformat()


def delivery_id_of(delivery: DeliveryFolder, sha256: str) -> str:
    """The id a loaded delivery is stored under (and its rows are tagged with)."""
    return f"{delivery.label}/{sha256[:16]}"


@contextmanager
def shared_parser(work_dir: Path) -> Iterator[reader.ParsingDatabase]:
    """One DuckDB database to parse a batch of deliveries in, one after another
    (`reader.ParsingDatabase`), spilling into a private folder of the run's work
    folder, removed afterwards. Raises LocalFailure when that folder cannot be made."""
    try:
        spill_dir = Path(tempfile.mkdtemp(prefix="parse-spill-", dir=work_dir))
    except OSError as error:
        raise LocalFailure.of(error, work_dir, "writing the work folder") from None
    database = reader.ParsingDatabase(spill_dir)
    try:
        yield database
    finally:
        database.close()
        shutil.rmtree(spill_dir, ignore_errors=True)


def prepare_delivery(
    delivery: DeliveryFolder,
    work_dir: Path,
    known_sha256: frozenset[str] = frozenset(),
    known_stamps: frozenset[FileStamp] = frozenset(),
    parser: reader.ParsingDatabase | None = None,
) -> PreparedDelivery:
    """Judge a delivery's files and, if they pass, adapt its rows into Parquet parts.

    `known_sha256`: digests of this system's bytes the warehouse already holds as
    loaded; such a delivery is not parsed again. Never raises for bad input:
    whatever the sender's files hold or are, the verdict is `rejected` with a
    reason. Only this machine's own failure (its work folder full) raises
    `LocalFailure`.

    The data file's bytes are read once for the checksum, the encoding and the
    line lengths (`read_delivered`), and once more by DuckDB's parse. A delivery
    whose control file names bytes the warehouse holds (every nightly run sees
    the old deliveries still in the inbox), or whose control file is rejected,
    is only hashed: that decides its verdict. Not even that when `known_stamps`
    holds the folder's file as it is now (same digest named, same size and
    modification time): it is the delivery loaded before, not read again.
    `parser`: a database shared with the batch's other deliveries (`shared_parser`);
    without it the parse opens one of its own.
    """
    adapter = adapter_for(delivery.feed)
    fmt: SourceFormat = adapter.FORMAT
    data_path = delivery.path / fmt.file_name
    # Control-file problems are reported before the data file's; a rejection
    # still names the data file's bytes, hashed never through a link out of the inbox.
    control: ControlFile | None = None
    control_problem: str | None = None
    try:
        control = read_control(delivery, fmt)
    except (DeliveryRejected, DeliveryFileError) as rejection:
        control_problem = str(rejection)
    except OSError as error:
        control_problem = unreadable_reason(error, delivery, fmt.file_name)
    if control is not None and control.sha256 in known_sha256:
        seen = file_stat(data_path)
        if seen is not None and FileStamp(delivery.label, control.sha256, *seen) in known_stamps:
            return PreparedDelivery("known", sha256=control.sha256)
    if control is None or control.sha256 in known_sha256:
        return _judge_by_digest(delivery, data_path, control, control_problem, known_sha256)

    delivery_work = delivery_work_folder(work_dir, delivery)
    shutil.rmtree(delivery_work, ignore_errors=True)
    prepared = False
    try:
        before = file_stat(data_path)
        try:
            delivered = read_delivered(data_path, fmt, delivery_work)
        except DeliveryFileError as error:
            return PreparedDelivery("rejected", error=str(error))
        sha256 = delivered.sha256
        stamp = _stamp_if_unchanged(delivery, data_path, sha256, before)
        if sha256 in known_sha256:
            return PreparedDelivery("known", sha256=sha256, file_stamp=stamp)
        if sha256 != control.sha256:
            return _checksum_mismatch(sha256)
        context = DeliveryContext(
            delivery_id_of(delivery, sha256), delivery.feed, delivery.business_date
        )
        try:
            utf8_path = delivered.utf8()
            reader.check_header(utf8_path, fmt)
            if delivered.long_line is not None:
                raise DeliveryFileError(long_line_reason(delivered.long_line))
            adapted = adapt_in_slices(
                utf8_path,
                fmt,
                adapter,
                context,
                delivery_work,
                ROWS_PER_SLICE,
                delivered.line_breaks,
                parser,
            )
        except DeliveryFileError as error:
            return PreparedDelivery(
                "rejected", sha256=sha256, error=str(error), past_known_check=True
            )
        except OSError as error:
            if _inside(error.filename, delivery.path):
                return PreparedDelivery(
                    "rejected",
                    sha256=sha256,
                    past_known_check=True,
                    error=unreadable_reason(error, delivery, fmt.file_name),
                )
            raise LocalFailure.of(error, delivery_work, "writing the work folder") from None
        if adapted.row_count != control.rows:
            return PreparedDelivery(
                "rejected",
                sha256=sha256,
                past_known_check=True,
                rows=adapted.row_count,
                error=f"row count mismatch: the control file says {control.rows}, "
                f"the file holds {adapted.row_count} data rows",
            )
        rejects_path = delivery_work / "rejects.parquet"
        try:
            adapted.written()
            _rejects_with_ids(adapted.rejects).write_parquet(rejects_path)
        except (OSError, pl.exceptions.ComputeError) as error:
            # Writing the work folder failed (disk full): this machine's failure.
            if errno_of(error) is None:
                raise
            raise LocalFailure.of(error, delivery_work, "writing the work folder") from None
        prepared = True
        return PreparedDelivery(
            "prepared",
            sha256=sha256,
            rows=adapted.row_count,
            work_folder=str(delivery_work),
            canonical_files=[str(path) for path in adapted.canonical_files],
            bad_text_files=[str(path) for path in adapted.bad_text_files],
            rejects_file=str(rejects_path),
            file_stamp=stamp,
        )
    finally:
        if not prepared:
            shutil.rmtree(delivery_work, ignore_errors=True)


def _judge_by_digest(
    delivery: DeliveryFolder,
    data_path: Path,
    control: ControlFile | None,
    control_problem: str | None,
    known_sha256: frozenset[str],
) -> PreparedDelivery:
    """The verdict of a delivery that the data file's digest alone decides.

    Its control file is rejected (`control_problem`), or names bytes the
    warehouse holds: then the delivery is known, or its checksum does not match.
    """
    before = file_stat(data_path)
    try:
        sha256 = reader.sha256_of(data_path).sha256
    except DeliveryFileError as error:
        return PreparedDelivery("rejected", error=control_problem or str(error))
    if control_problem is not None or control is None:
        return PreparedDelivery("rejected", sha256=sha256, error=control_problem)
    if sha256 in known_sha256:
        stamp = _stamp_if_unchanged(delivery, data_path, sha256, before)
        return PreparedDelivery("known", sha256=sha256, file_stamp=stamp)
    # The control file names known bytes, and these are not them.
    return _checksum_mismatch(sha256)


def _stamp_if_unchanged(
    delivery: DeliveryFolder, data_path: Path, sha256: str, before: tuple[int, int] | None
) -> FileStamp | None:
    """The file's stamp for these bytes, if it looked the same before and after they
    were read (a file written to meanwhile gets none, and is hashed again next run)."""
    if before is None or file_stat(data_path) != before:
        return None
    return FileStamp(delivery.label, sha256, *before)


def _checksum_mismatch(sha256: str) -> PreparedDelivery:
    return PreparedDelivery(
        "rejected",
        sha256=sha256,
        past_known_check=True,
        error="checksum mismatch: the data file's sha256 differs from the control file's",
    )


@dataclass(frozen=True)
class AdaptedDelivery:
    """A delivery's rows, parsed and adapted into Parquet parts in its work folder."""

    canonical_files: list[Path]
    bad_text_files: list[Path]
    """The sender's text of the rows the adapter found bad, per part: `source_row`, `raw_text`."""
    rejects: pl.DataFrame
    """The rows DuckDB could not split into fields (`reader.ParsedRows.rejects`)."""
    row_count: int
    """Data records in the file: parsed plus rejected."""
    write_failure: OSError | pl.exceptions.ComputeError | None = None
    """Writing a part failed (the work folder full): the parse went on to its end,
    so that the delivery's own verdicts (a parse error, the row count) come first."""

    def written(self) -> None:
        """Raise the error writing the parts met, if any."""
        if self.write_failure is not None:
            raise self.write_failure


def adapt_in_slices(
    utf8_path: Path,
    fmt: SourceFormat,
    adapter: ModuleType,
    context: DeliveryContext,
    delivery_work: Path,
    rows_per_slice: int,
    line_breaks: LineBreaks | None = None,
    parser: reader.ParsingDatabase | None = None,
) -> AdaptedDelivery:
    """Parse the file and run the adapter over its rows a slice at a time, into Parquet parts.

    polars' streaming engine holds more memory the more rows one query streams
    (a 22.6 M-line history delivery took 7.6 GiB in one query, under 0.9 GiB in
    slices of 2 M), so a delivery of any size is adapted in fixed slices, each as
    DuckDB's parse hands it over: peak memory is set by the slice, not the file.
    Each slice also keeps the sender's text of its bad rows, for quarantine.
    Parts are in file order; there is always at least one of each.

    A slice is adapted before the rows DuckDB rejects are all known, so its rows
    are numbered by their position among the parsed rows; when the file had
    rejected rows (rare), the parts are then renumbered by file row in one pass
    over them (`reader.source_rows`); `line_breaks` (from `read_delivered`) lets
    the reader number them without reading the file again. Raises
    DeliveryFileError when DuckDB cannot parse the file; an error writing the
    parts is kept in `write_failure`.
    """
    canonical_dir = delivery_work / "canonical"
    bad_text_dir = delivery_work / "bad_rows_text"
    canonical_dir.mkdir(parents=True, exist_ok=True)
    bad_text_dir.mkdir(parents=True, exist_ok=True)
    canonical_paths: list[Path] = []
    bad_text_paths: list[Path] = []
    write_failure: OSError | pl.exceptions.ComputeError | None = None
    slices = reader.parse_in_slices(
        utf8_path, fmt, delivery_work, rows_per_slice, line_breaks, database=parser
    )
    number = 0
    while True:
        try:
            rows = next(slices)
        except StopIteration as done:
            parsed: reader.ParsedRows = done.value
            break
        if write_failure is not None:
            continue
        canonical_path = canonical_dir / f"part-{number:05d}.parquet"
        bad_text_path = bad_text_dir / f"part-{number:05d}.parquet"
        number += 1
        try:
            _adapt_slice(rows, fmt, adapter, context, canonical_path, bad_text_path)
        except (OSError, pl.exceptions.ComputeError) as error:
            write_failure = error
            continue
        canonical_paths.append(canonical_path)
        bad_text_paths.append(bad_text_path)
    if write_failure is None and not parsed.rejects.is_empty():
        try:
            for path in [*canonical_paths, *bad_text_paths]:
                _renumber(path, parsed.rejects)
        except (OSError, pl.exceptions.ComputeError) as error:
            write_failure = error
    return AdaptedDelivery(
        canonical_paths, bad_text_paths, parsed.rejects, parsed.row_count, write_failure
    )


def _adapt_slice(
    rows: pl.DataFrame,
    fmt: SourceFormat,
    adapter: ModuleType,
    context: DeliveryContext,
    canonical_path: Path,
    bad_text_path: Path,
) -> None:
    """One slice of parsed rows into a canonical part and a part of its bad rows' text."""
    raw_rows = rows.lazy().select([*fmt.raw_columns, pl.col("parsed_row").alias("source_row")])
    adapter.to_canonical(raw_rows, context).sink_parquet(
        canonical_path, compression=WORK_FILE_COMPRESSION
    )
    bad_rows = pl.scan_parquet(canonical_path).filter(pl.col("error").is_not_null())
    raw_rows.join(bad_rows.select("source_row"), on="source_row", how="semi").select(
        "source_row", raw_text=reader.raw_text(fmt)
    ).sink_parquet(bad_text_path, compression=WORK_FILE_COMPRESSION)


def _renumber(part: Path, rejects: pl.DataFrame) -> None:
    """Turn a part's `source_row` from position among parsed rows into file row."""
    renumbered = part.with_name(part.name + ".renumbered")
    pl.scan_parquet(part).with_columns(
        source_row=reader.source_rows(pl.col("source_row"), rejects)
    ).sink_parquet(renumbered, compression=WORK_FILE_COMPRESSION)
    renumbered.replace(part)


def _rejects_with_ids(rejects: pl.DataFrame) -> pl.DataFrame:
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
