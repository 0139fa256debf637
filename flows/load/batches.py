"""Which deliveries are prepared together: the unit of work that goes to a worker.

A delivery the warehouse has not loaded is a batch of its own, so that large
deliveries spread over the workers; the folders already loaded on an earlier
run (their bytes are only hashed, to see they did not change) go together, one
batch per system, so a long-kept inbox does not cost a task per old folder.
Batches keep the load order: systems in `FEEDS` order, each oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.load.inbox import DeliveryFolder
from transforms.canonical import FEEDS


@dataclass(frozen=True)
class DeliveryBatch:
    """Deliveries of one system prepared in one task, oldest first."""

    label: str
    """How the task run is named: `melior/2026-11-25`, or `melior: 12 loaded before`."""
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
            DeliveryBatch(delivery.label, [delivery])
            for delivery in own
            if delivery.label not in loaded_folders
        )
    return batches
