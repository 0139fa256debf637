"""Which lines DuckDB skipped without a row, so that rejected rows get their file row.

DuckDB yields no row for an empty line (nor, for NDJSON, for a blank one, which
the reader drops) but counts it in a rejected row's line number. For a CSV file
the line-break counts of the one pass over the bytes (`encoding.LineBreaks`)
usually prove there is no empty line (`no_empty_lines`); only a file they
cannot clear is read again (`empty_lines`). An NDJSON file is read again for
its blank lines (`blank_lines`). Only called when DuckDB rejected rows.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl

from flows.load.encoding import MAX_LINE_BYTES, BreakCounts, LineBreaks
from transforms.sources.base import SourceFormat

JSON_WHITE_SPACE = " \t\r\n"
"""What JSON counts as white space: a line of nothing else is blank."""


def skipped_lines(
    utf8_path: Path,
    fmt: SourceFormat,
    up_to: int,
    line_breaks: LineBreaks | None,
    in_fields: BreakCounts,
    rejected_texts: list[str | None],
    records: int,
) -> list[int]:
    """Numbers of the lines DuckDB skipped among the file's first `up_to`, in order.

    `line_breaks`: the CSV file's counts from the pass over its bytes (None: not
    counted); `in_fields`: the breaks inside the parsed rows' fields;
    `rejected_texts`: the rejected rows as DuckDB kept them; `records`: the
    header, parsed and rejected rows.
    """
    if fmt.kind != "csv":
        return blank_lines(utf8_path, up_to)
    if line_breaks is not None and no_empty_lines(
        line_breaks, in_fields, rejected_texts, fmt, records
    ):
        return []
    return empty_lines(utf8_path, fmt, up_to)


def empty_lines(utf8_path: Path, fmt: SourceFormat, up_to: int) -> list[int]:
    """Numbers of the empty lines among the file's first `up_to` records, as DuckDB counts.

    Only called when DuckDB rejected rows (rare): one more pass over the file.
    """
    empty: list[int] = []
    previous_limit = csv.field_size_limit(MAX_LINE_BYTES)
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


def breaks_in(rows: pl.DataFrame, with_returns: bool) -> BreakCounts:
    """The line-break characters in a slice's fields (CRs and pairs only `with_returns`:
    a file without a CR has none in its fields)."""
    fields = [pl.col(name) for name, dtype in rows.schema.items() if dtype == pl.String]
    if not fields or rows.is_empty():
        return BreakCounts()

    def total(pattern: str) -> pl.Expr:
        return pl.sum_horizontal(
            field.str.count_matches(pattern, literal=True) for field in fields
        ).sum()

    patterns = ("\r", "\n", "\r\n") if with_returns else ("\n",)
    counts = rows.select(total(pattern).alias(pattern) for pattern in patterns).row(0)
    if not with_returns:
        return BreakCounts(line_feeds=int(counts[0]))
    return BreakCounts(int(counts[0]), int(counts[1]), int(counts[2]))


def no_empty_lines(
    in_file: LineBreaks,
    in_fields: BreakCounts,
    rejected_texts: list[str | None],
    fmt: SourceFormat,
    records: int,
) -> bool:
    """True only if the CSV file certainly holds no empty line, as DuckDB reads it.

    Every line-break byte of the file lies in a parsed field (quoted: counted
    in `in_fields`), inside a rejected row, in a record's line end (one per
    record but perhaps the last: `records` counts the header, the parsed and the
    rejected rows), or in an empty line (at least one each). So when the bytes
    outside the fields and the rejected rows are exactly the records' line ends,
    all LF or all CR LF, nothing is left over for an empty line. Whatever else
    the counts show (an empty line, a CR of its own, a rejected row whose line
    breaks cannot be told apart from line ends) returns False: the caller then
    counts the empty lines the slow way. Counting too few breaks inside fields
    or rejected rows can only return False, never True wrongly.
    """
    in_rejects = BreakCounts()
    for text in rejected_texts:
        inside = _breaks_inside_quotes(text or "", fmt)
        if inside is None:
            return False
        in_rejects += inside
    line_ends = records - (0 if in_file.ends_with_break else 1)
    outside = in_file.counts - in_fields - in_rejects
    all_lf = BreakCounts(line_feeds=line_ends)
    all_crlf = BreakCounts(line_ends, line_ends, line_ends)
    return outside in (all_lf, all_crlf)


def _breaks_inside_quotes(text: str, fmt: SourceFormat) -> BreakCounts | None:
    """The line breaks of a rejected row's text, if all lie inside its quoted fields.

    Only a row that is well formed CSV (each field unquoted without quotes or
    line breaks, or quoted with its quotes doubled) is read: a break in any
    other row could be a line end, and None says so.
    """
    body = text.strip("\r\n")
    if "\r" not in body and "\n" not in body:
        return BreakCounts()
    quote, delimiter = re.escape(fmt.quote), re.escape(fmt.delimiter)
    field = f"(?:{quote}(?:[^{quote}]|{quote}{quote})*{quote}|[^{quote}{delimiter}\r\n]*)"
    if re.fullmatch(f"{field}(?:{delimiter}{field})*", body) is None:
        return None
    return BreakCounts(body.count("\r"), body.count("\n"), body.count("\r\n"))


def blank_lines(utf8_path: Path, up_to: int) -> list[int]:
    """Numbers of the blank (empty or white-space) lines among an NDJSON file's first lines.

    Only called when DuckDB rejected rows (rare): one more pass over the file.
    """
    blank: list[int] = []
    with utf8_path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number > up_to:
                break
            if not line.strip(JSON_WHITE_SPACE.encode()):
                blank.append(number)
    return blank
