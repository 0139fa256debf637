"""A delivery adapted in slices gives exactly what one pass over it gives.

Loading adapts a large delivery a fixed number of rows at a time, as DuckDB's
parse hands them over, so that its memory does not grow with the file
(flows/load/prepare.py). These tests cut the committed sample's history
deliveries into slices far smaller than a real one and compare every output
row, row numbers and the quarantine's raw text included, with a single slice.
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
from tests.trust_support import SAMPLE_INBOX
from transforms.canonical import DeliveryContext
from transforms.sources import asynjavisph, melior, t4

HISTORY_DATE = "2026-11-19"


def _adapt(
    adapter: ModuleType, tmp_path: Path, rows_per_slice: int
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Canonical rows and bad-row texts of the system's history delivery, and the part count."""
    fmt = adapter.FORMAT
    work = tmp_path / f"slices-{rows_per_slice}"
    utf8 = reader.prepare_utf8(SAMPLE_INBOX / fmt.system / HISTORY_DATE / fmt.file_name, fmt, work)
    context = DeliveryContext(f"{fmt.system}/{HISTORY_DATE}/test", fmt.system, date(2026, 11, 19))
    adapted = _adapt_in_slices(utf8, fmt, adapter, context, work, rows_per_slice)
    assert adapted.write_failure is None
    canonical = pl.concat([pl.read_parquet(part) for part in adapted.canonical_files])
    texts = pl.concat([pl.read_parquet(part) for part in adapted.bad_text_files])
    return canonical, texts, len(adapted.canonical_files)


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
    utf8 = reader.prepare_utf8(delivered, fmt, tmp_path)
    context = DeliveryContext("t4/2026-11-19/test", "t4", date(2026, 11, 19))
    adapted = _adapt_in_slices(utf8, fmt, t4, context, tmp_path / "work", 50)

    parts = adapted.canonical_files
    numbers = pl.concat([pl.read_parquet(part) for part in parts])["source_row"].to_list()
    assert adapted.rejects["source_row"].to_list() == [broken_row]
    assert numbers == [row for row in range(1, adapted.row_count + 1) if row != broken_row]


def test_bad_row_texts_after_a_structural_reject_keep_their_file_position(
    tmp_path: Path,
) -> None:
    """A slice is adapted before DuckDB's rejects are known: its parts are renumbered after."""
    fmt = t4.FORMAT
    fields = ["T-1", "1", "19121212-1212", "SE2321000131-E000000000201", "Centrum"]
    fields += ["ANTECKNING", "2021-05-01T09:00:00+02:00", "Y", "N", "Rubrik", "Text"]
    plain = [fmt.delimiter.join([f"T-{n}", *fields[1:]]) + "\n" for n in range(1, 301)]
    bad_row, broken_row = 200, 120
    plain[bad_row - 2] = fmt.delimiter.join(["", *fields[1:]]) + "\n"  # no id: the adapter's
    plain.insert(broken_row - 1, fmt.delimiter.join(["x"] * (len(fmt.columns) + 2)) + "\n")
    delivered = tmp_path / fmt.file_name
    delivered.write_text(fmt.delimiter.join(fmt.columns) + "\n" + "".join(plain), "utf-8")
    utf8 = reader.prepare_utf8(delivered, fmt, tmp_path)
    context = DeliveryContext("t4/2026-11-19/test", "t4", date(2026, 11, 19))
    adapted = _adapt_in_slices(utf8, fmt, t4, context, tmp_path / "work", 50)

    canonical = pl.concat([pl.read_parquet(part) for part in adapted.canonical_files])
    texts = pl.concat([pl.read_parquet(part) for part in adapted.bad_text_files])
    assert adapted.rejects["source_row"].to_list() == [broken_row]
    assert canonical.filter(pl.col("error").is_not_null())["source_row"].to_list() == [bad_row]
    assert texts["source_row"].to_list() == [bad_row]
    assert texts["raw_text"].to_list() == [plain[bad_row - 1].rstrip("\n")]


def test_a_file_without_rows_still_gives_one_part_with_the_schema(tmp_path: Path) -> None:
    fmt = t4.FORMAT
    header_only = tmp_path / fmt.file_name
    header_only.write_text(fmt.delimiter.join(fmt.columns) + "\n", encoding="utf-8")
    utf8 = reader.prepare_utf8(header_only, fmt, tmp_path)
    context = DeliveryContext("t4/2026-11-19/test", "t4", date(2026, 11, 19))
    adapted = _adapt_in_slices(utf8, fmt, t4, context, tmp_path / "work", 10)
    canonical_parts, text_parts = adapted.canonical_files, adapted.bad_text_files
    assert len(canonical_parts) == len(text_parts) == 1
    assert pl.read_parquet(canonical_parts[0]).height == 0
    assert "record_id" in pl.read_parquet_schema(canonical_parts[0])
