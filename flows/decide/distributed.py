"""The run on Dask: the task runner `jvn run` and `jvn serve` share.

The tasks that need no warehouse go to the workers: preparing each delivery
(checksum, parse, adapt into Parquet parts) and deciding each patient partition
(decide, validate, write its decisions and feed part). Everything that writes
the warehouse stays in the flow's own process, DuckDB's one writer
(docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.states import State


def dask_task_runner(address: str | None, workers: int) -> Any:
    """A prefect-dask runner: the scheduler at `address`, or a local cluster of `workers`.

    A local cluster has one thread per worker process: polars inside a task
    already uses every core it is given.
    """
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


def task_runner_for(dask: bool, address: str | None, workers: int) -> Any | None:
    """The runner `--dask` / `--dask-address` ask for; None: the flow's own threads."""
    if not (dask or address):
        return None
    return dask_task_runner(address, workers)


class PublishedHook:
    """Prefect's completion hook that calls `callback` (`flows/nightly.py`, `with_task_runner`).

    Prefect pickles the flow, its hooks with it, into each task it sends to a
    Dask worker, where no flow hook is ever called; `jvn run`'s callback holds
    its report process, which cannot be pickled. So the hook travels without
    its callback.
    """

    def __init__(self, callback: Callable[[], None] | None) -> None:
        self._callback = callback

    def __call__(self, _flow: Any, _flow_run: Any, state: State) -> None:
        if self._callback is not None and state.is_completed():
            self._callback()

    def __reduce__(self) -> tuple[type[PublishedHook], tuple[None]]:
        return (PublishedHook, (None,))
