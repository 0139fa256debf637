"""The feed folder as every stage reads it: which snapshot is live, and its parts.

`CURRENT` names the live snapshot; its `manifest.json` lists each record part
(`records/part-NNNN.parquet`, or `part-NNNN.parquet` in snapshots published
before that layout) with its rows and sha256; `PUBLISHED` logs each snapshot
that went live. Planning a run, deciding a partition incrementally, publishing,
verifying and diffing all read the feed through this module; only
`flows/publish/` writes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from flows.common.errors import FeedError
from flows.common.files import file_sha256

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
RECORDS_DIR = "records"
"""The snapshot's subfolder holding the record parts, and nothing else."""
OWNER_FILE = "OWNER"
"""In the feed folder: the id of the warehouse whose runs publish to it."""
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
PUBLISHED_LOG = "PUBLISHED"
"""Append-only: each snapshot name that a run made live, in order. Rollback walks
back along it; a complete snapshot folder that never went live is not in it."""


@dataclass(frozen=True)
class LiveSnapshot:
    """The snapshot `CURRENT` names, as its manifest describes it."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.manifest["as_of"])


def live_snapshot(feed_dir: Path) -> LiveSnapshot | None:
    """The live snapshot, or None when nothing was ever published.

    Raises FeedError (a message safe to print: never the file's bytes) when
    `CURRENT` is unreadable or names no complete snapshot.
    """
    current = feed_dir / CURRENT
    if not current.is_file():
        return None
    try:
        name = current.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise FeedError(f"{current} cannot be read as a snapshot name (garbled?)") from None
    if not SNAPSHOT_NAME.match(name):
        raise FeedError(f"{current} does not hold a snapshot name (garbled?)")
    path = feed_dir / name
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise FeedError(f"{current} names {name}, which is not a complete snapshot")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise FeedError(f"the manifest of the live snapshot {name} cannot be read") from None
    if not isinstance(manifest, dict):
        raise FeedError(f"the manifest of the live snapshot {name} is not an object")
    return LiveSnapshot(name, path, manifest)


def part_name(partition: int) -> str:
    """A record part's file name (`part-0003.parquet`)."""
    return f"part-{partition:04d}.parquet"


def part_entries(snapshot: LiveSnapshot) -> dict[str, dict[str, Any]]:
    """The manifest's parts by file name (`part-0003.parquet`), in either layout."""
    entries = snapshot.manifest.get("files", [])
    return {
        Path(str(entry["name"])).name: entry
        for entry in entries
        if isinstance(entry, dict) and is_part_path(str(entry.get("name", "")))
    }


def listed_part(snapshot_dir: Path, name: str) -> Path | None:
    """Where a published snapshot's manifest puts part `name` (either layout), or None."""
    manifest = json.loads((snapshot_dir / MANIFEST).read_text(encoding="utf-8"))
    snapshot = LiveSnapshot(snapshot_dir.name, snapshot_dir, manifest)
    entry = part_entries(snapshot).get(name)
    return snapshot_dir / str(entry["name"]) if entry is not None else None


def is_part_path(name: str) -> bool:
    """`records/part-N.parquet`, or `part-N.parquet` of the layout before `records/`."""
    parts = name.split("/")
    return (
        name.endswith(".parquet")
        and all(SNAPSHOT_NAME.match(part) for part in parts)
        and parts[:-1] in ([], [RECORDS_DIR])
    )


def unavailable_parts(snapshot: LiveSnapshot) -> dict[str, str]:
    """The snapshot's parts that cannot be reused: file name -> "missing" or "damaged".

    Every part the manifest lists is read back and its sha256 compared with
    the manifest's: a run reuses (hard-links) or reads a previous part only
    when its bytes are the ones that were published.
    """
    found: dict[str, str] = {}
    listed = snapshot.manifest.get("files")
    if not isinstance(listed, list) or len(part_entries(snapshot)) != len(listed):
        # A list the job did not write (a name that is no part of either
        # layout, an entry twice): nothing it names is trusted.
        found = dict.fromkeys(part_entries(snapshot), "damaged")
        found["(the manifest's list of files)"] = "damaged"
        return found
    for name, entry in part_entries(snapshot).items():
        path = snapshot.path / str(entry["name"])
        if not path.is_file() or path.is_symlink():
            found[name] = "missing"
            continue
        try:
            intact = file_sha256(path) == entry.get("sha256")
        except OSError:
            intact = False
        if not intact:
            found[name] = "damaged"
    return found


def published_snapshots(feed_dir: Path) -> list[str]:
    """Snapshots that runs made live, oldest first (a name once, at its first publication)."""
    log = feed_dir / PUBLISHED_LOG
    if not log.is_file():
        return []
    # A damaged log must not stop a run: names that are not snapshot names are skipped.
    text = log.read_text(encoding="utf-8", errors="replace")
    names = [line.strip() for line in text.splitlines()]
    return list(dict.fromkeys(name for name in names if SNAPSHOT_NAME.match(name)))


def snapshots(feed_dir: Path) -> list[str]:
    """Complete snapshot folders, oldest first (names sort by business date and run)."""
    if not feed_dir.is_dir():
        return []
    return sorted(
        path.name
        for path in feed_dir.iterdir()
        if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()
    )
