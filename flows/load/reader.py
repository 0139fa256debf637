"""Reading one delivered data file into all-string rows, per the adapter's format.

This is the I/O half of an adapter: it knows files, encodings and CSV structure,
nothing about a system's fields. It

1. streams the file once for its sha256 and checks its encoding (a Windows-1252
   file is transcoded to UTF-8 on the way, in chunks, because DuckDB reads only
   UTF-8 and Latin-1);
2. checks the header against the contract;
3. has DuckDB parse the records (quoted newlines, doubled quotes, CRLF) into a
   staging Parquet file of string columns. A row that breaks the CSV structure
   (too many or too few fields, bad quoting, an over-long line) is caught by
   DuckDB's reject store and comes back as a quarantine row with its raw text.

Nothing here raises with a message that quotes the file's content: errors name
the file, the row position and the problem.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from flows.common.errors import DeliveryFileError, LocalFailure, errno_of
from flows.common.files import sql_literal, sql_string
from flows.common.sql import load_sql
from flows.common.warehouse import WORK_FILE_COMPRESSION, limit_resources
from flows.load.bad_rows import reject_ids
from flows.load.encoding import CHUNK, cannot_read, prepare_utf8
from transforms.sources.base import SourceFormat

__all__ = [
    "DeliveryFileError",
    "FileDigest",
    "LocalFailure",
    "RawDelivery",
    "check_header",
    "errno_of",
    "parse_rows",
    "prepare_utf8",
    "raw_text",
    "scan_raw",
    "sha256_of",
]
"""Reading a delivered file, in the order ingest calls it (the encoding's half is in
`flows/load/encoding.py`, the ids of rejected rows in `flows/load/bad_rows.py`)."""

_MAX_LINE_BYTES = 8 << 20
_UNCOUNTABLE_LINE_BYTES = 64 << 20
"""DuckDB rejects a line over `_MAX_LINE_BYTES` as a bad row, but silently drops one
longer than its read buffer (16 x that, 128 MiB): the row would go uncounted. A
line over this (half the buffer, a margin) rejects the delivery with that reason."""
_JSON_WHITE_SPACE = " \t\r\n"


@dataclass(frozen=True)
class FileDigest:
    """What one streaming pass over the delivered bytes found."""

    sha256: str
    size: int


@dataclass(frozen=True)
class RawDelivery:
    """A delivered file, parsed into strings, not yet interpreted."""

    rows_path: Path
    """Parquet: one String column per contract column, plus Int64 `source_row`."""
    rejects: pl.DataFrame
    """Rows DuckDB could not split into fields: `source_row`, `raw_text` (DuckDB keeps
    the first 10,000 characters), `error`, and `record_key` / `record_version` (text,
    null when unreadable): the row's id and version, read from the whole row."""
    row_count: int
    """Data records in the file: parsed plus rejected."""


def sha256_of(path: Path) -> FileDigest:
    """Stream a file's bytes once for its sha256.

    Only a regular file is read, never through a link, never blocking on a FIFO;
    a file that cannot be read (no permission, an I/O error) is a DeliveryFileError.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        # A symbolic link is not even opened: it could point out of the inbox.
        if stat.S_ISLNK(path.lstat().st_mode):
            raise DeliveryFileError(f"data file {path.name} is a symbolic link")
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise DeliveryFileError(f"data file {path.name} is not a regular file")
            handle = os.fdopen(descriptor, "rb")
        except BaseException:
            os.close(descriptor)
            raise
        with handle:
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


def parse_rows(utf8_path: Path, fmt: SourceFormat, work_dir: Path) -> RawDelivery:
    """Split the records into string fields with DuckDB, into a staging Parquet file."""
    work_dir.mkdir(parents=True, exist_ok=True)
    staging = work_dir / f"{fmt.system}.raw.parquet"
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
    _refuse_uncountable_lines(utf8_path)
    connection = duckdb.connect()
    limit_resources(connection, work_dir / "spill")
    try:
        connection.execute("SET preserve_insertion_order = true")
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
            # NULL and keeps white space, so both are dropped here, uncounted.
            read = f"SELECT * FROM ({read}) WHERE coalesce(trim(line, $blank), '') <> ''"
        parameters = {
            "path": str(utf8_path),
            "columns": columns,
            "max_line": _MAX_LINE_BYTES,
            **options,
            **({"blank": _JSON_WHITE_SPACE} if fmt.kind == "ndjson" else {}),
        }
        try:
            connection.execute(
                f"COPY ({_with_json_fields(read, fmt)}) TO '{sql_literal(staging)}' "
                f"(FORMAT parquet, COMPRESSION {WORK_FILE_COMPRESSION})",
                parameters,
            )
            rejects = connection.sql(load_sql("ingest/rejected_lines")).pl()
        except duckdb.Error as error:
            if _writing_failed(error, work_dir):
                raise LocalFailure.of(error, work_dir, "writing the work folder") from None
            # DuckDB's messages can quote the offending line: keep only the kind.
            raise DeliveryFileError(
                f"file could not be parsed as {fmt.kind.upper()} ({type(error).__name__})"
            ) from None
    finally:
        connection.close()
    header_rows = 1 if fmt.kind == "csv" else 0
    if not rejects.is_empty():
        # DuckDB yields no row for an empty line (nor, for NDJSON, for a blank one,
        # dropped above) but counts it in a reject's line number: take such lines
        # out, so rejects and parsed rows count alike.
        lines = rejects["line"].cast(pl.Int64)
        up_to = int(lines.max())
        skipped = (
            _empty_lines(utf8_path, fmt, up_to)
            if fmt.kind == "csv"
            else _blank_lines(utf8_path, up_to)
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
    parsed_rows = pl.scan_parquet(staging).select(pl.len()).collect().item()
    return RawDelivery(
        rows_path=staging, rejects=rejects, row_count=int(parsed_rows) + rejects.height
    )


def _writing_failed(error: duckdb.Error, work_dir: Path) -> bool:
    """Did DuckDB fail writing the work folder (disk full), not reading the delivery?

    Only an I/O or out-of-memory error that names the work folder counts: a parse
    error quotes the sender's line, which must never decide that this machine failed.
    """
    if not isinstance(error, (duckdb.IOException, duckdb.OutOfMemoryException)):
        return False
    return str(work_dir) in str(error)


def _empty_lines(utf8_path: Path, fmt: SourceFormat, up_to: int) -> list[int]:
    """Numbers of the empty lines among the file's first `up_to` records, as DuckDB counts.

    Only called when DuckDB rejected rows (rare): one more pass over the file.
    """
    empty: list[int] = []
    previous_limit = csv.field_size_limit(_MAX_LINE_BYTES)
    try:
        with utf8_path.open("r", encoding="utf-8-sig", newline="") as handle:
            records = csv.reader(handle, delimiter=fmt.delimiter, quotechar=fmt.quote)
            for number, record in enumerate(records, start=1):
                if number > up_to:
                    break
                if not record:
                    empty.append(number)
    except csv.Error:
        # Python's reader stopped where DuckDB did not: keep what it counted so far.
        return empty
    finally:
        csv.field_size_limit(previous_limit)
    return empty


def _refuse_uncountable_lines(utf8_path: Path) -> None:
    """Reject a file with a line too long for DuckDB to count (see `_UNCOUNTABLE_LINE_BYTES`).

    Only a file larger than that limit can hold such a line, so only such a file
    is scanned: a chunk at a time, looking at its first and last line ends only
    (a line within one chunk is shorter than the limit).
    """
    if utf8_path.stat().st_size <= _UNCOUNTABLE_LINE_BYTES:
        return
    line, run = 1, 0
    with utf8_path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            first = chunk.find(b"\n")
            if first < 0:
                run += len(chunk)
            else:
                if run + first > _UNCOUNTABLE_LINE_BYTES:
                    break
                line += chunk.count(b"\n")
                run = len(chunk) - chunk.rfind(b"\n") - 1
            if run > _UNCOUNTABLE_LINE_BYTES:
                break
        else:
            return
    raise DeliveryFileError(
        f"line {line} is longer than {_UNCOUNTABLE_LINE_BYTES >> 20} MiB: too long for the "
        f"reader to count it as a row (rows may be at most {_MAX_LINE_BYTES >> 20} MiB)"
    )


def _blank_lines(utf8_path: Path, up_to: int) -> list[int]:
    """Numbers of the blank (empty or white-space) lines among an NDJSON file's first lines.

    Only called when DuckDB rejected rows (rare): one more pass over the file.
    """
    blank: list[int] = []
    with utf8_path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number > up_to:
                break
            if not line.strip(_JSON_WHITE_SPACE.encode()):
                blank.append(number)
    return blank


def _with_json_fields(read: str, fmt: SourceFormat) -> str:
    """For NDJSON: pick the adapter's fields out of each line, parsing it once.

    A line that is not a JSON object yields nulls (and `json_object` "false");
    the guard keeps DuckDB's JSON functions from ever seeing invalid JSON, whose
    error messages would quote the line.

    A key written twice in the object, or in an object a field is read from
    (`"rev": 1, "rev": 2`, `patient.pnr` twice), makes `json_duplicate_key`
    "true", and a field at such a key (or below it) is not read (null): DuckDB
    would take the first, other readers the last, and the contract says never
    guess. The sender's own key names are never part of the output.
    """
    if fmt.kind != "ndjson" or not fmt.json_fields:
        return read
    texts = [(name, path) for name, path, kind in fmt.json_fields if kind == "text"]
    jsons = [(name, path) for name, path, kind in fmt.json_fields if kind == "json"]
    parents = sorted({prefix for _, path, _ in fmt.json_fields for prefix in _prefixes(path)[:-1]})
    keys = f"json_keys(line, [{', '.join(sql_string(parent) for parent in parents)}])"
    repeated = " OR ".join(
        f"len(object_keys[{i}]) <> len(list_distinct(object_keys[{i}]))"
        for i in range(1, len(parents) + 1)
    )
    # The paths of the keys written more than once, for the rare line that has one.
    duplicated = ", ".join(
        f"list_transform(list_filter(object_keys[{i}], "
        f"lambda k, n: list_position(object_keys[{i}], k) <> n), "
        f"lambda k: {sql_string(parent + '.')} || k)"
        for i, parent in enumerate(parents, start=1)
    )
    selects = [
        "line",
        "CASE WHEN is_object THEN 'true' ELSE 'false' END AS json_object",
        f"CASE WHEN {repeated} THEN list_concat({duplicated}) END AS duplicated_paths",
    ]
    for group, function, cast in (
        (texts, "json_extract_string", ""),
        (jsons, "json_extract", "::VARCHAR[]"),
    ):
        if not group:
            continue
        paths = ", ".join(sql_string(path) for _, path in group)
        selects.append(
            f"CASE WHEN is_object THEN {function}(line, [{paths}]){cast} END AS {function}_values"
        )

    def unpack(values: str, index: int, name: str, path: str) -> str:
        prefixes = ", ".join(sql_string(prefix) for prefix in _prefixes(path)[1:])
        return (
            f"CASE WHEN duplicated_paths IS NULL THEN {values}[{index}] "
            f"WHEN NOT list_has_any(duplicated_paths, [{prefixes}]) THEN {values}[{index}] "
            f"END AS {name}"
        )

    unpacked = [
        "line",
        "json_object",
        "CASE WHEN duplicated_paths IS NULL THEN 'false' ELSE 'true' END AS json_duplicate_key",
    ]
    unpacked += [
        unpack("json_extract_string_values", i + 1, name, path)
        for i, (name, path) in enumerate(texts)
    ]
    unpacked += [
        unpack("json_extract_values", i + 1, name, path) for i, (name, path) in enumerate(jsons)
    ]
    return (
        "WITH lines AS (SELECT line, CASE WHEN json_valid(line) "
        f"THEN json_type(line) = 'OBJECT' ELSE false END AS is_object FROM ({read})), "
        f"keyed AS (SELECT line, is_object, CASE WHEN is_object THEN {keys} END AS object_keys "
        "FROM lines), "
        f"extracted AS (SELECT {', '.join(selects)} FROM keyed) "
        f"SELECT {', '.join(unpacked)} FROM extracted"
    )


def _prefixes(path: str) -> list[str]:
    """`$.a.b` -> [`$`, `$.a`, `$.a.b`]: the path and the objects above it."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def scan_raw(
    raw: RawDelivery, fmt: SourceFormat, offset: int = 0, length: int | None = None
) -> pl.LazyFrame:
    """The parsed rows as a LazyFrame with their 1-based position in the file.

    DuckDB reports rejected rows by position; the parsed rows are numbered
    around them, so both kinds name the same row the operator finds in the file.
    `offset` and `length` select a slice of the parsed rows: the slice is taken
    from the scan itself, so only its row groups are read.
    """
    rows = (
        pl.scan_parquet(raw.rows_path)
        .slice(offset, length)
        .with_row_index("_ordinal", offset=offset + 1)
    )
    rows = rows.with_columns(pl.col("_ordinal").cast(pl.Int64))
    if raw.rejects.is_empty():
        return rows.rename({"_ordinal": "source_row"}).select([*fmt.raw_columns, "source_row"])
    # Rejected row j (1-based, by position p_j) has p_j - j parsed rows before it,
    # and parsed row k comes after every reject with fewer than k parsed rows
    # before it. Counting those with a binary search keeps this a per-row
    # expression: no sort or join that would hold the whole file in memory.
    positions = raw.rejects["source_row"].unique().sort()
    parsed_before = (positions - pl.int_range(1, positions.len() + 1, eager=True)).cast(pl.Int64)
    rejects_before = pl.lit(parsed_before).search_sorted(pl.col("_ordinal"), side="left")
    return rows.with_columns(source_row=pl.col("_ordinal") + rejects_before.cast(pl.Int64)).select(
        [*fmt.raw_columns, "source_row"]
    )


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
