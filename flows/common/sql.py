"""SQL statements live in `sql/<layer>/<name>.sql`; this loads them by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@cache
def load_sql(name: str) -> str:
    """The text of `sql/<name>.sql`, e.g. `load_sql("state/current_records")`."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL statement named {name!r} ({path})")
    return path.read_text(encoding="utf-8")


def statements_in(layer: str) -> list[str]:
    """All statements of a layer folder, in file-name order (for DDL)."""
    return [load_sql(f"{layer}/{path.stem}") for path in sorted((SQL_DIR / layer).glob("*.sql"))]


def load_statements(name: str) -> list[str]:
    """The statements of `sql/<name>.sql`, one per `;`, for a file that holds several.

    DuckDB prepares one statement at a time when it is given parameters. The
    split is on every `;`, so such a file has none inside a string or comment.
    """
    return [statement for statement in load_sql(name).split(";") if statement.strip()]


def preload(layer: str) -> None:
    """Read every statement of a layer folder now (they stay cached).

    For a stage that must open no file but its input's while it works: loading
    a delivery opens only the delivery's files.
    """
    statements_in(layer)
