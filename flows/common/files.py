"""Writing files so that a crash leaves the old bytes or the new, and naming them in SQL.

Durability (fsync of a file, then of its folder), hard-link-or-copy of a
finished file, a private folder, a file's sha256, and the one way a path or
text is written into a DuckDB statement as a string literal.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

PRIVATE_DIR_MODE = 0o700


def sql_literal(value: str | Path) -> str:
    """`value` as the inside of a single-quoted SQL string literal (quotes doubled).

    For what DuckDB takes only as a literal (COPY ... TO, ATTACH, SET); values
    of a query are passed as parameters instead.
    """
    return str(value).replace("'", "''")


def sql_string(value: str) -> str:
    """`value` as a single-quoted SQL string literal, quotes included."""
    return "'" + sql_literal(value) + "'"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by this user only; returns it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    return path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a written file's bytes to disk."""
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def fsync_and_hash(path: Path) -> str:
    """Flush a finished file to disk; its sha256."""
    fsync_file(path)
    return file_sha256(path)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or new file in it) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_durably(path: Path, text: str) -> None:
    """Write `text`, flushed to disk, readable by this user only."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link a finished file into place; copy where the folders are on two file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
