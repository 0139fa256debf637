"""A delivery adapted in slices gives exactly what one pass over it gives.

Loading adapts a large delivery a fixed number of rows at a time so that its
memory does not grow with the file (flows/load/ingest.py). These tests cut the
committed sample's history deliveries into slices far smaller than a real one
and compare every output row, row numbers and the quarantine's raw text
included, with a single slice.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from flows.load import reader
from flows.load.prepare import adapt_in_slices as _adapt_in_slices
from transforms.canonical import DeliveryContext
from transforms.sources import asynjavisph, melior, t4

SAMPLE_INBOX = Path(__file__).resolve().parents[2] / "data" / "inbox"
HISTORY_DATE = "2026-11-19"


def _adapt(
    adapter: ModuleType, tmp_path: Path, rows_per_slice: int
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Canonical rows and bad-row texts of the system's history delivery, and the part count."""
    fmt = adapter.FORMAT
    work = tmp_path / f"slices-{rows_per_slice}"
    utf8 = reader.prepare_utf8(SAMPLE_INBOX / fmt.system / HISTORY_DATE / fmt.file_name, fmt, work)
    raw = reader.parse_rows(utf8, fmt, work)
    context = DeliveryContext(f"{fmt.system}/{HISTORY_DATE}/test", fmt.system, date(2026, 11, 19))
    canonical_parts, text_parts = _adapt_in_slices(raw, fmt, adapter, context, work, rows_per_slice)
    canonical = pl.concat([pl.read_parquet(part) for part in canonical_parts])
    texts = pl.concat([pl.read_parquet(part) for part in text_parts])
    return canonical, texts, len(canonical_parts)


@pytest.mark.parametrize("adapter", [melior, asynjavisph, t4], ids=lambda a: a.FORMAT.system)
def test_slices_give_the_same_rows_as_one_pass(adapter: ModuleType, tmp_path: Path) -> None:
    whole, whole_texts, whole_parts = _adapt(adapter, tmp_path, rows_per_slice=10**9)
    sliced, sliced_texts, sliced_parts = _adapt(adapter, tmp_path, rows_per_slice=97)
    assert whole_parts == 1
    assert sliced_parts == -(-whole.height // 97)
    assert sliced.equals(whole)
    assert sliced_texts.equals(whole_texts)


def test_rows_after_a_structural_reject_keep_their_file_position(tmp_path: Path) -> None:
    """A row DuckDB rejects mid-file: rows in later slices still number by file row."""
    fmt = t4.FORMAT
    history = SAMPLE_INBOX / fmt.system / HISTORY_DATE / fmt.file_name
    # The sample's rows whose fields need no quoting, written back one a line.
    with history.open(encoding="utf-8", newline="") as handle:
        header, *records = csv.reader(handle, delimiter=fmt.delimiter, quotechar=fmt.quote)
    plain = [
        fmt.delimiter.join(fields) + "\n"
        for fields in records
        if len(fields) == len(header) and not any(set(f) & set('"|\r\n') for f in fields)
    ][:300]
    broken_row = 120
    plain.insert(broken_row - 1, fmt.delimiter.join(["x"] * (len(fmt.columns) + 2)) + "\n")
    delivered = tmp_path / fmt.file_name
    delivered.write_text(fmt.delimiter.join(header) + "\n" + "".join(plain), encoding="utf-8")
    raw = reader.parse_rows(reader.prepare_utf8(delivered, fmt, tmp_path), fmt, tmp_path)
    context = DeliveryContext("t4/2026-11-19/test", "t4", date(2026, 11, 19))
    parts, _ = _adapt_in_slices(raw, fmt, t4, context, tmp_path / "work", 50)

    numbers = pl.concat([pl.read_parquet(part) for part in parts])["source_row"].to_list()
    assert raw.rejects["source_row"].to_list() == [broken_row]
    assert numbers == [row for row in range(1, raw.row_count + 1) if row != broken_row]


def test_a_file_without_rows_still_gives_one_part_with_the_schema(tmp_path: Path) -> None:
    fmt = t4.FORMAT
    header_only = tmp_path / fmt.file_name
    header_only.write_text(fmt.delimiter.join(fmt.columns) + "\n", encoding="utf-8")
    raw = reader.parse_rows(reader.prepare_utf8(header_only, fmt, tmp_path), fmt, tmp_path)
    context = DeliveryContext("t4/2026-11-19/test", "t4", date(2026, 11, 19))
    canonical_parts, text_parts = _adapt_in_slices(raw, fmt, t4, context, tmp_path, 10)
    assert len(canonical_parts) == len(text_parts) == 1
    assert pl.read_parquet(canonical_parts[0]).height == 0
    assert "record_id" in pl.read_parquet_schema(canonical_parts[0])
