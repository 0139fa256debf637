"""One run at a time: a second `jvn run` is refused at once and touches nothing; a
lock left behind by a killed run is taken over.

The lock is `flows/common/lock.py`'s flock on `<warehouse>.lock`: the kernel drops it
when its holder dies, however it dies, so the file left behind is only a note
of who held it last.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.common.lock import RunLock, RunLocked
from flows.common.warehouse import connect
from tests.trust_support import (
    DAY_1,
    REPO,
    Job,
    describe,
    job_env,
    jvn,
    write_inbox,
)


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under root: size, mtime and sha256 (folders by their presence)."""
    state: dict[str, tuple[int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, digest)
        else:
            state[str(path.relative_to(root))] = (0, stat.st_mtime_ns, "dir")
    return state


def test_second_run_while_one_holds_the_lock_exits_at_once_and_touches_nothing(
    tmp_path: Path,
) -> None:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    with connect(job.warehouse):
        pass  # an existing warehouse, as on every night but the first
    prefect_home = tmp_path / "prefect-home"
    with RunLock(job.warehouse):
        before = tree_state(tmp_path)
        started = time.monotonic()
        result = jvn(job.run_args(DAY_1), job_env(prefect_home), timeout=120)
        elapsed = time.monotonic() - started
        after = tree_state(tmp_path)
    assert result.returncode == 1, describe(result)
    assert result.stderr.startswith("jvn: another jvn run is in progress (pid "), describe(result)
    assert "this one touched nothing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, "not a one-line message"
    assert result.stdout == ""
    assert after == before, "the refused run changed files"
    assert not prefect_home.exists(), "the refused run started Prefect"
    assert elapsed < 60, f"the refused run took {elapsed:.0f} s"


def test_lock_is_exclusive_even_within_one_process(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with RunLock(warehouse), pytest.raises(RunLocked, match="in progress"), RunLock(warehouse):
        pass
    with RunLock(warehouse):  # released on exit: taken again
        pass


def test_lock_file_with_stale_content_is_taken_over(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    lock_file = warehouse.with_name("warehouse.duckdb.lock")
    lock_file.write_text("pid 999999 on a-host-long-gone since 2020-01-01T00:00:00Z\n")
    with RunLock(warehouse):
        assert lock_file.read_text().startswith(f"pid {os.getpid()} on ")
    lock_file.write_bytes(b"\x00\xff garbage, not even text")
    with RunLock(warehouse):
        assert lock_file.read_text().startswith(f"pid {os.getpid()} on ")


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from flows.common.lock import RunLock
with RunLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path, prefect_api_url: str) -> None:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    env = job_env(tmp_path / "prefect", api_url=prefect_api_url)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(job.warehouse)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        refused = jvn(job.run_args(DAY_1), env, timeout=120)
        assert refused.returncode == 1, describe(refused)
        assert f"pid {holder.pid} on " in refused.stderr
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    lock_file = job.warehouse.with_name(job.warehouse.name + ".lock")
    assert lock_file.read_text().startswith(f"pid {holder.pid} on "), "the stale note is gone"

    result = jvn(job.run_args(DAY_1), env)
    assert result.returncode == 0, describe(result)
    assert (job.feed / "CURRENT").is_file()
