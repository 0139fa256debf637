"""The portal feed: publishing a snapshot and swapping `CURRENT` atomically.

One function owns "publish a snapshot": it takes finished Parquet files from a
staging folder, checksums them, writes the manifest, makes the folder durable,
and only then replaces `CURRENT` (write a new file, fsync, rename over the old,
fsync the folder). A reader therefore sees the old snapshot or the new one,
never half of one, and a crash at any point leaves the previous feed live.

A snapshot keeps its record parts in `records/` (Parquet and nothing else, so
any engine pointed at that folder reads the feed) and its change set in
`changes/`. Snapshots published before that layout hold their parts at the
snapshot's root; the manifest names every part by its path inside the
snapshot, so both layouts are read, verified, reused and rolled back to alike.

The feed knows which warehouse owns it (`OWNER`, written once): a run with
another warehouse is refused unless the operator adopts the feed on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from flows.faults import checkpoint
from flows.warehouse import connect, first_row, private_dir

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
RECORDS_DIR = "records"
"""The snapshot's subfolder holding the record parts, and nothing else."""
OWNER_FILE = "OWNER"
"""In the feed folder: the id of the warehouse whose runs publish to it."""
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
PUBLISHED_LOG = "PUBLISHED"
"""Append-only: each snapshot name that a run made live, in order. Rollback walks
back along it; a complete snapshot folder that never went live is not in it."""
_STAGING_PREFIX = ".staging-"

FEED_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source_system",
    "record_version",
    "patient_id",
    "care_unit_hsa_id",
    "care_unit_name",
    "info_type",
    "documented_at",
    "documented_date",
    "signed",
    "title",
    "content",
    "rules_version",
)
"""The portal's columns, in order (interfaces.md)."""


class FeedError(Exception):
    """The feed folder is not in a state the job can publish to."""


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
    if not _SNAPSHOT_NAME.match(name):
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
        and all(_SNAPSHOT_NAME.match(part) for part in parts)
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


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link a finished file into place; copy where the folders are on two file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# --- which warehouse owns the feed -----------------------------------------------------


def warehouse_id(warehouse: Path) -> str:
    """The warehouse's own id, created once (`warehouse_identity`) and never changed."""
    with connect(warehouse) as connection:
        row = first_row(connection, "SELECT warehouse_id FROM warehouse_identity LIMIT 1")
        if row is None:
            connection.execute(
                "INSERT INTO warehouse_identity VALUES ($id, now())", {"id": uuid.uuid4().hex}
            )
            row = first_row(connection, "SELECT warehouse_id FROM warehouse_identity LIMIT 1")
    return str(row[0])


def feed_owner(feed_dir: Path) -> str | None:
    """The id in the feed's `OWNER` file, or None when it has none."""
    path = feed_dir / OWNER_FILE
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise FeedError(f"{path} cannot be read (garbled?)") from None
    if not re.fullmatch(r"[0-9a-f]{32}", text):
        raise FeedError(f"{path} does not hold a warehouse id (garbled?)")
    return text


def claim_feed(feed_dir: Path, warehouse: Path, *, adopt: bool = False) -> str:
    """Make sure `warehouse` owns the feed before a run publishes to it; its id.

    Called with the run lock held (warehouse and feed). The feed is this
    warehouse's when its `OWNER` says so, when it has published nothing yet,
    or when it predates `OWNER` and its live run is one this warehouse
    published. Otherwise FeedError: a wrong `--warehouse` (a typo, an empty
    file) would publish a "first run" over another warehouse's feed. `adopt`
    (`jvn run --adopt-feed`) makes this warehouse the owner on purpose.
    """
    try:
        own_id = warehouse_id(warehouse)
    except duckdb.Error as error:
        raise FeedError(
            f"the warehouse {warehouse} cannot be opened ({type(error).__name__}); "
            "check --warehouse"
        ) from None
    owner = feed_owner(feed_dir)
    if owner == own_id:
        return own_id
    if not adopt:
        if owner is not None:
            raise FeedError(_not_owner(feed_dir, warehouse))
        live = live_snapshot(feed_dir)
        if live is not None and not _published_by(warehouse, live):
            raise FeedError(_not_owner(feed_dir, warehouse))
    private_dir(feed_dir)
    _write_durably(feed_dir / OWNER_FILE, own_id + "\n")
    _fsync_dir(feed_dir)
    return own_id


def _not_owner(feed_dir: Path, warehouse: Path) -> str:
    return (
        f"the feed {feed_dir} was published by another warehouse than {warehouse}: "
        "check --warehouse; to make this warehouse the feed's owner on purpose, "
        "run with --adopt-feed"
    )


def _published_by(warehouse: Path, live: LiveSnapshot) -> bool:
    with connect(warehouse) as connection:
        row = first_row(
            connection,
            "SELECT count(*) FROM runs WHERE run_id = $run AND status = 'published' "
            "AND snapshot = $snapshot",
            {"run": str(live.manifest.get("run_id")), "snapshot": live.name},
        )
    return bool(row and row[0])


def staging_dir(feed_dir: Path, snapshot_name: str) -> Path:
    """A fresh folder to write a snapshot's Parquet files into before publishing."""
    private_dir(feed_dir)
    path = feed_dir / f"{_STAGING_PREFIX}{snapshot_name}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    (path / RECORDS_DIR).mkdir(mode=0o700)
    return path


def clean_stale_staging(feed_dir: Path) -> list[str]:
    """Remove half-written snapshots a killed run left behind; returns their names."""
    if not feed_dir.is_dir():
        return []
    removed = []
    for path in feed_dir.iterdir():
        if path.name.startswith(_STAGING_PREFIX) or path.name.startswith(f".{CURRENT}."):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def publish_snapshot(
    feed_dir: Path,
    staged: Path,
    snapshot_name: str,
    manifest_fields: dict[str, Any],
    *,
    extra_files: tuple[str, ...] = (),
    known_files: dict[str, dict[str, Any]] | None = None,
    make_live: bool = True,
) -> Path:
    """Checksum the staged Parquet files, write the manifest, make it live.

    `staged` holds `records/*.parquet` (the visible records) and optionally the
    files named in `extra_files` (listed in the manifest with their checksums
    too). The manifest names each part by its path in the snapshot
    (`records/part-0003.parquet`). `known_files` maps such names of files
    hard-linked from a published snapshot to their manifest entries (rows,
    sha256), which are reused rather than recomputed: the run checked those
    bytes against that snapshot's manifest before reusing them.
    With `make_live=False` the snapshot is complete in its final folder but
    `CURRENT` is left alone: `go_live` swaps it later, once everything else that
    could fail has succeeded. Returns the snapshot's folder.
    """
    known_files = known_files or {}
    final = feed_dir / snapshot_name
    if final.exists():
        raise FeedError(f"snapshot {snapshot_name} already exists; snapshots are never rewritten")
    files = []
    rows_total = 0
    for path in sorted((staged / RECORDS_DIR).glob("*.parquet")):
        name = f"{RECORDS_DIR}/{path.name}"
        if name in known_files:
            entry = known_files[name]
            rows_total += int(entry["rows"])
            files.append({"name": name, "rows": int(entry["rows"]), "sha256": entry["sha256"]})
            continue
        os.chmod(path, 0o600)
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        rows_total += int(rows)
        files.append({"name": name, "rows": int(rows), "sha256": _fsync_and_hash(path)})
    extras = [
        {"name": name, "sha256": _fsync_and_hash(staged / name)}
        for name in extra_files
        if (staged / name).exists()
    ]
    checkpoint("feed:files")
    manifest = {**manifest_fields, "row_count": rows_total, "files": files, "extra_files": extras}
    _write_durably(staged / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _fsync_dir(staged / RECORDS_DIR)
    _fsync_dir(staged)
    os.rename(staged, final)
    _fsync_dir(feed_dir)
    checkpoint("feed:snapshot")
    if make_live:
        go_live(feed_dir, snapshot_name)
    return final


def go_live(feed_dir: Path, snapshot_name: str) -> None:
    """Swap `CURRENT` to a complete snapshot, then log it as published.

    In this order: a crash between the two leaves the live snapshot out of the
    log, so a rollback still returns to the one live before it.
    """
    point_current_at(feed_dir, snapshot_name)
    log_path = feed_dir / PUBLISHED_LOG
    with log_path.open("a", encoding="utf-8") as log:
        log.write(snapshot_name + "\n")
        log.flush()
        os.fsync(log.fileno())
    os.chmod(log_path, 0o600)


def published_snapshots(feed_dir: Path) -> list[str]:
    """Snapshots that runs made live, oldest first (a name once, at its first publication)."""
    log = feed_dir / PUBLISHED_LOG
    if not log.is_file():
        return []
    # A damaged log must not stop a run: names that are not snapshot names are skipped.
    text = log.read_text(encoding="utf-8", errors="replace")
    names = [line.strip() for line in text.splitlines()]
    return list(dict.fromkeys(name for name in names if _SNAPSHOT_NAME.match(name)))


def previously_live(feed_dir: Path, live_name: str) -> str | None:
    """The snapshot published before `live_name` that is still kept, for a rollback."""
    published = [name for name in published_snapshots(feed_dir) if (feed_dir / name).is_dir()]
    if live_name in published:
        earlier = published[: published.index(live_name)]
    else:
        earlier = [name for name in published if name != live_name]
    return earlier[-1] if earlier else None


def discard_unpublished(feed_dir: Path, snapshot_name: str) -> None:
    """Remove a run's own snapshot folder when it never went live (never the live one)."""
    live = live_snapshot(feed_dir)
    if live is not None and live.name == snapshot_name:
        return
    if snapshot_name in published_snapshots(feed_dir):
        return
    shutil.rmtree(feed_dir / snapshot_name, ignore_errors=True)
    shutil.rmtree(feed_dir / f"{_STAGING_PREFIX}{snapshot_name}", ignore_errors=True)


def remove_unpublished(feed_dir: Path) -> list[str]:
    """Delete complete snapshot folders that never went live (a run died before its swap)."""
    live = live_snapshot(feed_dir)
    published = set(published_snapshots(feed_dir))
    doomed = [
        name
        for name in snapshots(feed_dir)
        if name not in published and (live is None or name != live.name)
    ]
    for name in doomed:
        shutil.rmtree(feed_dir / name, ignore_errors=True)
    return doomed


def point_current_at(feed_dir: Path, snapshot_name: str) -> None:
    """Atomically make `snapshot_name` the live snapshot."""
    if not (feed_dir / snapshot_name / MANIFEST).is_file():
        raise FeedError(f"{snapshot_name} is not a complete snapshot")
    temporary = feed_dir / f".{CURRENT}.{os.getpid()}"
    _write_durably(temporary, snapshot_name + "\n")
    checkpoint("current:before")
    os.replace(temporary, feed_dir / CURRENT)
    checkpoint("current:after")
    _fsync_dir(feed_dir)


def snapshots(feed_dir: Path) -> list[str]:
    """Complete snapshot folders, oldest first (names sort by business date and run)."""
    if not feed_dir.is_dir():
        return []
    return sorted(
        path.name
        for path in feed_dir.iterdir()
        if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()
    )


def prune_snapshots(feed_dir: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` snapshots; never the live one."""
    live = live_snapshot(feed_dir)
    names = snapshots(feed_dir)
    doomed = [name for name in names[: max(0, len(names) - keep)] if not live or name != live.name]
    for name in doomed:
        shutil.rmtree(feed_dir / name, ignore_errors=True)
    return doomed


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_and_hash(path: Path) -> str:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
    return file_sha256(path)


def _write_durably(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
