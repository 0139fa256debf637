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

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from flows.common.errors import FeedError
from flows.common.faults import checkpoint
from flows.common.feed_folder import (
    CURRENT,
    MANIFEST,
    OWNER_FILE,
    PUBLISHED_LOG,
    RECORDS_DIR,
    LiveSnapshot,
    live_snapshot,
    published_snapshots,
    snapshots,
)
from flows.common.files import fsync_and_hash, fsync_dir, private_dir, write_durably
from flows.common.sql import load_sql
from flows.common.warehouse import connect, first_row

_STAGING_PREFIX = ".staging-"

# --- which warehouse owns the feed -----------------------------------------------------


def warehouse_id(warehouse: Path) -> str:
    """The warehouse's own id, created once (`warehouse_identity`) and never changed."""
    with connect(warehouse) as connection:
        row = first_row(connection, load_sql("feed/warehouse_id"))
        if row is None:
            connection.execute(load_sql("feed/create_warehouse_id"), {"id": uuid.uuid4().hex})
            row = first_row(connection, load_sql("feed/warehouse_id"))
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
    write_durably(feed_dir / OWNER_FILE, own_id + "\n")
    fsync_dir(feed_dir)
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
            load_sql("feed/published_snapshot"),
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
        files.append({"name": name, "rows": int(rows), "sha256": fsync_and_hash(path)})
    extras = [
        {"name": name, "sha256": fsync_and_hash(staged / name)}
        for name in extra_files
        if (staged / name).exists()
    ]
    checkpoint("feed:files")
    manifest = {**manifest_fields, "row_count": rows_total, "files": files, "extra_files": extras}
    write_durably(staged / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    fsync_dir(staged / RECORDS_DIR)
    fsync_dir(staged)
    os.rename(staged, final)
    fsync_dir(feed_dir)
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
    write_durably(temporary, snapshot_name + "\n")
    checkpoint("current:before")
    os.replace(temporary, feed_dir / CURRENT)
    checkpoint("current:after")
    fsync_dir(feed_dir)


def prune_snapshots(feed_dir: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` snapshots; never the live one."""
    live = live_snapshot(feed_dir)
    names = snapshots(feed_dir)
    doomed = [name for name in names[: max(0, len(names) - keep)] if not live or name != live.name]
    for name in doomed:
        shutil.rmtree(feed_dir / name, ignore_errors=True)
    return doomed
