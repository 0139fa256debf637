"""Where the job writes, and the check that no two of its places overlap.

A run writes the warehouse (and DuckDB's `.wal`, the run lock, a spill folder
beside it), a work folder beside the warehouse, the analysts' database (built
beside itself, then renamed over it) and the feed folder, and reads the inbox.
If two of these are one place, or one lies inside another, one write destroys
the other: `--analytics` equal to `--warehouse` renamed the analysts' database
over the warehouse. Every command that writes calls `check_separate` first and
exits 2 with one line when they overlap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from flows.common.config import ConfigError

WORK_FOLDER_NAME = "work"
"""`<warehouse folder>/work`: staging files of runs (personal data, private)."""

JOB_WORK_NAME = re.compile(r"^(\d{8}T\d{6}Z-[0-9a-f]{6}|whatif-[0-9a-f]{32})$")
"""Names of the folders the job makes in the work folder (a run id; `jvn whatif`'s).
Only these are removed; anything else there is the operator's and is left alone."""


def work_root(warehouse: Path) -> Path:
    """The work folder of the job whose warehouse is `warehouse`."""
    return warehouse.parent / WORK_FOLDER_NAME


def warehouse_files(warehouse: Path) -> list[Path]:
    """The warehouse and what is written beside it under its name: DuckDB's
    write-ahead log, the run lock (flows/common/lock.py) and the spill folder
    (flows/common/warehouse.py)."""
    return [
        warehouse,
        *(warehouse.with_name(warehouse.name + s) for s in (".wal", ".lock", ".tmp")),
    ]


def analytics_building_path(analytics: Path) -> Path:
    """Where the new analysts' database is built (flows/publish/analytics.py), beside
    the live one it is renamed over."""
    return analytics.with_name(f".{analytics.name}.building")


def default_report_path(analytics: Path) -> Path:
    """Where `jvn run` writes the analysts' report: beside the database, `analytics.html`."""
    return analytics.with_suffix(".html")


def analytics_files(analytics: Path) -> list[Path]:
    """The analysts' database, the file it is built in and the report written beside it."""
    return [analytics, analytics_building_path(analytics), default_report_path(analytics)]


def job_places(
    *,
    warehouse: Path,
    inbox: Path | None = None,
    analytics: Path | None = None,
    feed: Path | None = None,
    **others: Path | None,
) -> dict[str, list[Path]]:
    """The places of one job, by the option that names them (for `check_separate`).

    `others` adds an output of a command (`export=...`), named as its option.
    """
    places: dict[str, list[Path]] = {
        "--warehouse": warehouse_files(warehouse),
        f"the work folder ({work_root(warehouse)})": [work_root(warehouse)],
    }
    if inbox is not None:
        places["--inbox"] = [inbox]
    if analytics is not None:
        places["--analytics"] = analytics_files(analytics)
    if feed is not None:
        places["--feed"] = [feed]
    for name, path in others.items():
        if path is not None:
            places[f"--{name.replace('_', '-')}"] = [path]
    return places


def check_separate(places: Mapping[str, Iterable[Path]]) -> None:
    """Raise ConfigError when two places coincide or one lies inside another.

    Compared after resolving symlinks and `..`; existing files are also
    compared by inode, so two hard links to one file are one place.
    """
    resolved = {role: [(path, path.resolve()) for path in paths] for role, paths in places.items()}
    roles = list(resolved)
    for index, first in enumerate(roles):
        for second in roles[index + 1 :]:
            for a, real_a in resolved[first]:
                for b, real_b in resolved[second]:
                    relation = _overlap(a, real_a, b, real_b)
                    if relation:
                        raise ConfigError(
                            f"{first} {a} and {second} {b} {relation}: writing one would "
                            "destroy the other; give each a place of its own"
                        )


def _overlap(a: Path, real_a: Path, b: Path, real_b: Path) -> str | None:
    if real_a == real_b or (_exists(a) and _exists(b) and os.path.samefile(a, b)):
        return "are the same place"
    if real_a in real_b.parents:
        return "overlap (the second lies inside the first)"
    if real_b in real_a.parents:
        return "overlap (the first lies inside the second)"
    return None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False
