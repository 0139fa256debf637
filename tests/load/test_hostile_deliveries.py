"""Hostile and broken deliveries: each is rejected by name, and never stops the night.

The sender's files are input the job does not control: a control file nested
200,000 levels deep, one of a megabyte, numbers of 5,000 digits, a FIFO where a
file should be, a folder nobody may read. Each must become a rejected delivery
with a reason that quotes nothing of the file, while every other delivery loads
(issue 15, items 2 and 8). A delivery dated after the run's date is listed and
recorded as left for later (item 12). And when this machine fails (the work
folder full), the run fails without blaming the sender (issue 15, low).

The unit tests call `load_delivery` on a real DuckDB warehouse; the end-to-end
ones run `jvn run` through the real Prefect flow. Unreadable files are made
unreadable for real: the run is started without the capabilities that let root
read any file (`setpriv`), and a full disk is a real, small tmpfs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.cli import main
from flows.common.feed_folder import live_snapshot
from flows.common.warehouse import connect
from flows.load.inbox import CONTROL_FILE, DeliveryFolder, discover
from flows.load.ingest import DeliveryOutcome, load_delivery, record_later
from flows.load.reader import LocalFailure
from tests.inbox_builder import block_row, delivery_bytes, melior_row, t4_row, write_delivery
from tests.trust_support import REPO, job_env

DAY_1 = date(2026, 11, 25)
DAY_2 = date(2026, 11, 26)
PATIENT = "191212121212"


# --- unit: one delivery judged on a real warehouse ------------------------------


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(tmp_path / "data" / "warehouse.duckdb") as connection:
        yield connection


def _judge(
    connection: duckdb.DuckDBPyConnection, inbox: Path, work: Path, feed: str = "t4"
) -> DeliveryOutcome:
    delivery = DeliveryFolder(feed, DAY_2, inbox / feed / DAY_2.isoformat())
    return load_delivery(connection, delivery, run_id="test-run", work_dir=work)


def _recorded(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str | None]]:
    return [
        (str(folder), str(status), error)
        for folder, status, error in connection.execute(
            "SELECT folder, status, error FROM deliveries ORDER BY folder"
        ).fetchall()
    ]


def _t4_delivery(inbox: Path) -> Path:
    """A valid t4 delivery for DAY_2 whose control file the test then replaces."""
    return write_delivery(inbox, "t4", DAY_2, [t4_row("T-1")])


def _control_text(folder: Path, **raw_values: str) -> bytes:
    """The correct control file, with some values replaced by raw JSON text."""
    data = (folder / "entries.csv").read_bytes()
    values = {
        "system": '"t4"',
        "business_date": f'"{DAY_2.isoformat()}"',
        "file": '"entries.csv"',
        "rows": "1",
        "sha256": f'"{hashlib.sha256(data).hexdigest()}"',
        **raw_values,
    }
    return ("{" + ", ".join(f'"{key}": {value}' for key, value in values.items()) + "}").encode()


def _data_sha256(folder: Path, suffix: str = "") -> str:
    """The data file's sha256 as a JSON string, with `suffix` appended."""
    return json.dumps(hashlib.sha256((folder / "entries.csv").read_bytes()).hexdigest() + suffix)


HOSTILE_CONTROL_FILES: dict[str, Callable[[Path], bytes]] = {
    "200000-nested-arrays": lambda folder: b"[" * 200_000,
    "60000-nested-arrays": lambda folder: b"[" * 60_000,
    "10000-nested-objects": lambda folder: b'{"a": ' * 10_000,
    "2-mib-of-whitespace": lambda folder: _control_text(folder)[:-1] + b" " * (2 << 20) + b"}",
    "invalid-utf8-bytes": lambda folder: b'{"system": "t\xff4"}',
    "nul-bytes": lambda folder: b"\x00" * 64,
    "empty": lambda folder: b"",
    "top-level-array": lambda folder: b"[" + _control_text(folder) + b"]",
    "rows-1e999": lambda folder: _control_text(folder, rows="1e999"),
    "rows-5000-digits": lambda folder: _control_text(folder, rows="9" * 5000),
    "rows-NaN": lambda folder: _control_text(folder, rows="NaN"),
    "rows-Infinity": lambda folder: _control_text(folder, rows="-Infinity"),
    "rows-a-string": lambda folder: _control_text(folder, rows='"1"'),
    "rows-true": lambda folder: _control_text(folder, rows="true"),
    "rows-negative": lambda folder: _control_text(folder, rows="-1"),
    "rows-an-object": lambda folder: _control_text(folder, rows='{"n": 1}'),
    "rows-repeated": lambda folder: _control_text(folder, rows='1, "rows": 1'),
    "system-a-list": lambda folder: _control_text(folder, system='["t4"]'),
    "system-a-lone-surrogate": lambda folder: _control_text(folder, system='"\\ud800"'),
    "business-date-a-number": lambda folder: _control_text(folder, business_date="20261126"),
    "file-an-object": lambda folder: _control_text(folder, file='{"name": "entries.csv"}'),
    "sha256-a-number": lambda folder: _control_text(folder, sha256="12345"),
    "sha256-and-newline": lambda folder: _control_text(folder, sha256=_data_sha256(folder, "\n")),
}  # fmt: skip


@pytest.mark.parametrize("content", HOSTILE_CONTROL_FILES.values(), ids=HOSTILE_CONTROL_FILES)
def test_hostile_control_file_is_a_recorded_rejection(
    content: Callable[[Path], bytes], warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    folder = _t4_delivery(tmp_path / "inbox")
    (folder / CONTROL_FILE).write_bytes(content(folder))

    outcome = _judge(warehouse, tmp_path / "inbox", tmp_path / "work")

    assert outcome.status == "rejected"
    assert outcome.error and outcome.error.isascii() and len(outcome.error) < 120
    assert _recorded(warehouse) == [("t4/2026-11-26", "rejected", outcome.error)]


def test_the_hostile_control_files_template_itself_loads(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """The cases above differ from a valid control file only in what they break."""
    folder = _t4_delivery(tmp_path / "inbox")
    (folder / CONTROL_FILE).write_bytes(_control_text(folder))

    assert _judge(warehouse, tmp_path / "inbox", tmp_path / "work").status == "loaded"


def test_deep_nesting_is_named_as_the_reason(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    folder = _t4_delivery(tmp_path / "inbox")
    (folder / CONTROL_FILE).write_bytes(b"[" * 60_000)

    outcome = _judge(warehouse, tmp_path / "inbox", tmp_path / "work")

    assert outcome.error == "control file is nested too deeply to be read"


def test_an_oversized_control_file_is_not_read_whole(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    folder = _t4_delivery(tmp_path / "inbox")
    (folder / CONTROL_FILE).write_bytes(b"[" * (8 << 20))

    outcome = _judge(warehouse, tmp_path / "inbox", tmp_path / "work")

    assert outcome.error == "control file is larger than 64 KiB"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


def _dangling_link(path: Path) -> None:
    path.symlink_to(path.parent / "no-such-file")


def _link_outside(path: Path) -> None:
    path.symlink_to("/etc/hostname")


NOT_A_FILE: dict[str, Callable[[Path], None]] = {
    "fifo": _fifo,
    "directory": _directory,
    "dangling-symlink": _dangling_link,
    "symlink-out-of-the-inbox": _link_outside,
}


@pytest.mark.parametrize("make", NOT_A_FILE.values(), ids=NOT_A_FILE)
@pytest.mark.parametrize("name", [CONTROL_FILE, "entries.csv"])
def test_a_control_or_data_file_that_is_no_regular_file_is_rejected_without_blocking(
    name: str,
    make: Callable[[Path], None],
    warehouse: duckdb.DuckDBPyConnection,
    tmp_path: Path,
) -> None:
    folder = _t4_delivery(tmp_path / "inbox")
    (folder / name).unlink()
    make(folder / name)

    outcome = _judge(warehouse, tmp_path / "inbox", tmp_path / "work")

    assert outcome.status == "rejected"
    assert outcome.error is not None and name in outcome.error
    assert _recorded(warehouse) == [("t4/2026-11-26", "rejected", outcome.error)]


# --- unit: deliveries left for later --------------------------------------------


def test_discover_lists_deliveries_dated_after_the_run_as_left_for_later(tmp_path: Path) -> None:
    write_delivery(tmp_path, "melior", DAY_1, [melior_row("D-1")])
    write_delivery(tmp_path, "blocks", date(2062, 11, 26), [block_row("B-1")])

    listing = discover(tmp_path, DAY_1)

    assert [d.label for d in listing.deliveries] == ["melior/2026-11-25"]
    assert [d.label for d in listing.later] == ["blocks/2062-11-26"]


def test_a_later_delivery_is_recorded_once_and_not_as_loaded(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    folder = write_delivery(tmp_path, "blocks", date(2062, 11, 26), [block_row("B-1")])
    later = DeliveryFolder("blocks", date(2062, 11, 26), folder)

    assert record_later(warehouse, later, "run-1") is True
    assert record_later(warehouse, later, "run-2") is False

    rows = warehouse.execute("SELECT folder, status, sha256, run_id FROM deliveries").fetchall()
    assert rows == [("blocks/2062-11-26", "later", None, "run-1")]


OLD_DELIVERIES_TABLE = """CREATE TABLE deliveries (
    delivery_id VARCHAR PRIMARY KEY, system VARCHAR NOT NULL, business_date DATE,
    folder VARCHAR NOT NULL, file VARCHAR, sha256 VARCHAR, rows BIGINT,
    status VARCHAR NOT NULL CHECK (status IN ('loaded', 'rejected', 'duplicate')),
    error VARCHAR, load_seq BIGINT, records_loaded BIGINT, rows_quarantined BIGINT,
    run_id VARCHAR NOT NULL, judged_at TIMESTAMPTZ NOT NULL)"""


def test_a_warehouse_made_before_the_later_status_takes_it_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as old:
        old.execute(OLD_DELIVERIES_TABLE)
        old.execute(
            "INSERT INTO deliveries VALUES ('melior/2026-11-25/ab', 'melior', '2026-11-25', "
            "'melior/2026-11-25', 'journal.csv', 'ab', 1, 'loaded', NULL, 1, 1, 0, 'r0', now())"
        )
    folder = write_delivery(tmp_path / "inbox", "blocks", DAY_2, [block_row("B-1")])

    with connect(path) as connection:
        record_later(connection, DeliveryFolder("blocks", DAY_2, folder), "run-1")
        statuses = connection.execute(
            "SELECT folder, status FROM deliveries ORDER BY folder"
        ).fetchall()

    assert statuses == [("blocks/2026-11-26", "later"), ("melior/2026-11-25", "loaded")]


# --- unit: this machine failing is not the sender's fault ------------------------


@pytest.fixture
def small_disk() -> Iterator[Callable[[Path, int], None]]:
    """Mount a tmpfs of a few KiB at a path (a real file system that fills up)."""
    mounted: list[Path] = []

    def mount(path: Path, size_kib: int) -> None:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a small tmpfs needs root")
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip("this machine does not allow mounting a tmpfs")
        mounted.append(path)

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _big_rows(feed: str, count: int = 400) -> list[dict[str, Any]]:
    """Rows whose text does not compress: a few MiB that a small disk cannot hold."""
    texts = [
        "".join(hashlib.sha512(f"{i}-{j}".encode()).hexdigest() for j in range(16))
        for i in range(count)
    ]
    if feed == "melior":
        return [melior_row(f"D-{i}", Text=text) for i, text in enumerate(texts)]
    return [_asynja_row(f"AV-{i}", body=text) for i, text in enumerate(texts)]


def _asynja_row(record_id: str, *, rev: int = 1, body: str = "Anteckning") -> dict[str, Any]:
    return {
        "id": record_id, "rev": rev, "patient": {"pnr": "19121212-1212"},
        "unit": {"hsaId": "SE2321000131-E000000004567", "name": "Vårdcentralen Dalen"},
        "type": "note", "keyword": "Bedömning", "documentedAt": "2021-11-01T00:30:00+01:00",
        "signed": True, "signedAt": "2021-11-01T09:12:00+01:00", "retracted": False,
        "title": "Besök", "body": body,
    }  # fmt: skip


@pytest.mark.parametrize(
    "feed",
    ["asynjavisph", "melior"],
    ids=["parsing-ndjson-with-duckdb", "transcoding-windows-1252"],
)
def test_a_full_work_folder_is_a_local_failure_and_records_nothing(
    feed: str,
    warehouse: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    small_disk: Callable[[Path, int], None],
) -> None:
    write_delivery(tmp_path / "inbox", feed, DAY_2, _big_rows(feed))
    work = tmp_path / "work"
    small_disk(work, 256)

    with pytest.raises(LocalFailure) as failure:
        _judge(warehouse, tmp_path / "inbox", work, feed)

    assert "ENOSPC" in str(failure.value)
    assert str(work) in str(failure.value)
    assert PATIENT not in str(failure.value)
    assert _recorded(warehouse) == []


# --- end to end: `jvn run` ----------------------------------------------------------


class Job:
    """One isolated installation of the job, run in-process like tests/test_nightly.py."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.warehouse = root / "data" / "warehouse.duckdb"
        self.analytics = root / "data" / "analytics.duckdb"
        self.feed = root / "data" / "feed"

    def args(self, as_of: date) -> list[str]:
        return [
            "run",
            "--as-of",
            as_of.isoformat(),
            "--inbox",
            str(self.inbox),
            "--warehouse",
            str(self.warehouse),
            "--analytics",
            str(self.analytics),
            "--feed",
            str(self.feed),
            "--partitions",
            "2",
        ]

    def run(self, as_of: date) -> int:
        return main(self.args(as_of))

    def deliveries(self) -> dict[str, tuple[str, str | None]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            rows = connection.execute("SELECT folder, status, error FROM deliveries").fetchall()
        return {folder: (status, error) for folder, status, error in rows}

    def decisions(self) -> dict[str, str]:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            return dict(connection.execute("SELECT record_id, reason FROM decisions").fetchall())


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return Job(tmp_path)


slow = pytest.mark.slow
in_process = pytest.mark.usefixtures("prefect_harness", "pseudonym_key")


@slow
@in_process
def test_a_deeply_nested_control_file_rejects_its_delivery_and_the_others_load(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-1")])
    folder = write_delivery(job.inbox, "t4", DAY_2, [t4_row("T-1")])
    (folder / CONTROL_FILE).write_bytes(b"[" * 200_000)

    assert job.run(DAY_2) == 3

    assert "t4/2026-11-26" in capsys.readouterr().err
    assert job.decisions() == {"melior:D-1": "shown"}
    assert job.deliveries()["t4/2026-11-26"][0] == "rejected"


@slow
@in_process
def test_a_delivery_dated_after_the_run_is_listed_recorded_and_loaded_when_its_date_comes(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-1", 2, Status="MAKULERAD")])
    write_delivery(job.inbox, "blocks", date(2062, 11, 26), [block_row("B-1")])

    assert job.run(DAY_1) == 0

    printed = capsys.readouterr().out
    assert "LEFT FOR LATER  melior/2026-11-26" in printed
    assert "LEFT FOR LATER  blocks/2062-11-26" in printed
    assert job.deliveries()["blocks/2062-11-26"][0] == "later"
    assert job.deliveries()["melior/2026-11-26"][0] == "later"
    with duckdb.connect(str(job.analytics), read_only=True) as analytics:
        later = analytics.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'later'"
        ).fetchall()
    assert later == [(2,)]

    assert job.run(DAY_2) == 0

    assert job.decisions() == {"melior:D-1": "retracted"}
    assert "LEFT FOR LATER  blocks/2062-11-26" in capsys.readouterr().out


@slow
@in_process
def test_folders_named_no_date_are_reported_as_ignored(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    (job.inbox / "blocks" / "2026-13-45").mkdir(parents=True)
    (job.inbox / "blocks" / "26-11-2026").mkdir()

    assert job.run(DAY_1) == 0

    printed = capsys.readouterr().out
    assert "IGNORED       blocks/2026-13-45" in printed
    assert "IGNORED       blocks/26-11-2026" in printed


def _work_root(warehouse: Path) -> Path:
    """Where a run keeps its work folders (beside the warehouse)."""
    try:
        from flows.common.paths import work_root  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return warehouse.parent / "work"
    return Path(work_root(warehouse))


@slow
@in_process
def test_a_full_work_folder_fails_the_run_blames_no_sender_and_the_next_run_loads_it(
    job: Job, capsys: pytest.CaptureFixture[str], small_disk: Callable[[Path, int], None]
) -> None:
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    assert job.run(DAY_1) == 0
    before = live_snapshot(job.feed)
    write_delivery(job.inbox, "asynjavisph", DAY_2, _big_rows("asynjavisph"))
    small_disk(_work_root(job.warehouse), 256)
    capsys.readouterr()

    assert job.run(DAY_2) == 1

    error = capsys.readouterr().err
    assert "ENOSPC" in error and "asynjavisph/2026-11-26" in error
    assert "rejected" not in error
    assert "asynjavisph/2026-11-26" not in job.deliveries()
    after = live_snapshot(job.feed)
    assert before is not None and after is not None and after.name == before.name

    subprocess.run(["umount", "-l", str(_work_root(job.warehouse))], check=True)

    assert job.run(DAY_2) == 0
    assert job.deliveries()["asynjavisph/2026-11-26"][0] == "loaded"


# --- end to end, as a process: files this process may not read -----------------


def _without_read_override() -> list[str]:
    """A command prefix under which file permissions hold, even for root.

    Root reads a mode-000 file through CAP_DAC_OVERRIDE; `setpriv` starts the job
    with that capability (and CAP_DAC_READ_SEARCH) out of its bounding set.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv to run without root's file-permission override")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


@slow
def test_unreadable_deliveries_are_rejected_by_name_and_the_rest_load(
    tmp_path: Path, prefect_api_url: str
) -> None:
    job = Job(tmp_path / "job")
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])
    t4_folder = write_delivery(job.inbox, "t4", DAY_1, [t4_row("T-1")])
    blocks_folder = write_delivery(job.inbox, "blocks", DAY_1, [block_row("B-1")])
    asynja_folder = write_delivery(
        job.inbox, "asynjavisph", DAY_1, data=delivery_bytes("asynjavisph", [_asynja_row("A-1")])
    )
    (asynja_folder / CONTROL_FILE).write_text(
        json.dumps(
            {
                "system": "asynjavisph",
                "business_date": DAY_1.isoformat(),
                "file": "records.ndjson",
                "rows": 1,
                "sha256": hashlib.sha256(
                    (asynja_folder / "records.ndjson").read_bytes()
                ).hexdigest(),
            }
        )
    )
    obstetrix = job.inbox / "obstetrix"
    (obstetrix / DAY_1.isoformat()).mkdir(parents=True)
    locked = [t4_folder, blocks_folder / "blocks.csv", asynja_folder / CONTROL_FILE, obstetrix]
    for path in locked:
        path.chmod(0)
    command = [*_without_read_override(), sys.executable, "-m", "flows.cli", *job.args(DAY_1)]
    # The tests' running Prefect server: this test is about the files, not the server.
    env = job_env(tmp_path / "prefect", api_url=prefect_api_url)
    try:
        probe = subprocess.run(
            [*_without_read_override(), "cat", str(blocks_folder / "blocks.csv")],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            pytest.skip("this machine lets the job read a mode-000 file")
        result = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
        )
    finally:
        for path in locked:
            path.chmod(0o700)

    assert result.returncode == 3, result.stderr[-2000:]
    assert "t4/2026-11-25 rejected: delivery folder cannot be read (EACCES" in result.stderr
    assert "blocks/2026-11-25 rejected: data file blocks.csv cannot be read (EACCES" in (
        result.stderr
    )
    assert "asynjavisph/2026-11-25 rejected: _control.json cannot be read (EACCES" in (
        result.stderr
    )
    assert "obstetrix rejected: folder cannot be read (EACCES" in result.stderr
    assert PATIENT not in result.stderr + result.stdout
    assert job.decisions() == {"melior:D-1": "shown"}
    recorded = job.deliveries()
    assert recorded["t4/2026-11-25"][0] == "rejected"
    assert recorded["blocks/2026-11-25"][0] == "rejected"
    assert recorded["asynjavisph/2026-11-25"][0] == "rejected"
