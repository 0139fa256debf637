"""Raw rows -> file bytes (delimited text or NDJSON), the delivery writer and its control file."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl

from flows.sample.settings import ENGINE
from flows.sample.systems import System


def _json_value(expr: pl.Expr) -> pl.Expr:
    """The JSON text of a value (string escaping by polars' JSON encoder)."""
    return (
        pl.struct(expr.alias("v"))
        .struct.json_encode()
        .str.strip_prefix('{"v":')
        .str.strip_suffix("}")
    )


def _ndjson_lines(raw: pl.LazyFrame) -> pl.LazyFrame:
    """One JSON object per row, in the order of `raw`."""
    raw = raw.with_row_index("_row")
    by_field = pl.col("_bad").is_in(["bad_version", "bad_flag"]).fill_null(False)
    # The common case in one JSON encoding of a nested struct, per combination of
    # absent keys (`keyword`, and `signedAt` when unsigned).
    fields: dict[str, pl.Expr] = {
        "id": pl.col("id"),
        "rev": pl.col("rev").cast(pl.Int64),
        "patient": pl.struct(pnr=pl.col("pnr")),
        "unit": pl.struct(hsaId=pl.col("hsaId"), name=pl.col("name")),
        "type": pl.col("type"),
        "keyword": pl.col("keyword"),
        "documentedAt": pl.col("documentedAt"),
        "signed": pl.col("signed") == "true",
        "signedAt": pl.col("signedAt"),
        "retracted": pl.col("retracted") == "true",
        "title": pl.col("title"),
        "body": pl.col("body"),
    }
    parts: list[pl.LazyFrame] = []
    for kw_absent in (False, True):
        for sa_absent in (False, True):
            absent = {"keyword"} if kw_absent else set()
            absent |= {"signedAt"} if sa_absent else set()
            struct = pl.struct([v.alias(k) for k, v in fields.items() if k not in absent])
            rows = raw.filter(
                ~by_field
                & (pl.col("_kw_absent") == kw_absent)
                & (pl.col("_sa_absent") == sa_absent)
            )
            parts.append(rows.select("_row", line=struct.struct.json_encode()))
    special = _ndjson_lines_by_field(raw.filter(by_field)).select("_row", "line")
    return pl.concat([*parts, special]).sort("_row").select("line")


def _ndjson_lines_by_field(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Field by field: slow, but a bad row may write any field as a string."""
    bad = pl.col("_bad")
    # Booleans and the version are JSON literals; a bad row writes its bad value
    # as a string instead (e.g. "rev": "1.5", "signed": "ja").
    rev = pl.when(bad == "bad_version").then(_json_value(pl.col("rev"))).otherwise(pl.col("rev"))
    signed = (
        pl.when(bad == "bad_flag").then(_json_value(pl.col("signed"))).otherwise(pl.col("signed"))
    )
    keyword = (
        pl.when(pl.col("_kw_absent"))
        .then(pl.lit(""))
        .otherwise(pl.concat_str(pl.lit(',"keyword":'), _json_value(pl.col("keyword"))))
    )
    signed_at = (
        pl.when(pl.col("_sa_absent"))
        .then(pl.lit(""))
        .otherwise(pl.concat_str(pl.lit(',"signedAt":'), _json_value(pl.col("signedAt"))))
    )
    line = pl.concat_str(
        pl.lit('{"id":'),
        _json_value(pl.col("id")),
        pl.lit(',"rev":'),
        rev,
        pl.lit(',"patient":{"pnr":'),
        _json_value(pl.col("pnr")),
        pl.lit('},"unit":{"hsaId":'),
        _json_value(pl.col("hsaId")),
        pl.lit(',"name":'),
        _json_value(pl.col("name")),
        pl.lit('},"type":'),
        _json_value(pl.col("type")),
        keyword,
        pl.lit(',"documentedAt":'),
        _json_value(pl.col("documentedAt")),
        pl.lit(',"signed":'),
        signed,
        signed_at,
        pl.lit(',"retracted":'),
        pl.col("retracted"),
        pl.lit(',"title":'),
        _json_value(pl.col("title")),
        pl.lit(',"body":'),
        _json_value(pl.col("body")),
        pl.lit("}"),
    )
    return raw.with_columns(line=line)


def serialise(system: System, raw: pl.DataFrame, *, header: bool) -> bytes:
    if system.kind == "ndjson":
        # A JSON line holds no raw newline, so unquoted CSV of one column is NDJSON.
        buffer = io.BytesIO()
        _ndjson_lines(raw.lazy()).collect(engine=ENGINE).write_csv(
            buffer, include_header=False, quote_style="never", line_terminator="\n"
        )
        return buffer.getvalue()
    text = raw.select(system.columns).write_csv(
        None,
        separator=system.delimiter,
        line_terminator=system.line_end,
        quote_style="necessary",
        include_header=header,
    )
    return text.encode("cp1252" if system.encoding == "cp1252" else "utf-8")


def wrong_field_count(system: System, raw: pl.DataFrame) -> bytes:
    """The row with one field too many (Melior, Obstetrix) or too few (the others)."""
    if system.kind == "ndjson":
        line = _ndjson_lines(raw.lazy()).collect(engine=ENGINE)["line"].item()
        return (line[: len(line) // 2] + "\n").encode("utf-8")
    frame = raw.select(system.columns)
    if system.name in ("melior", "obstetrix"):
        frame = frame.with_columns(extra=pl.lit("överskott"))
    else:
        frame = frame.drop(system.columns[-1])
    text = frame.write_csv(
        None,
        separator=system.delimiter,
        line_terminator=system.line_end,
        quote_style="necessary",
        include_header=False,
    )
    return text.encode("cp1252" if system.encoding == "cp1252" else "utf-8")


class DeliveryWriter:
    """Appends chunks to a delivery's data file; hashes and counts what it wrote."""

    def __init__(self, folder: Path, file_name: str, bom: bool) -> None:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        self.folder = folder
        self.file_name = file_name
        self._handle = (folder / file_name).open("wb")
        self._sha = hashlib.sha256()
        self.rows = 0
        if bom:
            self.write(b"\xef\xbb\xbf", 0)

    def write(self, data: bytes, rows: int) -> None:
        self._handle.write(data)
        self._sha.update(data)
        self.rows += rows

    def close(self, system_name: str, business_date: date) -> dict[str, object]:
        self._handle.close()
        return {
            "system": system_name,
            "business_date": business_date.isoformat(),
            "file": self.file_name,
            "rows": self.rows,
            "sha256": self._sha.hexdigest(),
        }


def write_control(folder: Path, control: dict[str, object]) -> None:
    (folder / "_control.json").write_text(json.dumps(control, indent=2) + "\n", encoding="utf-8")
