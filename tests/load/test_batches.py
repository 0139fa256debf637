"""Which deliveries are prepared together (flows/load/batches.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flows.load.batches import delivery_batches
from flows.load.inbox import DeliveryFolder


def _delivery(feed: str, day: int) -> DeliveryFolder:
    return DeliveryFolder(feed, date(2026, 11, day), Path("/inbox") / feed / f"2026-11-{day:02d}")


def test_a_delivery_not_loaded_before_is_a_batch_of_its_own() -> None:
    deliveries = [_delivery("melior", 24), _delivery("melior", 25)]

    batches = delivery_batches(deliveries, frozenset())

    assert [batch.deliveries for batch in batches] == [[deliveries[0]], [deliveries[1]]]
    assert [batch.label for batch in batches] == ["melior/2026-11-24", "melior/2026-11-25"]


def test_folders_loaded_before_go_together_one_batch_per_system() -> None:
    old = [_delivery("t4", day) for day in (20, 21, 22)]
    new = _delivery("t4", 25)

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
