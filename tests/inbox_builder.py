"""Write small contract-conformant deliveries (data file + control file) for tests.

Rows are given as dicts keyed by the contract's column names; the builder
writes them in the feed's exact format (encoding, separator, quoting, BOM,
line ends) and a matching `_control.json`, which a test may then break.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from transforms.sources.registry import adapter_for


def delivery_bytes(feed: str, rows: list[dict[str, Any]]) -> bytes:
    """The data file's bytes for these rows, in the feed's format."""
    fmt = adapter_for(feed).FORMAT
    if fmt.kind == "ndjson":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    buffer = io.StringIO()
    line_end = "\r\n" if fmt.encoding == "cp1252" else "\n"
    writer = csv.writer(
        buffer,
        delimiter=fmt.delimiter,
        quotechar=fmt.quote,
        lineterminator=line_end,
        quoting=csv.QUOTE_MINIMAL,
    )
    writer.writerow(fmt.columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in fmt.columns])
    text = buffer.getvalue()
    if fmt.encoding == "cp1252":
        return text.encode("cp1252")
    if fmt.encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return text.encode("utf-8")


def write_delivery(
    inbox: Path,
    feed: str,
    business_date: date,
    rows: list[dict[str, Any]] | None = None,
    *,
    data: bytes | None = None,
    control: dict[str, Any] | None = None,
    write_control: bool = True,
) -> Path:
    """Write one delivery folder; `control` overrides fields of the correct control file."""
    fmt = adapter_for(feed).FORMAT
    folder = inbox / feed / business_date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    payload = data if data is not None else delivery_bytes(feed, rows or [])
    (folder / fmt.file_name).write_bytes(payload)
    document = {
        "system": feed,
        "business_date": business_date.isoformat(),
        "file": fmt.file_name,
        "rows": len(rows or []),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    document.update(control or {})
    if write_control:
        (folder / "_control.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


def melior_row(record_id: str = "D-1", version: int = 1, **overrides: Any) -> dict[str, Any]:
    """A Melior row that the default rules would show."""
    row = {
        "DokumentID": record_id,
        "Version": str(version),
        "Personnummer": "191212121212",
        "HSAid": "SE2321000131-E000000000101",
        "Enhetsnamn": "Medicinkliniken Östra",
        "Specialitet": "Internmedicin",
        "Informationstyp": "ANTECKNING",
        "Sokord": "Bedömning",
        "Dokumenttid": "2021-03-04 10:15",
        "Signerad": "J",
        "Signeringstid": "2021-03-04 11:00",
        "Status": "AKTIV",
        "Rubrik": "Inskrivning",
        "Text": "Patienten mår bra; åäö “citat”",
    }
    row.update(overrides)
    return row


def t4_row(record_id: str = "T-1", version: int = 1, **overrides: Any) -> dict[str, Any]:
    """A T4 row that the default rules would show."""
    row = {
        "journal_id": record_id,
        "rev": str(version),
        "patient_pnr": "19121212-1212",
        "clinic_hsa_id": "SE2321000131-E000000000201",
        "clinic_name": "Folktandvården Centrum",
        "entry_type": "ANTECKNING",
        "entry_datetime": "2021-05-01T09:00:00+02:00",
        "signed": "Y",
        "cancelled": "N",
        "heading": "Undersökning",
        "entry_text": "Inga fynd",
    }
    row.update(overrides)
    return row


def block_row(block_id: str = "B-1", version: int = 1, **overrides: Any) -> dict[str, Any]:
    """An active whole-journal block for the default test patient."""
    row = {
        "block_id": block_id,
        "version": str(version),
        "pnr": "191212121212",
        "scope": "ALL",
        "hsa_id": "",
        "valid_from": "2020-01-01",
        "valid_to": "",
        "status": "active",
    }
    row.update(overrides)
    return row
