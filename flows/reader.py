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

import codecs
import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from flows.warehouse import WORK_FILE_COMPRESSION, limit_resources
from transforms.sources.base import SourceFormat

_CHUNK = 1 << 20
_MAX_LINE_BYTES = 8 << 20
_UTF8_BOM = codecs.BOM_UTF8


class DeliveryFileError(Exception):
    """The file cannot be read as its contract says; the delivery is rejected whole.

    The message is safe to log: it never contains content from the file.
    """


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
    """Rows DuckDB could not split into fields: `source_row`, `raw_text`, `error`."""
    row_count: int
    """Data records in the file: parsed plus rejected."""


def sha256_of(path: Path) -> FileDigest:
    """Stream a file's bytes once for its sha256."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileDigest(sha256=digest.hexdigest(), size=size)


def prepare_utf8(path: Path, fmt: SourceFormat, work_dir: Path) -> Path:
    """Return a UTF-8 version of the file, checking its declared encoding.

    UTF-8 files are only validated (and a required BOM checked) and used in
    place, BOM included (the header check and DuckDB skip it); Windows-1252
    files are transcoded into `work_dir`. Raises DeliveryFileError on an empty
    file and on bytes the declared encoding cannot hold.
    """
    if path.stat().st_size == 0:
        raise DeliveryFileError("file is empty")
    if fmt.encoding == "cp1252":
        return _transcode_cp1252(path, work_dir / f"{fmt.system}.utf8.csv")
    _check_utf8(path, require_bom=fmt.encoding == "utf-8-sig")
    return path


def _check_utf8(path: Path, *, require_bom: bool) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    with path.open("rb") as handle:
        first = handle.read(len(_UTF8_BOM))
        if require_bom and first != _UTF8_BOM:
            raise DeliveryFileError("file does not start with the UTF-8 byte-order mark")
        if not require_bom and first == _UTF8_BOM:
            raise DeliveryFileError("file starts with a byte-order mark, the contract has none")
        chunk = first
        while True:
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                raise DeliveryFileError(
                    f"not valid UTF-8 (first bad byte near offset {offset + error.start})"
                ) from None
            if not chunk:
                return
            offset += len(chunk)
            chunk = handle.read(_CHUNK)


def _transcode_cp1252(path: Path, target: Path) -> Path:
    """Windows-1252 -> UTF-8 in chunks; refuse bytes cp1252 leaves undefined.

    A file that is valid UTF-8 and holds non-ASCII bytes was almost surely sent
    in the wrong encoding (real Windows-1252 text with åäö is not valid UTF-8):
    reading it as cp1252 would silently garble names, so it is rejected.
    """
    decoder = codecs.getincrementaldecoder("cp1252")(errors="strict")
    utf8_probe = codecs.getincrementaldecoder("utf-8")(errors="strict")
    could_be_utf8 = True
    saw_non_ascii = False
    offset = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with path.open("rb") as source, target.open("wb") as sink:
        while True:
            chunk = source.read(_CHUNK)
            final = not chunk
            try:
                sink.write(decoder.decode(chunk, final=final).encode("utf-8"))
            except UnicodeDecodeError as error:
                raise DeliveryFileError(
                    f"not valid Windows-1252 (undefined byte near offset {offset + error.start})"
                ) from None
            if chunk and not saw_non_ascii and not chunk.isascii():
                saw_non_ascii = True
            if could_be_utf8:
                try:
                    utf8_probe.decode(chunk, final=final)
                except UnicodeDecodeError:
                    could_be_utf8 = False
            if final:
                break
            offset += len(chunk)
    if saw_non_ascii and could_be_utf8:
        raise DeliveryFileError("file is UTF-8 encoded, the contract says Windows-1252")
    return target


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
        parameters = {
            "path": str(utf8_path),
            "columns": columns,
            "max_line": _MAX_LINE_BYTES,
            **options,
        }
        try:
            connection.execute(
                f"COPY ({_with_json_fields(read, fmt)}) TO '{_sql_path(staging)}' "
                f"(FORMAT parquet, COMPRESSION {WORK_FILE_COMPRESSION})",
                parameters,
            )
            rejects = connection.sql(
                "SELECT line, min(error_type) AS error_type, first(csv_line) AS raw_text "
                "FROM rejected_lines GROUP BY line ORDER BY line"
            ).pl()
        except duckdb.Error as error:
            # DuckDB's messages can quote the offending line: keep only the kind.
            raise DeliveryFileError(
                f"file could not be parsed as {fmt.kind.upper()} ({type(error).__name__})"
            ) from None
    finally:
        connection.close()
    header_rows = 1 if fmt.kind == "csv" else 0
    if fmt.kind == "csv" and not rejects.is_empty():
        # DuckDB yields no row for an empty line but counts it in a reject's line
        # number: take such lines out, so rejects and parsed rows count alike.
        lines = rejects["line"].cast(pl.Int64)
        empty = pl.Series(_empty_lines(utf8_path, fmt, up_to=int(lines.max())), dtype=pl.Int64)
        rejects = rejects.with_columns(line=lines - empty.search_sorted(lines, side="left"))
    rejects = rejects.select(
        source_row=(pl.col("line") - header_rows).cast(pl.Int64),
        raw_text=pl.col("raw_text").str.strip_chars_start("\r\n"),
        error=pl.col("error_type").map_elements(_reject_reason, return_dtype=pl.String),
    )
    parsed_rows = pl.scan_parquet(staging).select(pl.len()).collect().item()
    return RawDelivery(
        rows_path=staging, rejects=rejects, row_count=int(parsed_rows) + rejects.height
    )


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


def _with_json_fields(read: str, fmt: SourceFormat) -> str:
    """For NDJSON: pick the adapter's fields out of each line, parsing it once.

    A line that is not a JSON object yields nulls (and `json_object` "false");
    the guard keeps DuckDB's JSON functions from ever seeing invalid JSON, whose
    error messages would quote the line.
    """
    if fmt.kind != "ndjson" or not fmt.json_fields:
        return read
    texts = [(name, path) for name, path, kind in fmt.json_fields if kind == "text"]
    jsons = [(name, path) for name, path, kind in fmt.json_fields if kind == "json"]
    selects = ["line", "CASE WHEN is_object THEN 'true' ELSE 'false' END AS json_object"]
    for group, function, cast in (
        (texts, "json_extract_string", ""),
        (jsons, "json_extract", "::VARCHAR[]"),
    ):
        if not group:
            continue
        paths = ", ".join("'" + path.replace("'", "''") + "'" for _, path in group)
        selects.append(
            f"CASE WHEN is_object THEN {function}(line, [{paths}]){cast} END AS {function}_values"
        )
    unpacked = ["line", "json_object"]
    unpacked += [
        f"json_extract_string_values[{i + 1}] AS {name}" for i, (name, _) in enumerate(texts)
    ]
    unpacked += [f"json_extract_values[{i + 1}] AS {name}" for i, (name, _) in enumerate(jsons)]
    return (
        "WITH lines AS (SELECT line, CASE WHEN json_valid(line) "
        f"THEN json_type(line) = 'OBJECT' ELSE false END AS is_object FROM ({read})), "
        f"extracted AS (SELECT {', '.join(selects)} FROM lines) "
        f"SELECT {', '.join(unpacked)} FROM extracted"
    )


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


def _sql_path(path: Path) -> str:
    """A path for a DuckDB COPY target (COPY takes no parameters there)."""
    return str(path).replace("'", "''")


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
