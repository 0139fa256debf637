"""A DuckDB session in a process of its own, for tests of what the job and its
commands do while someone else holds a file (DuckDB's file lock is per process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def session_in_another_process(
    database: Path, *, read_only: bool, seconds: float
) -> subprocess.Popen[str]:
    """A session on `database` in another process, open for `seconds` and then closed
    (kill it to end it sooner); returned once it holds the file."""
    session = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, time; "
            f"session = duckdb.connect({str(database)!r}, read_only={read_only}); "
            f"print('open', flush=True); time.sleep({seconds}); session.close()",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert session.stdout is not None and session.stdout.readline().strip() == "open"
    return session
