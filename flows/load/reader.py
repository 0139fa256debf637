"""Reading one delivered data file into all-string rows, per the adapter's format.

This is the I/O half of an adapter: it knows files, encodings and CSV structure,
nothing about a system's fields. It

1. streams the file once for its sha256, its encoding (a Windows-1252 file is
   transcoded to UTF-8 on the way, in chunks, because DuckDB reads only UTF-8
   and Latin-1) and its line lengths (`flows/load/encoding.py`);
2. checks the header against the contract;
3. has DuckDB parse the records (quoted newlines, doubled quotes, CRLF) into
   string columns, handed to polars as Arrow batches a slice at a time. A row
   that breaks the CSV structure (too many or too few fields, bad quoting, an
   over-long line) is caught by DuckDB's reject store and comes back as a
   quarantine row with its raw text.

Nothing here raises with a message that quotes the file's content: errors name
the file, the row position and the problem.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from flows.common.errors import DeliveryFileError, LocalFailure, errno_of
from flows.common.sql import load_sql
from flows.common.warehouse import limit_resources
from flows.load import json_fields, skipped_lines
from flows.load.bad_rows import reject_ids
from flows.load.encoding import (
    CHUNK,
    MAX_LINE_BYTES,
    BreakCounts,
    LineBreaks,
    cannot_read,
    long_line_reason,
    open_regular,
    prepare_utf8,
    scan_line_lengths,
)
from transforms.sources.base import SourceFormat

__all__ = [
    "DeliveryFileError",
    "FileDigest",
    "LocalFailure",
    "ParsedRows",
    "ParsingDatabase",
    "RawDelivery",
    "check_header",
    "errno_of",
    "parse_in_slices",
    "parse_rows",
    "prepare_utf8",
    "raw_text",
    "scan_raw",
    "sha256_of",
    "source_rows",
]
"""Reading a delivered file, in the order ingest calls it (the encoding's half is in
`flows/load/encoding.py`, the ids of rejected rows in `flows/load/bad_rows.py`)."""

_MIN_BATCH_ROWS = 2_048
_MAX_BATCH_ROWS = 131_072
"""Rows in one Arrow batch from DuckDB: a slice is gathered from whole batches."""


@dataclass(frozen=True)
class FileDigest:
    """What one streaming pass over the delivered bytes found."""

    sha256: str
    size: int


@dataclass(frozen=True)
class RawDelivery:
    """A delivered file, parsed into strings in memory, not yet interpreted (`parse_rows`)."""

    rows: pl.DataFrame
    """One String column per contract column, plus Int64 `parsed_row` (`parse_in_slices`)."""
    rejects: pl.DataFrame
    """As `ParsedRows.rejects`."""
    row_count: int
    """Data records in the file: parsed plus rejected."""


def sha256_of(path: Path) -> FileDigest:
    """Stream a file's bytes once for its sha256 (and nothing else: bytes loaded before).

    Only a regular file is read, never through a link, never blocking on a FIFO;
    a file that cannot be read (no permission, an I/O error) is a DeliveryFileError.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with open_regular(path) as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as error:
        raise DeliveryFileError(f"data file {path.name} {cannot_read(error)}") from None
    return FileDigest(sha256=digest.hexdigest(), size=size)


def _header(utf8_path: Path, fmt: SourceFormat) -> list[str]:
    """The names in the file's first record, trimmed."""
    with utf8_path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=fmt.delimiter, quotechar=fmt.quote)
        try:
            header = next(reader)
        except (StopIteration, csv.Error):
            raise DeliveryFileError("file has no readable header row") from None
    return [name.strip() for name in header]


def check_header(utf8_path: Path, fmt: SourceFormat) -> None:
    """The first record must be exactly the contract's header, in order.

    A contract's optional columns may follow, all of them in order, or none.
    """
    if fmt.kind != "csv":
        return
    found = _header(utf8_path, fmt)
    if found in (list(fmt.columns), list(fmt.raw_columns)):
        return
    missing = [name for name in fmt.columns if name not in found]
    # Only positions of the sender's names: a file without its header row has a
    # data row (personnummer, text) where the names should be.
    unexpected = [str(i) for i, name in enumerate(found, start=1) if name not in fmt.columns]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected column(s) at position(s) {', '.join(unexpected)}")
    if len(found) != len(fmt.columns):
        problems.append(f"{len(found)} columns, the contract has {len(fmt.columns)}")
    if not problems:
        problems.append("columns out of the contract's order")
    raise DeliveryFileError("header does not match the contract: " + "; ".join(problems))


class ParsingDatabase:
    """An in-memory DuckDB database that parses deliveries, one cursor each.

    Opening a DuckDB database costs about 27 ms, a cursor on an open one next to
    nothing, and a small delivery parses in a few milliseconds: deliveries
    prepared one after another (a batch of a system's small ones, a night's)
    share one. It opens on first use (a batch of deliveries loaded before parses
    nothing), with the job's memory budget and `spill_dir` to spill to; the
    caller closes it and removes that folder.
    """

    def __init__(self, spill_dir: Path) -> None:
        self.spill_dir = spill_dir
        self._database: duckdb.DuckDBPyConnection | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own (its own reject tables) to the shared database."""
        if self._database is None:
            database = duckdb.connect()
            try:
                limit_resources(database, self.spill_dir)
                # Rows are numbered in file order (`parsed_row`); a global setting.
                database.execute("SET preserve_insertion_order = true")
            except BaseException:
                database.close()
                raise
            self._database = database
        cursor = self._database.cursor()
        cursor.execute("SET enable_progress_bar = false")  # a setting of each connection
        return cursor

    def close(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None


@dataclass(frozen=True)
class ParsedRows:
    """What parsing a whole file found, besides its parsed rows."""

    rejects: pl.DataFrame
    """Rows DuckDB could not split into fields: `source_row`, `raw_text` (DuckDB keeps
    the first 10,000 characters), `error`, and `record_key` / `record_version` (text,
    null when unreadable): the row's id and version, read from the whole row."""
    row_count: int
    """Data records in the file: parsed plus rejected."""


def parse_in_slices(
    utf8_path: Path,
    fmt: SourceFormat,
    work_dir: Path,
    rows_per_slice: int,
    line_breaks: LineBreaks | None = None,
    database: ParsingDatabase | None = None,
) -> Generator[pl.DataFrame, None, ParsedRows]:
    """Split the records into string fields with DuckDB, yielding them a slice at a time.

    Each slice holds `rows_per_slice` parsed rows (the last fewer; a file without
    parsed rows yields one empty slice, for the schema): one String column per
    contract column and Int64 `parsed_row`, the row's 1-based position among the
    parsed rows. DuckDB's rows reach polars as Arrow batches, with no staging
    file, so memory is bounded by the slice. Where a row sits in the file
    (`source_row`) depends on the rejected rows before it, which DuckDB's reject
    store tells only once the scan ends: the generator's return value tells
    them, and `source_rows` turns `parsed_row` into `source_row`.

    The caller has checked line lengths (`read_delivered`); `parse_rows` checks
    them itself. `line_breaks`, the CSV file's line-break bytes as that pass
    counted them, spares the reject numbering a pass of its own over the file
    when they show the file has no empty line (`flows/load/skipped_lines.py`).
    `database`: the shared one to parse in (`ParsingDatabase`), closed (to be
    opened anew) if the parse fails; without it, one of its own, spilling into
    `work_dir`.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    # A file without the contract's optional columns reads as if they were empty.
    present = fmt.columns
    if fmt.optional_columns and _header(utf8_path, fmt) == list(fmt.raw_columns):
        present = fmt.raw_columns
    absent = [name for name in fmt.optional_columns if name not in present]
    columns = {name: "VARCHAR" for name in present}
    if fmt.kind == "csv":
        options = {
            "delim": fmt.delimiter,
            "quote": fmt.quote,
            "escape": fmt.quote,
            "header": True,
        }
    else:
        # One JSON object a line: no CSV quoting, a delimiter JSON text cannot hold
        # unescaped, so each line arrives whole as one field.
        options = {"delim": "\x1f", "quote": "", "escape": "", "header": False}
    own = database is None
    if database is None:
        database = ParsingDatabase(work_dir / "spill")
    try:
        connection = database.cursor()
    except BaseException:
        database.close()
        raise
    spill_dir = database.spill_dir
    parsed_whole = False
    try:
        padding = "".join(f", NULL::VARCHAR AS {name}" for name in absent)
        read = (
            f"SELECT *{padding} FROM read_csv($path, auto_detect = false, columns = $columns, "
            "delim = $delim, quote = $quote, escape = $escape, header = $header, "
            "strict_mode = true, null_padding = false, all_varchar = true, "
            "max_line_size = $max_line, encoding = 'utf-8', store_rejects = true, "
            "rejects_table = 'rejected_lines', rejects_scan = 'rejected_scans')"
        )
        if fmt.kind == "ndjson":
            # A blank line is not a row (the contract): DuckDB reads an empty one as
            # NULL and keeps white space, so both are dropped here, uncounted. A line
            # opening with a brace is not blank: trimming every line copied it (at
            # 4.5 M lines the filter took 5.8 s, now 0.1 s).
            read = (
                f"SELECT * FROM ({read}) WHERE CASE WHEN starts_with(line, '{{') THEN true "
                "WHEN line IS NULL THEN false ELSE trim(line, $blank) <> '' END"
            )
        parameters = {
            "path": str(utf8_path),
            "columns": columns,
            "max_line": MAX_LINE_BYTES,
            **options,
            **({"blank": skipped_lines.JSON_WHITE_SPACE} if fmt.kind == "ndjson" else {}),
        }
        with_json = json_fields.applies(fmt)
        query = (
            json_fields.select_fields(read, fmt)
            if with_json
            else f"SELECT {', '.join(fmt.raw_columns)} FROM ({read})"
        )
        parsed = 0
        # Line breaks inside the parsed fields, against the file's (`skipped_lines`).
        breaks_in_fields = BreakCounts()
        count_breaks = fmt.kind == "csv" and line_breaks is not None
        with_returns = line_breaks is not None and line_breaks.carriage_returns > 0
        try:
            batches = connection.sql(query, params=parameters).to_arrow_reader(
                max(_MIN_BATCH_ROWS, min(rows_per_slice, _MAX_BATCH_ROWS))
            )
            schema = pl.from_arrow(batches.schema.empty_table())
        except (duckdb.Error, OSError, pa.ArrowException) as error:
            raise _parse_failure(error, fmt, work_dir, spill_dir) from None
        assert isinstance(schema, pl.DataFrame)
        if with_json:
            schema = json_fields.resolve_duplicate_keys(schema, fmt)
        pieces: list[pl.DataFrame] = []
        held = 0
        while True:
            try:
                batch = batches.read_next_batch()
            except StopIteration:
                batch = None
            except (duckdb.Error, OSError, pa.ArrowException) as error:
                raise _parse_failure(error, fmt, work_dir, spill_dir) from None
            if batch is not None and batch.num_rows:
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                if with_json:
                    frame = json_fields.resolve_duplicate_keys(frame, fmt)
                pieces.append(frame)
                held += frame.height
            while held >= rows_per_slice or (batch is None and (held or not parsed)):
                whole = pl.concat(pieces) if pieces else schema
                piece = whole.slice(0, rows_per_slice)
                rest = whole.slice(rows_per_slice)
                pieces, held = ([rest] if rest.height else []), rest.height
                if count_breaks:
                    breaks_in_fields += skipped_lines.breaks_in(piece, with_returns)
                yield piece.with_columns(
                    parsed_row=pl.int_range(parsed + 1, parsed + piece.height + 1, dtype=pl.Int64)
                )
                parsed += piece.height
                if batch is None and not held:
                    break
            if batch is None:
                break
        batches.close()
        try:
            rejects = connection.sql(load_sql("ingest/rejected_lines")).pl()
        except duckdb.Error as error:
            raise _parse_failure(error, fmt, work_dir, spill_dir) from None
        parsed_whole = True
    finally:
        connection.close()
        # A shared database is closed after a failed parse too (DuckDB may have
        # invalidated it): the batch's next delivery opens a new one, and never
        # inherits this file's failure as its own.
        if own or not parsed_whole:
            database.close()
    header_rows = 1 if fmt.kind == "csv" else 0
    if not rejects.is_empty():
        # DuckDB yields no row for an empty line (nor, for NDJSON, for a blank one,
        # dropped above) but counts it in a reject's line number: take such lines
        # out, so rejects and parsed rows count alike.
        lines = rejects["line"].cast(pl.Int64)
        up_to = int(lines.max())
        skipped = skipped_lines.skipped_lines(
            utf8_path,
            fmt,
            up_to,
            line_breaks,
            breaks_in_fields,
            rejects["raw_text"].to_list(),
            records=header_rows + parsed + rejects.height,
        )
        empty = pl.Series(skipped, dtype=pl.Int64)
        rejects = rejects.with_columns(line=lines - empty.search_sorted(lines, side="left"))
    # DuckDB keeps only the first 10,000 characters of a rejected row: its record
    # id and version are read from the whole row in the file, however long.
    keys, versions = reject_ids(
        utf8_path, fmt, rejects["byte_position"].to_list(), rejects["raw_text"].to_list()
    )
    rejects = rejects.select(
        source_row=(pl.col("line") - header_rows).cast(pl.Int64),
        raw_text=pl.col("raw_text").str.strip_chars_start("\r\n"),
        error=pl.col("error_type").map_elements(_reject_reason, return_dtype=pl.String),
        record_key=pl.Series(keys, dtype=pl.String),
        record_version=pl.Series(versions, dtype=pl.String),
    )
    return ParsedRows(rejects=rejects, row_count=parsed + rejects.height)


def parse_rows(
    utf8_path: Path,
    fmt: SourceFormat,
    work_dir: Path,
    line_breaks: LineBreaks | None = None,
    database: ParsingDatabase | None = None,
) -> RawDelivery:
    """Parse a whole file into memory, checking its line lengths first (small files: tests).

    Loading streams the parse in slices (`parse_in_slices`) instead, having
    checked line lengths in its one pass over the bytes.
    """
    _refuse_uncountable_lines(utf8_path)
    slices = parse_in_slices(
        utf8_path, fmt, work_dir, _MAX_BATCH_ROWS, line_breaks, database=database
    )
    pieces: list[pl.DataFrame] = []
    while True:
        try:
            pieces.append(next(slices))
        except StopIteration as done:
            parsed: ParsedRows = done.value
            break
    return RawDelivery(pl.concat(pieces), parsed.rejects, parsed.row_count)


def _parse_failure(
    error: Exception, fmt: SourceFormat, work_dir: Path, spill_dir: Path
) -> Exception:
    """The exception a failed parse raises: the machine's (LocalFailure) or the file's.

    DuckDB's error reaches here as its own exception, or, from the middle of
    the Arrow stream, as an OSError carrying its text: its kind is read from the
    text's leading words ("Invalid Input Error: ..."), never anything after them.
    """
    kind = _duckdb_error_kind(error)
    if kind in ("IOException", "OutOfMemoryException"):
        # Only an I/O or out-of-memory error that names the work folder (or the
        # spill folder, which lies in the run's) counts: a parse error quotes the
        # sender's line, which must never decide that this machine failed.
        for folder in (work_dir, spill_dir):
            if str(folder) in str(error):
                return LocalFailure.of(error, folder, "writing the work folder")
    # DuckDB's messages can quote the offending line: keep only the kind.
    return DeliveryFileError(f"file could not be parsed as {fmt.kind.upper()} ({kind})")


def _duckdb_error_kind(error: Exception) -> str:
    """The name of DuckDB's exception class behind an error, as `type(error).__name__`."""
    if isinstance(error, duckdb.Error):
        return type(error).__name__
    leading = re.match(r"([A-Za-z ]{1,40}) Error: ", str(error))
    if leading is not None:
        wanted = leading.group(1).replace(" ", "").lower() + "exception"
        for name in dir(duckdb):
            candidate = getattr(duckdb, name)
            if (
                isinstance(candidate, type)
                and issubclass(candidate, duckdb.Error)
                and name.lower() == wanted
            ):
                return name
    return type(error).__name__


def _refuse_uncountable_lines(utf8_path: Path) -> None:
    """Reject a file with a line too long for DuckDB to count (`parse_rows`'s own pass).

    Only a file larger than the limit can hold such a line, so only such a file
    is scanned.
    """
    line = scan_line_lengths(utf8_path)
    if line is not None:
        raise DeliveryFileError(long_line_reason(line))


def scan_raw(
    raw: RawDelivery, fmt: SourceFormat, offset: int = 0, length: int | None = None
) -> pl.LazyFrame:
    """The parsed rows as a LazyFrame with their 1-based position in the file.

    DuckDB reports rejected rows by position; the parsed rows are numbered
    around them (`source_rows`), so both kinds name the same row the operator
    finds in the file. `offset` and `length` select a slice of the parsed rows.
    """
    return (
        raw.rows.lazy()
        .slice(offset, length)
        .with_columns(source_row=source_rows(pl.col("parsed_row"), raw.rejects))
        .select([*fmt.raw_columns, "source_row"])
    )


def source_rows(parsed_row: pl.Expr, rejects: pl.DataFrame) -> pl.Expr:
    """A parsed row's 1-based position in the file, from its position among parsed rows.

    Rejected row j (1-based, by position p_j) has p_j - j parsed rows before it,
    and parsed row k comes after every reject with fewer than k parsed rows
    before it. Counting those with a binary search keeps this a per-row
    expression: no sort or join that would hold the whole file in memory.
    """
    if rejects.is_empty():
        return parsed_row.cast(pl.Int64)
    positions = rejects["source_row"].unique().sort()
    parsed_before = (positions - pl.int_range(1, positions.len() + 1, eager=True)).cast(pl.Int64)
    rejects_before = pl.lit(parsed_before).search_sorted(parsed_row, side="left")
    return (parsed_row + rejects_before.cast(pl.Int64)).cast(pl.Int64)


def _reject_reason(error_type: str) -> str:
    reasons = {
        "TOO MANY COLUMNS": "row has more fields than the header",
        "MISSING COLUMNS": "row has fewer fields than the header",
        "UNQUOTED VALUE": "badly quoted field",
        "LINE SIZE OVER MAXIMUM": "row longer than the 8 MiB limit",
        "INVALID UNICODE": "invalid character encoding in row",
        "INVALID ENCODING": "invalid character encoding in row",
    }
    return reasons.get(error_type, "row could not be split into fields")


def raw_text(fmt: SourceFormat) -> pl.Expr:
    """An expression rebuilding a parsed row's text as the sender wrote it (for quarantine).

    Optional columns are written only when the row has a value in one of them: a
    file without them must not gain empty fields (one with them but empty there
    loses its trailing empty fields; the row position still finds the line).
    """
    if fmt.kind == "ndjson":
        return pl.col("line").fill_null("")
    quote = fmt.quote
    needs_quotes = f"[{re.escape(fmt.delimiter + quote)}\\r\\n]"

    def field(name: str) -> pl.Expr:
        value = pl.col(name).fill_null("")
        quoted = pl.concat_str(
            [
                pl.lit(quote),
                value.str.replace_all(quote, quote + quote, literal=True),
                pl.lit(quote),
            ]
        )
        return pl.when(value.str.contains(needs_quotes)).then(quoted).otherwise(value)

    text = pl.concat_str([field(name) for name in fmt.columns], separator=fmt.delimiter)
    if not fmt.optional_columns:
        return text
    extra = pl.concat_str(
        [pl.lit(""), *(field(name) for name in fmt.optional_columns)], separator=fmt.delimiter
    )
    has_extra = pl.any_horizontal(pl.col(name).is_not_null() for name in fmt.optional_columns)
    return pl.when(has_extra).then(pl.concat_str([text, extra])).otherwise(text)
