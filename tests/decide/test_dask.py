"""Deciding partitions on a Dask cluster gives exactly the single-process result.

Runs the real command twice on the committed sample inbox, once in one process
and once with `--dask` (a local Dask cluster of worker processes, through
prefect-dask), and compares the feed files byte for byte and the decisions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import TEST_PSEUDONYM_KEY

pytestmark = pytest.mark.slow

SAMPLE_INBOX = Path(__file__).resolve().parents[2] / "data" / "inbox"
AS_OF = "2026-11-25"


def _run(root: Path, *extra: str) -> dict[str, object]:
    environment = {
        **os.environ,
        "JVN_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    environment.pop("PREFECT_API_URL", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "run",
            "--as-of",
            AS_OF,
            "--inbox",
            str(SAMPLE_INBOX),
            "--warehouse",
            str(root / "warehouse.duckdb"),
            "--analytics",
            str(root / "analytics.duckdb"),
            "--feed",
            str(root / "feed"),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return dict(json.loads(completed.stdout))


def _feed_files(root: Path) -> dict[str, bytes]:
    snapshot = root / "feed" / (root / "feed" / "CURRENT").read_text().strip()
    records = snapshot / "records"
    return {path.name: path.read_bytes() for path in sorted(records.glob("*.parquet"))}


def _decisions(root: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(
            "SELECT * EXCLUDE (run_id) FROM decisions ORDER BY record_id"
        ).fetchall()


@pytest.mark.skipif(not SAMPLE_INBOX.is_dir(), reason="the committed sample inbox is missing")
def test_dask_run_equals_single_process_run_on_the_sample(tmp_path: Path) -> None:
    single, distributed = tmp_path / "single", tmp_path / "dask"

    single_summary = _run(single)
    dask_summary = _run(distributed, "--dask", "--dask-workers", "2")

    assert dask_summary["reasons"] == single_summary["reasons"]
    assert _feed_files(distributed) == _feed_files(single)
    assert _decisions(distributed) == _decisions(single)
