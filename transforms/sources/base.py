"""What every source adapter declares: its file format, and its pure transform.

The I/O layer (`flows/`) reads the delivered file according to the adapter's
`SourceFormat` into all-string columns (one per header column, in contract
order, plus `source_row`), and hands that LazyFrame to the adapter's
`to_canonical`. The adapter never touches a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import polars as pl

from transforms.canonical import DeliveryContext


@dataclass(frozen=True)
class SourceFormat:
    """How one system's delivery file is written, exactly as the contract says."""

    system: str
    file_name: str
    kind: Literal["csv", "ndjson"]
    encoding: Literal["utf-8", "utf-8-sig", "cp1252"]
    """`utf-8-sig`: UTF-8 that starts with a byte-order mark (required)."""
    columns: tuple[str, ...]
    """The header, in order. For NDJSON: the single column `line`, one JSON object each."""
    optional_columns: tuple[str, ...] = ()
    """CSV only: columns a file may add after `columns`, all of them or none (contract
    columns added later). The adapter always receives them: null when the file has none."""
    delimiter: str = ","
    quote: str = '"'
    json_fields: tuple[tuple[str, str, Literal["text", "json"]], ...] = ()
    """NDJSON only: (column, JSON path, kind) the reader extracts from each line, parsing
    it once. `text`: the value as a string (a JSON string unquoted); `json`: the value's
    JSON text (`2`, `true`, `"2"`), so adapters can check JSON types. Absent or null:
    null. The reader also adds `json_object`: "true" when the line is a JSON object, and
    `json_duplicate_key`: "true" when a key is written twice in it (or in an object a
    field is read from); a field at such a key is null, never the first or last value."""

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """The string columns an adapter receives (besides `source_row`)."""
        if self.kind == "ndjson":
            return (
                *self.columns,
                *(name for name, _, _ in self.json_fields),
                "json_object",
                "json_duplicate_key",
            )
        return (*self.columns, *self.optional_columns)


class SourceAdapter(Protocol):
    """A module in `transforms.sources` that reads one system's format."""

    FORMAT: SourceFormat

    def to_canonical(self, raw: pl.LazyFrame, context: DeliveryContext) -> pl.LazyFrame:
        """All-string raw rows -> canonical columns plus `error` (null when valid)."""
        ...
