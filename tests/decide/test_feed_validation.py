"""Newly decided visible rows are validated as feed rows before any of their group is written.

The kept rows of an incremental run come from the live snapshot, validated
when it was published and checked against its manifest before reuse; the rows
this run decides are checked here, and a bad one stops the run before any
feed part is written.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.decide.partition import _stage_partitions
from tests.decide_fixtures import record, run_decide
from transforms.schemas import ValidationFailed


def _decided(**changes: object) -> pl.DataFrame:
    """One visible record, decided, with `changes` applied after the decision."""
    decided = run_decide([record(record_id="melior:A")]).with_columns(
        run_id=pl.lit("run"), partition_key=pl.lit(0, dtype=pl.Int32)
    )
    assert decided["visible"].to_list() == [True]
    return decided.with_columns(**{name: pl.lit(value) for name, value in changes.items()})


def test_a_decided_visible_row_that_breaks_the_feed_schema_stops_the_partition(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _stage_partitions([0], {0: _decided(info_type="not-a-type")}, tmp_path, None)
    assert "info_type_is_known" in str(caught.value)
    assert not (tmp_path / "feed").exists()


def test_a_valid_decided_row_is_written_to_the_feed_part(tmp_path: Path) -> None:
    (result,) = _stage_partitions([0], {0: _decided()}, tmp_path, None)
    assert result.visible == 1
    assert result.feed_file is not None
    assert (tmp_path / "feed" / result.feed_file).is_file()


def test_a_bad_row_in_a_later_partition_of_a_group_stops_the_group_before_any_part(
    tmp_path: Path,
) -> None:
    group = {0: _decided(), 1: _decided(info_type="not-a-type")}
    with pytest.raises(ValidationFailed):
        _stage_partitions([0, 1], group, tmp_path, None)
    assert not (tmp_path / "feed").exists()
    assert not (tmp_path / "decisions").exists()
