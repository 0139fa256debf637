"""What operators see in the Prefect UI: the run summary as an artifact, a final state
that names rejected deliveries, task runs named by what they do.

One real `jvn run` (with a rejected delivery) serves several tests; a served run is
the deployment's flow function called directly. Everything is read back from
Prefect's API, as the UI reads it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import Artifact

from flows import serve as serve_module
from flows.publish.run_summary import RUN_SUMMARY_KEY, markdown_text, run_summary_markdown
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.inbox_builder import melior_row, t4_row, write_delivery
from tests.test_nightly import DAY_1, DAY_2, Job


def _summary_artifact(run_id: str) -> Artifact:
    """The run summary artifact of the jvn run `run_id` (the harness is shared)."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[RUN_SUMMARY_KEY]))
        )
    found = [a for a in artifacts if f"run {run_id}" in str(a.data)]
    assert len(found) == 1, f"{len(found)} run summary artifacts for run {run_id}"
    return found[0]


@dataclass(frozen=True)
class RejectedRun:
    """A plain `jvn run` that published with one delivery rejected."""

    exit_status: int
    summary: dict[str, Any]
    artifact: Artifact

    @property
    def flow_run_id(self) -> UUID:
        assert self.artifact.flow_run_id is not None
        return self.artifact.flow_run_id


@pytest.fixture(scope="module")
def rejected_run(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RejectedRun]:
    job = Job(tmp_path_factory.mktemp("rejected"))
    write_delivery(
        job.inbox, "melior", DAY_1, [melior_row("D-1"), melior_row("D-2", Dokumenttid="2015-01-01")]
    )
    write_delivery(job.inbox, "t4", DAY_1, [t4_row("T-1")], control={"rows": 7})
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
        patch.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        patch.delenv("JVN_PSEUDONYM_KEY_FILE", raising=False)
        status = job.run(DAY_2, "--json", "--no-report")
    summary = json.loads(output.getvalue())
    yield RejectedRun(status, summary, _summary_artifact(summary["run_id"]))


@pytest.mark.slow
def test_a_run_publishes_its_summary_with_the_per_reason_counts_as_an_artifact(
    rejected_run: RejectedRun,
) -> None:
    markdown = str(rejected_run.artifact.data)

    assert rejected_run.artifact.type == "markdown"
    for reason, count in rejected_run.summary["reasons"].items():
        assert f"| {markdown_text(reason)} | {count} |" in markdown


@pytest.mark.slow
def test_rejected_deliveries_are_listed_in_the_artifact(rejected_run: RejectedRun) -> None:
    markdown = str(rejected_run.artifact.data)

    assert "Rejected deliveries" in markdown
    assert "| t4/2026-11-24 |" in markdown
    assert "row count mismatch" in markdown


@pytest.mark.slow
def test_a_run_with_rejected_deliveries_ends_in_a_state_named_so_and_exits_3(
    rejected_run: RejectedRun,
) -> None:
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(rejected_run.flow_run_id)

    assert rejected_run.exit_status == 3
    assert rejected_run.summary["status"] == "published"
    assert flow_run.state is not None and flow_run.state.is_completed()
    assert flow_run.state.name == "Published with rejections"
    assert "1 delivery rejected: t4/2026-11-24" in (flow_run.state.message or "")


@pytest.mark.slow
def test_task_runs_are_named_by_what_they_do(rejected_run: RejectedRun) -> None:
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[rejected_run.flow_run_id]))
        )
    names = {run.name for run in task_runs}

    assert {
        "list the inbox for 2026-11-25",
        "load melior",
        "load t4",
        "plan partitions",
        "export state on 2026-11-25",
        "store decisions",
        "publish snapshot",
        "build analytics",
        "go live",
    } <= names
    # Each decide task run is named by the partitions it decides (small ones go
    # together, `decide_groups`); together they name each partition decided once.
    decided = [name for name in names if name.startswith("decide")]
    named = re.compile(r"decide (?:partition (\d+)|partitions (\d+) to (\d+)) of 4(?: \((\d+)\))?")
    covered: list[int] = []
    for name in decided:
        match = named.fullmatch(name)
        assert match, f"decide task run named {name!r}"
        one, first, last, count = match.groups()
        keys = [int(one)] if one else list(range(int(first), int(last) + 1))
        assert count is None or int(count) == len(keys)
        covered.extend(keys)
    assert covered, "no decide task run"
    assert len(covered) == len(set(covered)) == rejected_run.summary["partitions_decided"]
    assert set(covered) <= {0, 1, 2, 3}


def test_task_names_stay_as_the_contract_names_them() -> None:
    from flows import nightly

    assert [task.name for task in (nightly.load_feed, nightly.decide_partition)] == [
        "load-feed",
        "decide-partition",
    ]


@pytest.mark.slow
def test_a_served_run_publishes_its_summary_as_an_artifact(
    prefect_harness: None, pseudonym_key: str, tmp_path: Path
) -> None:
    job = Job(tmp_path)
    write_delivery(job.inbox, "melior", DAY_1, [melior_row("D-1")])

    summary = serve_module.scheduled_nightly_run(
        inbox=str(job.inbox),
        warehouse=str(job.warehouse),
        analytics_db=str(job.analytics),
        feed_dir=str(job.feed),
        as_of=DAY_2,
    )

    assert "| shown | 1 |" in str(_summary_artifact(summary["run_id"]).data)


def test_values_from_senders_cannot_break_the_summary_table() -> None:
    summary = {
        "run_id": "r",
        "as_of": "2026-11-25",
        "rules_version": "v",
        "status": "published",
        "snapshot": "s",
        "records": 3,
        "visible": 1,
        "reasons": {"shown": 1},
        "deliveries_rejected": [],
        "units_exempt_by_name_only": [
            {
                "care_unit_hsa_id": "SE-1",
                "care_unit_name": "BUP | <b>*Göteborg*</b>\n| forged | row |\x1b[31m",
                "records": 2,
            }
        ],
        "unknown_codes": [],
    }

    markdown = run_summary_markdown(summary)
    row = next(line for line in markdown.splitlines() if "SE-1" in line)

    assert "\n| forged" not in markdown and "\x1b" not in markdown
    assert row.count(" | ") == 2  # three cells: HSA-id, name, records
    assert "<b>" not in row and "\\*Göteborg\\*" in row
