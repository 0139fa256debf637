"""The load pipeline's scheduling (flows/load/pipeline.py), on a real thread pool.

- Systems are stored one at a time, in the order the batches name them, each
  with all its deliveries' prepared results; the outcomes come in that order.
- A finished preparation is no longer in flight: the next ones are prepared
  while a system is being stored; never more than `in_flight` run at once.
- A failed preparation or store is raised, and nothing is still running when
  it is.
- The store runs in the caller's context (a Prefect task called there belongs
  to the flow run).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.load.batches import DeliveryBatch
from flows.load.inbox import DeliveryFolder
from flows.load.ingest import DeliveryOutcome
from flows.load.pipeline import prepare_and_store
from flows.load.prepare import PreparedDelivery

WAIT_S = 20.0
"""Longer than any step here takes: a wait this long means the pipeline stalled."""


def _batch(feed: str, day: int) -> DeliveryBatch:
    folder = DeliveryFolder(
        feed=feed, business_date=date(2026, 11, day), path=Path(f"/inbox/{feed}/{day}")
    )
    return DeliveryBatch(folder.label, [folder])


BATCHES = [_batch("melior", 23), _batch("melior", 24), _batch("asynjavisph", 24), _batch("t4", 24)]


def _prepared(batch: DeliveryBatch) -> list[PreparedDelivery]:
    return [PreparedDelivery("prepared", sha256=d.label) for d in batch.deliveries]


def _outcome(feed: str, label: str) -> DeliveryOutcome:
    return DeliveryOutcome(feed=feed, label=label, status="loaded")


@pytest.fixture
def workers() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


class Preparing:
    """A task runner of threads: counts what runs at once, can fail or hold a batch."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.started: list[str] = []
        self.failing: set[str] = set()
        self.gates: dict[str, threading.Event] = {}

    def __call__(self, batch: DeliveryBatch) -> Future[list[PreparedDelivery]]:
        return self.pool.submit(self._prepare, batch)

    def _prepare(self, batch: DeliveryBatch) -> list[PreparedDelivery]:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.started.append(batch.label)
        try:
            if batch.label in self.gates:
                assert self.gates[batch.label].wait(WAIT_S)
            time.sleep(0.01)
            if batch.label in self.failing:
                raise RuntimeError(f"preparing {batch.label} failed")
            return _prepared(batch)
        finally:
            with self.lock:
                self.running -= 1


def _storing(
    stored: list[tuple[str, list[str]]], hold: Callable[[str], None] = lambda feed: None
) -> Callable[[str, dict[str, PreparedDelivery]], list[DeliveryOutcome]]:
    def store(feed: str, prepared: dict[str, PreparedDelivery]) -> list[DeliveryOutcome]:
        hold(feed)
        assert all(p.sha256 == label for label, p in prepared.items())
        stored.append((feed, sorted(prepared)))
        return [_outcome(feed, label) for label in sorted(prepared)]

    return store


def test_systems_are_stored_in_order_each_with_all_its_deliveries(
    workers: ThreadPoolExecutor,
) -> None:
    stored: list[tuple[str, list[str]]] = []
    outcomes = prepare_and_store(
        BATCHES, prepare=Preparing(workers), store=_storing(stored), in_flight=1
    )
    assert stored == [
        ("melior", ["melior/2026-11-23", "melior/2026-11-24"]),
        ("asynjavisph", ["asynjavisph/2026-11-24"]),
        ("t4", ["t4/2026-11-24"]),
    ]
    assert [o.label for o in outcomes] == [
        "melior/2026-11-23", "melior/2026-11-24", "asynjavisph/2026-11-24", "t4/2026-11-24",
    ]  # fmt: skip


def test_later_systems_are_prepared_while_one_is_stored(workers: ThreadPoolExecutor) -> None:
    preparing = Preparing(workers)
    t4_prepared = threading.Event()
    real_prepare = preparing._prepare

    def prepare_and_tell(batch: DeliveryBatch) -> list[PreparedDelivery]:
        result = real_prepare(batch)
        if batch.feed == "t4":
            t4_prepared.set()
        return result

    preparing._prepare = prepare_and_tell  # type: ignore[method-assign]

    def hold(feed: str) -> None:
        # Melior's store lasts until the two systems after it are prepared: a
        # pipeline that counted a prepared batch as in flight would stall here.
        if feed == "melior":
            assert t4_prepared.wait(WAIT_S), "nothing was prepared while Melior was stored"

    stored: list[tuple[str, list[str]]] = []
    prepare_and_store(BATCHES, prepare=preparing, store=_storing(stored, hold), in_flight=1)
    assert [feed for feed, _ in stored] == ["melior", "asynjavisph", "t4"]


@pytest.mark.parametrize("in_flight", [1, 2])
def test_never_more_than_in_flight_preparations_run_at_once(
    workers: ThreadPoolExecutor, in_flight: int
) -> None:
    preparing = Preparing(workers)
    prepare_and_store(BATCHES, prepare=preparing, store=_storing([]), in_flight=in_flight)
    assert preparing.most_running <= in_flight
    assert preparing.started == [batch.label for batch in BATCHES]


def test_a_failed_preparation_is_raised_and_its_system_not_stored(
    workers: ThreadPoolExecutor,
) -> None:
    preparing = Preparing(workers)
    preparing.failing.add("asynjavisph/2026-11-24")
    stored: list[tuple[str, list[str]]] = []
    with pytest.raises(RuntimeError, match="preparing asynjavisph/2026-11-24 failed"):
        prepare_and_store(BATCHES, prepare=preparing, store=_storing(stored), in_flight=2)
    assert [feed for feed, _ in stored] == ["melior"]
    assert preparing.running == 0, "a preparation still ran when the failure was raised"


def test_a_failed_store_is_raised_with_nothing_left_running(
    workers: ThreadPoolExecutor,
) -> None:
    preparing = Preparing(workers)

    def store(feed: str, prepared: dict[str, PreparedDelivery]) -> list[DeliveryOutcome]:
        raise OSError("the warehouse's disk is full")

    with pytest.raises(OSError, match="disk is full"):
        prepare_and_store(BATCHES, prepare=preparing, store=store, in_flight=2)
    assert preparing.running == 0, "a preparation still ran when the failure was raised"


def test_the_store_runs_in_the_callers_context(workers: ThreadPoolExecutor) -> None:
    flow_run: contextvars.ContextVar[str] = contextvars.ContextVar("flow_run")
    flow_run.set("this run")
    seen: list[Any] = []

    def store(feed: str, prepared: dict[str, PreparedDelivery]) -> list[DeliveryOutcome]:
        seen.append((flow_run.get(None), threading.current_thread() is threading.main_thread()))
        return []

    prepare_and_store(BATCHES, prepare=Preparing(workers), store=store, in_flight=1)
    assert seen == [("this run", False)] * 3
