"""Crash safety: `jvn run` killed with SIGKILL at every stage, then run again.

The kill is real: `flows/common/faults.py` `checkpoint(name)` sends SIGKILL to its own
process when `JVN_FAULT_AT` names that point (no `finally`, no `atexit`), and a
wrapper kills just before the analysts' database built beside the live one is
renamed over it. After each kill:

- `CURRENT` names a complete snapshot whose files match its manifest (the
  previous one until the new `CURRENT` is in place, the new one after);
- the warehouse and the analysts' database both open, and the analysts' one
  still holds the previous run's figures;
- the lock file the killed run left behind does not block the next run;
- the next run completes, and its feed and decisions equal those of a run that
  was never interrupted (feed rows sorted by record id; `decisions` without
  `run_id`), and `jvn verify` finds nothing wrong.

Each kill point costs two runs (~10-20 s each), so by default a reduced set
runs; `JVN_CRASH_POINTS=all` runs every point, `JVN_CRASH_POINTS=a,b` the
named ones (docs/guarantees.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.audit.verify import VerifyReport, check_feed, verify
from flows.common.faults import FAULT_VARIABLE, POINTS
from tests.trust_support import (
    DAY_1,
    DAY_2,
    PSEUDONYM_KEY,
    REPO,
    RUN_TIMEOUT_S,
    Job,
    decisions,
    describe,
    feed_rows,
    job_env,
    jvn,
    write_inbox,
)

pytestmark = pytest.mark.slow

ANALYTICS_RENAME = "analytics:rename"
"""Killed inside `flows.publish.analytics.install`, the new database built beside the
live one, not yet renamed: the way a nightly run goes while an analyst holds the
live database open (the test holds it, read-only, while the job runs)."""

ALL_POINTS = (*POINTS, ANALYTICS_RENAME)
DEFAULT_POINTS = (
    "load:asynjavisph",
    "store_decisions",
    "current:before",
    "current:after",
    "analytics:commit",
    ANALYTICS_RENAME,
)
"""One point in each phase: loading, the warehouse changed but nothing published,
both sides of the CURRENT swap, the analysts' database patched in place but not
committed, and built beside the live one but not renamed."""

AFTER_SWAP = ("current:after", "analytics:commit", ANALYTICS_RENAME)
"""Points at which the new snapshot is already live. Everything that can fail
(recording the run, building the analysts' database) happens before the swap."""


def selected_points() -> tuple[str, ...]:
    chosen = os.environ.get("JVN_CRASH_POINTS", "").strip()
    if not chosen:
        return DEFAULT_POINTS
    if chosen == "all":
        return ALL_POINTS
    points = tuple(p.strip() for p in chosen.split(",") if p.strip())
    unknown = [p for p in points if p not in ALL_POINTS]
    assert not unknown, f"unknown kill points {unknown}; known: {ALL_POINTS}"
    return points


_KILL_IN_ANALYTICS = """
import os, signal, sys
import flows.publish.analytics

class _KillOnReplace:
    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, source, target):
        os.kill(os.getpid(), signal.SIGKILL)

flows.publish.analytics.os = _KillOnReplace()
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_killed(job: Job, as_of: date, point: str, env: dict[str, str]) -> None:
    """Run the job so that it kills itself at `point`; assert that it died there."""
    analyst: duckdb.DuckDBPyConnection | None = None
    if point == ANALYTICS_RENAME:
        command = [sys.executable, "-c", _KILL_IN_ANALYTICS]
        run_env = env
        # An analyst's session: the job cannot patch the live database in place.
        analyst = duckdb.connect(str(job.analytics), read_only=True)
    else:
        command = [sys.executable, "-m", "flows.cli"]
        run_env = {**env, FAULT_VARIABLE: point}
    try:
        result = subprocess.run(
            [*command, *job.run_args(as_of)],
            cwd=REPO,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    finally:
        if analyst is not None:
            analyst.close()
    assert result.returncode == -9, f"the run was not killed at {point}: " + describe(result)


class Installation:
    """The state before the interrupted run (day 1 published) and the uninterrupted result."""

    def __init__(
        self, before: Job, after: Job, expected_feed: pl.DataFrame, expected: pl.DataFrame
    ) -> None:
        self.before = before
        self.after = after
        self.expected_feed = expected_feed
        self.expected_decisions = expected
        self.live_before = current(before)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> dict[str, str]:
    return job_env(tmp_path_factory.mktemp("prefect-client"), api_url=prefect_api_url)


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Installation:
    base = tmp_path_factory.mktemp("crash")
    before = Job(base / "before")
    write_inbox(before.inbox)
    result = jvn(before.run_args(DAY_1), env)
    assert result.returncode == 3, describe(result)
    uninterrupted = before.copy_to(base / "uninterrupted")
    result = jvn(uninterrupted.run_args(DAY_2), env)
    assert result.returncode == 3, describe(result)
    return Installation(
        before, uninterrupted, feed_rows(uninterrupted.feed), decisions(uninterrupted.warehouse)
    )


def current(job: Job) -> str | None:
    path = job.feed / "CURRENT"
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def assert_feed_complete(job: Job, *, published: bool = True) -> None:
    report = VerifyReport()
    check_feed(job.feed, report, anything_published=published)
    assert report.ok, "\n".join(report.lines())


def assert_databases_open(job: Job) -> None:
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        connection.execute("SELECT count(*) FROM runs").fetchall()
        connection.execute("SELECT count(*) FROM decisions").fetchall()
    if job.analytics.exists():
        with duckdb.connect(str(job.analytics), read_only=True) as connection:
            connection.execute("SELECT count(*) FROM record_visibility").fetchall()
            connection.execute("SELECT count(*) FROM runs").fetchall()


def assert_same_result(job: Job, installation: Installation) -> None:
    assert_frame_equal(feed_rows(job.feed), installation.expected_feed)
    assert_frame_equal(decisions(job.warehouse), installation.expected_decisions)
    report = verify(
        job.feed, job.warehouse, None, analytics=job.analytics, pseudonym_key=PSEUDONYM_KEY
    )
    assert report.ok, "\n".join(report.lines())
    leftovers = [p.name for p in job.feed.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"half-written files left in the feed folder: {leftovers}"


@pytest.mark.parametrize("point", selected_points())
def test_killed_run_leaves_the_feed_live_and_the_next_run_repairs_all(
    point: str, installation: Installation, env: dict[str, str], tmp_path: Path
) -> None:
    job = installation.before.copy_to(tmp_path / "job")
    run_killed(job, DAY_2, point, env)

    live = current(job)
    if point in AFTER_SWAP:
        assert live is not None and live != installation.live_before
        assert live.startswith(DAY_2.isoformat())
    else:
        assert live == installation.live_before, "a crash before the swap changed CURRENT"
    assert_feed_complete(job)
    assert_databases_open(job)
    # The analysts' database changes only after the swap, by one commit or one rename.
    with duckdb.connect(str(job.analytics), read_only=True) as connection:
        runs = connection.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    assert runs == 1, "the analysts' database changed although the run never got there"
    assert job.warehouse.with_name(job.warehouse.name + ".lock").exists()

    result = jvn(job.run_args(DAY_2), env)
    assert result.returncode == 3, describe(result)
    assert_same_result(job, installation)
    assert not job.analytics.with_name(f".{job.analytics.name}.building").exists()


def test_killed_first_run_publishes_nothing_and_the_next_run_repairs_all(
    installation: Installation, env: dict[str, str], tmp_path: Path
) -> None:
    """The first run ever, killed just before CURRENT would appear: no feed at all."""
    job = Job(tmp_path / "job")
    write_inbox(job.inbox)
    run_killed(job, DAY_1, "current:before", env)
    assert current(job) is None
    assert_feed_complete(job, published=False)
    assert_databases_open(job)

    result = jvn(job.run_args(DAY_1), env)
    assert result.returncode == 3, describe(result)
    assert_frame_equal(feed_rows(job.feed), feed_rows(installation.before.feed))
    assert_frame_equal(decisions(job.warehouse), decisions(installation.before.warehouse))


def test_every_checkpoint_is_in_the_code() -> None:
    """Each documented point is passed by the job (a renamed stage keeps its test)."""
    sources = "".join(
        path.read_text(encoding="utf-8") for path in sorted((REPO / "flows").rglob("*.py"))
    )
    for point in POINTS:
        if point.startswith("load:"):
            assert 'checkpoint(f"load:{delivery.feed}")' in sources
        else:
            assert f'checkpoint("{point}")' in sources, point


def test_checkpoint_is_a_no_op_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.common.faults import checkpoint

    monkeypatch.delenv(FAULT_VARIABLE, raising=False)
    for point in POINTS:
        checkpoint(point)
    monkeypatch.setenv(FAULT_VARIABLE, "some-other-point")
    checkpoint("current:before")


def test_rollback_after_a_crash_returns_to_the_previously_live_snapshot(
    installation: Installation, tmp_path: Path
) -> None:
    job = installation.after.copy_to(tmp_path / "job")
    live = current(job)
    assert live is not None
    # What a run killed at `current:before` leaves (its run id is older than the
    # repairing run's, so its folder sorts just before the live one).
    orphan = f"{DAY_2.isoformat()}_00000000T000000Z-killed"
    shutil.copytree(job.feed / live, job.feed / orphan)
    rollback = ["rollback", "--feed", str(job.feed), "--warehouse", str(job.warehouse)]
    result = jvn(rollback, job_env(tmp_path / "prefect"))
    assert result.returncode == 0, describe(result)
    assert current(job) == installation.live_before


def test_a_failed_run_leaves_the_previous_feed_live(
    installation: Installation, env: dict[str, str], tmp_path: Path
) -> None:
    job = installation.before.copy_to(tmp_path / "job")
    job.analytics.unlink()
    job.analytics.mkdir()  # the rebuilt database cannot be renamed over a folder
    result = jvn(job.run_args(DAY_2), env)
    assert result.returncode == 1, describe(result)
    assert "the previous feed stays live" in result.stderr
    assert current(job) == installation.live_before, "exit 1 said so, but a new feed is live"


_KILL_AT_SECOND_MELIOR = """
import os, signal, sys
import flows.load.ingest

passed = []

def checkpoint(name):
    if name == "load:melior":
        passed.append(name)
        if len(passed) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

flows.load.ingest.checkpoint = checkpoint
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_files_left_by_a_run_killed_while_loading_are_private(
    env: dict[str, str], tmp_path: Path
) -> None:
    """DuckDB's `.wal` holds personnummer; a kill leaves it behind (issue 15, item 11).

    Two Melior deliveries: the first is committed (into the WAL), the run dies
    loading the second.
    """
    job = Job(tmp_path / "job")
    write_inbox(job.inbox)
    job.data.mkdir(parents=True, mode=0o755)
    job.data.chmod(0o755)  # the operator's folder: the job leaves its mode alone
    previous = os.umask(0o022)  # an ordinary login umask, inherited by the run
    try:
        result = subprocess.run(
            [sys.executable, "-c", _KILL_AT_SECOND_MELIOR, *job.run_args(DAY_2)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    finally:
        os.umask(previous)
    assert result.returncode == -9, describe(result)
    assert job.warehouse.with_name(job.warehouse.name + ".wal").exists(), "no WAL was left"
    for path in job.data.rglob("*"):
        mode = path.lstat().st_mode & 0o777
        where = path.relative_to(job.data)
        if path == job.analytics:
            assert mode & 0o007 == 0, f"{where} is readable by everyone ({mode:o})"
        else:
            assert mode & 0o077 == 0, f"{where} is open to others ({mode:o})"
