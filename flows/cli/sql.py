"""`jvn sql`: the analysts' way into `analytics.duckdb`, read-only, with nothing to install.

`jvn sql QUERY` (or `-c QUERY`) runs the statements and prints each result as a
table (`--csv`: as CSV); without a query, a prompt reads statements ending in
`;` (`.tables` lists what there is, `.quit` or end of input leaves).

The connection is read-only and cannot reach other files (no ATTACH, no COPY,
no reading CSV or Parquet): the shell opens the analysts' database and nothing
else. The warehouse is refused by name and by its tables, because it holds
personnummer and journal text the analysts may not read.

Exit status: 0 every statement ran; 1 a statement failed (one line on stderr);
2 no such database, or it is the warehouse (one line on stderr).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb

from flows.cli.arguments import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from flows.common.config import DEFAULT_ANALYTICS, DEFAULT_WAREHOUSE
from flows.common.errors import WarehouseBusy
from flows.common.warehouse import open_waiting

WAREHOUSE_ONLY_TABLES = ("record_versions", "warehouse_identity", "decision_history")
"""Tables the warehouse has and the analysts' database never has."""

PROMPT, CONTINUATION = "jvn sql> ", "    ...> "


def add_commands(commands: Any, storage: Callable[..., None]) -> None:
    """Add `sql` to the `jvn` sub-command parser."""
    sql = commands.add_parser(
        "sql",
        help="query the analysts' database (read-only): a query, or a prompt",
        description=(
            "Run SQL on the analysts' database, read-only. With QUERY (or -c QUERY): run it "
            "and print each result as a table (--csv: as CSV). Without: a prompt reading "
            "statements that end in ';' (.tables lists tables and views, .quit leaves). "
            "The warehouse is refused."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sql.add_argument("query", nargs="?", default=None, metavar="QUERY", help="SQL to run")
    sql.add_argument(
        "-c", "--command", dest="command_text", default=None, metavar="QUERY", help="as QUERY"
    )
    sql.add_argument("--analytics", type=Path, default=DEFAULT_ANALYTICS)
    sql.add_argument("--csv", action="store_true", help="print results as CSV")


def run(arguments: argparse.Namespace) -> int | None:
    """Run `sql`; None for any other command."""
    if arguments.command != "sql":
        return None
    if arguments.query is not None and arguments.command_text is not None:
        return _refuse("give the query once: as QUERY or with -c, not both")
    query = arguments.query if arguments.query is not None else arguments.command_text
    printer = _print_csv if arguments.csv else _print_table
    try:
        connection = _open(arguments.analytics)
    except _Refused as refusal:
        return _refuse(str(refusal))
    with connection:
        if query is not None:
            return _run_statements(connection, query, printer)
        return _prompt(connection, printer, sys.stdin)


class _Refused(Exception):
    """The file is not an analysts' database this command may open."""


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.is_file():
        raise _Refused(f"no analysts' database at {path} (run `jvn run` first, or --analytics)")
    if path.name == DEFAULT_WAREHOUSE.name or _same_file(path, DEFAULT_WAREHOUSE):
        raise _Refused(f"{path} is the warehouse; `jvn sql` opens the analysts' database only")
    try:
        # A nightly run holds the file for a moment while it commits its patch.
        connection = open_waiting(
            path,
            read_only=True,
            config={"enable_external_access": False},
            what="the analysts' database",
        )
    except WarehouseBusy as error:
        raise _Refused(str(error)) from None
    except duckdb.Error as error:
        raise _Refused(f"cannot open {path}: {_one_line(error)}") from None
    tables = {
        str(row[0])
        for row in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    if tables.intersection(WAREHOUSE_ONLY_TABLES):
        connection.close()
        raise _Refused(f"{path} is a warehouse; `jvn sql` opens the analysts' database only")
    # Nothing a statement runs may switch external access back on.
    connection.execute("SET lock_configuration = true")
    return connection


def _same_file(path: Path, other: Path) -> bool:
    try:
        return other.exists() and path.samefile(other)
    except OSError:
        return False


def _refuse(message: str) -> int:
    print(f"jvn sql: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _one_line(error: Exception) -> str:
    """DuckDB's message without the quoted statement and caret under it, on one line."""
    text = str(error).split("\nLINE ")[0]
    return " ".join(text.split())


Printer = Callable[[Sequence[str], list[tuple[Any, ...]]], None]


def _run_statements(connection: duckdb.DuckDBPyConnection, text: str, printer: Printer) -> int:
    try:
        statements = connection.extract_statements(text)
    except duckdb.Error as error:
        print(f"jvn sql: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    for statement in statements:
        try:
            cursor = connection.execute(statement)
            columns = [column[0] for column in cursor.description or ()]
            rows = cursor.fetchall() if columns else []
        except duckdb.Error as error:
            print(f"jvn sql: {_one_line(error)}", file=sys.stderr)
            return EXIT_FAILED
        if columns:
            printer(columns, rows)
    return EXIT_OK


def _print_table(columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max([len(name), *(len(row[index]) for row in cells)]) for index, name in enumerate(columns)
    ]
    numeric = [
        bool(rows) and all(_is_number(row[index]) for row in rows if row[index] is not None)
        for index in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return " | ".join(padded).rstrip()

    print(line(columns))
    print("-+-".join("-" * width for width in widths))
    for row in cells:
        print(line(row))
    print(f"({len(rows)} {'row' if len(rows) == 1 else 'rows'})")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _print_csv(columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if value is None else value for value in row] for row in rows)


def _prompt(connection: duckdb.DuckDBPyConnection, printer: Printer, source: TextIO) -> int:
    """Read statements ending in `;` and run each; dot-commands on a line of their own."""
    interactive = source.isatty()
    if interactive:
        print(
            "jvn sql: the analysts' database, read-only. End statements with ';'; "
            ".tables lists tables and views, .quit leaves."
        )
    status = EXIT_OK
    pending: list[str] = []
    while True:
        try:
            line = _read_line(source, CONTINUATION if pending else PROMPT, interactive)
        except KeyboardInterrupt:
            print()
            pending.clear()
            continue
        if line is None:
            break
        stripped = line.strip()
        if not pending and stripped.startswith("."):
            if stripped in (".quit", ".exit", ".q"):
                break
            if stripped == ".tables":
                _run_statements(connection, "SHOW TABLES", printer)
            else:
                print(
                    f"jvn sql: unknown command {stripped.split()[0]} (.tables, .quit)",
                    file=sys.stderr,
                )
                status = EXIT_FAILED
            continue
        if stripped or pending:
            pending.append(line)
        if stripped.endswith(";"):
            if _run_statements(connection, "".join(pending), printer) != EXIT_OK:
                status = EXIT_FAILED
            pending.clear()
    # A last statement without its ';' at the end of input still runs.
    if "".join(pending).strip() and _run_statements(connection, "".join(pending), printer):
        status = EXIT_FAILED
    # At a person's prompt an error was already shown and corrected; piped input reports it.
    return EXIT_OK if interactive else status


def _read_line(source: TextIO, prompt: str, interactive: bool) -> str | None:
    """One line, with line editing and history at a terminal; None at end of input."""
    if not interactive:
        return source.readline() or None
    import readline  # noqa: F401  (loading it gives input() editing and history)

    try:
        return input(prompt) + "\n"
    except EOFError:
        print()
        return None
