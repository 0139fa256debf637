"""The whole run on a Dask cluster gives exactly the single-process result.

Runs the real command on the committed sample inbox, two nights (a full run,
then an incremental one on top), once in one process and once with `--dask`
(a local Dask cluster of worker *processes*, through prefect-dask: deliveries
are prepared and partitions decided on the workers), and compares the feed
files byte for byte, the decisions, and what loading stored: record and block
versions, quarantine and the deliveries' outcomes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from tests.trust_support import SAMPLE_INBOX, job_env, jvn

pytestmark = pytest.mark.slow

NIGHTS = ("2026-11-24", "2026-11-25")

LOADED_TABLES = {
    "record_versions": "SELECT * FROM record_versions ORDER BY ALL",
    "block_versions": "SELECT * FROM block_versions ORDER BY ALL",
    "quarantine": "SELECT * FROM quarantine ORDER BY ALL",
    "deliveries": "SELECT * EXCLUDE (run_id, judged_at) FROM deliveries ORDER BY ALL",
}
"""What loading stored, leaving out what differs between two runs by design (the
run that judged a delivery, and when)."""


def _run(root: Path, as_of: str, env: dict[str, str], *extra: str) -> dict[str, object]:
    storage = ["--warehouse", str(root / "warehouse.duckdb"), "--analytics"]
    storage += [str(root / "analytics.duckdb"), "--feed", str(root / "feed")]
    args = ["run", "--as-of", as_of, "--inbox", str(SAMPLE_INBOX), *storage, "--json", *extra]
    completed = jvn(args, env, timeout=600)
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


def _loaded(root: Path) -> dict[str, tuple[int, str]]:
    """Per table, its row count and a digest of its rows: a failure names no journal content."""
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as connection:
        tables = {name: connection.execute(sql).fetchall() for name, sql in LOADED_TABLES.items()}
    return {
        name: (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        for name, rows in tables.items()
    }


@pytest.mark.skipif(not SAMPLE_INBOX.is_dir(), reason="the committed sample inbox is missing")
def test_two_nights_on_dask_equal_two_nights_in_one_process(
    tmp_path: Path, prefect_api_url: str
) -> None:
    single, distributed = tmp_path / "single", tmp_path / "dask"
    # A running server, as a cluster has (the workers report to it too): each run
    # starting a temporary one on an empty Prefect home costs it 15 s of migrations.
    env = job_env(tmp_path / "prefect-client", api_url=prefect_api_url)

    for night in NIGHTS:
        single_summary = _run(single, night, env)
        dask_summary = _run(distributed, night, env, "--dask", "--dask-workers", "2")

        assert dask_summary["plan"] == single_summary["plan"]
        assert dask_summary["reasons"] == single_summary["reasons"]
        assert dask_summary["deliveries_loaded"] == single_summary["deliveries_loaded"]
        assert _feed_files(distributed) == _feed_files(single)
        assert _decisions(distributed) == _decisions(single)
        assert _loaded(distributed) == _loaded(single)
    assert "since the previous run" in str(single_summary["plan"]), "night 2 was a full run"
