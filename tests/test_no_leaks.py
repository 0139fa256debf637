"""No leaks: personnummer and journal text stay in the warehouse and the feed.

The whole job runs as operators run it (`jvn run` in its own process, Prefect's
temporary server, debug logging everywhere, an empty Prefect home) on an inbox
with known personnummer and journal texts, bad rows and a rejected delivery.
Then everything it wrote outside the warehouse and the feed is searched: its
stdout and stderr, every file under the Prefect home (and Prefect's database
table by table, its run logs included), every other file beside the data, and
every column of every table of the analysts' database. The operator commands
that print (`verify`, `stats`) are searched too.

A failure names where a value was found and what kind of value it was, never
the value itself.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pytest

from flows.load.inbox import DeliveryFolder, DeliveryRejected, read_control
from tests.trust_support import (
    DAY_1,
    DAY_2,
    PATIENTS,
    PSEUDONYM_KEY,
    Job,
    job_env,
    jvn,
    secrets_of_inbox,
    write_inbox,
)
from transforms.sources.registry import adapter_for


def needles() -> dict[str, bytes]:
    """Every secret in the forms it could be written in: UTF-8, JSON-escaped, its
    ASCII opening (which survives any escaping of the letters åäö)."""
    found: dict[str, bytes] = {}
    for label, value in secrets_of_inbox().items():
        found[label] = value.encode("utf-8")
        escaped = json.dumps(value)[1:-1]
        if escaped != value:
            found[f"{label}, JSON-escaped"] = escaped.encode("ascii")
        ascii_prefix = ""
        for character in value:
            if not character.isascii():
                break
            ascii_prefix += character
        if len(ascii_prefix) >= 14 and ascii_prefix != value:
            found[f"{label}, its ASCII opening"] = ascii_prefix.encode("ascii")
    return found


class Leaks:
    """Where secrets were found: 'place: kind of value', never the value."""

    def __init__(self) -> None:
        self.needles = needles()
        self.found: list[str] = []
        self.searched: list[str] = []

    def search(self, place: str, data: bytes | str | None) -> None:
        if data is None:
            return
        raw = data.encode("utf-8", errors="surrogateescape") if isinstance(data, str) else data
        for label, needle in self.needles.items():
            if needle in raw:
                self.found.append(f"{place}: {label}")

    def search_values(self, place: str, values: Iterable[object]) -> None:
        for value in values:
            if isinstance(value, str | bytes):
                self.search(place, value)

    def report(self) -> str:
        return "personal data found outside the warehouse and the feed:\n  " + "\n  ".join(
            sorted(set(self.found))
        )


def search_sqlite(leaks: Leaks, path: Path) -> int:
    """Every text or blob value of every table; returns the rows of Prefect's `log` table."""
    log_rows = 0
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                values = (row[0] for row in connection.execute(f'SELECT "{column}" FROM "{table}"'))
                leaks.search_values(f"{path.name} table {table} column {column}", values)
            if table == "log":
                log_rows = connection.execute('SELECT count(*) FROM "log"').fetchone()[0]
    finally:
        connection.close()
    return int(log_rows)


def search_duckdb(leaks: Leaks, path: Path) -> int:
    """Every column of every table and view, each value cast to text; returns the tables."""
    with duckdb.connect(str(path), read_only=True) as connection:
        columns = connection.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "ORDER BY ALL"
        ).fetchall()
        tables = {(schema, table) for schema, table, _ in columns}
        for schema, table, column in columns:
            values = connection.execute(
                f'SELECT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}"'
            ).fetchall()
            leaks.search_values(
                f"{path.name} table {table} column {column}", (v for (v,) in values)
            )
    return len(tables)


def search_files(leaks: Leaks, root: Path, *, skip: Iterable[Path] = ()) -> list[Path]:
    skipped = [p.resolve() for p in skip]
    searched = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        resolved = path.resolve()
        if any(resolved == s or s in resolved.parents for s in skipped):
            continue
        leaks.search(f"file {path.relative_to(root)}", path.read_bytes())
        searched.append(path)
    return searched


def assert_private(job: Job) -> None:
    """The warehouse, the feed and the work folders: the job's user only. The
    analysts' database and its report: readable by the job's group too, never by everyone."""
    analysts = (job.analytics, job.analytics.with_suffix(".html"))
    for path in [job.data, *job.data.rglob("*")]:
        mode = path.lstat().st_mode & 0o777
        where = path.relative_to(job.root)
        if path in analysts:
            assert mode & 0o007 == 0, f"{where} is readable by everyone ({mode:o})"
        elif path.is_dir():
            assert mode & 0o077 == 0, f"{where} is open to others ({mode:o})"
        else:
            assert mode & 0o077 == 0, f"{where} is readable by others ({mode:o})"


@pytest.mark.slow
def test_the_whole_job_at_debug_level_leaks_nothing(tmp_path: Path) -> None:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox)
    (job.inbox / "melior" / "not-a-date").mkdir(parents=True)
    (job.inbox / "unknown-system").mkdir()
    prefect_home = tmp_path / "prefect-home"
    env = job_env(
        prefect_home,
        PREFECT_LOGGING_LEVEL="DEBUG",
        PREFECT_LOGGING_ROOT_LEVEL="DEBUG",
        PREFECT_LOGGING_TO_API_LEVEL="DEBUG",
        PREFECT_LOGGING_LOG_PRINTS="true",
        # An empty Prefect home is migrated first, slowly at debug level.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240",
    )
    leaks = Leaks()
    for as_of in (DAY_1, DAY_2):
        run = jvn(job.run_args(as_of), env)
        leaks.search(f"stdout of jvn run --as-of {as_of}", run.stdout)
        leaks.search(f"stderr of jvn run --as-of {as_of}", run.stderr)
        assert not leaks.found, leaks.report()
        # Only now is the output known to be free of test secrets, and printable.
        assert run.returncode == 3, f"exit {run.returncode}\n{run.stderr[-4000:]}"
        assert "DEBUG" in run.stderr, "the run did not log at debug level"
    for command in (["verify"], ["stats"], ["stats", "--by", "unit"]):
        args = [*command, "--warehouse", str(job.warehouse)]
        if command == ["verify"]:
            args += ["--feed", str(job.feed), "--analytics", str(job.analytics)]
        result = jvn(args, env)
        leaks.search(f"stdout of jvn {' '.join(command)}", result.stdout)
        leaks.search(f"stderr of jvn {' '.join(command)}", result.stderr)
        if command == ["verify"]:
            assert result.returncode == 0, f"jvn verify exit {result.returncode}"

    prefect_files = search_files(leaks, prefect_home)
    databases = [p for p in prefect_files if p.suffix == ".db"]
    assert databases, "Prefect wrote no database under PREFECT_HOME"
    log_rows = sum(search_sqlite(leaks, db) for db in databases)
    assert log_rows > 0, "Prefect's run logs were not found"

    # Beside the data: analytics, lock, spill and work folders, anything else.
    # The warehouse and the feed are where personal data belongs.
    search_files(
        leaks,
        job.data,
        skip=[job.warehouse, job.warehouse.with_name(job.warehouse.name + ".wal"), job.feed],
    )
    assert search_duckdb(leaks, job.analytics) >= 5
    assert not leaks.found, leaks.report()

    # The pseudonym key is nowhere, not even beside the personal data.
    key = Leaks()
    key.needles = {"the pseudonym key": PSEUDONYM_KEY.encode()}
    search_files(key, tmp_path, skip=[job.inbox])
    search_duckdb(key, job.warehouse)
    search_duckdb(key, job.analytics)
    assert not key.found, key.report()

    assert_private(job)

    # The search does find them where they belong: in the warehouse.
    control = Leaks()
    search_duckdb(control, job.warehouse)
    found = " ".join(control.found)
    for label in ("patient 0", "patient 3", "melior Text of D-1", "rejected delivery text"):
        assert label in found, f"the search missed {label} in the warehouse"


def test_the_needles_are_real() -> None:
    """The search would find what it looks for: each personnummer in both forms."""
    found = needles()
    for pnr in PATIENTS:
        assert pnr.encode() in found.values()
        assert f"{pnr[:8]}-{pnr[8:]}".encode() in found.values()
    assert any(b"Journaltext" in value for value in found.values())


def test_control_file_key_names_are_not_echoed(tmp_path: Path) -> None:
    fmt = adapter_for("t4").FORMAT
    folder = tmp_path / "t4" / DAY_1.isoformat()
    folder.mkdir(parents=True)
    (folder / fmt.file_name).write_bytes(b"x")
    control = {
        "system": "t4",
        "business_date": DAY_1.isoformat(),
        "file": fmt.file_name,
        "rows": 0,
        "sha256": "0" * 64,
        PATIENTS[0]: "Journaltext in a key",
    }
    (folder / "_control.json").write_text(json.dumps(control), encoding="utf-8")
    with pytest.raises(DeliveryRejected) as rejected:
        read_control(DeliveryFolder("t4", DAY_1, folder), fmt)
    assert PATIENTS[0] not in str(rejected.value)
