"""Fault injection for the crash-safety tests: die on the spot at a named point.

`checkpoint("current:before")` is a no-op unless the environment variable
`JVN_FAULT_AT` names that point, in which case the process kills itself with
SIGKILL: no `finally`, no `atexit`, no flush, exactly like the OOM killer or a
power cut. Production never sets the variable; the check is one dictionary
lookup.

The points the job passes through, in order (tests/test_crash_safety.py kills at
each of them and checks that the next run repairs everything):

- `load:<feed>`         a delivery of that feed is stored but not yet committed
- `export_state`        the state Parquet is written
- `decide`              the first partition's decisions are written
- `store_decisions`     the warehouse's `decisions` are replaced (committed)
- `feed:files`          the snapshot's Parquet files are checksummed, no manifest yet
- `feed:snapshot`       the snapshot folder is complete, `CURRENT` not yet touched
- `current:before`      the new `CURRENT` is written under a temporary name
- `current:after`       `CURRENT` is replaced, the folder not yet fsynced
- `finish`              the run is recorded as published in the warehouse
- `analytics`           just before the analysts' database is patched or rebuilt
- `analytics:commit`    the feed live, the analysts' database patched in an open
                        transaction, not yet committed
"""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "JVN_FAULT_AT"

POINTS: tuple[str, ...] = (
    "load:melior",
    "load:asynjavisph",
    "load:obstetrix",
    "load:journalia",
    "load:t4",
    "load:blocks",
    "export_state",
    "decide",
    "store_decisions",
    "feed:files",
    "feed:snapshot",
    "current:before",
    "current:after",
    "finish",
    "analytics",
    "analytics:commit",
)
"""Every point the job calls `checkpoint` with."""


def checkpoint(name: str) -> None:
    """Kill this process with SIGKILL if `JVN_FAULT_AT` names this point."""
    if os.environ.get(FAULT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
