"""Pages people read: the public "what is shown in 1177 Journalen" page and the analysts' report.

Both are single self-contained HTML files (styles inline, charts rendered to
SVG at build time), so they open with no network, on a phone, and print.
`public` renders the citizens' page from the rule file alone; `report` renders
the analysts' report from `analytics.duckdb` alone. Templates are Jinja2 files
in `templates/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"


def environment() -> jinja2.Environment:
    """The Jinja2 environment: HTML escaped everywhere, Markdown templates as written."""
    # Imported here: `jvn run` imports this package for its report process, not for pages.
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write beside the target and rename over it: a reader never sees half a page."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.writing")
    temporary.write_text(text, encoding="utf-8")
    os.chmod(temporary, mode)
    os.replace(temporary, path)
