"""Run one delivered file through the real reader and an adapter, for adapter tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import ModuleType

import polars as pl

from flows.load import reader
from transforms.canonical import DeliveryContext

SAMPLE_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class AdapterRun:
    """What an adapter made of a file: all output rows, valid ones, and structural rejects."""

    output: pl.DataFrame
    rejects: pl.DataFrame
    row_count: int

    @property
    def valid(self) -> pl.DataFrame:
        return self.output.filter(pl.col("error").is_null())

    @property
    def invalid(self) -> pl.DataFrame:
        return self.output.filter(pl.col("error").is_not_null())


def run_adapter(
    adapter: ModuleType, path: Path, work_dir: Path, business_date: date = date(2026, 11, 25)
) -> AdapterRun:
    """Read `path` exactly as a nightly run would, and apply `adapter.to_canonical`."""
    fmt = adapter.FORMAT
    utf8 = reader.prepare_utf8(path, fmt, work_dir)
    reader.check_header(utf8, fmt)
    raw = reader.parse_rows(utf8, fmt, work_dir)
    context = DeliveryContext(
        delivery_id=f"{fmt.system}/{business_date.isoformat()}/test",
        system=fmt.system,
        business_date=business_date,
    )
    output = adapter.to_canonical(reader.scan_raw(raw, fmt), context).collect()
    return AdapterRun(output=output, rejects=raw.rejects, row_count=raw.row_count)
