"""The analysts' report: one HTML file from `analytics.duckdb` alone, counts only.

Answers the questions analysts and rule owners ask every week: how much is
shown, per system and over time; why the rest is hidden and how that moved over
the recorded runs; which units were caught as exempt by name only (the action
list); unknown codes; deliveries per night with rejected ones and quarantined
rows; what each rule change did. Every query (sql/analysts_report/) groups and
counts: no record id or patient key reaches the page.

Charts are Vega-Lite specifications built with Altair and rendered to SVG by
vl-convert at build time, so the file needs no script and no network; each
chart has its figures in a table beside or under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import altair as alt
import duckdb
from markupsafe import Markup

from flows.common.errors import WarehouseBusy
from flows.common.sql import load_sql
from flows.common.warehouse import open_waiting
from flows.pages import environment, report_charts, write_atomically

REQUIRED_TABLES = (
    "runs",
    "deliveries",
    "quarantine_summary",
    "decision_changes",
    "reasons_by_run",
    "units_exempt_by_name_only",
    "unknown_codes",
    "visibility_by_month",
    "visibility_by_reason",
    "visibility_by_system",
)
"""What the report reads; a database built by an older job lacks some of them."""


class ReportError(Exception):
    """The report cannot be made from this file (one line, for exit 2)."""


@dataclass(frozen=True)
class Table:
    """Rows as shown; `numeric` marks right-aligned columns."""

    columns: list[str]
    rows: list[list[Any]]
    numeric: set[int] = field(default_factory=set)
    wrap: set[int] = field(default_factory=set)
    """Columns of long text that may wrap (the rest stay on one line)."""
    caption: str | None = None
    scroll: bool = False
    """Long tables scroll on screen and print whole."""
    name: str = ""
    """A stable handle (`data-table`) for people linking to it and for tests."""


@dataclass(frozen=True)
class Figure:
    title: str
    svg: Markup


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    empty: str | None = None
    """Said instead of figures and tables when there is nothing to show."""


@dataclass(frozen=True)
class Report:
    source: str
    as_of: str
    rules_version: str
    headline: list[tuple[str, str]]
    sections: list[Section]


def _rows(connection: duckdb.DuckDBPyConnection, name: str) -> list[dict[str, Any]]:
    cursor = connection.execute(load_sql(f"analysts_report/{name}"))
    columns = [column[0] for column in cursor.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


class _Sources:
    """What the sections draw from: the analysts' database and the chart renderer."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, validate: bool) -> None:
        self._connection = connection
        self._validate = validate

    def rows(self, name: str) -> list[dict[str, Any]]:
        """The rows of the report's query `name` (sql/analysts_report/), as dicts."""
        return _rows(self._connection, name)

    def svg(self, chart: alt.TopLevelMixin) -> Markup:
        return report_charts.svg(chart, validate=self._validate)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1f} %"


def build_report(analytics: Path, *, validate_charts: bool = False) -> Report:
    """Query the analysts' database and build the report's content.

    `validate_charts`: Altair checks each chart against Vega-Lite's schema as it
    is built and again as it is written. That is 0.4-0.6 s of a 10 M report's
    1.6 s, for charts whose shapes are report_charts.py's whatever the data, so
    the job draws without it and the tests draw with it.
    """
    if not analytics.is_file():
        raise ReportError(f"no analysts' database at {analytics}")
    try:
        # A nightly run holds the file for a moment while it commits its patch.
        connection = open_waiting(analytics, read_only=True, what="the analysts' database")
    except WarehouseBusy as error:
        raise ReportError(str(error)) from None
    except duckdb.Error as error:
        raise ReportError(f"{analytics}: cannot open ({type(error).__name__})") from None
    with connection:
        present = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables"
            ).fetchall()
        }
        missing = [name for name in REQUIRED_TABLES if name not in present]
        if missing:
            raise ReportError(
                f"{analytics} has no {', '.join(missing)}: it was built by an older job; "
                "run `jvn run` to rebuild it"
            )
        latest = _rows(connection, "latest_run")
        if not latest:
            raise ReportError(f"{analytics} records no published run")
        run = latest[0]
        with report_charts.checked(validate_charts):
            sources = _Sources(connection, validate=validate_charts)
            sections = [
                _visible_share(sources),
                _reasons(sources),
                _exempt_by_name(sources),
                _unknown_codes(sources),
                _deliveries(sources),
                _rule_changes(sources),
            ]
    records, visible = int(run["records"] or 0), int(run["visible"] or 0)
    headline = [
        ("Business date", _iso(run["as_of"])),
        ("Records", str(records)),
        ("Visible", str(visible)),
        ("Visible share", _pct(100.0 * visible / records if records else None)),
        ("Deliveries loaded this run", str(run["deliveries_loaded"] or 0)),
        ("Deliveries rejected this run", str(run["deliveries_rejected"] or 0)),
        ("Rows quarantined this run", str(run["rows_quarantined"] or 0)),
    ]
    return Report(
        source=analytics.name,
        as_of=_iso(run["as_of"]),
        rules_version=str(run["rules_version"]),
        headline=headline,
        sections=sections,
    )


# --- sections ---------------------------------------------------------------


def _visible_share(sources: _Sources) -> Section:
    months = sources.rows("share_by_month")
    systems = sources.rows("share_by_system")
    title = "Visible share per system by documentation month"
    intro = "Of the records documented in each month, the share the portal shows, per system."
    if not months:
        return Section("visible-share", title, intro, empty="No records.")
    values = [
        {"month": _iso(row["month"]), "system": row["source_system"], "share": row["visible_pct"]}
        for row in months
    ]
    # One small panel per system: five lines over 200 months in one panel tangle.
    chart = report_charts.share_chart(values)
    names = sorted({row["source_system"] for row in months})
    by_month: dict[str, dict[str, str]] = {}
    for row in months:
        cell = f"{_pct(row['visible_pct'])} of {row['records']}"
        by_month.setdefault(_iso(row["month"])[:7], {})[row["source_system"]] = cell
    month_table = Table(
        columns=["Month", *names],
        rows=[[month, *(cells.get(n, "") for n in names)] for month, cells in by_month.items()],
        numeric=set(range(1, len(names) + 1)),
        caption="Visible share of the records documented each month",
        name="share-by-month",
        scroll=True,
    )
    system_table = Table(
        columns=["System", "Records", "Visible", "Visible share"],
        rows=[
            [row["source_system"], row["records"], row["visible"], _pct(row["visible_pct"])]
            for row in systems
        ],
        numeric={1, 2, 3},
        caption="All documentation dates",
        name="share-by-system",
    )
    return Section(
        "visible-share",
        title,
        intro,
        figures=[Figure("Visible share by month", sources.svg(chart))],
        tables=[system_table, month_table],
    )


def _reasons(sources: _Sources) -> Section:
    latest = sources.rows("reasons_latest")
    by_run = sources.rows("reasons_by_run")
    figures = []
    if latest:
        bars = report_charts.reasons_chart(latest)
        figures.append(Figure("Records per reason, latest run", sources.svg(bars)))
    if by_run:
        values = [
            {"run": f"{row['run_seq']}: {_iso(row['as_of'])}", "reason": row["reason"],
             "records": row["records"]}
            for row in by_run
        ]  # fmt: skip
        lines = report_charts.reasons_by_run_chart(values)
        figures.append(Figure("Records per reason over the recorded runs", sources.svg(lines)))
    runs = sorted({(row["run_seq"], _iso(row["as_of"])) for row in by_run})
    reasons = [row["reason"] for row in latest] + sorted(
        {row["reason"] for row in by_run} - {row["reason"] for row in latest}
    )
    counts = {(row["run_seq"], row["reason"]): row["records"] for row in by_run}
    run_table = Table(
        columns=["Reason", *(f"Run {seq} ({as_of})" for seq, as_of in runs)],
        rows=[[reason, *(counts.get((seq, reason), 0) for seq, _ in runs)] for reason in reasons],
        numeric=set(range(1, len(runs) + 1)),
        caption="Records per reason at each published run (the last column is the latest run)",
        name="reasons-by-run",
    )
    return Section(
        key="reasons",
        title="Records per reason",
        intro=(
            "Why records are hidden: each record counts under the first reason that applies "
            "(`shown` when none does), and how those counts moved over the recorded runs."
        ),
        figures=figures,
        tables=[run_table] if latest else [],
        empty=None if latest else "No records.",
    )


def _exempt_by_name(sources: _Sources) -> Section:
    units = sources.rows("units_exempt_by_name_only")
    return Section(
        key="exempt-by-name",
        title="Units exempt by name only: add their HSA-ids",
        intro=(
            "These units are hidden only because their name matched a pattern in the rule "
            "file. Add each HSA-id under [exempt_units] hsa_ids, so that a renamed unit "
            "stays hidden."
        ),
        tables=[
            Table(
                columns=["HSA-id", "Unit name", "Records"],
                name="units-exempt-by-name-only",
                rows=[[u["care_unit_hsa_id"], u["care_unit_name"], u["records"]] for u in units],
                numeric={2},
            )
        ]
        if units
        else [],
        empty=None if units else "None: every exempt unit is listed by HSA-id.",
    )


def _unknown_codes(sources: _Sources) -> Section:
    codes = sources.rows("unknown_codes")
    return Section(
        key="unknown-codes",
        title="Unknown codes",
        intro=(
            "Information-type codes the delivery contract does not list. They are read as "
            "`other` and hidden until someone decides what they are."
        ),
        tables=[
            Table(
                columns=["System", "Code", "Records"],
                name="unknown-codes",
                rows=[[c["source_system"], c["source_code"], c["records"]] for c in codes],
                numeric={2},
            )
        ]
        if codes
        else [],
        empty=None if codes else "None.",
    )


def _deliveries(sources: _Sources) -> Section:
    nights = sources.rows("deliveries_by_night")
    rejected = sources.rows("rejected_deliveries")
    quarantine = sources.rows("quarantine")
    if not nights:
        return Section(
            key="deliveries", title="Deliveries", intro="", empty="No deliveries recorded."
        )
    values = [
        {"night": _iso(row["business_date"]), "system": row["system"], "status": row["status"],
         "deliveries": row["deliveries"], "quarantined": row["rows_quarantined"]}
        for row in nights
        if row["business_date"] is not None
    ]  # fmt: skip
    delivered = report_charts.deliveries_chart(values)
    figures = [Figure("Deliveries per night by status", sources.svg(delivered))]
    quarantined = [value for value in values if value["quarantined"]]
    if quarantined:
        q_chart = report_charts.quarantined_chart(quarantined)
        figures.append(Figure("Quarantined rows per night by system", sources.svg(q_chart)))
    tables = [
        Table(
            columns=["Night", "System", "Status", "Deliveries", "Rows", "Records loaded",
                     "Rows quarantined"],
            rows=[
                [_iso(r["business_date"]), r["system"], r["status"], r["deliveries"], r["rows"],
                 r["records_loaded"], r["rows_quarantined"]]
                for r in nights
            ],
            numeric={3, 4, 5, 6},
            caption="Deliveries per night and system",
            name="deliveries-by-night",
            scroll=True,
        ),
        Table(
            columns=["Night", "System", "File", "Why rejected"],
            rows=[[_iso(r["business_date"]), r["system"], r["file"], r["error"]] for r in rejected],
            wrap={3},
            caption="Rejected deliveries" if rejected else "Rejected deliveries: none",
            name="rejected-deliveries",
        ),
        Table(
            columns=["Night", "System", "Error", "Rows"],
            rows=[
                [_iso(r["business_date"]), r["system"], r["error"], r["rows"]] for r in quarantine
            ],
            numeric={3},
            wrap={2},
            caption="Quarantined rows by error" if quarantine else "Quarantined rows: none",
            name="quarantine",
            scroll=True,
        ),
    ]  # fmt: skip
    return Section(
        key="deliveries",
        title="Deliveries per night and system",
        intro=(
            "Every delivery the job judged: loaded, rejected whole (with why) or a duplicate "
            "of one already loaded; and the rows quarantined from loaded deliveries."
        ),
        figures=figures,
        tables=tables,
    )


def _rule_changes(sources: _Sources) -> Section:
    by_run = sources.rows("changes_by_run")
    detail = sources.rows("rule_changes")
    figures = []
    if by_run:
        values = [
            {"run": f"{row['run_seq']}: {_iso(row['as_of'])}", "direction": row["direction"],
             "records": row["records"]}
            for row in by_run
        ]  # fmt: skip
        chart = report_charts.changes_by_run_chart(values)
        figures.append(Figure("Records changed by each published run", sources.svg(chart)))
    if detail:
        values = [
            {"change": f"{row['run_seq']}: {row['rules_version']}", "system": row["source_system"],
             "direction": row["direction"], "records": row["records"]}
            for row in detail
        ]  # fmt: skip
        chart = report_charts.rule_changes_chart(values)
        figures.append(Figure("What each rule change did, by system", sources.svg(chart)))
    tables = [
        Table(
            columns=["Run", "Business date", "Rules before", "Rules after", "Direction",
                     "System", "Reason", "Records"],
            rows=[
                [r["run_seq"], _iso(r["as_of"]), r["previous_rules_version"], r["rules_version"],
                 r["direction"], r["source_system"], r["reason"], r["records"]]
                for r in detail
            ],
            numeric={7},
            caption=(
                "Rule changes: records changed by direction, system and reason (counted at "
                "the run that installed the rules, so that night's deliveries are included)"
                if detail else "Rule changes: none recorded"
            ),
            name="rule-changes",
        ),
        Table(
            columns=["Run", "Business date", "Rules version", "Direction", "Records"],
            rows=[
                [r["run_seq"], _iso(r["as_of"]), r["rules_version"], r["direction"], r["records"]]
                for r in by_run
            ],
            numeric={4},
            caption="Records changed by each published run",
            name="changes-by-run",
        ),
    ]  # fmt: skip
    return Section(
        key="rule-changes",
        title="What each rule change did",
        intro=(
            "Records whose visibility or reason changed, per published run; a run whose "
            "rules version differs from the previous run's installed a rule change."
        ),
        figures=figures,
        tables=tables,
        empty=None if by_run else "No changes recorded.",
    )


# --- rendering --------------------------------------------------------------


def render(report: Report) -> str:
    """The report as one self-contained HTML file."""
    return environment().get_template("report.html.j2").render(report=report)


def write_report(analytics: Path, out: Path) -> None:
    """Build and write the report (atomically; readable by the analysts' group only)."""
    write_atomically(out, render(build_report(analytics)), mode=0o640)
