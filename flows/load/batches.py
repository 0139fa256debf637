"""Which deliveries are prepared together: the unit of work that goes to a worker.

A large delivery the warehouse has not loaded is a batch of its own, so that
large deliveries spread over the workers; small ones of a system go together,
oldest first, up to SMALL_BATCH_BYTES, so that a night of small deliveries
(or a first run over days of them) does not pay Prefect's cost of a task run
for each. The folders already loaded on an earlier run (their bytes are only
hashed, to see they did not change) go together, one batch per system, so a
long-kept inbox does not cost a task per old folder. Batches keep the load
order: systems in `FEEDS` order, each oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flows.load.inbox import DeliveryFolder
from transforms.canonical import FEEDS

SMALL_BATCH_BYTES: Final = 8 * 1024 * 1024
"""New deliveries of one system are prepared together while their files add up to
at most this; one this large takes a fraction of a second, a task run's own cost
about a tenth of one. A delivery of unknown size is a batch of its own."""


@dataclass(frozen=True)
class DeliveryBatch:
    """Deliveries of one system prepared in one task, oldest first."""

    label: str
    """How the task run is named: `melior/2026-11-25`, `melior/2026-11-19 to 2026-11-25
    (5 deliveries)`, or `melior: 12 loaded before`."""
    deliveries: list[DeliveryFolder]

    @property
    def feed(self) -> str:
        """The system whose deliveries these are."""
        return self.deliveries[0].feed


def delivery_batches(
    deliveries: list[DeliveryFolder], loaded_folders: frozenset[str]
) -> list[DeliveryBatch]:
    """The batches to prepare, in load order (the order their deliveries are stored in)."""
    batches: list[DeliveryBatch] = []
    for feed in FEEDS:
        own = sorted(
            (delivery for delivery in deliveries if delivery.feed == feed),
            key=lambda delivery: delivery.business_date,
        )
        seen = [delivery for delivery in own if delivery.label in loaded_folders]
        if seen:
            label = f"{feed}: {len(seen)} loaded before" if len(seen) > 1 else seen[0].label
            batches.append(DeliveryBatch(label, seen))
        batches.extend(
            _new_batches([delivery for delivery in own if delivery.label not in loaded_folders])
        )
    return batches


def _new_batches(new: list[DeliveryFolder]) -> list[DeliveryBatch]:
    """One system's new deliveries, oldest first, the small ones together."""
    groups: list[list[DeliveryFolder]] = []
    room: int | None = None  # what the last group may still take; None: it takes nothing
    for delivery in new:
        size = delivery.size_bytes
        if size is not None and room is not None and size <= room:
            groups[-1].append(delivery)
            room -= size
        else:
            groups.append([delivery])
            room = (
                SMALL_BATCH_BYTES - size if size is not None and size <= SMALL_BATCH_BYTES else None
            )
    return [DeliveryBatch(_label(group), group) for group in groups]


def _label(group: list[DeliveryFolder]) -> str:
    if len(group) == 1:
        return group[0].label
    last = group[-1].business_date.isoformat()
    return f"{group[0].label} to {last} ({len(group)} deliveries)"
