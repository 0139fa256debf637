"""The analysts' report written by a process started with the run (issue 11).

- Asked, the process writes the same report as `jvn report`, and exits; asked
  early (as the flow completes), its answer is taken once the flow returns.
- A report it cannot write is named by the error's type, nothing more.
- Not asked (no report wanted, the run failed), it writes nothing and is gone.
- A process that died without answering is no failure: the run writes the report.
- It never holds the pseudonym key, nor its file's name.
- `jvn run` in a process of its own uses it: the report is not written in the
  run's process, and the process is gone when the run is.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.states import Completed, Failed

from flows.cli import main
from flows.cli.pages import write_report_after_run
from flows.common.paths import default_report_path
from flows.decide.distributed import PublishedHook
from flows.pages.report import write_report
from flows.pages.report_process import EarlyReport, ReportNotWritten, report_started_early
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.trust_support import (
    DAY_1,
    Job,
    describe,
    job_env,
    sample_run_storage,
    write_inbox,
)


@pytest.fixture(scope="module")
def analytics(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    """The analysts' database of one sample run, with no report written beside it."""
    data = tmp_path_factory.mktemp("report-process") / "data"
    storage = sample_run_storage(data)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        assert main(["run", "--as-of", "2026-11-24", "--no-report", *storage]) == 0
    return data / "analytics.duckdb"


@pytest.fixture
def fresh_analytics(analytics: Path, tmp_path: Path) -> Path:
    """A copy of the sample's analysts' database of this test's own (its report is its own)."""
    copy = tmp_path / "analytics.duckdb"
    copy.write_bytes(analytics.read_bytes())
    return copy


@pytest.fixture
def early_report(fresh_analytics: Path) -> Iterator[EarlyReport]:
    report = EarlyReport.start(fresh_analytics)
    try:
        yield report
    finally:
        report.stop()


def test_the_report_process_writes_the_report_jvn_report_writes(
    early_report: EarlyReport, fresh_analytics: Path, tmp_path: Path
) -> None:
    assert early_report.process is not None
    written = early_report.write()
    assert written == default_report_path(fresh_analytics)
    assert early_report.process.returncode == 0
    here = tmp_path / "here.html"
    write_report(fresh_analytics, here)
    assert written.read_bytes() == here.read_bytes()


def test_a_report_asked_early_is_taken_when_the_run_wants_it(
    early_report: EarlyReport, fresh_analytics: Path, tmp_path: Path
) -> None:
    early_report.ask()
    early_report.ask()  # the flow's hook and `write` may both ask: once is sent
    written = early_report.write()
    assert written == default_report_path(fresh_analytics)
    here = tmp_path / "here.html"
    write_report(fresh_analytics, here)
    assert written.read_bytes() == here.read_bytes()


def test_a_report_process_that_died_before_it_was_asked_leaves_the_report_to_the_run(
    early_report: EarlyReport, fresh_analytics: Path
) -> None:
    assert early_report.process is not None
    early_report.process.kill()
    early_report.process.wait()
    early_report.ask()
    assert early_report.write() == default_report_path(fresh_analytics)


def test_the_flows_published_hook_travels_to_dask_workers_without_its_callback() -> None:
    # Prefect pickles the flow, hooks and all, into every task it sends to Dask.
    unpicklable = threading.Lock()
    called: list[bool] = []
    hook = PublishedHook(lambda: called.append(unpicklable.locked()))
    travelled = pickle.loads(pickle.dumps(hook))
    travelled(None, None, Completed())
    assert called == []
    hook(None, None, Completed())
    assert called == [False]


def test_the_flows_published_hook_is_not_called_for_a_failed_run() -> None:
    called: list[bool] = []
    PublishedHook(lambda: called.append(True))(None, None, Failed())
    assert called == []


def test_a_report_the_process_cannot_write_is_named_by_its_type(tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    report = EarlyReport.start(missing)
    try:
        with pytest.raises(ReportNotWritten) as raised:
            report.write()
    finally:
        report.stop()
    assert raised.value.type_name == "ReportError"
    assert not default_report_path(missing).exists()


def test_a_failed_report_is_told_by_type_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = EarlyReport.start(tmp_path / "none.duckdb")
    try:
        assert write_report_after_run(report) is None
    finally:
        report.stop()
    said = capsys.readouterr().err
    assert "the run is published, but its report" in said
    assert "(ReportError); run `jvn report` to retry" in said


def test_a_report_process_not_asked_writes_nothing_and_is_gone(
    early_report: EarlyReport, fresh_analytics: Path
) -> None:
    early_report.stop()
    assert early_report.process is not None
    assert early_report.process.returncode is not None
    assert not default_report_path(fresh_analytics).exists()


def test_a_caller_inside_python_gets_no_report_process(fresh_analytics: Path) -> None:
    # Its process lives on, and its engine is warm from the second report on.
    with report_started_early(fresh_analytics, wanted=True, command_line=False) as report:
        assert report is not None
        assert report.process is None


def test_a_report_process_that_died_leaves_the_report_to_the_run(
    early_report: EarlyReport, fresh_analytics: Path
) -> None:
    assert early_report.process is not None
    early_report.process.kill()
    early_report.process.wait()
    assert early_report.write() == default_report_path(fresh_analytics)
    assert default_report_path(fresh_analytics).stat().st_size > 10_000


@pytest.mark.parametrize("variable", ["JVN_PSEUDONYM_KEY", "JVN_PSEUDONYM_KEY_FILE"])
def test_the_report_process_holds_no_pseudonym_key(
    fresh_analytics: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "report-process-must-not-see-this-0123")
    report = EarlyReport.start(fresh_analytics)
    try:
        assert report.process is not None
        environment = Path(f"/proc/{report.process.pid}/environ").read_bytes().split(b"\0")
    finally:
        report.stop()
    assert not any(entry.startswith(f"{variable}=".encode()) for entry in environment)


_RECORD_THE_REPORT = """
import json, sys
from pathlib import Path
import flows.pages.report_process as report_process

record = Path(sys.argv[1])
real_write = report_process.EarlyReport.write
real_ask = report_process.EarlyReport.ask
asked_in_flow = []

def recording_ask(self):
    from prefect.context import FlowRunContext
    asked_in_flow.append(FlowRunContext.get() is not None)
    real_ask(self)

def recording_write(self):
    written = real_write(self)
    record.write_text(json.dumps({
        "process": self.process is not None,
        "exit": None if self.process is None else self.process.returncode,
        "pid": None if self.process is None else self.process.pid,
        "rendered_here": "vl_convert" in sys.modules,
        "asked_in_flow": asked_in_flow,
    }))
    return written

report_process.EarlyReport.write = recording_write
report_process.EarlyReport.ask = recording_ask
from flows.cli import main
sys.argv = ["jvn", *sys.argv[2:]]
sys.exit(main())  # as the jvn command does: no argv given
"""


@pytest.mark.slow
def test_a_run_in_its_own_process_has_its_report_written_by_the_report_process(
    tmp_path: Path,
) -> None:
    job = Job(tmp_path / "job")
    write_inbox(job.inbox, days=(1,))
    record = tmp_path / "record.json"
    result = subprocess.run(
        [sys.executable, "-c", _RECORD_THE_REPORT, str(record), *job.run_args(DAY_1)],
        cwd=tmp_path,
        env=job_env(tmp_path / "prefect-home"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, describe(result)
    seen = json.loads(record.read_text())
    assert seen["process"] is True
    assert seen["exit"] == 0
    assert seen["rendered_here"] is False, "the run's own process rendered the report"
    # Asked by the flow's completion hook, inside the flow run; `write` asks again (a no-op).
    assert seen["asked_in_flow"] == [True, False]
    assert not Path(f"/proc/{seen['pid']}").exists(), "the report process outlived the run"
    report = default_report_path(job.analytics)
    assert f"report        {report}" in result.stdout
    again = tmp_path / "again.html"
    assert main(["report", "--analytics", str(job.analytics), "--out", str(again)]) == 0
    assert again.read_bytes() == report.read_bytes()
