"""`jvn verify`: a clean feed passes; every kind of tampering is caught, by kind and count.

One real installation is built once (two nightly runs, through the real flow in
a separate process); each test tampers with its own copy and runs `jvn verify`
in-process. Tampering rewrites the manifest to match, where that is the
point, so only the deeper checks (warehouse, rules) can catch it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli import main
from flows.common.lock import RunLock
from tests.trust_support import (
    DAY_1,
    DAY_2,
    Job,
    describe,
    job_env,
    jvn,
    secrets_of_inbox,
    write_inbox,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> Job:
    """An installation after two published nightly runs (day 1, then day 2)."""
    base = tmp_path_factory.mktemp("verify")
    job = Job(base / "job")
    write_inbox(job.inbox)
    env = job_env(base / "prefect-client", api_url=prefect_api_url)
    for as_of in (DAY_1, DAY_2):
        result = jvn(job.run_args(as_of), env)
        assert result.returncode == 3, describe(result)  # one delivery is rejected
    return job


@pytest.fixture
def job(published: Job, tmp_path: Path) -> Job:
    return published.copy_to(tmp_path / "job")


def verify(job: Job, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status = main(["verify", "--warehouse", str(job.warehouse), "--feed", str(job.feed), *extra])
    out = capsys.readouterr()
    text = out.out + out.err
    for label, secret in secrets_of_inbox().items():
        assert secret not in text, f"jvn verify printed {label}"
    return status, text


def mismatches(text: str) -> dict[str, int]:
    found = {}
    for line in text.splitlines():
        if line.startswith("verify: MISMATCH "):
            kind, _, rest = line.removeprefix("verify: MISMATCH ").partition(": ")
            found[kind] = int(rest.split()[0])
    return found


def snapshot(job: Job) -> Path:
    return job.feed / (job.feed / "CURRENT").read_text(encoding="utf-8").strip()


def feed_files(job: Job) -> list[Path]:
    manifest = json.loads((snapshot(job) / "manifest.json").read_text(encoding="utf-8"))
    return [snapshot(job) / entry["name"] for entry in manifest["files"]]


def rewrite(job: Job, path: Path, frame: pl.DataFrame) -> None:
    """Replace one feed file and make the manifest agree with it (a careful forger)."""
    path.unlink()  # snapshots may share files by hard link: never write through one
    frame.write_parquet(path)
    manifest_path = snapshot(job) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if snapshot(job) / entry["name"] == path:
            entry["rows"] = frame.height
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    files = [snapshot(job) / entry["name"] for entry in manifest["files"]]
    everything = pl.concat([pl.read_parquet(f) for f in files])
    manifest["row_count"] = everything.height
    manifest["rows_per_system"] = dict(
        everything.group_by("source_system").len().sort("source_system").iter_rows()
    )
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


def feed_row_of(job: Job, record_id: str, like: pl.DataFrame) -> pl.DataFrame:
    """A feed row built from the warehouse's latest version of a record."""
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        frame = connection.sql(
            "SELECT * FROM record_versions WHERE record_id = $id "
            "ORDER BY record_version DESC LIMIT 1",
            params={"id": record_id},
        ).pl()
    assert frame.height == 1
    frame = frame.with_columns(rules_version=pl.lit(like["rules_version"][0]))
    return frame.select(like.columns).cast(like.schema)


def hidden_record(job: Job, reason: str) -> str:
    with duckdb.connect(str(job.warehouse), read_only=True) as connection:
        row = connection.execute(
            "SELECT record_id FROM decisions WHERE reason = $reason AND patient_id IS NOT NULL "
            "ORDER BY record_id LIMIT 1",
            {"reason": reason},
        ).fetchone()
    assert row is not None, f"the test inbox has no record hidden as {reason}"
    return str(row[0])


# --- a clean feed -------------------------------------------------------------


def test_clean_feed_verifies(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    status, text = verify(job, capsys)
    assert status == 0, text
    assert "verify: OK" in text
    assert "decided again under rules" in text
    assert "against the warehouse's decisions" in text


def test_verify_as_a_command(job: Job, tmp_path: Path) -> None:
    result = jvn(["verify", *job.storage_args()], job_env(tmp_path / "prefect"))
    assert result.returncode == 0, describe(result)
    assert "verify: OK" in result.stdout


def test_rolled_back_feed_is_checked_against_history(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    """CURRENT pointed back at day 1's snapshot: decisions are day 2's, history is used."""
    day_1 = sorted(p.name for p in job.feed.iterdir() if p.name.startswith(DAY_1.isoformat()))
    (job.feed / "CURRENT").write_text(day_1[-1] + "\n", encoding="utf-8")
    status, text = verify(job, capsys)
    assert status == 0, text
    assert "decision history at run" in text
    assert "rolled back" in text


# --- the feed against its manifest ----------------------------------------------


def test_flipped_byte_is_a_checksum_mismatch(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    path = feed_files(job)[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.unlink()
    path.write_bytes(bytes(data))
    status, text = verify(job, capsys)
    assert status == 1
    assert mismatches(text)["file_checksum_mismatch"] == 1
    assert path.name in text


def test_missing_unlisted_and_miscounted_files(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    files = feed_files(job)
    files[0].unlink()
    pl.DataFrame({"record_id": ["x"]}).write_parquet(snapshot(job) / "part-9999.parquet")
    manifest_path = snapshot(job) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["row_count"] += 5
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    status, text = verify(job, capsys)
    assert status == 1
    found = mismatches(text)
    assert found["file_missing"] == 1
    assert found["file_not_in_manifest"] == 1
    assert found["manifest_row_count_mismatch"] == 1
    assert found["visible_decision_missing_from_feed"] >= 1


def test_current_missing_or_naming_no_snapshot(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    (job.feed / "CURRENT").write_text("no-such-snapshot\n", encoding="utf-8")
    status, text = verify(job, capsys)
    assert (status, mismatches(text)) == (1, {"current_not_a_snapshot": 1})
    (job.feed / "CURRENT").write_text("../../etc\n", encoding="utf-8")
    status, text = verify(job, capsys)
    assert (status, mismatches(text)) == (1, {"current_not_a_snapshot": 1})
    (job.feed / "CURRENT").unlink()
    status, text = verify(job, capsys)
    assert (status, mismatches(text)) == (1, {"current_missing": 1})


def test_nothing_published_yet_is_not_a_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = Job(tmp_path / "job")
    from flows.common.warehouse import connect

    with connect(job.warehouse):
        pass
    status, text = verify(job, capsys)
    assert status == 0, text
    assert "nothing published yet" in text


# --- the feed against the warehouse and the rules --------------------------------


def test_hidden_record_smuggled_into_the_feed(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    path = feed_files(job)[0]
    rows = pl.read_parquet(path)
    smuggled = feed_row_of(job, hidden_record(job, "exempt_term"), rows)
    rewrite(job, path, pl.concat([rows, smuggled]))
    status, text = verify(job, capsys)
    assert status == 1
    assert mismatches(text) == {
        "feed_record_hidden_by_decision": 1,
        "feed_record_hidden_by_rules": 1,
    }


def test_blocked_record_smuggled_into_the_feed(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    path = feed_files(job)[-1]
    rows = pl.read_parquet(path)
    smuggled = feed_row_of(job, hidden_record(job, "patient_block"), rows)
    rewrite(job, path, pl.concat([rows, smuggled]))
    status, text = verify(job, capsys)
    assert status == 1
    assert mismatches(text) == {
        "feed_record_hidden_by_decision": 1,
        "feed_record_hidden_by_rules": 1,
    }


def test_unknown_record_in_the_feed(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    path = feed_files(job)[0]
    rows = pl.read_parquet(path)
    invented = rows.head(1).with_columns(record_id=pl.lit("melior:INVENTED-1"))
    rewrite(job, path, pl.concat([rows, invented]))
    status, text = verify(job, capsys)
    assert status == 1
    assert mismatches(text) == {
        "feed_record_not_in_decisions": 1,
        "feed_record_hidden_by_rules": 1,
    }


def test_visible_record_left_out_of_the_feed(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    path = feed_files(job)[0]
    rows = pl.read_parquet(path)
    rewrite(job, path, rows.tail(rows.height - 1))
    status, text = verify(job, capsys)
    assert status == 1
    assert mismatches(text) == {
        "visible_decision_missing_from_feed": 1,
        "visible_by_rules_missing_from_feed": 1,
    }


def test_altered_content_and_version(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    path = feed_files(job)[0]
    rows = pl.read_parquet(path)
    altered = rows.with_columns(
        content=pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("ändrad text"))
        .otherwise(pl.col("content"))
    )
    rewrite(job, path, altered)
    status, text = verify(job, capsys)
    assert (status, mismatches(text)) == (1, {"feed_row_differs_from_rules_state": 1})

    bumped = rows.with_columns(
        record_version=pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("record_version") + 1)
        .otherwise(pl.col("record_version"))
    )
    rewrite(job, path, bumped)
    status, text = verify(job, capsys)
    assert status == 1
    assert mismatches(text) == {
        "feed_record_version_differs_from_decision": 1,
        "feed_row_differs_from_rules_state": 1,
    }


def test_decisions_of_a_run_that_never_published(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    """A later run replaced `decisions` and then died: the warehouse no longer describes
    the live feed (what a crash between storing decisions and publishing leaves)."""
    with duckdb.connect(str(job.warehouse)) as connection:
        connection.execute(
            "INSERT INTO runs (run_id, as_of, rules_version, rules_sha256, started_at, status) "
            "SELECT '29990101T000000Z-dead00', as_of, rules_version, rules_sha256, "
            "now(), 'running' FROM runs WHERE status = 'published' ORDER BY run_seq DESC LIMIT 1"
        )
        connection.execute("UPDATE decisions SET run_id = '29990101T000000Z-dead00'")
    status, text = verify(job, capsys)
    assert status == 1
    assert mismatches(text) == {"decisions_not_from_live_run": 1}
    assert "decision history at run" in text


def test_rule_file_of_another_version(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transforms.rules import default_rules_path

    text = default_rules_path().read_text(encoding="utf-8")
    other = tmp_path / "rules.toml"
    other.write_text(text.replace('version = "2026.1"', 'version = "2099.9"'), encoding="utf-8")
    status, out = verify(job, capsys, "--rules", str(other))
    assert (status, mismatches(out)) == (1, {"rules_file_differs_from_feed": 1})


# --- exit 2: cannot verify ----------------------------------------------------------


def test_unreadable_rule_file_exits_2(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = verify(job, capsys, "--rules", str(tmp_path / "missing.toml"))
    assert status == 2
    assert len(text.strip().splitlines()) == 1


def test_missing_warehouse_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, text = verify(Job(tmp_path / "nothing"), capsys)
    assert status == 2
    assert "no warehouse" in text


def test_run_in_progress_exits_2(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    with RunLock(job.warehouse):
        status, text = verify(job, capsys)
    assert status == 2
    assert "in progress" in text


@pytest.fixture(autouse=True)
def _no_stray_output(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield
    capsys.readouterr()
