"""Internal record columns -> a system's raw columns as strings, plus `_i` and `_bad` helpers."""

from __future__ import annotations

from typing import Final

import polars as pl

from flows.sample.dates import iso, to_local
from flows.sample.settings import UTC_DT
from flows.sample.systems import System

INTERNAL_SCHEMA: Final = pl.Schema(
    {
        "i": pl.Int64(),
        "pnr": pl.String(),
        "hsa": pl.String(),
        "unit_name": pl.String(),
        "specialty": pl.String(),
        "code": pl.String(),
        "keyword": pl.String(),
        "kw_mode": pl.Int64(),
        "doc_utc": UTC_DT,
        "style": pl.Int64(),
        "signed": pl.Boolean(),
        "signed_utc": UTC_DT,
        "retracted": pl.Boolean(),
        "version": pl.Int64(),
        "title": pl.String(),
        "text": pl.String(),
        "dash": pl.Boolean(),
        "bad": pl.String(),
    }
)
"""One record version before it is written in its system's format."""


def _flag(condition: pl.Expr, codes: tuple[str, str]) -> pl.Expr:
    return pl.when(condition).then(pl.lit(codes[0])).otherwise(pl.lit(codes[1]))


def doc_text(system: System, utc: pl.Expr, style: pl.Expr) -> pl.Expr:
    if system.iso_times:
        return iso(utc, style)
    return to_local(utc).dt.strftime(system.doc_format)


def raw_rows(system: System, internal: pl.LazyFrame) -> pl.LazyFrame:
    """Internal columns -> the system's columns as strings, plus `_i`, `_bad`, ... helpers."""
    r = system.roles
    ident = pl.concat_str(
        pl.lit(system.id_prefix), (pl.col("i") + system.id_offset).cast(pl.String)
    )
    pnr = pl.col("pnr")
    dashed = pl.concat_str(pnr.str.slice(0, 8), pl.lit("-"), pnr.str.slice(8, 4))
    doc = doc_text(system, pl.col("doc_utc"), pl.col("style"))
    signed_at = doc_text(system, pl.col("signed_utc"), pl.col("style"))
    text = pl.col("text")
    if system.line_end == "\r\n":
        text = text.str.replace_all("\n", "\r\n", literal=True)
    helpers = {
        "_i": pl.col("i"),
        "_bad": pl.col("bad"),
        "_kw_absent": pl.col("kw_mode") == 2,
        "_sa_absent": (pl.col("kw_mode") == 2) & pl.col("signed_utc").is_null(),
    }
    by_role: dict[str, pl.Expr] = {
        r.id: ident,
        r.version: pl.col("version").cast(pl.String),
        r.doc: doc,
        r.signed: _flag(pl.col("signed"), r.signed_codes),
        r.retracted: _flag(pl.col("retracted"), r.retracted_codes),
        r.title: pl.col("title"),
        r.text: text,
    }
    if r.signed_at is not None:
        by_role[r.signed_at] = signed_at
    if system.name == "melior":
        by_role |= {
            "HSAid": pl.col("hsa"),
            "Enhetsnamn": pl.col("unit_name"),
            "Specialitet": pl.col("specialty"),
            "Informationstyp": pl.col("code"),
            "Sokord": pl.col("keyword"),
            r.pnr: pnr,
        }
    elif system.name == "asynjavisph":
        by_role |= {
            "hsaId": pl.col("hsa"),
            "name": pl.col("unit_name"),
            "type": pl.col("code"),
            "keyword": pl.col("keyword"),
            r.pnr: pl.when(pl.col("dash")).then(dashed).otherwise(pnr),
        }
    elif system.name == "obstetrix":
        by_role |= {
            "unit_hsa_id": pl.col("hsa"),
            "unit_name": pl.col("unit_name"),
            "document_type": pl.col("code"),
            r.pnr: pnr,
        }
    elif system.name == "journalia":
        by_role |= {
            "hsa_id": pl.col("hsa"),
            "unit_name": pl.col("unit_name"),
            "doc_kind": pl.col("code"),
            r.pnr: pnr,
        }
    else:  # t4 always writes the dash
        by_role |= {
            "clinic_hsa_id": pl.col("hsa"),
            "clinic_name": pl.col("unit_name"),
            "entry_type": pl.col("code"),
            r.pnr: dashed,
        }
    return internal.select(**{c: by_role[c] for c in system.columns}, **helpers)
