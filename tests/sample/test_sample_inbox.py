"""The committed sample inbox, run through the real job, decides as the rules say.

`jvn sample` writes fixed scenario rows with the reason rules.md gives each of
them (`flows.sample.SCENARIOS`); this runs `jvn run` on the committed
`data/inbox` and checks every one, and that the sample passes the job's own
control checks (no delivery rejected).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flows.sample import SCENARIOS, SampleScenario, generate_inbox
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.test_nightly import Job
from tests.trust_support import SAMPLE_INBOX

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

SAMPLE_ARGUMENTS = {"records": 3000, "seed": 1177}


@pytest.fixture(scope="module")
def sample_job(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Job:
    """The README's run: the committed sample, as of its last business date."""
    from flows.cli import main

    job = Job(tmp_path_factory.mktemp("sample"))
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        status = main(
            [
                "run",
                "--as-of",
                "2026-11-25",
                "--inbox",
                str(SAMPLE_INBOX),
                "--warehouse",
                str(job.warehouse),
                "--analytics",
                str(job.analytics),
                "--feed",
                str(job.feed),
            ]
        )
    assert status == 0
    return job


@pytest.fixture(scope="module")
def sample_decisions(sample_job: Job) -> dict[str, str]:
    return sample_job.decisions()


def test_committed_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    generate_inbox(tmp_path, **SAMPLE_ARGUMENTS)

    committed = sorted(p.relative_to(SAMPLE_INBOX) for p in SAMPLE_INBOX.rglob("*") if p.is_file())
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert committed == generated
    for relative in committed:
        assert (SAMPLE_INBOX / relative).read_bytes() == (tmp_path / relative).read_bytes(), (
            relative
        )


def test_sample_loads_every_delivery_without_rejection(sample_job: Job) -> None:
    with duckdb.connect(str(sample_job.warehouse), read_only=True) as connection:
        statuses = connection.execute(
            "SELECT status, count(*) FROM deliveries GROUP BY status"
        ).fetchall()
    assert statuses == [("loaded", 30)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.record_id} {s.what}")
def test_scenario_row_gets_the_reason_the_rules_give(
    sample_decisions: dict[str, str], scenario: SampleScenario
) -> None:
    assert sample_decisions.get(scenario.record_id) == scenario.expected_reason
