"""Partitions decided together give exactly the files each decided alone gives.

A night's few records per partition, or a small region's full run, make small
partitions, which go to one task together (`decide_groups`); the rules are per record
and per patient and a patient lies in one partition, so deciding them together
must not change a byte of any partition's decisions or feed part.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flows.decide.partition import (
    GROUP_STATE_BYTES,
    decide_groups,
    decide_partition,
    decide_partitions,
    group_label,
)
from tests.decide_fixtures import (
    AS_OF,
    OTHER_PATIENT,
    PATIENT,
    block,
    blocks_frame,
    default_rules,
    invalid_record,
    record,
    records_frame,
)

PARTITION_RECORDS = {
    0: [
        record(record_id="melior:A"),
        record(record_id="melior:B", signed=False),
        invalid_record(record_id="melior:C", patient_id=None),
    ],
    2: [
        record(record_id="melior:D", patient_id=OTHER_PATIENT),
        record(record_id="t4:E", source_system="t4", patient_id=OTHER_PATIENT),
    ],
    3: [record(record_id="melior:F", patient_id=PATIENT, care_unit_hsa_id="SE-other")],
}
"""State per partition; partition 1 exported nothing (a partition the run must still
rebuild, say, because its records moved)."""


def _export(work_dir: Path, partitions: dict[int, list[dict[str, object]]]) -> None:
    """State as `export_state` writes it: one folder per partition, and the blocks."""
    for partition, rows in partitions.items():
        folder = work_dir / "state" / "records" / f"partition_key={partition}"
        folder.mkdir(parents=True)
        records_frame(rows).collect().write_parquet(folder / "data_0.parquet")
    blocks_frame([block(patient_id=OTHER_PATIENT, scope="ALL")]).collect().write_parquet(
        work_dir / "state" / "blocks.parquet"
    )


def _files(work_dir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(work_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("decisions", "feed")
        for path in sorted((work_dir / folder).glob("*.parquet"))
    }


def test_partitions_decided_together_write_the_files_each_decided_alone_writes(
    tmp_path: Path,
) -> None:
    alone, together = tmp_path / "alone", tmp_path / "together"
    for work_dir in (alone, together):
        _export(work_dir, PARTITION_RECORDS)
    keys = [0, 1, 2, 3]

    one_by_one = [decide_partition(key, alone, default_rules(), AS_OF, "run") for key in keys]
    grouped = decide_partitions(keys, together, default_rules(), AS_OF, "run")

    assert grouped == one_by_one
    assert _files(together) == _files(alone)
    assert set(_files(alone)) >= {"decisions/part-0000.parquet", "decisions/part-0003.parquet"}


def test_each_partition_of_a_group_reports_its_own_records(tmp_path: Path) -> None:
    _export(tmp_path, PARTITION_RECORDS)

    results = decide_partitions([0, 1, 2, 3], tmp_path, default_rules(), AS_OF, "run")

    assert [(result.partition, result.records) for result in results] == [
        (0, 3),
        (1, 0),
        (2, 2),
        (3, 1),
    ]
    assert [result.reasons.get("invalid_record", 0) for result in results] == [1, 0, 0, 0]


def _state_of_size(work_dir: Path, sizes: dict[int, int]) -> None:
    for key, size in sizes.items():
        folder = work_dir / "state" / "records" / f"partition_key={key}"
        folder.mkdir(parents=True)
        (folder / "data_0.parquet").write_bytes(b"\0" * size)


def test_a_full_run_over_large_partitions_decides_each_in_a_task_of_its_own(
    tmp_path: Path,
) -> None:
    _state_of_size(tmp_path, dict.fromkeys(range(4), GROUP_STATE_BYTES // 2 + 1))

    assert decide_groups([0, 1, 2, 3], tmp_path, workers=2) == [[0], [1], [2], [3]]


def test_small_partitions_are_grouped_in_order(tmp_path: Path) -> None:
    _export(tmp_path, PARTITION_RECORDS)

    assert decide_groups([0, 1, 2, 3], tmp_path, workers=1) == [[0, 1, 2, 3]]


@pytest.mark.parametrize(("workers", "sizes"), [(2, [9, 8]), (3, [6, 6, 5]), (40, [1] * 17)])
def test_groups_spread_evenly_over_the_workers(
    tmp_path: Path, workers: int, sizes: list[int]
) -> None:
    keys = list(range(17))

    groups = decide_groups(keys, tmp_path, workers=workers)

    assert [len(group) for group in groups] == sizes
    assert [key for group in groups for key in group] == keys


@pytest.mark.parametrize("large", [0, 1, 2])
def test_a_partition_with_large_state_is_decided_alone(tmp_path: Path, large: int) -> None:
    _state_of_size(
        tmp_path, {key: GROUP_STATE_BYTES + 1 if key == large else 10 for key in range(3)}
    )

    groups = decide_groups([0, 1, 2], tmp_path, workers=1)

    assert [large] in groups
    assert sorted(key for group in groups for key in group) == [0, 1, 2]


def test_task_runs_are_named_by_the_partitions_they_decide() -> None:
    assert group_label([3], 16) == "partition 3 of 16"
    assert group_label([0, 1, 2, 5], 50) == "partitions 0 to 5 of 50 (4)"
