"""What a run, or a proposed rule change, changes: `jvn diff` and `jvn whatif`.

Two comparisons, one vocabulary (a snapshot's change set, the third, is
written by `flows/publish/change_set.py`):

- `diff_runs`: two published runs, from the decision history (the state at run
  R is the periods with `from_seq <= R.run_seq < to_seq`).
- `whatif`: the latest published run against decisions made under a proposed
  rule file, with the flow's own stage functions, in a scratch folder beside
  the warehouse; nothing is published or recorded.

The first two compare exactly as the flow's history step does
(`sql/diff/compare.sql` mirrors `sql/history/changes_against_open.sql`), so a
whatif lists the very records the real rerun will record in `decision_changes`.
What they print and export holds no personnummer and no journal text.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from flows.audit.reports import print_table
from flows.common.config import ConfigError
from flows.common.files import private_dir
from flows.common.sql import load_sql
from flows.common.warehouse import connect
from flows.common.words import plural
from flows.decide.partition import decide_partition
from flows.store.state import export_state
from transforms.rules import RuleFileError, load_rules
from transforms.schemas import ValidationFailed

DIRECTIONS: tuple[str, ...] = (
    "hidden",
    "shown",
    "reason_changed",
    "new_shown",
    "new_hidden",
    "gone",
)
"""Directions of a change, as in `decision_changes` (and the order they are printed in)."""

SUMMARY_DIMENSIONS: dict[str, str] = {
    "direction": "direction",
    "system": "source_system",
    "unit": "care_unit_hsa_id",
    "type": "info_type",
    "reason": "reason_change",
}
"""`--by` choices and the column each groups by."""


@dataclass(frozen=True)
class PublishedRun:
    """A published run, as the warehouse's `runs` table describes it."""

    run_id: str
    run_seq: int
    as_of: date
    rules_version: str
    snapshot: str | None

    @property
    def label(self) -> str:
        return f"run {self.run_id} (as of {self.as_of}, rules {self.rules_version})"


@dataclass(frozen=True)
class Diff:
    """The records whose visibility or reasons differ between two decision states."""

    before: str
    after: str
    changes: pl.DataFrame

    def counts(self) -> dict[str, int]:
        """Changed records per direction (only directions that occur)."""
        if self.changes.is_empty():
            return {}
        counted = dict(self.changes.group_by("direction").len().iter_rows())
        return {d: int(counted[d]) for d in DIRECTIONS if d in counted}


# --- runs --------------------------------------------------------------------------


def published_runs(connection: duckdb.DuckDBPyConnection) -> list[PublishedRun]:
    """Every published run, in publishing order."""
    rows = connection.execute(
        "SELECT run_id, run_seq, as_of, rules_version, snapshot FROM runs "
        "WHERE status = 'published' AND run_seq IS NOT NULL ORDER BY run_seq"
    ).fetchall()
    return [PublishedRun(str(r[0]), int(r[1]), r[2], str(r[3]), r[4]) for r in rows]


def resolve_run(
    runs: Sequence[PublishedRun], reference: str, relative_to: PublishedRun | None = None
) -> PublishedRun:
    """A published run named by its id, a unique start of its id, its business date,
    `latest`, or one of those followed by `~N`: the Nth published run before it.

    A business date names the latest published run for that date. `previous` is
    `~1`, and a bare `~N` counts back from `relative_to` (for `--from`, the
    `--to` run), else from the latest run.
    """
    text = reference.strip()
    if text == "previous":
        text = "~1"
    base_text, tilde, steps_text = text.partition("~")
    if not tilde:
        return _resolve_one(runs, text)
    if not steps_text.isdigit():
        raise ConfigError(f"{text!r}: `~` wants a number of runs back (`latest~1`, `~2`)")
    if base_text:
        base = _resolve_one(runs, base_text)
    else:
        base = relative_to if relative_to is not None else runs[-1]
    position = next(i for i, run in enumerate(runs) if run.run_id == base.run_id)
    steps = int(steps_text)
    if steps > position:
        raise ConfigError(
            f"{text!r}: {steps} published runs back from {base.run_id} is before the first run "
            f"({position} published before it)"
        )
    return runs[position - steps]


def _resolve_one(runs: Sequence[PublishedRun], text: str) -> PublishedRun:
    if text == "latest":
        return runs[-1]
    exact = [run for run in runs if run.run_id == text]
    if exact:
        return exact[0]
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None:
        same_day = [run for run in runs if run.as_of == day]
        if not same_day:
            raise ConfigError(f"no published run for business date {day}")
        return same_day[-1]
    matches = [run for run in runs if text and run.run_id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"{text!r} names {len(matches)} published runs; give more of the id")
    raise ConfigError(
        f"no published run {text!r} (give a run id, the start of one, a business date, "
        "`latest` or `previous`)"
    )


def diff_runs(warehouse: Path, from_run: str | None = None, to_run: str | None = None) -> Diff:
    """The records whose visibility or reasons changed from one published run to another.

    Defaults: `to_run` the latest published run, `from_run` the one before it
    (or nothing at all, when `to_run` is the first).
    """
    _require_warehouse(warehouse)
    with connect(warehouse, read_only=True) as connection:
        runs = published_runs(connection)
        if not runs:
            raise ConfigError("no published run yet: nothing to compare")
        after = resolve_run(runs, to_run) if to_run else runs[-1]
        before: PublishedRun | None
        if from_run:
            before = resolve_run(runs, from_run, relative_to=after)
            if before.run_id == after.run_id:
                raise ConfigError(_same_run(runs, from_run, to_run, after))
        else:
            earlier = [run for run in runs if run.run_seq < after.run_seq]
            before = earlier[-1] if earlier else None
        from_seq = before.run_seq if before else 0
        connection.execute(
            "CREATE TEMP TABLE diff_changes AS WITH "
            + load_sql("diff/states_between_runs")
            + load_sql("diff/compare"),
            {"from_seq": from_seq, "to_seq": after.run_seq},
        )
        connection.execute(
            "CREATE TEMP TABLE diff_dims AS " + load_sql("diff/dims_from_history"),
            {"dims_seq": max(from_seq, after.run_seq)},
        )
        changes = connection.sql(load_sql("diff/with_dims")).pl()
    return Diff(
        before=before.label if before else "nothing (before the first run)",
        after=after.label,
        changes=changes,
    )


def _same_run(
    runs: Sequence[PublishedRun], from_run: str, to_run: str | None, run: PublishedRun
) -> str:
    """One line: --from and --to name the same run (nothing to compare), and why."""
    to_text = f"--to {to_run}" if to_run else "the latest run (--to's default)"
    same_day = sum(1 for other in runs if other.as_of == run.as_of)
    why = (
        f"; a business date names its latest run, and {run.as_of} has {same_day}"
        if same_day > 1
        else ""
    )
    return (
        f"--from {from_run} and {to_text} are the same run, {run.run_id} (as of {run.as_of})"
        f"{why}: nothing to compare. `--from previous` (or `~1`) names the published run "
        "before --to"
    )


# --- whatif ------------------------------------------------------------------------


def whatif(
    warehouse: Path, rules_path: Path, as_of: date | None = None, partitions: int = 16
) -> Diff:
    """Decide every record under a proposed rule file; compare with the latest published run.

    Uses the flow's own stage functions (`export_state`, `decide_partition`) on the
    records and blocks already loaded into the warehouse, in a private scratch
    folder beside it that is removed afterwards. Publishes nothing, records no
    run: the warehouse is opened read-only. Deliveries still waiting in the
    inbox are not loaded, so the diff shows what the rules change and nothing
    else; `as_of` defaults to the latest published run's business date.
    """
    try:
        rules = load_rules(rules_path)
    except RuleFileError as error:
        raise ConfigError(str(error)) from None
    _require_warehouse(warehouse)
    with connect(warehouse, read_only=True) as connection:
        runs = published_runs(connection)
    if not runs:
        raise ConfigError("no published run yet: run `jvn run` first, then compare rules")
    latest = runs[-1]
    day = as_of or latest.as_of
    work_dir = private_dir(private_dir(warehouse.parent / "work") / f"whatif-{uuid.uuid4().hex}")
    try:
        keys = export_state(warehouse, day, partitions, work_dir, None)
        for key in keys:
            try:
                decide_partition(key, work_dir, rules, day, "whatif")
            except ValidationFailed as error:
                message = " ".join(str(error).split())
                raise ConfigError(
                    f"decisions under {rules_path} fail validation: {message}"
                ) from None
        decided = sorted((work_dir / "decisions").glob("*.parquet"))
        changes = _compare_with_latest(warehouse, decided)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return Diff(
        before=latest.label,
        after=f"proposed rules {rules.rules_version} from {rules_path} (as of {day})",
        changes=changes,
    )


def _compare_with_latest(warehouse: Path, decided: list[Path]) -> pl.DataFrame:
    with connect(warehouse, read_only=True) as connection:
        if decided:
            parameters: dict[str, Any] = {"decisions": [str(path) for path in decided]}
            states = load_sql("diff/states_whatif")
            dims = load_sql("diff/dims_whatif")
        else:  # no records at all under the proposed rules: everything is gone
            parameters = {}
            states = load_sql("diff/states_whatif").replace(
                "read_parquet($decisions)", "decision_history WHERE false"
            )
            dims = (
                "SELECT record_id, source_system, care_unit_hsa_id, care_unit_name, info_type "
                "FROM decisions WHERE record_id IN (SELECT record_id FROM diff_changes)"
            )
        connection.execute(
            "CREATE TEMP TABLE diff_changes AS WITH " + states + load_sql("diff/compare"),
            parameters or None,
        )
        connection.execute("CREATE TEMP TABLE diff_dims AS " + dims, parameters or None)
        return connection.sql(load_sql("diff/with_dims")).pl()


# --- summaries and exports ---------------------------------------------------------


def with_reason_change(changes: pl.DataFrame) -> pl.DataFrame:
    """Add `reason_change`: what changed in a record's reasons, as an operator reads it.

    "before -> after" when the main reason changed ("(none)" for a record new or
    gone); when it stayed and only the list of reasons changed, the reason and
    the reasons gained and lost ("exempt_unit: reasons gained exempt_term").
    """
    gained = _listed(pl.col("after_reasons").list.set_difference(pl.col("before_reasons")))
    lost = _listed(pl.col("before_reasons").list.set_difference(pl.col("after_reasons")))
    list_change = pl.concat_str(
        pl.when(gained != "").then(pl.lit("gained ") + gained),
        pl.when(lost != "").then(pl.lit("lost ") + lost),
        separator=", ",
        ignore_nulls=True,
    )
    same_reason = pl.col("before_reason") == pl.col("after_reason")
    return changes.with_columns(
        reason_change=pl.when(same_reason & (list_change != ""))
        .then(pl.concat_str(pl.col("after_reason"), pl.lit(": reasons "), list_change))
        .otherwise(
            pl.concat_str(
                pl.col("before_reason").fill_null("(none)"),
                pl.lit(" -> "),
                pl.col("after_reason").fill_null("(none)"),
            )
        )
    )


def _listed(reasons: pl.Expr) -> pl.Expr:
    """A list of reasons as "a, b", in sorted order (stable across runs)."""
    return reasons.list.sort().list.join(", ").fill_null("")


def summary(changes: pl.DataFrame, by: str) -> pl.DataFrame:
    """Changed records counted by one dimension, one column per direction that occurs."""
    column = SUMMARY_DIMENSIONS[by]
    frame = with_reason_change(changes)
    if by == "direction":
        counted = frame.group_by("direction").len("records")
        order = {d: i for i, d in enumerate(DIRECTIONS)}
        return counted.sort(pl.col("direction").replace_strict(order, default=len(order)))
    present = [d for d in DIRECTIONS if d in set(frame["direction"].to_list())]
    keys = [column] if by != "unit" else ["care_unit_hsa_id", "care_unit_name"]
    counted = frame.group_by(*keys, "direction").len("records")
    table = counted.pivot(on="direction", index=keys, values="records").fill_null(0)
    table = table.select(*keys, *[d for d in present if d in table.columns])
    total = pl.sum_horizontal(*[pl.col(d) for d in present]) if present else pl.lit(0)
    ordered = ["total", *keys]
    return table.with_columns(total=total).sort(ordered, descending=[True] + [False] * len(keys))


def print_diff(result: Diff, by: Sequence[str] | None = None, *, unit_rows: int = 20) -> None:
    """The diff as an operator reads it: totals by direction, then the chosen breakdowns."""
    print(f"from {result.before}")
    print(f"  to {result.after}")
    counts = result.counts()
    total = sum(counts.values())
    if not total:
        print("no record changed visibility or reason")
        return
    print(f"{plural(total, 'record')} changed: " + ", ".join(f"{d} {n}" for d, n in counts.items()))
    sections = list(by) if by else ["system", "type", "reason", "unit"]
    for name in sections:
        if name == "direction":
            continue
        table = summary(result.changes, name)
        print(f"\nby {name}:")
        limit = unit_rows if (name == "unit" and not by) else None
        if limit is not None and table.height > limit:
            print_table(table.head(limit))
            more = plural(table.height - limit, "more unit")
            print(f"... {more} (--by unit shows all, --export lists)")
        else:
            print_table(table)


def export(result: Diff, path: Path) -> int:
    """Write the changed records to CSV or Parquet (by the file's suffix); returns rows.

    No personnummer and no journal text: ids, system, unit, type, visibility, reasons.
    """
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ConfigError(f"--export wants a .csv or .parquet file, not {path.name!r}")
    frame = result.changes.with_columns(from_run=pl.lit(result.before), to_run=pl.lit(result.after))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.with_columns(
            pl.col("before_reasons").list.join(";"), pl.col("after_reasons").list.join(";")
        ).write_csv(path)
    else:
        frame.write_parquet(path)
    return frame.height


def _require_warehouse(warehouse: Path) -> None:
    if not warehouse.exists():
        raise ConfigError(f"no warehouse at {warehouse}: run `jvn run` first")
