"""What operators read: the run summary, `jvn stats`, `jvn explain`.

Nothing printed here holds a personnummer or journal text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from flows.common.config import ConfigError
from flows.common.errors import FeedError
from flows.common.feed_folder import live_snapshot
from flows.common.sql import load_sql
from flows.common.warehouse import connect, first_row
from flows.common.words import plural, printable

if TYPE_CHECKING:
    from transforms.rules import RuleSet


def _say(line: str) -> None:
    print(printable(line))


def print_run_summary(summary: dict[str, Any]) -> None:
    """A short, scannable summary of one run.

    Values from deliveries (unit names, HSA-ids, codes, folder names) are printed
    with control characters escaped, so none can move the cursor or forge a line.
    """
    records, visible = summary["records"], summary["visible"]
    share = f"{100 * visible / records:.1f} %" if records else "-"
    _say(f"run {summary['run_id']}  as of {summary['as_of']}  rules {summary['rules_version']}")
    _say(f"  status        {summary['status']}  snapshot {summary['snapshot']}")
    _say(
        f"  deliveries    {summary['deliveries_loaded']} loaded, "
        f"{summary['deliveries_already_loaded']} already loaded, "
        f"{len(summary['deliveries_rejected'])} rejected, "
        f"{summary['deliveries_duplicate']} duplicate"
    )
    _say(
        f"  rows          {summary['records_loaded']} loaded, "
        f"{summary['rows_quarantined']} quarantined"
    )
    if summary.get("rows_quarantined_without_id"):
        _say(
            f"  NO RECORD ID  "
            f"{plural(summary['rows_quarantined_without_id'], 'quarantined row')} whose "
            "record id could not be read: their records may still show an older version "
            "(see the quarantine table)"
        )
    _say(f"  records       {records}, visible {visible} ({share})")
    for reason, count in sorted(summary["reasons"].items(), key=lambda item: -item[1]):
        _say(f"    {reason:<26}{count:>10}")
    if summary.get("changes"):
        changes = ", ".join(f"{k} {v}" for k, v in sorted(summary["changes"].items()))
        _say(f"  changes       {changes}")
    for rejected in summary["deliveries_rejected"]:
        _say(f"  REJECTED      {rejected['delivery']}: {rejected['error']}")
    for later in summary.get("deliveries_later", []):
        _say(f"  LEFT FOR LATER  {later}: dated after {summary['as_of']}, not loaded yet")
    for unit in summary["units_exempt_by_name_only"]:
        _say(
            f"  EXEMPT BY NAME ONLY  {unit['care_unit_hsa_id']} {unit['care_unit_name']!r} "
            f"({plural(unit['records'], 'record')}): add its HSA-id to the rule file"
        )
    for code in summary["unknown_codes"]:
        _say(
            f"  UNKNOWN CODE  {code['source_system']} {code['source_code']!r} "
            f"({plural(code['records'], 'record')}, hidden as 'other')"
        )
    for ignored in summary.get("ignored_folders", []):
        _say(f"  IGNORED       {ignored}")
    for warning in summary.get("warnings", []):
        _say(f"  WARNING       {warning}")


STATS_DIMENSIONS = ("system", "reason", "type", "unit")
"""`jvn stats --by` choices."""


def stats(warehouse: Path, by: str, feed_dir: Path | None = None) -> int:
    """`jvn stats`: the decisions of the run whose snapshot is live, counted, with a total.

    The live run is the one whose snapshot the feed's `CURRENT` names (`feed_dir`,
    by default the feed the latest run published to): after `jvn rollback` that
    is an earlier run than the latest, and its decisions are read from the
    decision history. With no live snapshot at all, the latest published run.
    """
    if by not in STATS_DIMENSIONS:
        raise ConfigError(f"--by wants one of {', '.join(STATS_DIMENSIONS)}, not {by!r}")
    if not warehouse.exists():
        raise ConfigError(f"no warehouse at {warehouse}: run `jvn run` first")
    with connect(warehouse, read_only=True) as connection:
        runs = connection.execute(load_sql("report/published_runs")).fetchall()
        if not runs:
            raise ConfigError("no published run yet")
        latest = runs[-1]
        feed = feed_dir if feed_dir is not None else (Path(latest[5]) if latest[5] else None)
        reported, where = _live_run(runs, feed)
        if reported[0] == latest[0]:
            connection.execute("CREATE TEMP VIEW stated_decisions AS SELECT * FROM decisions")
        else:
            connection.execute(
                "CREATE TEMP TABLE stated_decisions AS " + load_sql("report/decisions_at_run"),
                {"run_seq": reported[1]},
            )
        table = connection.sql(load_sql("report/stats"), params={"by": by}).pl()
    table = table.rename({"label": by})
    if by != "unit":
        table = table.drop("unit_name")
    print(f"run {reported[0]}  as of {reported[2]}  rules {reported[3]}  {where}")
    if reported[0] != latest[0]:
        print(
            f"  (the latest published run, {latest[0]} as of {latest[2]}, is not live: rolled back)"
        )
    print_table(table)
    return 0


def _live_run(runs: Sequence[tuple[Any, ...]], feed: Path | None) -> tuple[tuple[Any, ...], str]:
    """The published run whose snapshot `feed`'s CURRENT names, and how it was found."""
    latest = runs[-1]
    try:
        live = live_snapshot(feed) if feed is not None and feed.is_dir() else None
    except FeedError as error:
        raise ConfigError(str(error)) from None
    if live is None:
        return latest, f"(latest published; no live snapshot in {feed})"
    for run in runs:
        if run[4] == live.name:
            return run, f"(live: {live.name})"
    raise ConfigError(
        f"the live snapshot {live.name} in {feed} was not published from this warehouse "
        "(give its --feed or --warehouse)"
    )


def print_table(frame: pl.DataFrame) -> None:
    """A table for the operator's terminal, every row, delivered text escaped."""
    with pl.Config(
        tbl_rows=-1,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=160,
        fmt_str_lengths=60,
    ):
        # Unit names and HSA-ids come from deliveries: no control character reaches the terminal.
        print(frame.with_columns(pl.col(pl.String).map_elements(printable, return_dtype=pl.String)))


def explain(warehouse: Path, rules_path: Path, record_id: str, as_of: date | None) -> int:
    """`jvn explain RECORD_ID`: each rule's verdict and the values it used, plus history."""
    from transforms.decide import decide
    from transforms.rules import RuleFileError, load_rules

    try:
        rules = load_rules(rules_path)
    except RuleFileError as error:
        raise ConfigError(str(error)) from None
    if not warehouse.exists():
        raise ConfigError(f"no warehouse at {warehouse}: run `jvn run` first")
    with connect(warehouse, read_only=True) as connection:
        runs = connection.execute(load_sql("report/published_runs")).fetchall()
        if as_of is None:
            as_of = runs[-1][2] if runs else None
        if as_of is None:
            raise ConfigError("no published run yet; give --as-of")
        state = connection.sql(
            f"SELECT * FROM ({load_sql('state/current_records')}) WHERE record_id = $record_id",
            params={
                "as_of": as_of,
                # The latest run's partition count, so that the partition shown is
                # the one its decision was stored under.
                "partitions": (runs[-1][6] or 1) if runs else 1,
                "only_records": None,
                "record_id": record_id,
            },
        ).pl()
        blocks = connection.sql(load_sql("state/current_blocks"), params={"as_of": as_of}).pl()
        periods = connection.sql(
            load_sql("report/decision_periods"), params={"record_id": record_id}
        ).pl()
        failed_check = first_row(
            connection,
            load_sql("report/quarantine_reason"),
            {"record_id": record_id, "as_of": as_of},
        )
    if state.is_empty():
        print(f"{record_id}: no such record known on {as_of}")
        return 1
    decided = decide(state.lazy(), blocks.lazy(), rules, as_of, with_verdicts=True).collect()
    row = decided.row(0, named=True)
    print(f"{record_id} as of {as_of} under rules {rules.rules_version}")
    print(f"  visible: {row['visible']}   reason: {row['reason']}   reasons: {row['reasons']}")
    if row["reason"] == "invalid_record" and failed_check is not None:
        # The job's own check texts (they name fields, never values).
        print(printable(f"  failed check: {failed_check[0]}"))
    # Explain output is read by operators; it still holds no personnummer or text.
    hidden_fields = {
        "patient_id",
        "title",
        "content",
        "keyword",
        "normalised_keyword",
        "birth_date",
    }
    print("  values used:")
    for name, value in row.items():
        if name in hidden_fields or name.startswith("rule_") or name in {"reasons"}:
            continue
        print(printable(f"    {name:<28}{value}"))
    print("  rules:")
    for name in _rule_columns(row):
        verdict = "APPLIES (hides)" if row[name] else "does not apply"
        print(f"    {name.removeprefix('rule_'):<28}{verdict}")
    details = _rule_details(rules, row, as_of)
    if details:
        print("  which rule, which values:")
        for line in details:
            print(f"    {line}")
    if not periods.is_empty():
        print("  history (published runs):")
        for period in periods.iter_rows(named=True):
            until = (
                f"until run {period['to_run']} (as of {period['to_as_of']})"
                if period["to_run"]
                else "until now"
            )
            shown = "visible" if period["visible"] else f"hidden ({period['reason']})"
            print(
                f"    from run {period['from_run']} (as of {period['from_as_of']}) {until}: "
                f"{shown}, rules {period['rules_version']}"
            )
    return 0


def _rule_details(rules: RuleSet, row: dict[str, Any], as_of: date) -> list[str]:
    """For `explain`: the rule-file entry behind each start, scope and delay that hides the row.

    Only rule-file values and the record's own dates, type, unit and system: no
    personnummer, no text.
    """
    lines: list[str] = []
    documented, system, info_type = row["documented_date"], row["source_system"], row["info_type"]
    if row.get("rule_before_system_start") and system in rules.systems:
        rule = rules.systems[system]
        if info_type in rule.info_type_starts:
            where = f"systems.{system}.info_type_starts.{info_type}"
        elif info_type is None and rule.info_type_starts:
            where = f"systems.{system}: the latest start of its types (type unreadable)"
        else:
            where = f"systems.{system}.start"
        lines.append(
            f"before_system_start: {where} = {row['system_start']}, documented {documented}"
        )
    for index in row.get("later_scopes_applying") or []:
        scope = rules.later_scopes[index]
        label = f" {scope.name!r}" if scope.name else ""
        if scope.specialty is not None:
            match = f"specialty {scope.specialty!r}"
        elif scope.patient_under_age is not None:
            match = f"patient under {scope.patient_under_age} (age {row['age_at_documentation']})"
        else:
            unit_key = row["unit_key"]
            if unit_key is None:
                match = "unit without HSA-id (cannot be ruled out)"
            elif unit_key in scope.units.normalised_hsa_ids:
                match = f"unit {unit_key} listed"
            elif row["normalised_unit_name"] is None:
                match = "unit without a name (cannot be ruled out)"
            else:
                name = row["normalised_unit_name"]
                hits = [p for p in scope.units.name_patterns if re.search(p, name)]
                match = f"unit name {name!r} matches {hits}"
        lines.append(
            f"{scope.reason}: later_scopes[{index}]{label}, {match}, systems "
            f"{list(scope.systems)}, shown from {scope.start}, documented {documented}"
        )
    if row.get("rule_release_delay"):
        days = row["release_delay_days"]
        if info_type is None:
            lines.append("release_delay: type unreadable while a release delay is in force")
        elif days is None:
            lines.append(f"release_delay: {info_type}: no value in force on {as_of} (waits)")
        else:
            values = [d for d in rules.release_delay if d.info_type == info_type]
            since = max(d.valid_from for d in values if d.valid_from <= as_of)
            lines.append(
                f"release_delay: {info_type}: {days} days (value from {since}), "
                f"documented {documented}, shown from documentation date + {days} days"
            )
    return lines


def _rule_columns(row: dict[str, Any]) -> Sequence[str]:
    return [name for name in row if name.startswith("rule_")]
