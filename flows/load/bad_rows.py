"""The record ids of rows DuckDB rejected, read back from the file for quarantine.

A rejected row is known by its line and byte position; its id (the first
field of a CSV row, `id` of a JSON line) is read from the file itself, so the
quarantine can name the record it concerns without DuckDB's message, which may
quote the line.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import BinaryIO

from flows.load.encoding import CHUNK
from transforms.sources.base import SourceFormat


def reject_ids(
    utf8_path: Path,
    fmt: SourceFormat,
    byte_positions: list[int | None],
    raw_texts: list[str | None],
) -> tuple[list[str | None], list[str | None]]:
    """The record id and version text of each rejected row, read from the whole row.

    CSV: the row's first two fields (every contract starts with id, version),
    split as CSV (a quoted id is read unquoted). NDJSON: the line's `id` and
    `rev`, parsed as JSON; an `id` written twice is ambiguous, so unreadable.
    Anything that cannot be read is None: never a guess.
    """
    keys: list[str | None] = []
    versions: list[str | None] = []
    with utf8_path.open("rb") as handle:
        for position, text in zip(byte_positions, raw_texts, strict=True):
            key = version = None
            start = _line_start(handle, position, text)
            if start is not None:
                handle.seek(start)
                if fmt.kind == "ndjson":
                    key, version = _json_id(handle.readline())
                else:
                    fields = _leading_fields(handle, fmt.delimiter, fmt.quote, count=2)
                    key = fields[0] if fields else None
                    version = fields[1] if len(fields) > 1 else None
            keys.append(_id_text(key))
            versions.append(version)
    return keys, versions


def _line_start(handle: BinaryIO, position: int | None, text: str | None) -> int | None:
    """Where the rejected row DuckDB reports near byte `position` starts, or None.

    DuckDB's position is the row's first byte or one past it (and 1 for the
    file's first line), so the candidates are checked: the row must start there
    with the text DuckDB kept of it, right after a line end. None if no candidate
    holds: an unsure start reads no id.
    """
    if position is None:
        return None
    head = (text or "").lstrip("\r\n")[:64].encode("utf-8")
    for start in (position, position - 1):
        if start < 0:
            continue
        handle.seek(max(start - 1, 0))
        before = handle.read(1) if start > 0 else b"\n"
        if before in (b"\n", b"\r") and handle.read(len(head)) == head:
            return start
    return None


def _id_text(value: str | None) -> str | None:
    """An id as adapters read it: white space trimmed, empty is none."""
    stripped = value.strip() if value is not None else None
    return stripped or None


class _DuplicateKey(ValueError):
    pass


def _json_id(line: bytes) -> tuple[str | None, str | None]:
    """`id` and `rev` of one JSON line, as the adapter would read them, or None."""

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        names = [name for name, _ in items]
        if "id" in names and names.count("id") > 1:
            raise _DuplicateKey
        # The first of a repeated key, as DuckDB reads it; the row is bad anyway.
        found: dict[str, object] = {}
        for name, value in items:
            found.setdefault(name, value)
        return found

    try:
        document = json.loads(line.decode("utf-8"), object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    return _json_scalar(document.get("id")), _json_scalar(document.get("rev"))


def _json_scalar(value: object) -> str | None:
    """A JSON string or number as text (as DuckDB's json_extract_string); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _leading_fields(handle: BinaryIO, delimiter: str, quote: str, count: int) -> list[str]:
    """The first `count` CSV fields of the row starting at the handle's position.

    Read a chunk at a time, so a field of any length is read whole without
    reading the rest of a long (or badly quoted) row. Fewer fields come back
    when the row ends first, or a field is not well formed (a quote left open,
    text after a closing quote): what cannot be read is not guessed.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    field_end = re.compile(f"[{re.escape(delimiter)}\r\n]")
    buffer, at = "", 0

    def refill() -> bool:
        """The next chunk replaces the (consumed) buffer; False at the end of the file."""
        nonlocal buffer, at
        chunk = handle.read(CHUNK)
        buffer, at = decoder.decode(chunk, final=not chunk), 0
        return bool(buffer)

    fields: list[str] = []
    while len(fields) < count:
        if at >= len(buffer) and not refill():
            return fields
        parts: list[str] = []
        if buffer[at] == quote:
            at += 1
            while True:
                end = buffer.find(quote, at)
                if end < 0:
                    parts.append(buffer[at:])
                    if not refill():
                        return fields
                    continue
                parts.append(buffer[at:end])
                at = end + 1
                if at >= len(buffer) and not refill():
                    fields.append("".join(parts))
                    return fields
                if buffer[at] != quote:
                    break
                parts.append(quote)
                at += 1
            if buffer[at] not in (delimiter, "\r", "\n"):
                return fields
        else:
            while (found := field_end.search(buffer, at)) is None:
                parts.append(buffer[at:])
                if not refill():
                    fields.append("".join(parts))
                    return fields
            parts.append(buffer[at : found.start()])
            at = found.start()
        fields.append("".join(parts))
        if buffer[at] != delimiter:
            return fields
        at += 1
    return fields
