"""Which deliveries are prepared together (flows/load/batches.py)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from flows.load import inbox
from flows.load.batches import SMALL_BATCH_BYTES, delivery_batches
from flows.load.inbox import DeliveryFolder, discover

LARGE = SMALL_BATCH_BYTES + 1


def _delivery(feed: str, day: int, size: int | None = LARGE) -> DeliveryFolder:
    folder = Path("/inbox") / feed / f"2026-11-{day:02d}"
    return DeliveryFolder(feed, date(2026, 11, day), folder, size)


def test_a_large_delivery_not_loaded_before_is_a_batch_of_its_own() -> None:
    deliveries = [_delivery("melior", 24), _delivery("melior", 25)]

    batches = delivery_batches(deliveries, frozenset())

    assert [batch.deliveries for batch in batches] == [[deliveries[0]], [deliveries[1]]]
    assert [batch.label for batch in batches] == ["melior/2026-11-24", "melior/2026-11-25"]


def test_folders_loaded_before_go_together_one_batch_per_system() -> None:
    old = [_delivery("t4", day, size=10) for day in (20, 21, 22)]
    new = _delivery("t4", 25, size=10)

    batches = delivery_batches([*old, new], frozenset(d.label for d in old))

    assert [batch.deliveries for batch in batches] == [old, [new]]
    assert batches[0].label == "t4: 3 loaded before"


def test_batches_keep_the_load_order_systems_in_order_each_oldest_first() -> None:
    deliveries = [
        _delivery("blocks", 24),
        _delivery("t4", 25),
        _delivery("melior", 25),
        _delivery("t4", 24),
        _delivery("melior", 24),
    ]

    batches = delivery_batches(deliveries, frozenset())

    assert [batch.label for batch in batches] == [
        "melior/2026-11-24",
        "melior/2026-11-25",
        "t4/2026-11-24",
        "t4/2026-11-25",
        "blocks/2026-11-24",
    ]


def test_every_delivery_is_in_exactly_one_batch() -> None:
    deliveries = [_delivery(feed, day) for feed in ("melior", "journalia") for day in (23, 24, 25)]
    loaded = frozenset({"melior/2026-11-23", "journalia/2026-11-24"})

    batches = delivery_batches(deliveries, loaded)

    batched = [delivery for batch in batches for delivery in batch.deliveries]
    assert sorted(batched, key=str) == sorted(deliveries, key=str)


def test_small_new_deliveries_of_a_system_go_together_oldest_first() -> None:
    small = [_delivery("melior", day, size=1_000) for day in (19, 20, 23)]
    other = _delivery("t4", 20, size=1_000)

    batches = delivery_batches([*small, other], frozenset())

    assert [batch.deliveries for batch in batches] == [small, [other]]
    assert batches[0].label == "melior/2026-11-19 to 2026-11-23 (3 deliveries)"
    assert batches[1].label == "t4/2026-11-20"


def test_a_batch_of_small_deliveries_holds_at_most_the_batch_size() -> None:
    half = SMALL_BATCH_BYTES // 2
    deliveries = [_delivery("melior", day, size=half) for day in (20, 21, 22)]

    batches = delivery_batches(deliveries, frozenset())

    assert [batch.deliveries for batch in batches] == [deliveries[:2], deliveries[2:]]


@pytest.mark.parametrize("size", [LARGE, None], ids=["large", "size unknown"])
def test_small_deliveries_never_join_a_large_or_unsized_one(size: int | None) -> None:
    first = _delivery("obstetrix", 20, size=10)
    middle = _delivery("obstetrix", 21, size=size)
    last = _delivery("obstetrix", 22, size=10)

    batches = delivery_batches([first, middle, last], frozenset())

    assert [batch.deliveries for batch in batches] == [[first], [middle], [last]]


def test_listing_the_inbox_measures_each_delivery_in_scope(tmp_path: Path) -> None:
    folder = tmp_path / "melior" / "2026-11-24"
    folder.mkdir(parents=True)
    (folder / "melior.csv").write_bytes(b"x" * 100)
    (folder / "melior.ctl").write_bytes(b"y" * 20)
    (folder / "link.csv").symlink_to(folder / "melior.csv")

    (delivery,) = discover(tmp_path, date(2026, 11, 25)).deliveries

    assert delivery.size_bytes == 120, "links are not followed"


def test_a_fifo_in_a_delivery_is_not_counted_nor_opened(tmp_path: Path) -> None:
    folder = tmp_path / "t4" / "2026-11-24"
    folder.mkdir(parents=True)
    (folder / "entries.csv").write_bytes(b"x" * 10)
    os.mkfifo(folder / "entries.ctl")  # opening it would block the listing

    (delivery,) = discover(tmp_path, date(2026, 11, 25)).deliveries

    assert delivery.size_bytes == 10


def test_a_delivery_folder_that_cannot_be_listed_has_no_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "t4" / "2026-11-24"
    folder.mkdir(parents=True)

    def refused(path: object) -> object:
        raise PermissionError(13, "Permission denied")

    # As root a mode-000 folder is still listed: refuse the listing itself.
    # (tests/load/test_hostile_deliveries.py runs a real unreadable one end to end.)
    monkeypatch.setattr(inbox.os, "scandir", refused)

    (delivery,) = discover(tmp_path, date(2026, 11, 25)).deliveries

    assert delivery.size_bytes is None, "unsized: a batch of its own; preparing it says why"
