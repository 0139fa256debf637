"""A snapshot's change set lists exactly the rows that differ from the previous snapshot.

Rows are compared whole, column by column (flows/publish/change_set.py,
sql/diff/change_set.sql): a difference in any one column, a null that became
a value, or a column the previous snapshot's parts did not have makes the row
`changed`; an identical row is never listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.common.feed_folder import LiveSnapshot
from flows.publish.change_set import CHANGE_SET_FILE, apply_change_set, write_change_set
from tests.decide_fixtures import record, run_decide
from transforms.schemas import FEED_COLUMNS


def _feed_rows(*records: dict[str, Any]) -> pl.DataFrame:
    """Feed rows (visible records, the portal's columns) for these records."""
    decided = run_decide(list(records))
    assert decided["visible"].all(), "a fixture record is hidden"
    return decided.select(FEED_COLUMNS).sort("record_id")


def _snapshot(folder: Path, rows: pl.DataFrame) -> LiveSnapshot:
    (folder / "records").mkdir(parents=True)
    rows.write_parquet(folder / "records" / "part-0000.parquet")
    manifest = {"files": [{"name": "records/part-0000.parquet"}]}
    return LiveSnapshot(folder.name, folder, manifest)


def _changes(
    tmp_path: Path,
    old: pl.DataFrame | None,
    new: pl.DataFrame,
    candidates: list[str] | None = None,
) -> pl.DataFrame:
    previous = _snapshot(tmp_path / "old", old) if old is not None else None
    staged = tmp_path / "new"
    _snapshot(staged, new)
    write_change_set(staged, previous, tmp_path / "spill", candidates)
    return pl.read_parquet(staged / CHANGE_SET_FILE)


def _listed(changes: pl.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(changes["record_id"], changes["change"], strict=True))


BASE = (record(record_id="melior:A"), record(record_id="melior:B"))


def test_identical_snapshots_have_an_empty_change_set(tmp_path: Path) -> None:
    rows = _feed_rows(*BASE)

    assert _changes(tmp_path, rows, rows).is_empty()


@pytest.mark.parametrize(
    "column, value",
    [
        ("content", "Korrigerad anteckning."),
        ("title", "Ny rubrik"),
        ("rules_version", "2026.2"),
        ("record_version", 2),
    ],
)
def test_a_row_differing_in_one_column_is_changed(
    tmp_path: Path, column: str, value: object
) -> None:
    old = _feed_rows(*BASE)
    new = old.with_columns(
        pl.when(pl.col("record_id") == "melior:B")
        .then(pl.lit(value, dtype=old.schema[column]))
        .otherwise(pl.col(column))
        .alias(column)
    )

    changes = _changes(tmp_path, old, new)

    assert _listed(changes) == [("melior:B", "changed")]
    assert apply_change_set(old, changes).equals(new)


def test_a_null_that_became_a_value_is_a_change(tmp_path: Path) -> None:
    old = _feed_rows(record(record_id="melior:A", title=None), BASE[1])
    new = _feed_rows(record(record_id="melior:A", title="Rubrik"), BASE[1])

    assert _listed(_changes(tmp_path, old, new)) == [("melior:A", "changed")]


def test_appeared_and_disappeared_rows_are_listed(tmp_path: Path) -> None:
    old = _feed_rows(*BASE)
    new = _feed_rows(BASE[0], record(record_id="melior:C"))

    changes = _changes(tmp_path, old, new)

    assert _listed(changes) == [("melior:B", "disappeared"), ("melior:C", "appeared")]
    assert apply_change_set(old, changes).equals(new)


def test_a_first_snapshot_lists_every_row_as_appeared(tmp_path: Path) -> None:
    new = _feed_rows(*BASE)

    assert _listed(_changes(tmp_path, None, new)) == [
        ("melior:A", "appeared"),
        ("melior:B", "appeared"),
    ]


def test_rows_of_a_previous_snapshot_with_another_column_are_all_changed(
    tmp_path: Path,
) -> None:
    new = _feed_rows(*BASE)
    old = new.with_columns(retired_column=pl.lit("x"))

    changes = _changes(tmp_path, old, new)

    assert _listed(changes) == [("melior:A", "changed"), ("melior:B", "changed")]
    assert apply_change_set(old.drop("retired_column"), changes).equals(new)


def _two_part_snapshot(folder: Path) -> Path:
    """A staged snapshot whose second part holds the lower record ids."""
    (folder / "records").mkdir(parents=True)
    _feed_rows(record(record_id="melior:C"), record(record_id="melior:D")).write_parquet(
        folder / "records" / "part-0000.parquet"
    )
    _feed_rows(record(record_id="melior:A"), record(record_id="melior:B")).write_parquet(
        folder / "records" / "part-0001.parquet"
    )
    return folder


def test_against_nothing_every_row_appeared_part_after_part_in_each_parts_order(
    tmp_path: Path,
) -> None:
    staged = _two_part_snapshot(tmp_path / "new")

    entry = write_change_set(staged, None, tmp_path / "spill")
    changes = pl.read_parquet(staged / CHANGE_SET_FILE)

    assert entry["appeared"] == 4
    assert changes.columns == ["change", *FEED_COLUMNS]
    assert changes["record_id"].to_list() == ["melior:C", "melior:D", "melior:A", "melior:B"]
    assert set(changes["change"]) == {"appeared"}


def test_a_change_set_against_nothing_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    written = []
    for attempt in ("first", "second"):
        staged = _two_part_snapshot(tmp_path / attempt)
        write_change_set(staged, None, tmp_path / "spill")
        written.append((staged / CHANGE_SET_FILE).read_bytes())

    assert written[0] == written[1]


def _night(old_extra: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A previous snapshot and a new one: A changed, B the same, C gone, D new."""
    old = _feed_rows(*BASE, record(record_id="melior:C"))
    new = _feed_rows(
        record(record_id="melior:A", content="Korrigerad anteckning."),
        record(record_id="melior:B"),
        record(record_id="melior:D"),
    )
    return (old.with_columns(retired_column=pl.lit("x")) if old_extra else old), new


@pytest.mark.parametrize("old_extra", [False, True])
def test_a_change_set_over_candidates_is_the_same_bytes_as_one_over_every_row(
    tmp_path: Path, old_extra: bool
) -> None:
    # An incremental run passes the ids it decided anew: their rows are read
    # first, on their own (flows/publish/change_set.py, _candidate_rows).
    old, new = _night(old_extra)
    _changes(tmp_path / "all", old, new)
    candidates = ["melior:A", "melior:B", "melior:C", "melior:D", "melior:Z"]
    _changes(tmp_path / "some", old, new, candidates)

    over_all = (tmp_path / "all" / "new" / CHANGE_SET_FILE).read_bytes()
    assert (tmp_path / "some" / "new" / CHANGE_SET_FILE).read_bytes() == over_all
    assert not (tmp_path / "some" / "spill" / "change-set-candidates").exists()


def test_a_change_set_over_candidates_lists_only_candidates(tmp_path: Path) -> None:
    old, new = _night()

    changes = _changes(tmp_path, old, new, ["melior:A", "melior:B"])

    assert _listed(changes) == [("melior:A", "changed")]
