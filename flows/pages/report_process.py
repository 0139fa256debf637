"""The analysts' report, written by a process of its own started with the run.

Writing the report needs Altair and vl-convert, and vl-convert's first chart
starts its JavaScript engine: about 2 s of one core before the report's own
queries and charts (on a 10 M-record nightly run, 4.1 s of report: 1.1 s of
imports, 0.9 s for the engine). `jvn run` starts this process when it starts,
so that the cost overlaps the run's stages on another core; once the run is
published it asks the process for the report, and otherwise stops it.

It asks as soon as the flow has completed (Prefect's completion hook, `ask`),
so that the report is written while Prefect ends the flow run: on a running
server the run's end waits up to a second for the heartbeat thread's next
tick, and the report of a 10 M-record nightly run takes 1.5-1.9 s. The run
takes the answer once the flow has returned (`write`).

One line each way: the run writes `write` to the process's stdin (or closes
it: no report); the process answers `written` or `failed <ErrorType>` on its
stdout and exits. Its stderr goes nowhere, since a library's message may quote
a value: a failure is named by its type, as the report written in the run's own
process is. A process that died without answering (killed, out of memory) is no
failure of the report: the run then writes it itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import flows
from flows.common.config import environment_without_key
from flows.common.paths import default_report_path

_WRITE = b"write\n"
_WRITTEN = b"written\n"
_FAILED = b"failed "


class ReportNotWritten(Exception):
    """The report process could not write the report; `type_name` says why, by type."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


class EarlyReport:
    """The report for one run: asked of a process started early, or written here."""

    def __init__(self, analytics: Path, process: subprocess.Popen[bytes] | None) -> None:
        self.analytics = analytics
        self.process = process
        self.asked = False

    @classmethod
    def start(cls, analytics: Path) -> EarlyReport:
        """Start the report process for `analytics`; written here if it cannot start."""
        code_root = str(Path(flows.__file__).resolve().parent.parent)
        environment = environment_without_key()
        # The process runs this checkout's code, whatever the folder or path it starts in.
        environment["PYTHONPATH"] = code_root + (
            f"{os.pathsep}{environment['PYTHONPATH']}" if environment.get("PYTHONPATH") else ""
        )
        try:
            process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
                [sys.executable, "-m", "flows.pages.report_process", str(analytics.resolve())],
                env=environment,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return cls(analytics, None)
        return cls(analytics, process)

    @property
    def out(self) -> Path:
        return default_report_path(self.analytics)

    def ask(self) -> None:
        """Ask the process for the report now (the run is published); `write` takes
        the answer. Never raises: a process that cannot be asked has its report
        written by `write`, here."""
        if self.process is None or self.asked:
            return
        self.asked = True
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(_WRITE)
            self.process.stdin.close()
        except OSError:  # it died before reading its line (a broken pipe)
            self.process.kill()

    def write(self) -> Path:
        """Write the report; ReportNotWritten (or the error of writing it here) if not."""
        answer = self._answer() if self.process is not None else b""
        if answer == _WRITTEN:
            return self.out
        if answer.startswith(_FAILED):
            raise ReportNotWritten(answer[len(_FAILED) :].decode("ascii", "replace").strip())
        # No process, or it died without answering: write the report here.
        from flows.pages.report import write_report

        write_report(self.analytics, self.out)
        return self.out

    def stop(self) -> None:
        """Stop the process if it still runs (no report wanted, or the run failed)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self._reap()

    def _answer(self) -> bytes:
        assert self.process is not None and self.process.stdout
        self.ask()
        try:
            answer = self.process.stdout.readline(200)
        except OSError:
            answer = b""
        self._reap()
        return answer

    def _reap(self) -> None:
        assert self.process is not None
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.process.wait()


@contextlib.contextmanager
def report_started_early(
    analytics: Path, *, wanted: bool, command_line: bool
) -> Iterator[EarlyReport | None]:
    """The run's report process, started now and stopped on the way out; None when
    no report is wanted.

    Only for the `jvn` command itself (`command_line`), a process that ends with
    the run. A caller inside Python (`main(args)`: tests, a wrapper script) keeps
    its process: the report is written there when asked for, and from the second
    report on vl-convert's engine is warm there, which a process of its own never
    is.
    """
    if not wanted:
        yield None
        return
    if not command_line:
        yield EarlyReport(analytics, None)
        return
    report = EarlyReport.start(analytics)
    try:
        yield report
    finally:
        report.stop()


def main(arguments: list[str]) -> int:
    """The report process: start the engine, wait for the run's word, write or leave."""
    analytics = Path(arguments[0])
    from flows.pages.report import write_report
    from flows.pages.report_charts import warm_up

    warm_up()
    if sys.stdin.buffer.readline(200) != _WRITE:
        return 0
    try:
        write_report(analytics, default_report_path(analytics))
    except Exception as error:
        sys.stdout.buffer.write(_FAILED + type(error).__name__.encode("ascii") + b"\n")
        sys.stdout.flush()
        return 1
    sys.stdout.buffer.write(_WRITTEN)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    # Once it has answered (flushed, the report renamed into place) the process has
    # nothing left to do, and the run waits for it to end: leaving at once spares
    # that wait the interpreter's teardown, vl-convert's engine among it (0.3-0.4 s
    # after a 10 M report).
    os._exit(main(sys.argv[1:]))
