"""Open a page in Debian's headless chromium, network off, and report what a person sees.

Playwright's Python package drives the system's `/usr/bin/chromium` over the
DevTools protocol (it never downloads a browser here). Every request that is
not for the page's own file is refused and recorded, so a page that would
fetch a script, a font or a chart from the network fails its test instead of
silently rendering without it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    """The system's chromium, as `.ci/run` installs it."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Visit:
    """What opening one page gave: its text, console errors, refused requests."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    refused_requests: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The text a reader sees (rendered, not the source)."""
        return str(self.page.inner_text("body"))

    def evaluate(self, script: str) -> Any:
        return self.page.evaluate(script)

    def screenshot(self, path: Path, *, full_page: bool = True) -> None:
        self.page.screenshot(path=str(path), full_page=full_page)


class Browser:
    """One chromium with a fresh profile for a test session."""

    def __init__(self, executable: str):
        from playwright.sync_api import sync_playwright

        self._profile = Path(tempfile.mkdtemp(prefix="jvn-chromium-"))
        self._playwright = sync_playwright().start()
        self._context = self._playwright.chromium.launch_persistent_context(
            str(self._profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            offline=True,
            viewport=DESKTOP,
        )

    @contextmanager
    def open(self, path: Path, viewport: dict[str, int] = DESKTOP) -> Iterator[Visit]:
        """Load a local HTML file; requests for anything but that file are refused."""
        page = self._context.new_page()
        page.set_viewport_size(viewport)
        visit = Visit(page)
        own_url = path.resolve().as_uri()

        def route(route: Any) -> None:
            if route.request.url == own_url:
                route.continue_()
            else:
                visit.refused_requests.append(route.request.url)
                route.abort()

        page.route("**/*", route)
        page.on(
            "console",
            lambda message: (
                visit.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
        page.goto(own_url, wait_until="load")
        try:
            yield visit
        finally:
            page.close()

    def close(self) -> None:
        self._context.close()
        self._playwright.stop()
        shutil.rmtree(self._profile, ignore_errors=True)


CHARTS_DRAWN = """
() => [...document.querySelectorAll('figure.chart')].map(figure => {
  const svg = figure.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = svg ? [...svg.querySelectorAll(
      'g.role-mark path, g.role-mark line, g.role-mark rect, g.role-mark circle')]
    .filter(mark => { const b = mark.getBBox(); return b.width > 0 || b.height > 0; }).length : 0;
  return {title: figure.getAttribute('aria-label'), width: box.width, height: box.height, marks};
})
"""
"""For each chart: its drawn size and how many data marks have a non-empty box."""
