"""Operator mistakes around the job's files (issue 15: items 3, 9, 10, 11 and SIGTERM).

- Two of the job's places that coincide or nest are refused (exit 2, one line)
  before anything is touched: `--analytics` equal to `--warehouse` once renamed
  the analysts' database over the warehouse.
- Another process holding the warehouse (an operator's read-only DuckDB
  session) is waited for, a bounded time, then the run fails with one line;
  recording that failure may fail too, and is then reported, not raised.
- Only the job's own folders in the work folder are removed.
- What the job leaves beside the warehouse is private, whatever the umask.
- SIGTERM stops a run as Ctrl-C does: no process it started survives it, and
  Prefect's temporary server never sees the pseudonym key.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from flows.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_TERMINATED, main
from flows.common.config import LOCK_WAIT_VARIABLE, ConfigError
from flows.common.errors import WarehouseBusy, safe_message
from flows.common.paths import check_separate, job_places
from flows.common.warehouse import connect, make_private, open_waiting
from flows.store.runs import clear_stale_work
from tests.trust_support import DAY_1, PSEUDONYM_KEY, REPO, Job, describe, job_env, write_inbox
from transforms.rules import default_rules_path

# --- item 3: the job's places must be separate --------------------------------


def _job(tmp_path: Path) -> Job:
    job = Job(tmp_path / "job")
    job.inbox.mkdir(parents=True)
    with connect(job.warehouse):
        pass
    return job


def _run_with(job: Job, **paths: Path) -> list[str]:
    places = {
        "inbox": job.inbox,
        "warehouse": job.warehouse,
        "analytics": job.analytics,
        "feed": job.feed,
        **paths,
    }
    return [
        "run", "--as-of", DAY_1.isoformat(),
        *(f"--{name}={path}" for name, path in places.items()),
    ]  # fmt: skip


OVERLAPS = {
    "analytics is the warehouse": lambda job: {"analytics": job.warehouse},
    "analytics is the warehouse through ..": lambda job: {
        "analytics": job.data / "feed" / ".." / job.warehouse.name
    },
    "analytics is DuckDB's log of the warehouse": lambda job: {
        "analytics": job.data / "warehouse.duckdb.wal"
    },
    "feed is the warehouse's folder": lambda job: {"feed": job.data},
    "feed is the work folder": lambda job: {"feed": job.data / "work"},
    "inbox is inside the work folder": lambda job: {"inbox": job.data / "work" / "inbox"},
    "analytics is inside the feed": lambda job: {"analytics": job.feed / "analytics.duckdb"},
    "inbox is the feed": lambda job: {"inbox": job.feed},
    "warehouse is inside the inbox": lambda job: {"inbox": job.root},
}


@pytest.mark.parametrize("case", list(OVERLAPS))
def test_run_refuses_overlapping_places_with_exit_2_and_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path)
    before = job.warehouse.read_bytes()

    status = main(_run_with(job, **OVERLAPS[case](job)))

    error = capsys.readouterr().err
    assert status == EXIT_CONFIG, error
    assert len(error.strip().splitlines()) == 1, error
    assert "would destroy the other" in error
    assert job.warehouse.read_bytes() == before
    assert not job.feed.exists() and not job.analytics.exists()


def test_run_refuses_an_inbox_that_is_not_there_with_exit_2_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--inbox data/inbx` (a typo) used to publish a run with no deliveries, exit 0."""
    job = _job(tmp_path)
    before = job.warehouse.read_bytes()

    status = main(_run_with(job, inbox=job.root / "inbx"))

    error = capsys.readouterr().err
    assert status == EXIT_CONFIG, error
    assert len(error.strip().splitlines()) == 1, error
    assert "no inbox folder" in error
    assert job.warehouse.read_bytes() == before
    assert not job.feed.exists() and not job.analytics.exists()


def test_run_refuses_an_analytics_path_that_is_a_symlink_to_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path)
    link = tmp_path / "analysts.duckdb"
    link.symlink_to(job.warehouse)

    assert main(_run_with(job, analytics=link)) == EXIT_CONFIG
    assert "are the same place" in capsys.readouterr().err


def test_run_refuses_an_analytics_file_hard_linked_to_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path)
    other = tmp_path / "elsewhere" / "analytics.duckdb"
    other.parent.mkdir()
    os.link(job.warehouse, other)

    assert main(_run_with(job, analytics=other)) == EXIT_CONFIG
    assert "are the same place" in capsys.readouterr().err


def test_the_usual_layout_is_accepted(tmp_path: Path) -> None:
    job = Job(tmp_path)
    check_separate(
        job_places(warehouse=job.warehouse, inbox=job.inbox, analytics=job.analytics, feed=job.feed)
    )
    check_separate(
        job_places(
            warehouse=Path("data/warehouse.duckdb"),
            inbox=Path("data/inbox"),
            analytics=Path("data/analytics.duckdb"),
            feed=Path("data/feed"),
        )
    )


def test_rollback_refuses_a_feed_that_is_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path)
    status = main(["rollback", "--feed", str(job.warehouse), "--warehouse", str(job.warehouse)])
    assert status == EXIT_CONFIG
    assert "would destroy the other" in capsys.readouterr().err


def test_whatif_refuses_to_export_over_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(tmp_path)
    before = job.warehouse.read_bytes()
    rules = default_rules_path()
    status = main(
        ["whatif", "--rules", str(rules), "--warehouse", str(job.warehouse),
         "--export", str(job.warehouse)]
    )  # fmt: skip
    assert status == EXIT_CONFIG
    assert "--export" in capsys.readouterr().err
    assert job.warehouse.read_bytes() == before


def test_a_scheduled_run_refuses_overlapping_places(tmp_path: Path) -> None:
    from flows.preflight import check_can_run

    job = _job(tmp_path)
    with pytest.raises(ConfigError, match="would destroy the other"):
        check_can_run(
            DAY_1,
            job.feed,
            default_rules_path(),
            warehouse=job.warehouse,
            inbox=job.inbox,
            analytics=job.warehouse,
        )


# --- item 9: another process holding the warehouse ------------------------------

_HOLD_READ_ONLY = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@contextlib.contextmanager
def reader_holding(warehouse: Path, seconds: float = 600) -> Iterator[subprocess.Popen[str]]:
    """An operator's read-only DuckDB session on the warehouse, in another process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_READ_ONLY, str(warehouse), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_run_waits_for_a_reader_then_fails_with_one_line_naming_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", PSEUDONYM_KEY)
    job = _job(tmp_path)
    with reader_holding(job.warehouse):
        started = time.monotonic()
        status = main([*_run_with(job), "--lock-wait", "1"])
        waited = time.monotonic() - started

    error = capsys.readouterr().err
    assert status == EXIT_FAILED, error
    assert error.splitlines() == [error.strip()], "not one line"
    assert f"the warehouse {job.warehouse} is held by another process" in error
    assert "waited 1 s" in error
    assert 1 <= waited < 30
    assert not (job.feed / "CURRENT").exists()


def test_opening_the_warehouse_succeeds_once_the_reader_leaves_within_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse):
        pass
    monkeypatch.setenv(LOCK_WAIT_VARIABLE, "60")
    with reader_holding(warehouse, seconds=1.5):
        connection = open_waiting(warehouse)
    connection.close()


def test_a_bad_lock_wait_setting_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", PSEUDONYM_KEY)
    job = _job(tmp_path)
    monkeypatch.setenv(LOCK_WAIT_VARIABLE, "soon")
    assert main(_run_with(job)) == EXIT_CONFIG
    assert LOCK_WAIT_VARIABLE in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_reader_opened_mid_run_fails_the_run_in_one_line_and_the_next_run_recovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.nightly

    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    real_plan = flows.nightly.plan_partitions
    holder: list[subprocess.Popen[str]] = []
    stack = contextlib.ExitStack()

    def plan_with_a_reader_arriving(*args: object, **kwargs: object) -> object:
        holder.append(stack.enter_context(reader_holding(job.warehouse)))
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(flows.nightly, "plan_partitions", plan_with_a_reader_arriving)
    with stack:
        status = main([*job.run_args(DAY_1), "--lock-wait", "0.5"])
    assert holder, "the reader never arrived"
    error = capsys.readouterr().err
    assert status == EXIT_FAILED, error
    [line] = [line for line in error.splitlines() if line.startswith("jvn:")]
    assert "nothing published" in line
    assert f"the warehouse {job.warehouse} is held by another process" in line
    assert "this failure could not be recorded" in line
    # Prefect logs the failed task as it logs every failure; DuckDB's own error
    # (a lock traceback, the other process's command line) never surfaces.
    assert "IOException" not in error and "Could not set lock" not in error

    monkeypatch.undo()
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", PSEUDONYM_KEY)
    assert main(job.run_args(DAY_1)) == 0
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        runs = connection.execute("SELECT status, message FROM runs ORDER BY started_at").fetchall()
    assert runs[0] == ("failed", "the run was killed before it finished")
    assert runs[1][0] == "published"


# --- item 10: the work folder ------------------------------------------------------


def test_clearing_the_work_folder_removes_only_the_jobs_own_folders(tmp_path: Path) -> None:
    work = tmp_path / "work"
    stale_run = work / "20261125T023000Z-1a2b3c"
    stale_whatif = work / ("whatif-" + "0" * 32)
    for folder in (stale_run, stale_whatif):
        (folder / "deliveries").mkdir(parents=True)
        (folder / "deliveries" / "rows.parquet").write_bytes(b"staged")
    (work / "operator-notes.txt").write_text("mine")
    (work / "scratch").mkdir()
    (work / "scratch" / "query.sql").write_text("SELECT 1")

    left = clear_stale_work(work)

    assert sorted(p.name for p in work.iterdir()) == ["operator-notes.txt", "scratch"]
    assert (work / "scratch" / "query.sql").read_text() == "SELECT 1"
    assert left == 2


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_a_run_leaves_an_operators_files_in_the_work_folder_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    work = job.data / "work"
    work.mkdir(parents=True)
    (work / "operator-notes.txt").write_text("mine")
    (work / "20261125T023000Z-1a2b3c").mkdir()

    assert main(job.run_args(DAY_1)) == 0

    assert (work / "operator-notes.txt").read_text() == "mine"
    assert not (work / "20261125T023000Z-1a2b3c").exists()
    out = capsys.readouterr().out
    assert out.count("entries the job did not make") == 1, out


# --- item 11: what is written beside the warehouse is private ------------------------


def test_modes_left_open_beside_the_warehouse_are_made_private(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    opened = {
        warehouse: 0o644,
        tmp_path / "warehouse.duckdb.wal": 0o644,
        tmp_path / "warehouse.duckdb.lock": 0o666,
        tmp_path / "warehouse.duckdb.tmp" / "spill.bin": 0o644,
        tmp_path / "work" / "20261125T023000Z-1a2b3c" / "rows.parquet": 0o644,
    }
    for path, mode in opened.items():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(b"x")
        path.chmod(mode)
    for folder in (tmp_path / "warehouse.duckdb.tmp", tmp_path / "work"):
        folder.chmod(0o755)
    operators_file = tmp_path / "README.txt"
    operators_file.write_text("the operator's")
    operators_file.chmod(0o644)

    make_private(warehouse)

    for path in opened:
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} {path.stat().st_mode:o}"
    for folder in (tmp_path / "warehouse.duckdb.tmp", tmp_path / "work"):
        assert folder.stat().st_mode & 0o777 == 0o700
    assert operators_file.stat().st_mode & 0o777 == 0o644, "not the job's file"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_files_a_run_creates_beside_the_warehouse_are_private_under_an_open_umask(
    tmp_path: Path,
) -> None:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    job.data.mkdir(parents=True, mode=0o755)
    job.data.chmod(0o755)
    previous = os.umask(0o022)
    try:
        assert main(job.run_args(DAY_1)) == 0
    finally:
        os.umask(previous)
    for path in job.data.rglob("*"):
        mode = path.lstat().st_mode & 0o777
        if path in (job.analytics, job.analytics.with_suffix(".html")):
            # The analysts' database and its report: the job's group reads them.
            assert mode == 0o640, f"{path.name} {mode:o}"
        else:
            assert mode & 0o077 == 0, f"{path.relative_to(job.data)} {mode:o}"


# --- SIGTERM: nothing survives, the key stays out of Prefect's server -----------------

_PAUSE_IN_EXPORT = """
import sys, time
from pathlib import Path
import flows.store.state

marker = Path(sys.argv[1])
real_checkpoint = flows.store.state.checkpoint

def pausing_checkpoint(name):
    if name == "export_state":
        marker.write_text("paused")
        time.sleep(600)
    real_checkpoint(name)

flows.store.state.checkpoint = pausing_checkpoint
from flows.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _processes_in_group(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp.
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


@pytest.mark.slow
def test_sigterm_stops_the_run_and_every_process_it_started(tmp_path: Path) -> None:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    marker = tmp_path / "paused"
    # No PREFECT_API_URL: the run starts Prefect's temporary server itself.
    env = job_env(tmp_path / "prefect-home", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240")
    process = subprocess.Popen(
        [sys.executable, "-c", _PAUSE_IN_EXPORT, str(marker), *job.run_args(DAY_1)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert process.poll() is None, "the run ended before it paused"
            assert time.monotonic() < deadline, "the run never reached export_state"
            time.sleep(0.2)
        children = _children(process.pid)
        assert children, "no temporary Prefect server was started"
        for child in children:
            environment = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            assert not any(v.startswith(b"JVN_PSEUDONYM_KEY=") for v in environment), (
                "the pseudonym key is in the environment of a process the run started"
            )

        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        assert process.returncode == EXIT_TERMINATED, describe(result)
        assert "stopped by SIGTERM" in stderr
        deadline = time.monotonic() + 20
        while _processes_in_group(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _processes_in_group(process.pid), "a process of the run survived SIGTERM"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


# --- internal errors name the errno and the job's own paths ---------------------------


def test_an_internal_error_names_errno_and_a_path_of_the_jobs_own_files(tmp_path: Path) -> None:
    from flows.common import errors

    warehouse = tmp_path / "data" / "warehouse.duckdb"
    errors.messages_may_name(str(warehouse), str(tmp_path / "a.duckdb"), str(tmp_path / "feed"))
    try:
        own = OSError(28, "No space left on device", str(tmp_path / "data" / "work" / "x.parquet"))
        delivered = PermissionError(13, "Permission denied", str(tmp_path / "inbox" / "t4" / "f"))
        assert safe_message(own) == (
            f"internal error (OSError ENOSPC on {tmp_path / 'data' / 'work' / 'x.parquet'}); "
            "see 'Internal errors' in docs/operations.md"
        )
        assert safe_message(delivered) == (
            "internal error (PermissionError EACCES); see 'Internal errors' in docs/operations.md"
        )
    finally:
        errors.messages_may_name()


def test_an_error_that_is_no_os_error_is_named_by_its_type_only() -> None:
    assert safe_message(ValueError("191212121212")) == (
        "internal error (ValueError); see 'Internal errors' in docs/operations.md"
    )


def test_warehouse_busy_is_reported_as_it_is() -> None:
    message = "the warehouse /x is held by another process"
    assert safe_message(WarehouseBusy(message)) == message
