"""The run summary in the Prefect UI: as markdown, the run's artifact
`jvn-run-summary` (`show_summary`), and the flow run's final state's name
(`final_state`).

It shows what `jvn run` prints on the terminal (flows/audit/reports.py
`print_run_summary`): counts per reason, deliveries rejected and left for later,
units exempt by name only, unknown codes, changes, warnings. The summary holds
no personal data, only counts, codes, HSA-ids, unit names, folder names and
safe error messages.

Unit names, codes and folder names come from senders: every value is written
with control characters shown as `\\x1b`-style escapes and markdown's own
characters escaped, so none can end a table row, forge one, or become a link
or HTML in the UI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, State

from flows.common.errors import safe_message
from flows.common.words import printable

RUN_SUMMARY_KEY = "jvn-run-summary"
"""The artifact's key: every run's summary is a new version of the same artifact."""

# The backslash too, so that the escapes written above render as typed.
_MARKDOWN = {
    "\\": "\\\\",
    "`": "\\`",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
    "~": "\\~",
    "|": "\\|",
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
}


def one_line(value: object) -> str:
    """`value` with its control characters escaped (plain text, e.g. a state message)."""
    return printable(value)


def markdown_text(value: object) -> str:
    """`value` as inert markdown text on one line (safe in a table cell)."""
    return "".join(_MARKDOWN.get(ch, ch) for ch in one_line(value))


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if name == "records" else "---" for name in header) + "|",
    ]
    lines += ["| " + " | ".join(markdown_text(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _section(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [f"### {title}", "", *_table(header, rows)] if rows else []


def run_summary_markdown(summary: dict[str, Any]) -> str:
    """The summary of one run (`RunSummary.as_dict()`) as markdown tables."""
    records, visible = summary.get("records", 0), summary.get("visible", 0)
    share = f"{100 * visible / records:.1f} %" if records else "-"
    rejected = summary.get("deliveries_rejected", [])
    overview = [
        ("status", summary.get("status", "")),
        ("snapshot", summary.get("snapshot") or "-"),
        ("plan", summary.get("plan") or "-"),
        (
            "deliveries",
            f"{summary.get('deliveries_loaded', 0)} loaded, "
            f"{summary.get('deliveries_already_loaded', 0)} already loaded, "
            f"{len(rejected)} rejected, {summary.get('deliveries_duplicate', 0)} duplicate, "
            f"{len(summary.get('deliveries_later', []))} left for later",
        ),
        (
            "rows",
            f"{summary.get('records_loaded', 0)} loaded, "
            f"{summary.get('rows_quarantined', 0)} quarantined "
            f"({summary.get('rows_quarantined_without_id', 0)} without a record id)",
        ),
        ("records", f"{records}, visible {visible} ({share})"),
    ]
    if summary.get("error"):
        overview.append(("error", summary["error"]))
    changes = summary.get("changes") or {}
    if changes:
        overview.append(("changes", ", ".join(f"{k} {v}" for k, v in sorted(changes.items()))))
    reasons = sorted(summary.get("reasons", {}).items(), key=lambda item: (-item[1], item[0]))
    lines = [
        f"## jvn run {markdown_text(summary.get('run_id', ''))}",
        "",
        f"as of {markdown_text(summary.get('as_of', ''))}, "
        f"rules {markdown_text(summary.get('rules_version', ''))}",
        "",
        *_table(("", ""), overview),
        *_section("Records by reason", ("reason", "records"), reasons),
        *_section(
            "Rejected deliveries",
            ("delivery", "error"),
            [(r["delivery"], r["error"]) for r in rejected],
        ),
        *_section(
            f"Left for later (dated after {markdown_text(summary.get('as_of', ''))})",
            ("delivery",),
            [(label,) for label in summary.get("deliveries_later", [])],
        ),
        *_section(
            "EXEMPT BY NAME ONLY: add the unit's HSA-id to the rule file",
            ("HSA-id", "unit name", "records"),
            [
                (u["care_unit_hsa_id"], u["care_unit_name"], u["records"])
                for u in summary.get("units_exempt_by_name_only", [])
            ],
        ),
        *_section(
            "UNKNOWN CODE: hidden as 'other'",
            ("system", "code", "records"),
            [
                (c["source_system"], c["source_code"], c["records"])
                for c in summary.get("unknown_codes", [])
            ],
        ),
        *_section(
            "Ignored folders", ("folder",), [(f,) for f in summary.get("ignored_folders", [])]
        ),
        *_section("Warnings", ("warning",), [(w,) for w in summary.get("warnings", [])]),
    ]
    return "\n".join(lines)


def rejections_message(summary: dict[str, Any]) -> str | None:
    """`2 deliveries rejected: t4/2026-11-24, …` for the run's final state; None if none."""
    rejected = [r["delivery"] for r in summary.get("deliveries_rejected", [])]
    if not rejected:
        return None
    noun = "delivery" if len(rejected) == 1 else "deliveries"
    return f"{len(rejected)} {noun} rejected: " + ", ".join(map(one_line, rejected))


def show_summary(summary: dict[str, Any]) -> None:
    """The run summary on the run's page in Prefect's UI (artifact `jvn-run-summary`),
    as `jvn run` prints it. Best effort: the run's outcome never depends on it."""
    try:
        create_markdown_artifact(
            markdown=run_summary_markdown(summary),
            key=RUN_SUMMARY_KEY,
            description=f"jvn run {summary['run_id']} as of {summary['as_of']}",
        )
    except Exception as error:
        get_run_logger().warning(
            "the run summary was not published to Prefect: %s", safe_message(error)
        )


def final_state(summary: dict[str, Any]) -> State[dict[str, Any]]:
    """Completed, carrying the summary; named `Published with rejections` when
    deliveries were rejected (exit 3), so the UI does not show a plain green run."""
    message = rejections_message(summary)
    if message is None:
        return Completed(data=summary)
    return Completed(data=summary, name="Published with rejections", message=message)
