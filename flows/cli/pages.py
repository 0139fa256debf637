"""`jvn page` and `jvn report`: the pages people read (a command group of flows/cli/).

`jvn page` renders the citizens' "what is shown in 1177 Journalen" page from
the rule file alone (with `--compare OLD_RULES`, what a proposed rule change
alters is marked); `jvn report` renders the analysts' report from
`analytics.duckdb` alone. Exit 0 written; 2 bad arguments, an unusable rule
file or database, with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.common import config
from flows.common.words import plural

if TYPE_CHECKING:
    from flows.pages.report_process import EarlyReport

EXIT_OK = 0


def add_commands(commands: Any, storage: Callable[..., None]) -> None:
    """Add `page` and `report` to the `jvn` sub-command parser."""
    from flows.cli.arguments import business_date
    from transforms.rules import default_rules_path

    page = commands.add_parser(
        "page",
        help="render the public page on what 1177 Journalen shows, from the rule file",
        description=(
            "Render the citizens' page (Swedish) from the rule file alone: HTML, or Markdown "
            "when --out ends in .md. With --compare OLD_RULES, mark what the rule file "
            "alters against OLD_RULES."
        ),
    )
    page.add_argument("--rules", type=Path, default=default_rules_path())
    page.add_argument("--out", type=Path, default=config.DEFAULT_PAGE, help="FILE.html or FILE.md")
    page.add_argument("--compare", type=Path, default=None, metavar="OLD_RULES")
    page.add_argument(
        "--as-of",
        type=business_date,
        default=None,
        help="the date the page describes, for the unsigned delay in force (default: today)",
    )
    report = commands.add_parser(
        "report",
        help="render the analysts' report from analytics.duckdb",
        description="Render the analysts' report (one HTML file) from the analysts' database.",
    )
    report.add_argument("--analytics", type=Path, default=config.DEFAULT_ANALYTICS)
    report.add_argument(
        "--out", type=Path, default=None, help="default: beside the database, analytics.html"
    )


def run(arguments: argparse.Namespace) -> int | None:
    """Run `page` or `report`; None for any other command."""
    if arguments.command == "page":
        return _page(arguments)
    if arguments.command == "report":
        return _report(arguments)
    return None


def _page(arguments: argparse.Namespace) -> int:
    from flows.common.config import ConfigError
    from flows.pages import write_atomically
    from flows.pages.public import PageError, build_page, render
    from transforms.rules import RuleFileError, load_rules

    if arguments.out.suffix not in (".html", ".md"):
        raise ConfigError(f"--out {arguments.out}: give a .html or .md file")
    try:
        rules = load_rules(arguments.rules)
        old = load_rules(arguments.compare) if arguments.compare is not None else None
        if arguments.as_of is None:
            from flows.common.config import today_in_stockholm

            as_of = today_in_stockholm()
        else:
            as_of = arguments.as_of
        page = build_page(rules, as_of=as_of, old=old)
    except (RuleFileError, PageError) as error:
        raise ConfigError(str(error)) from None
    for warning in page.warnings:
        print(f"jvn page: {warning}", file=sys.stderr)
    text = render(page, "md") if arguments.out.suffix == ".md" else render(page, "html")
    write_atomically(arguments.out, text)
    changes = f", {plural(len(page.changes), 'change')} marked" if page.compare else ""
    print(f"wrote {arguments.out}{changes}")
    return EXIT_OK


def _report(arguments: argparse.Namespace) -> int:
    from flows.common.config import ConfigError
    from flows.common.paths import default_report_path
    from flows.pages.report import ReportError, write_report

    out = arguments.out or default_report_path(arguments.analytics)
    try:
        write_report(arguments.analytics, out)
    except ReportError as error:
        raise ConfigError(str(error)) from None
    print(f"wrote {out}")
    return EXIT_OK


def write_report_after_run(report: EarlyReport) -> Path | None:
    """`jvn run`'s report beside the analysts' database; a failure is told, never fatal.

    The run is published by then: the report is a convenience on top, so its
    failure must not turn a published run into a failed one.
    """
    from flows.pages.report_process import ReportNotWritten

    try:
        return report.write()
    except Exception as error:
        # A library error may quote a value: name only its type.
        cause = error.type_name if isinstance(error, ReportNotWritten) else type(error).__name__
        print(
            f"jvn: the run is published, but its report {report.out} could not be written "
            f"({cause}); run `jvn report` to retry",
            file=sys.stderr,
        )
        return None
