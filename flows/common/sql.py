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
