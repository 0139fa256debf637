"""`jvn diff` between published runs, its exports, and the feed's change set.

Two real runs on one small installation (module fixture): day 1 loads a few
records; day 2 updates one, retracts one, blocks a patient, adds two. Every test
reads that installation and asserts exact record sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli import main
from flows.common.feed_folder import live_snapshot, snapshots
from flows.common.files import file_sha256
from flows.publish.change_set import CHANGE_SET_FILE, apply_change_set
from tests.audit.test_rule_change_scenarios import (
    TEST_KEY,
    Job,
    change_set,
    changes_in,
    snapshot_rows,
)
from tests.inbox_builder import block_row, melior_row, t4_row, write_delivery
from transforms.schemas import FEED_COLUMNS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

DAY_1 = date(2026, 11, 24)
DAY_2 = date(2026, 11, 25)
PATIENT = "191212121212"
OTHER_PATIENT = "194107086995"
QUIET_PATIENT = "195001010023"  # another partition, untouched on day 2
SECRET_TEXT = "Patienten mår bra"

DAY_2_CHANGES = {
    ("melior:D-3", "hidden"),  # retracted
    ("t4:T-1", "hidden"),  # the patient blocked their journal
    ("melior:D-5", "new_shown"),
    ("melior:D-6", "new_hidden"),
}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Job]:
    job = Job(tmp_path_factory.mktemp("two-runs"))
    write_delivery(job.inbox, "melior", DAY_1, [
        melior_row("D-1"),
        melior_row("D-2"),
        melior_row("D-3"),
        melior_row("D-4", Dokumenttid="2015-01-01 10:00", Signeringstid="2015-01-01 11:00"),
        melior_row("Q-1", Personnummer=QUIET_PATIENT),
    ])  # fmt: skip
    write_delivery(job.inbox, "t4", DAY_1, [t4_row("T-1", patient_pnr="19410708-6995")])
    write_delivery(job.inbox, "melior", DAY_2, [
        melior_row("D-2", 2, Rubrik="Inskrivning, rättad"),
        melior_row("D-3", 2, Status="MAKULERAD"),
        melior_row("D-5"),
        melior_row("D-6", Dokumenttid="2015-01-01 10:00", Signeringstid="2015-01-01 11:00"),
    ])  # fmt: skip
    write_delivery(
        job.inbox, "blocks", DAY_2, [block_row("B-1", pnr=OTHER_PATIENT, valid_from="2026-11-25")]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JVN_PSEUDONYM_KEY", TEST_KEY)
        assert job.run(DAY_1) == 0
        assert job.run(DAY_2) == 0
    yield job


def run_ids(job: Job) -> list[str]:
    return [str(r) for (r,) in job.query(
        "SELECT run_id FROM runs WHERE status = 'published' ORDER BY run_seq"
    )]  # fmt: skip


def test_default_diff_is_the_last_two_runs_and_matches_the_recorded_changes(
    two_runs: Job, tmp_path: Path
) -> None:
    assert two_runs.diff(tmp_path / "diff.parquet") == 0

    assert changes_in(tmp_path / "diff.parquet") == DAY_2_CHANGES
    assert two_runs.recorded_changes() == DAY_2_CHANGES


def test_runs_are_named_by_business_date_or_the_start_of_their_id(
    two_runs: Job, tmp_path: Path
) -> None:
    first, second = run_ids(two_runs)

    by_date = tmp_path / "by-date.csv"
    assert two_runs.diff(by_date, "--from", DAY_1.isoformat(), "--to", DAY_2.isoformat()) == 0
    by_id = tmp_path / "by-id.csv"
    assert two_runs.diff(by_id, "--from", first[:16], "--to", second) == 0

    assert changes_in(by_date) == changes_in(by_id) == DAY_2_CHANGES


def test_from_and_to_naming_the_same_run_is_refused_with_one_line(
    two_runs: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    _, second = run_ids(two_runs)
    capsys.readouterr()

    assert main(["diff", "--warehouse", str(two_runs.warehouse), "--from", DAY_2.isoformat()]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("jvn: ") and "same run" in line and second in line
    assert "previous" in line, "the message tells how to name the run before"


@pytest.mark.parametrize("reference", ["previous", "latest~1", "~1"])
def test_the_run_before_the_latest_can_be_named_without_its_id(
    two_runs: Job, tmp_path: Path, reference: str
) -> None:
    export = tmp_path / "previous.csv"

    assert two_runs.diff(export, "--from", reference) == 0

    assert changes_in(export) == DAY_2_CHANGES


def test_a_relative_from_counts_back_from_the_to_run(two_runs: Job, tmp_path: Path) -> None:
    export = tmp_path / "relative.csv"

    assert two_runs.diff(export, "--from", "~1", "--to", "latest~1") == 2

    assert two_runs.diff(export, "--from", f"{DAY_2.isoformat()}~1", "--to", "latest") == 0
    assert changes_in(export) == DAY_2_CHANGES


def test_counting_back_past_the_first_run_exits_2(
    two_runs: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert main(["diff", "--warehouse", str(two_runs.warehouse), "--from", "latest~2"]) == 2

    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("jvn: ") and "before the first" in line


def test_diff_backwards_undoes_the_changes(two_runs: Job, tmp_path: Path) -> None:
    export = tmp_path / "back.parquet"
    assert two_runs.diff(export, "--from", DAY_2.isoformat(), "--to", DAY_1.isoformat()) == 0

    assert changes_in(export) == {
        ("melior:D-3", "shown"),
        ("t4:T-1", "shown"),
        ("melior:D-5", "gone"),
        ("melior:D-6", "gone"),
    }
    gone = pl.read_parquet(export).filter(pl.col("direction") == "gone")
    assert gone["source_system"].to_list() == ["melior", "melior"]
    assert gone["care_unit_hsa_id"].null_count() == 0, "a gone record keeps its unit"


def test_first_run_compares_against_nothing(two_runs: Job, tmp_path: Path) -> None:
    export = tmp_path / "first.csv"
    assert two_runs.diff(export, "--to", DAY_1.isoformat()) == 0

    assert changes_in(export) == {
        ("melior:D-1", "new_shown"),
        ("melior:D-2", "new_shown"),
        ("melior:D-3", "new_shown"),
        ("melior:D-4", "new_hidden"),
        ("melior:Q-1", "new_shown"),
        ("t4:T-1", "new_shown"),
    }


def test_summary_by_direction_system_unit_type_and_reason(
    two_runs: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = str(two_runs.warehouse)
    assert main(["diff", "--warehouse", warehouse]) == 0
    default = capsys.readouterr().out
    assert main(["diff", "--warehouse", warehouse, "--by", "unit", "--by", "reason"]) == 0
    chosen = capsys.readouterr().out

    assert "4 records changed: hidden 2, new_shown 1, new_hidden 1" in default
    for section in ("by system:", "by type:", "by reason:", "by unit:"):
        assert section in default
    assert "shown -> retracted" in default and "shown -> patient_block" in default
    assert "by system:" not in chosen and "by unit:" in chosen
    assert "SE2321000131-E000000000201" in chosen  # T-1's clinic
    assert PATIENT not in default + chosen and SECRET_TEXT not in default + chosen


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_holds_no_personnummer_and_no_text(
    two_runs: Job, tmp_path: Path, suffix: str
) -> None:
    export = tmp_path / f"changes{suffix}"
    assert two_runs.diff(export) == 0

    frame = pl.read_csv(export) if suffix == ".csv" else pl.read_parquet(export)
    assert set(frame.columns) == {
        "record_id", "source_system", "care_unit_hsa_id", "care_unit_name", "info_type",
        "direction", "before_visible", "before_reason", "before_reasons", "after_visible",
        "after_reason", "after_reasons", "from_run", "to_run",
    }  # fmt: skip
    dump = export.read_bytes()
    for secret in (PATIENT, OTHER_PATIENT, "19410708-6995", SECRET_TEXT, "Inskrivning"):
        assert secret.encode() not in dump


def test_bad_references_and_export_names_exit_2(
    two_runs: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = str(two_runs.warehouse)
    assert main(["diff", "--warehouse", warehouse, "--from", "nosuchrun"]) == 2
    assert main(["diff", "--warehouse", warehouse, "--to", "2020-01-01"]) == 2
    assert main(["diff", "--warehouse", warehouse, "--export", str(tmp_path / "x.txt")]) == 2
    assert main(["diff", "--warehouse", str(tmp_path / "none.duckdb")]) == 2

    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("jvn: ") for line in errors)


def test_analysts_get_the_same_changes_without_personal_data(two_runs: Job) -> None:
    with duckdb.connect(str(two_runs.analytics), read_only=True) as connection:
        rows = connection.execute(
            "SELECT record_id, direction FROM decision_changes WHERE as_of = $day",
            {"day": DAY_2},
        ).fetchall()
    assert set(rows) == DAY_2_CHANGES


def test_change_set_applied_to_previous_snapshot_gives_exactly_the_new_one(two_runs: Job) -> None:
    first, second = snapshots(two_runs.feed)
    live = live_snapshot(two_runs.feed)
    assert live is not None and live.name == second
    previous_path, new_path = two_runs.feed / first, two_runs.feed / second

    changes = change_set(new_path)

    assert changes.columns == ["change", *FEED_COLUMNS]
    kinds = {k: set(changes.filter(pl.col("change") == k)["record_id"]) for k in
             ("appeared", "changed", "disappeared")}  # fmt: skip
    assert kinds == {
        "appeared": {"melior:D-5"},
        "changed": {"melior:D-2"},
        "disappeared": {"melior:D-3", "t4:T-1"},
    }
    disappeared = changes.filter(pl.col("change") == "disappeared").drop("change", "record_id")
    assert all(disappeared[c].null_count() == disappeared.height for c in disappeared.columns)
    rebuilt = apply_change_set(snapshot_rows(previous_path), changes)
    assert rebuilt.equals(snapshot_rows(new_path))
    assert rebuilt.schema == snapshot_rows(new_path).schema


def test_change_sets_are_named_in_the_manifest_with_checksums(two_runs: Job) -> None:
    first, second = snapshots(two_runs.feed)
    for name, since in ((first, None), (second, first)):
        folder = two_runs.feed / name
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["change_set"]["file"] == CHANGE_SET_FILE
        assert manifest["change_set"]["since_snapshot"] == since
        (extra,) = manifest["extra_files"]
        assert extra["name"] == CHANGE_SET_FILE
        assert extra["sha256"] == file_sha256(folder / CHANGE_SET_FILE)
        # The snapshot's records/ folder holds the visible records and nothing else.
        assert sorted(f"records/{p.name}" for p in (folder / "records").iterdir()) == sorted(
            entry["name"] for entry in manifest["files"]
        )
    first_changes = change_set(two_runs.feed / first)
    assert set(first_changes["change"]) == {"appeared"}
    assert first_changes.drop("change").equals(snapshot_rows(two_runs.feed / first))
    counts = json.loads((two_runs.feed / second / "manifest.json").read_text())["change_set"]
    assert (counts["appeared"], counts["changed"], counts["disappeared"]) == (1, 1, 2)
