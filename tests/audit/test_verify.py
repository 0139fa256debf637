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
from tests.duckdb_sessions import session_in_another_process
from tests.trust_support import (
    DAY_1,
    DAY_2,
    PSEUDONYM_KEY,
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


# --- the analysts' database against the warehouse (--analytics) ------------------


def verify_analytics(job: Job, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    return verify(job, capsys, "--analytics", str(job.analytics), *extra)


def tamper_analytics(job: Job, *statements: str) -> None:
    with duckdb.connect(str(job.analytics)) as connection:
        for statement in statements:
            connection.execute(statement)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The installation's pseudonym key, set as `jvn verify` reads it."""
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", PSEUDONYM_KEY)
    return PSEUDONYM_KEY


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JVN_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("JVN_PSEUDONYM_KEY_FILE", raising=False)


def one_record(job: Job) -> str:
    """A record of a patient with several records (the last run decided it)."""
    with duckdb.connect(str(job.analytics), read_only=True) as connection:
        row = connection.execute(
            "SELECT min(record_id) FROM record_visibility WHERE patient_key IN ("
            "  SELECT patient_key FROM record_visibility WHERE patient_key IS NOT NULL"
            "  GROUP BY patient_key HAVING count(*) > 1)"
        ).fetchone()
    assert row is not None and row[0] is not None
    return str(row[0])


def test_analysts_database_verifies_with_patient_keys_recomputed(
    job: Job, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = verify_analytics(job, capsys)
    assert status == 0, text
    assert "the analysts' database against the warehouse" in text
    assert "patient keys recomputed" in text


def test_without_the_key_patient_keys_are_checked_for_consistency(
    job: Job, no_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = verify_analytics(job, capsys)
    assert status == 0, text
    assert "patient keys checked for consistency only" in text


def test_without_analytics_a_note_says_it_was_not_checked(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = verify(job, capsys)
    assert status == 0, text
    assert "analysts' database was not checked" in text


def test_analysts_row_altered(job: Job, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    tamper_analytics(
        job,
        f"UPDATE record_visibility SET visible = NOT visible WHERE record_id = '{one_record(job)}'",
    )
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"analytics_record_differs_from_decision": 1})


def test_analysts_row_missing(job: Job, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    tamper_analytics(job, f"DELETE FROM record_visibility WHERE record_id = '{one_record(job)}'")
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"decision_missing_from_analytics": 1})


def test_analysts_row_twice(job: Job, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    record = one_record(job)
    tamper_analytics(
        job,
        "INSERT INTO record_visibility SELECT * FROM record_visibility "
        f"WHERE record_id = '{record}'",
    )
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"analytics_record_id_repeated": 1})


def test_analysts_row_of_no_record(job: Job, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    tamper_analytics(
        job,
        "INSERT INTO record_visibility SELECT * REPLACE ('no-such-record' AS record_id) "
        f"FROM record_visibility WHERE record_id = '{one_record(job)}'",
    )
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"analytics_record_not_in_decisions": 1})


def test_wrong_patient_key_is_found_with_the_key(
    job: Job, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper_analytics(
        job,
        "UPDATE record_visibility SET patient_key = md5(patient_key) "
        f"WHERE record_id = '{one_record(job)}'",
    )
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"analytics_patient_key_differs": 1})


def test_patient_key_of_another_patient_is_found_without_the_key(
    job: Job, no_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    record = one_record(job)
    tamper_analytics(
        job,
        "UPDATE record_visibility SET patient_key = (SELECT max(patient_key) FROM "
        f"record_visibility WHERE patient_key <> (SELECT patient_key FROM record_visibility "
        f"WHERE record_id = '{record}')) WHERE record_id = '{record}'",
    )
    status, text = verify_analytics(job, capsys)
    assert status == 1
    assert set(mismatches(text)) == {"analytics_patient_keys_inconsistent"}


def test_analysts_change_missing(job: Job, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    tamper_analytics(
        job,
        "DELETE FROM decision_changes WHERE record_id = "
        "(SELECT min(record_id) FROM decision_changes)",
    )
    status, text = verify_analytics(job, capsys)
    assert status == 1
    assert set(mismatches(text)) == {"warehouse_change_missing_from_analytics"}


def test_analysts_change_altered(job: Job, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    tamper_analytics(
        job,
        "UPDATE decision_changes SET after_reason = 'shown_by_mistake' WHERE record_id = "
        "(SELECT min(record_id) FROM decision_changes)",
    )
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"analytics_change_differs_from_warehouse": 1})


def test_analysts_change_twice(job: Job, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    tamper_analytics(
        job,
        "INSERT INTO decision_changes SELECT * FROM decision_changes WHERE record_id = "
        "(SELECT min(record_id) FROM decision_changes) LIMIT 1",
    )
    status, text = verify_analytics(job, capsys)
    assert status == 1
    assert mismatches(text).get("change_repeated") == 1


def test_analysts_database_of_an_earlier_run(
    job: Job, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a run whose analytics commit failed leaves, until the next run rebuilds it."""
    tamper_analytics(job, "UPDATE build_info SET run_id = 'an-earlier-run'")
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"analytics_not_from_latest_published_run": 1})
    assert "next run rebuilds it" in text


def test_personal_data_column_in_the_analysts_database(
    job: Job, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper_analytics(job, "CREATE TABLE leaked AS SELECT 'x' AS patient_id")
    status, text = verify_analytics(job, capsys)
    assert (status, mismatches(text)) == (1, {"analytics_holds_a_personal_data_column": 1})


def test_analysts_database_checked_from_the_command_line(job: Job, tmp_path: Path) -> None:
    """The command as an operator runs it: the environment's key, a separate process."""
    result = jvn(["verify", *job.storage_args()], job_env(tmp_path / "prefect"))
    assert result.returncode == 0, describe(result)
    assert "patient keys recomputed" in result.stdout


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


def test_missing_analytics_exits_2_in_one_line(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = verify(job, capsys, "--analytics", str(tmp_path / "typo.duckdb"))
    assert status == 2
    assert len(text.strip().splitlines()) == 1
    assert "no analysts' database" in text


def test_analytics_that_is_not_a_database_exits_2_in_one_line(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = tmp_path / "hostile.duckdb"
    hostile.write_bytes(b"DUCK" + bytes(range(256)) * 64)
    status, text = verify(job, capsys, "--analytics", str(hostile))
    assert status == 2
    assert len(text.strip().splitlines()) == 1
    assert "cannot be opened" in text


def test_analytics_held_for_writing_exits_2(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    session = session_in_another_process(job.analytics, read_only=False, seconds=60)
    try:
        status, text = verify(job, capsys, "--analytics", str(job.analytics))
    finally:
        session.kill()
        session.wait()
    assert status == 2
    assert "open for writing by another process" in text


def test_warehouse_that_is_not_a_database_is_not_called_busy(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job.warehouse.unlink()
    job.warehouse.write_bytes(b"not a database\n" * 100)
    status, text = verify(job, capsys)
    assert status == 2
    assert "cannot be opened" in text
    assert "another process" not in text


@pytest.fixture(autouse=True)
def _no_stray_output(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield
    capsys.readouterr()
