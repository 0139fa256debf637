"""`jvn verify`: re-check the live feed against its manifest, the warehouse and the rules.

For operators and auditors. Three independent layers, and a fourth when the
analysts' database is named, each reported as mismatch kinds with counts
(never a value from a record):

1. **The feed on its own.** `CURRENT` names a complete snapshot; every file the
   manifest lists is there with the sha256 and row count it states (record
   parts in `records/`, or at the snapshot's root in snapshots made before
   that layout; any other name is a mismatch); no file is in the snapshot that
   the manifest does not list; `row_count` and
   `rows_per_system` add up; every row carries the manifest's rules version and
   each record id appears once.
2. **The feed against the warehouse.** The snapshot's run is recorded as
   published. When the warehouse's `decisions` come from that run, every feed
   record is a visible decision with the same record and rules version, and
   every visible decision is in the feed. When they come from another run (the
   feed was rolled back, or a later run failed before publishing), the feed is
   checked against the decision history at its run instead.
3. **The feed against the rules.** With the rule file given (default: the
   project's), the state the snapshot's run saw (exactly the deliveries it
   recorded in `run_deliveries`) is decided again with `transforms.decide`, and
   the feed must be exactly the visible records that come out, row for row and
   column for column. A rule file of another version than the feed's is itself
   a mismatch: the live feed does not follow the rules in force.
4. **The analysts' database against the warehouse** (`--analytics FILE`,
   flows/audit/verify_analytics.py): the latest published run's build, no
   personal column, every record's row and every change as the warehouse has
   them.

Every query takes its values as parameters; only file paths (ATTACH, COPY
targets) are quoted into SQL text. A file whose checksum fails is left out of
the deeper layers (its bytes are not the published ones). When a check cannot
be completed (a library error on a damaged file), the findings made so far are
still reported, with a line saying verification is incomplete.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from polars.exceptions import PanicException

from flows.audit.verify_access import (
    VerifyError,
    WarehouseBusy,
    linked_outside,
    no_run_in_progress,
    open_warehouse,
)
from flows.audit.verify_analytics import attach_analytics, check_analytics
from flows.common.feed_folder import CURRENT, MANIFEST, is_part_path
from flows.common.files import file_sha256, sql_literal
from flows.common.sql import load_sql, load_statements
from flows.common.warehouse import WORK_FILE_COMPRESSION
from transforms.schemas import FEED_COLUMN_TYPES, FEED_COLUMNS

__all__ = ["VerifyError", "VerifyReport", "WarehouseBusy", "check_feed", "verify"]

_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_MANIFEST_KEYS = ("run_id", "as_of", "rules_version", "row_count", "rows_per_system", "files")
_STATE_PARTITIONS = 16
_EMPTY_FEED_COLUMNS = ", ".join(f"{name} {kind}" for name, kind in FEED_COLUMN_TYPES.items())


@dataclass
class VerifyReport:
    """What `verify` found: mismatch kinds with counts, and what it checked."""

    snapshot: str | None = None
    run_id: str | None = None
    as_of: str | None = None
    rules_version: str | None = None
    files: int = 0
    rows: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)
    mismatch_files: dict[str, list[str]] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    incomplete: str | None = None
    """The error type that stopped verification part-way; None when it ran to the end."""

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.incomplete is None

    def add(self, kind: str, count: int = 1, *, file: str | None = None) -> None:
        if count <= 0:
            return
        self.mismatches[kind] += count
        if file is not None:
            # Only names the job could have written: a hostile name is not echoed.
            shown = file if _safe_relative(file) else "(file with an unusual name)"
            self.mismatch_files.setdefault(kind, []).append(shown)

    def lines(self) -> list[str]:
        """The report as printed: kinds and counts, file names of the job's own files."""
        out = []
        if self.snapshot is not None:
            out.append(
                f"verify: live snapshot {self.snapshot} (run {self.run_id}, as of {self.as_of}, "
                f"rules {self.rules_version}): {self.files} files, {self.rows} rows"
            )
        out += [f"verify: checked {what}" for what in self.checked]
        out += [f"verify: note: {note}" for note in self.notes]
        for kind, count in sorted(self.mismatches.items()):
            files = self.mismatch_files.get(kind)
            suffix = f" ({', '.join(sorted(set(files))[:10])})" if files else ""
            out.append(f"verify: MISMATCH {kind}: {count}{suffix}")
        if self.incomplete is not None:
            out.append(
                f"verify: could not complete verification ({self.incomplete}); the findings "
                "above are those made before it stopped: treat the feed as unverified"
            )
        if self.ok:
            out.append("verify: OK")
        elif not self.mismatches:
            out.append("verify: FAILED, verification incomplete")
        else:
            total = sum(self.mismatches.values())
            out.append(f"verify: FAILED, {total} mismatches of {len(self.mismatches)} kinds")
        return out


@dataclass(frozen=True)
class _LiveFeed:
    name: str
    path: Path
    manifest: dict[str, Any]
    good_files: list[Path]
    """Listed files that exist and are readable Parquet (checksum aside)."""


def verify(
    feed_dir: Path,
    warehouse: Path,
    rules_path: Path | None,
    *,
    analytics: Path | None = None,
    pseudonym_key: str | None = None,
) -> VerifyReport:
    """Run every check; raise VerifyError when verification cannot be done at all.

    The analysts' database is checked when `analytics` is given (layer 4,
    flows/audit/verify_analytics.py), its patient keys recomputed with
    `pseudonym_key` when that is given too."""
    from transforms.rules import RuleFileError, load_rules

    rules = None
    if rules_path is not None:
        try:
            rules = load_rules(rules_path)
        except RuleFileError as error:
            raise VerifyError(str(error)) from None
    if not warehouse.is_file():
        raise VerifyError(f"no warehouse at {warehouse}: nothing to verify against")
    report = VerifyReport()
    with no_run_in_progress(warehouse, feed_dir), open_warehouse(warehouse) as connection:
        if analytics is not None:
            attach_analytics(connection, analytics)
        else:
            report.notes.append("the analysts' database was not checked (--analytics FILE)")
        try:
            _all_layers(connection, feed_dir, warehouse, rules, report)
            if analytics is not None:
                check_analytics(
                    connection,
                    published=_latest_published_run(connection),
                    pseudonym_key=pseudonym_key,
                    report=report,
                )
        except VerifyError:
            raise
        except (Exception, PanicException) as error:
            # A damaged file can make a library fail part-way: what was found
            # before stays in the report. Only the error's type is shown.
            report.incomplete = type(error).__name__
    return report


def _all_layers(
    connection: duckdb.DuckDBPyConnection,
    feed_dir: Path,
    warehouse: Path,
    rules: Any,
    report: VerifyReport,
) -> None:
    published = _latest_published_run(connection)
    live = check_feed(feed_dir, report, anything_published=published is not None)
    if live is None:
        return
    _check_run(connection, live, published, report)
    _check_decisions(connection, live, published, report)
    if rules is not None:
        if rules.rules_version != live.manifest["rules_version"]:
            report.add("rules_file_differs_from_feed")
            report.notes.append(
                f"the rule file is version {rules.rules_version}; the live feed was "
                "decided under another version, so it was not decided again"
            )
        else:
            _check_against_rules(connection, warehouse, live, rules, report)


def check_feed(
    feed_dir: Path, report: VerifyReport, *, anything_published: bool = True
) -> _LiveFeed | None:
    """Layer 1: the live snapshot is complete and matches its manifest.

    Returns the snapshot for the next layers, or None when there is none to check.
    """
    current = feed_dir / CURRENT
    if not current.is_file():
        if anything_published:
            report.add("current_missing")
        else:
            report.notes.append("nothing published yet: no CURRENT, no published run")
        return None
    try:
        name = current.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        report.add("current_unreadable")
        return None
    path = feed_dir / name
    if (
        not _SAFE_FILE_NAME.match(name)
        or name.startswith(".")
        or not path.is_dir()
        or path.is_symlink()
    ):
        report.add("current_not_a_snapshot")
        return None
    report.snapshot = name
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        report.add("manifest_missing_or_unreadable")
        return None
    if not isinstance(manifest, dict) or any(key not in manifest for key in _MANIFEST_KEYS):
        report.add("manifest_invalid")
        return None
    files = manifest["files"]
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and {"name", "rows", "sha256"} <= set(f) for f in files
    ):
        report.add("manifest_invalid")
        return None
    report.run_id = str(manifest["run_id"])
    report.as_of = str(manifest["as_of"])
    report.rules_version = str(manifest["rules_version"])
    report.files = len(files)
    good: list[Path] = []
    damaged = 0
    listed: set[str] = set()
    rows_total = 0
    for entry in files:
        file_name = str(entry["name"])
        listed.add(file_name)
        if not is_part_path(file_name):
            report.add("manifest_bad_file_name", file=file_name)
            continue
        file_path = path / file_name
        if not file_path.is_file() or linked_outside(path, file_path):
            report.add("file_missing", file=file_name)
            continue
        intact = file_sha256(file_path) == entry["sha256"]
        if not intact:
            report.add("file_checksum_mismatch", file=file_name)
        try:
            rows = int(pl.scan_parquet(file_path).select(pl.len()).collect().item())
            columns = pl.read_parquet_schema(file_path)
        except Exception:
            report.add("file_unreadable", file=file_name)
            continue
        rows_total += rows
        if rows != entry["rows"]:
            report.add("file_row_count_mismatch", file=file_name)
        missing_columns = [c for c in FEED_COLUMNS if c not in columns]
        if missing_columns:
            report.add("file_columns_missing", file=file_name)
            continue
        if intact:
            good.append(file_path)
        else:
            damaged += 1
    for extra in manifest.get("extra_files", []) or []:
        extra_name = str(extra.get("name", "")) if isinstance(extra, dict) else ""
        listed.add(extra_name)
        extra_path = path / extra_name
        if (
            not _safe_relative(extra_name)
            or not extra_path.is_file()
            or linked_outside(path, extra_path)
        ):
            report.add("file_missing", file=extra_name)
        elif file_sha256(extra_path) != extra.get("sha256"):
            report.add("file_checksum_mismatch", file=extra_name)
    for entry_path in sorted(path.rglob("*")):
        relative = entry_path.relative_to(path).as_posix()
        if entry_path.is_dir() and not entry_path.is_symlink():
            continue
        if relative == MANIFEST or relative in listed:
            continue
        report.add("file_not_in_manifest", file=relative)
    report.rows = rows_total
    if manifest["row_count"] != rows_total:
        report.add("manifest_row_count_mismatch")
    per_system = manifest["rows_per_system"]
    if not isinstance(per_system, dict) or sum(per_system.values()) != manifest["row_count"]:
        report.add("manifest_rows_per_system_mismatch")
        per_system = {}
    report.checked.append("the snapshot's files against its manifest (sha256, rows)")
    if damaged:
        report.notes.append(
            f"{damaged} files whose checksum failed were left out of the checks below"
        )
    if good:
        frame = pl.scan_parquet(good).select("record_id", "source_system", "rules_version")
        counts = frame.group_by("source_system").len().collect()
        actual = {str(system): int(n) for system, n in counts.iter_rows()}
        if per_system and actual != {k: v for k, v in per_system.items() if v}:
            report.add("manifest_rows_per_system_mismatch")
        stats = frame.select(
            duplicates=pl.len() - pl.col("record_id").n_unique(),
            other_rules=(pl.col("rules_version") != manifest["rules_version"]).sum(),
            null_ids=pl.col("record_id").is_null().sum(),
        ).collect()
        report.add("feed_duplicate_record", int(stats["duplicates"][0]))
        report.add("feed_rules_version_differs_from_manifest", int(stats["other_rules"][0]))
        report.add("feed_record_without_id", int(stats["null_ids"][0]))
        if "visible" in pl.read_parquet_schema(good[0]):
            hidden = pl.scan_parquet(good).filter(~pl.col("visible").fill_null(False))
            report.add("feed_row_not_visible", int(hidden.select(pl.len()).collect().item()))
    return _LiveFeed(name, path, manifest, good)


def _check_run(
    connection: duckdb.DuckDBPyConnection,
    live: _LiveFeed,
    published: str | None,
    report: VerifyReport,
) -> None:
    """Layer 2a: the warehouse knows the live snapshot's run as published."""
    row = connection.execute(
        load_sql("verify/run_record"),
        {"run": str(live.manifest["run_id"])},
    ).fetchone()
    if row is None:
        report.add("live_run_unknown_to_warehouse")
        return
    status, as_of, rules_version = row
    if status != "published":
        report.add("live_run_not_recorded_as_published")
    if as_of != str(live.manifest["as_of"]) or rules_version != live.manifest["rules_version"]:
        report.add("manifest_disagrees_with_run")
    if published is not None and published != live.manifest["run_id"]:
        report.notes.append(
            f"the live feed is from run {live.manifest['run_id']}, not from the latest "
            f"published run {published} (rolled back?)"
        )


def _check_decisions(
    connection: duckdb.DuckDBPyConnection,
    live: _LiveFeed,
    published: str | None,
    report: VerifyReport,
) -> None:
    """Layer 2b: feed records against the warehouse's decisions (or their history).

    `decisions` describe the live feed when no run published after the live one
    (the feed was not rolled back) and every decision comes from the live run
    or from a published run before it (an incremental run keeps the decisions
    of partitions nothing touched).
    """
    run_id = str(live.manifest["run_id"])
    _feed_view(connection, live)
    started = connection.execute(load_sql("verify/run_started_at"), {"run": run_id}).fetchone()
    live_started = started[0] if started else None
    later_published = live_started is not None and bool(
        connection.execute(
            load_sql("verify/published_after"),
            {"t": live_started},
        ).fetchall()[0][0]
    )
    foreign = connection.execute(
        load_sql("verify/decisions_of_other_runs"),
        {"run": run_id, "t": live_started},
    ).fetchall()[0][0]
    if live_started is not None and not later_published and not foreign:
        feed_side = connection.execute(load_sql("verify/feed_against_decisions")).fetchall()[0]
        report.add("feed_record_not_in_decisions", int(feed_side[0]))
        report.add("feed_record_hidden_by_decision", int(feed_side[1]))
        report.add("feed_record_version_differs_from_decision", int(feed_side[2]))
        report.add("feed_rules_version_differs_from_decision", int(feed_side[3]))
        missing = connection.execute(
            load_sql("verify/visible_decisions_missing_from_feed")
        ).fetchall()[0][0]
        report.add("visible_decision_missing_from_feed", int(missing))
        report.checked.append(
            f"every feed record against the warehouse's decisions of run {run_id}"
        )
        return
    if foreign and not later_published:
        # No run published after the live one, yet `decisions` hold decisions of
        # a run that never published: it replaced them and then failed or died.
        report.add("decisions_not_from_live_run")
    seq = connection.execute(load_sql("verify/published_run_seq"), {"run": run_id}).fetchone()
    if seq is None or seq[0] is None:
        report.notes.append(
            "the warehouse's decisions do not describe the live run and it has no "
            "published history: records not checked against decisions"
        )
        return
    counts = connection.execute(
        load_sql("verify/feed_against_history"), {"seq": int(seq[0])}
    ).fetchall()[0]
    report.add("feed_record_not_in_decisions", int(counts[0]))
    report.add("feed_record_hidden_by_decision", int(counts[1]))
    report.add("visible_decision_missing_from_feed", int(counts[2]))
    report.checked.append(f"every feed record against the decision history at run {run_id}")


def _check_against_rules(
    connection: duckdb.DuckDBPyConnection,
    warehouse: Path,
    live: _LiveFeed,
    rules: Any,
    report: VerifyReport,
) -> None:
    """Layer 3: decide the live run's state again; the feed must be its visible records."""
    from transforms.decide import decide

    run_id = str(live.manifest["run_id"])
    as_of = date.fromisoformat(str(live.manifest["as_of"]))
    scoped = connection.execute(load_sql("verify/run_delivery_count"), {"run": run_id}).fetchall()[
        0
    ][0]
    loaded_before = connection.execute(
        load_sql("verify/loaded_deliveries_until"), {"as_of": as_of}
    ).fetchall()[0][0]
    if not scoped and loaded_before:
        report.notes.append(
            "the live run recorded no deliveries in run_deliveries: not decided again"
        )
        return
    # The state queries read unqualified tables: give them the warehouse's, with
    # `deliveries` narrowed to exactly what the live run saw.
    connection.execute(load_sql("verify/scope_to_run"), {"run": run_id})
    for statement in load_statements("verify/warehouse_as_run_saw"):
        connection.execute(statement)
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=warehouse.parent) as scratch:
        work = Path(scratch)
        records_dir, blocks_path = work / "records", work / "blocks.parquet"
        state_sql = load_sql("state/current_records")
        connection.execute(
            f"COPY ({state_sql}) TO '{sql_literal(records_dir)}' "
            f"(FORMAT parquet, PARTITION_BY (partition_key), COMPRESSION {WORK_FILE_COMPRESSION})",
            _parameters(state_sql, as_of=as_of, partitions=_STATE_PARTITIONS, only_records=None),
        )
        blocks_sql = load_sql("state/current_blocks")
        connection.execute(
            f"COPY ({blocks_sql}) TO '{sql_literal(blocks_path)}' (FORMAT parquet)",
            _parameters(blocks_sql, as_of=as_of),
        )
        expected_dir = work / "expected"
        expected_dir.mkdir()
        for partition_dir in sorted(records_dir.glob("partition_key=*")):
            key = int(partition_dir.name.split("=", 1)[1])
            records = pl.scan_parquet(
                partition_dir / "*.parquet", hive_partitioning=False
            ).with_columns(partition_key=pl.lit(key, dtype=pl.Int32))
            decided = decide(records, pl.scan_parquet(blocks_path), rules, as_of)
            decided.filter(pl.col("visible")).select(FEED_COLUMNS).sink_parquet(
                expected_dir / f"part-{key:04d}.parquet"
            )
        expected_files = sorted(str(p) for p in expected_dir.glob("*.parquet"))
        if expected_files:
            connection.execute(load_sql("verify/expected_from_files"), {"files": expected_files})
        else:
            connection.execute(load_sql("verify/expected_none"))
    differs = " OR ".join(f"e.{c} IS DISTINCT FROM f.{c}" for c in FEED_COLUMNS)
    counts = connection.execute(
        f"""SELECT
              (SELECT count(*) FROM live_feed AS f
               WHERE f.record_id NOT IN (SELECT record_id FROM expected)),
              (SELECT count(*) FROM expected AS e
               WHERE e.record_id NOT IN (SELECT record_id FROM live_feed
                                         WHERE record_id IS NOT NULL)),
              (SELECT count(*) FROM live_feed AS f JOIN expected AS e USING (record_id)
               WHERE {differs})"""
    ).fetchall()[0]
    report.add("feed_record_hidden_by_rules", int(counts[0]))
    report.add("visible_by_rules_missing_from_feed", int(counts[1]))
    report.add("feed_row_differs_from_rules_state", int(counts[2]))
    report.checked.append(
        f"the feed against the live run's state decided again under rules {rules.rules_version}"
    )


def _feed_view(connection: duckdb.DuckDBPyConnection, live: _LiveFeed) -> None:
    """`live_feed`: the rows of the snapshot's readable files (no rows when it has none)."""
    if live.good_files:
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE live_feed AS "
            f"SELECT {', '.join(FEED_COLUMNS)} FROM read_parquet($files)",
            {"files": [str(p) for p in live.good_files]},
        )
    else:
        connection.execute(f"CREATE OR REPLACE TEMP TABLE live_feed ({_EMPTY_FEED_COLUMNS})")


def _safe_relative(name: str) -> bool:
    """A path inside the snapshot made of plain names (`changes/changes.parquet`)."""
    parts = name.split("/")
    return all(_SAFE_FILE_NAME.match(part) for part in parts) and ".." not in parts


def _latest_published_run(connection: duckdb.DuckDBPyConnection) -> str | None:
    row = connection.execute(load_sql("verify/latest_published_run")).fetchone()
    return str(row[0]) if row else None


def _parameters(statement: str, **values: Any) -> dict[str, Any]:
    """Only the parameters the statement uses (DuckDB refuses unused ones)."""
    return {name: value for name, value in values.items() if f"${name}" in statement}
