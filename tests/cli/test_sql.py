"""`jvn sql`: the analysts' way into analytics.duckdb, on the committed sample run once.

Read-only, never the warehouse, errors as one line; every SQL example in
docs/analysts.md and README.md runs as printed; and what analysts ask for is in the database
(`exempt_unit_by_name_only` per record, `visible_share` per month).
"""

from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.cli import main
from flows.publish import analytics as analytics_build
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.duckdb_sessions import session_in_another_process
from tests.trust_support import sample_run_storage

REPO = Path(__file__).resolve().parents[2]
ANALYSTS_DOCS = (REPO / "docs" / "analysts.md", REPO / "README.md")


@dataclass(frozen=True)
class SampleRun:
    """The committed sample inbox run once for 2026-11-25 under the region's rules."""

    warehouse: Path
    analytics: Path


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> SampleRun:
    data = tmp_path_factory.mktemp("sample-sql") / "data"
    storage = sample_run_storage(data)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        assert main(["run", "--as-of", "2026-11-25", "--no-report", *storage]) == 0
    return SampleRun(data / "warehouse.duckdb", data / "analytics.duckdb")


def jvn_sql(run: SampleRun, *arguments: str) -> int:
    return main(["sql", "--analytics", str(run.analytics), *arguments])


def query(path: Path, text: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(text).fetchall()


def doc_sql_blocks() -> list[str]:
    """Every ```sql block of the analysts' doc and of the README (all meant for analysts)."""
    return [
        block
        for doc in ANALYSTS_DOCS
        for block in re.findall(r"```sql\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    ]


@pytest.mark.slow
def test_sql_prints_a_query_result_as_a_table_with_its_row_count(
    sample_run: SampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    status = jvn_sql(sample_run, "SELECT source_system, records FROM visibility_by_system")
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].split(" | ") == ["source_system", "records"]
    assert [line.split()[0] for line in lines[2:-1]] == [
        "asynjavisph", "journalia", "melior", "obstetrix", "t4",
    ]  # fmt: skip
    assert lines[-1] == "(5 rows)"


@pytest.mark.slow
def test_sql_csv_prints_a_header_and_the_rows_only(
    sample_run: SampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    status = jvn_sql(sample_run, "--csv", "-c", "SELECT reason, records FROM visibility_by_reason")
    lines = capsys.readouterr().out.splitlines()
    expected = query(sample_run.analytics, "SELECT reason, records FROM visibility_by_reason")
    assert status == 0
    assert lines == ["reason,records", *(f"{reason},{records}" for reason, records in expected)]


@pytest.mark.slow
def test_sql_cannot_change_the_analysts_database(
    sample_run: SampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    status = jvn_sql(sample_run, "DELETE FROM record_visibility")
    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith("jvn sql: ") and error.count("\n") == 1
    assert "read-only" in error
    assert query(sample_run.analytics, "SELECT count(*) FROM record_visibility")[0][0] > 0


@pytest.mark.slow
def test_sql_cannot_reach_the_warehouse_through_attach(
    sample_run: SampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    status = jvn_sql(sample_run, f"ATTACH '{sample_run.warehouse}' AS w (READ_ONLY)")
    assert status == 1
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
def test_sql_refuses_the_warehouse_by_its_name(
    sample_run: SampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["sql", "--analytics", str(sample_run.warehouse), "SELECT 1"])
    error = capsys.readouterr()
    assert status == 2
    assert error.out == ""
    assert "is the warehouse" in error.err and error.err.count("\n") == 1


@pytest.mark.slow
def test_sql_refuses_a_renamed_warehouse_by_its_tables(
    sample_run: SampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = tmp_path / "figures.duckdb"
    shutil.copyfile(sample_run.warehouse, renamed)
    status = main(["sql", "--analytics", str(renamed), "SELECT count(*) FROM decisions"])
    error = capsys.readouterr()
    assert status == 2
    assert error.out == ""
    assert "is a warehouse" in error.err


def test_sql_of_a_missing_database_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["sql", "--analytics", str(tmp_path / "none.duckdb"), "SELECT 1"])
    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith("jvn sql: no analysts' database") and error.count("\n") == 1


@pytest.mark.slow
def test_sql_error_is_one_line_and_exit_1(
    sample_run: SampleRun, capsys: pytest.CaptureFixture[str]
) -> None:
    status = jvn_sql(sample_run, "SELECT nothing FROM nowhere")
    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith("jvn sql: ") and error.count("\n") == 1


@pytest.mark.slow
def test_sql_prompt_runs_each_statement_at_its_semicolon_and_lists_tables(
    sample_run: SampleRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    statements = "SELECT 40\n  + 2 AS answer;\n.tables\nSELECT 'after' AS word;\n.quit\nSELECT 1;\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(statements))
    status = jvn_sql(sample_run)
    out = capsys.readouterr().out
    assert status == 0
    assert out.count("(1 row)") == 2
    assert "42" in out and "after" in out
    assert "record_visibility" in out and "visibility_by_month" in out
    assert out.index("42") < out.index("record_visibility") < out.index("after")


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(doc_sql_blocks())))
def test_every_sql_example_in_the_analysts_doc_runs_as_printed(
    sample_run: SampleRun, index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status = jvn_sql(sample_run, doc_sql_blocks()[index])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "(0 rows)" not in printed.out


@pytest.mark.slow
def test_record_visibility_flags_the_units_exempt_by_name_only(sample_run: SampleRun) -> None:
    flagged = query(
        sample_run.analytics,
        "SELECT care_unit_hsa_id, count(*) FROM record_visibility "
        "WHERE exempt_unit_by_name_only GROUP BY ALL ORDER BY ALL",
    )
    in_warehouse = query(
        sample_run.warehouse,
        "SELECT care_unit_hsa_id, count(*) FROM decisions "
        "WHERE exempt_unit_by_name_only GROUP BY ALL ORDER BY ALL",
    )
    assert flagged
    assert flagged == in_warehouse


@pytest.mark.slow
def test_visibility_by_month_gives_the_visible_share_as_a_fraction(sample_run: SampleRun) -> None:
    rows = query(
        sample_run.analytics, "SELECT records, visible, visible_share FROM visibility_by_month"
    )
    assert rows
    assert all(share == pytest.approx(visible / records) for records, visible, share in rows)
    assert all(0 <= share <= 1 for _, _, share in rows)


@pytest.mark.slow
def test_analytics_built_by_an_older_job_is_rebuilt_whole_with_the_new_column(
    sample_run: SampleRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = tmp_path / "analytics.duckdb"
    shutil.copyfile(sample_run.analytics, older)
    with duckdb.connect(str(older)) as connection:
        connection.execute("ALTER TABLE record_visibility DROP COLUMN exempt_unit_by_name_only")
    (run_id,) = query(older, "SELECT run_id FROM build_info")[0]
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    built = analytics_build.build(
        sample_run.warehouse, older, run_id=str(run_id), previous_run=str(run_id), only_records=[]
    )
    assert query(built, "SELECT incremental FROM build_info") == [(False,)]
    flagged = "SELECT count(*) FROM record_visibility WHERE exempt_unit_by_name_only"
    named_only = "SELECT sum(records) FROM units_exempt_by_name_only"
    assert query(built, flagged) == query(sample_run.analytics, named_only)


@pytest.mark.slow
def test_incremental_analytics_build_keeps_the_exempt_by_name_only_flag(
    sample_run: SampleRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = tmp_path / "analytics.duckdb"
    shutil.copyfile(sample_run.analytics, live)
    (run_id,) = query(live, "SELECT run_id FROM build_info")[0]
    flagged = query(live, "SELECT record_id FROM record_visibility WHERE exempt_unit_by_name_only")
    monkeypatch.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    built = analytics_build.build(
        sample_run.warehouse,
        live,
        run_id=str(run_id),
        previous_run=str(run_id),
        only_records=[str(record_id) for (record_id,) in flagged],
    )
    assert query(built, "SELECT incremental FROM build_info") == [(True,)]
    assert sorted(
        query(built, "SELECT record_id FROM record_visibility WHERE exempt_unit_by_name_only")
    ) == sorted(flagged)


@pytest.mark.slow
def test_sql_waits_while_a_run_holds_the_database_for_its_commit(
    sample_run: SampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "analytics.duckdb"
    shutil.copyfile(sample_run.analytics, database)
    writer = session_in_another_process(database, read_only=False, seconds=1.5)

    status = main(["sql", "--analytics", str(database), "SELECT count(*) AS n FROM runs"])

    writer.wait(timeout=30)
    assert status == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(1 row)"


@pytest.mark.slow
def test_sql_gives_up_on_a_database_held_past_the_wait_in_one_line(
    sample_run: SampleRun,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = tmp_path / "analytics.duckdb"
    shutil.copyfile(sample_run.analytics, database)
    monkeypatch.setenv("JVN_WAREHOUSE_LOCK_WAIT", "0")
    writer = session_in_another_process(database, read_only=False, seconds=5)
    try:
        status = main(["sql", "--analytics", str(database), "SELECT 1"])
    finally:
        writer.kill()
        writer.wait(timeout=30)

    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith(f"jvn sql: the analysts' database {database} is held by another")
    assert len(error.splitlines()) == 1
