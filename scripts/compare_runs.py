"""Compare two runs of the job on the same inputs: feed bytes, decisions, analytics.

    uv run python scripts/compare_runs.py /tmp/house_before /tmp/house_after

Each folder holds `warehouse.duckdb`, `analytics.duckdb` and `feed/` of one run
(`jvn run --warehouse DIR/warehouse.duckdb --analytics DIR/analytics.duckdb
--feed DIR/feed`). The feed's record parts and change set are compared by
sha256; the manifest, the warehouse's `decisions` and every analytics table
by content, leaving out what differs by design between two runs: run ids,
snapshot names and timestamps. Exit 0 when all match. Prints file names,
digests, table names and counts only (no personal data).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import duckdb

PER_RUN = ("run_id", "previous_run", "snapshot", "started_at", "ended_at", "built_at")
"""Columns and manifest keys that differ between two runs by design."""


def _snapshot(root: Path) -> Path:
    feed = root / "feed"
    return feed / (feed / "CURRENT").read_text(encoding="utf-8").strip()


def _digests(snapshot: Path) -> dict[str, str]:
    return {
        str(path.relative_to(snapshot)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(snapshot.rglob("*.parquet"))
    }


def _manifest(snapshot: Path) -> dict[str, object]:
    manifest = json.loads((snapshot / "manifest.json").read_text(encoding="utf-8"))
    change_set = dict(manifest.get("change_set") or {})
    change_set.pop("since_snapshot", None)
    manifest["change_set"] = change_set
    return {key: value for key, value in manifest.items() if key not in PER_RUN}


def _table_digest(database: Path, table: str) -> tuple[int, str]:
    """Rows and a sha256 of the table's rows (per-run columns left out), sorted."""
    with duckdb.connect(str(database), read_only=True) as connection:
        columns = [
            name
            for (name,) in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $t "
                "ORDER BY ordinal_position",
                {"t": table},
            ).fetchall()
            if name not in PER_RUN and not name.endswith("_at") and not name.endswith("run_id")
        ]
        listed = ", ".join(f'"{name}"' for name in columns)
        rows = connection.execute(f'SELECT {listed} FROM "{table}" ORDER BY ALL').fetchall()
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()
    return len(rows), digest


def _tables(database: Path) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return [
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' ORDER BY table_name"
            ).fetchall()
        ]


def compare(before: Path, after: Path) -> bool:
    same = True

    def report(what: str, left: object, right: object) -> None:
        nonlocal same
        verdict = "same" if left == right else "DIFFERENT"
        same &= left == right
        print(f"{verdict:9} {what}: {left if left == right else (left, right)}")

    old, new = _snapshot(before), _snapshot(after)
    old_files, new_files = _digests(old), _digests(new)
    report("feed files", sorted(old_files), sorted(new_files))
    for name in sorted(set(old_files) | set(new_files)):
        report(f"sha256 {name}", old_files.get(name), new_files.get(name))
    report("manifest (less run id and snapshot name)", _manifest(old), _manifest(new))
    report(
        "warehouse decisions (rows, sha256)",
        _table_digest(before / "warehouse.duckdb", "decisions"),
        _table_digest(after / "warehouse.duckdb", "decisions"),
    )
    old_tables = _tables(before / "analytics.duckdb")
    report("analytics tables", old_tables, _tables(after / "analytics.duckdb"))
    for table in old_tables:
        report(
            f"analytics {table} (rows, sha256)",
            _table_digest(before / "analytics.duckdb", table),
            _table_digest(after / "analytics.duckdb", table),
        )
    return same


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(0 if compare(Path(sys.argv[1]), Path(sys.argv[2])) else 1)
