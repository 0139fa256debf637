"""Loading as a pipeline: deliveries prepared ahead on the task runner, stored in order.

Preparing a delivery (checksum, parse, adapt: flows/load/prepare.py) needs no
warehouse and runs on the task runner's workers. Storing needs the warehouse's
one writer and keeps load order: systems in order, one at a time, each
system's deliveries oldest first. Here the flow's thread only schedules: it
keeps `in_flight` preparations running and hands a system to one storing
thread as soon as all its batches are prepared and the system before it is
stored.

Only a running preparation counts as in flight: it holds a DuckDB parse and an
adapter slice in memory, while a finished one waits on disk (its Parquet parts
in the work folder). When a batch counted until the flow took its result,
which the flow did between storing systems, the preparing thread sat idle
while the flow stored (6 s of a 10 M-record run's 97 s load, measured). The
cost of not waiting: the night's prepared deliveries may wait on disk beside
the warehouse, as many as preparing gets ahead of storing (the small systems
after a large one, in practice).

A failure stops the scheduling: no new batch is submitted, the preparations
already running and the system being stored are waited for (nothing may still
write into the work folder when the run cleans it up), and the error is
raised. A stop by signal waits only for the system being stored, whose
transaction is its own.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from flows.load.batches import DeliveryBatch
from flows.load.ingest import DeliveryOutcome
from flows.load.prepare import PreparedDelivery


class PreparingFuture(Protocol):
    """What the task runner returns for a submitted preparation (a Prefect future)."""

    def result(self) -> list[PreparedDelivery]: ...

    def add_done_callback(self, fn: Callable[[Any], None]) -> None: ...


def prepare_and_store(
    batches: Sequence[DeliveryBatch],
    *,
    prepare: Callable[[DeliveryBatch], PreparingFuture],
    store: Callable[[str, dict[str, PreparedDelivery]], list[DeliveryOutcome]],
    in_flight: int,
) -> list[DeliveryOutcome]:
    """Prepare `batches` (in load order), at most `in_flight` at a time, and store each
    system's with `store(system, prepared by delivery label)` on a thread of its own,
    in the order the batches name the systems. Returns the outcomes in that order.

    `store` runs in a copy of the calling thread's context (a Prefect task called
    there belongs to the calling flow run).
    """
    systems = list(dict.fromkeys(batch.feed for batch in batches))
    futures: list[PreparingFuture] = []
    finished: set[int] = set()  # batches whose preparation ended (set by callbacks)
    lock = threading.Lock()
    wake = threading.Event()
    context = contextvars.copy_context()
    outcomes: list[DeliveryOutcome] = []
    storing: Future[list[DeliveryOutcome]] | None = None
    next_system = 0

    def ended(index: int) -> Callable[[Any], None]:
        def mark(_future: Any) -> None:
            with lock:
                finished.add(index)
            wake.set()

        return mark

    def submit_ready() -> None:
        while len(futures) < len(batches):
            with lock:
                running = len(futures) - len(finished)
            if running >= in_flight:
                return
            index = len(futures)
            futures.append(prepare(batches[index]))
            futures[index].add_done_callback(ended(index))

    def wait_for_preparations() -> None:
        while True:
            with lock:
                if len(finished) == len(futures):
                    return
            wake.wait(0.1)
            wake.clear()

    def prepared_system(system: str) -> dict[str, PreparedDelivery] | None:
        """The system's prepared deliveries by label, once all its batches are prepared."""
        own = [index for index, batch in enumerate(batches) if batch.feed == system]
        with lock:
            if not all(index in finished for index in own):
                return None
        prepared: dict[str, PreparedDelivery] = {}
        for index in own:
            labels = (delivery.label for delivery in batches[index].deliveries)
            # A preparation that failed raises here, in the flow's thread.
            prepared.update(zip(labels, futures[index].result(), strict=True))
        return prepared

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jvn-store") as storer:
        try:
            while next_system < len(systems) or storing is not None:
                # Cleared before looking: whatever ends from here on wakes the wait.
                wake.clear()
                submit_ready()
                if storing is not None and storing.done():
                    outcomes.extend(storing.result())
                    storing = None
                    continue  # the last system stored ends the loop
                if storing is None and next_system < len(systems):
                    prepared = prepared_system(systems[next_system])
                    if prepared is not None:
                        storing = storer.submit(
                            context.copy().run, store, systems[next_system], prepared
                        )
                        storing.add_done_callback(lambda _: wake.set())
                        next_system += 1
                        continue
                wake.wait()
        except Exception:
            # Nothing may still be writing into the work folder when the run cleans
            # it up (the storing thread is waited for on the way out of `with`).
            wait_for_preparations()
            raise
    return outcomes
