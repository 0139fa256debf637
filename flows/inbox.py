"""The inbox: which delivery folders exist, and whether their control files hold.

`<inbox>/<feed>/<YYYY-MM-DD>/<data file> + _control.json`. A folder whose name
is not a known feed or not a date is reported and left alone. A control file is
checked before a byte of the data file is parsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.canonical import FEEDS
from transforms.sources.base import SourceFormat

CONTROL_FILE = "_control.json"
_CONTROL_KEYS = frozenset({"system", "business_date", "file", "rows", "sha256"})
_DATE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DeliveryRejected(Exception):
    """A delivery breaks the contract and is rejected whole. The message is safe to log."""


@dataclass(frozen=True)
class DeliveryFolder:
    """One delivery: a feed's folder for one business date."""

    feed: str
    business_date: date
    path: Path

    @property
    def label(self) -> str:
        """How operators name it: `melior/2026-11-25`."""
        return f"{self.feed}/{self.business_date.isoformat()}"


@dataclass(frozen=True)
class ControlFile:
    """A control file that passed every check that does not need the data parsed."""

    system: str
    business_date: date
    file: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class InboxListing:
    """The deliveries in scope, oldest first, and what was found that is no delivery."""

    deliveries: list[DeliveryFolder]
    ignored: list[str]


def discover(inbox: Path, as_of: date) -> InboxListing:
    """Delivery folders with business date <= as_of, oldest first, feeds in load order."""
    deliveries: list[DeliveryFolder] = []
    ignored: list[str] = []
    if not inbox.is_dir():
        return InboxListing(deliveries=[], ignored=[f"inbox {inbox} does not exist"])
    for feed_dir in sorted(inbox.iterdir()):
        if feed_dir.name.startswith("."):
            continue
        if feed_dir.name not in FEEDS or not feed_dir.is_dir() or feed_dir.is_symlink():
            ignored.append(f"{_printable(feed_dir.name)}: not a known source system folder")
            continue
        for date_dir in sorted(feed_dir.iterdir()):
            name = f"{feed_dir.name}/{_printable(date_dir.name)}"
            if date_dir.name.startswith("."):
                continue
            business_date = _folder_date(date_dir.name)
            if business_date is None or not date_dir.is_dir() or date_dir.is_symlink():
                ignored.append(f"{name}: not a delivery folder named YYYY-MM-DD")
                continue
            if business_date <= as_of:
                deliveries.append(DeliveryFolder(feed_dir.name, business_date, date_dir))
    deliveries.sort(key=lambda d: (d.business_date, FEEDS.index(d.feed)))
    return InboxListing(deliveries=deliveries, ignored=ignored)


def read_control(delivery: DeliveryFolder, fmt: SourceFormat) -> ControlFile:
    """Parse and check a delivery's control file against its folder and the contract."""
    control_path = delivery.path / CONTROL_FILE
    if not control_path.is_file() or control_path.is_symlink():
        raise DeliveryRejected("control file _control.json is missing")
    try:
        document = json.loads(control_path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise DeliveryRejected("control file is not readable JSON") from None
    if not isinstance(document, dict):
        raise DeliveryRejected("control file is not a JSON object")
    keys = set(document)
    if keys != _CONTROL_KEYS:
        missing = sorted(_CONTROL_KEYS - keys)
        # The sender's own key names are not repeated: they could hold anything.
        unexpected = len(keys - _CONTROL_KEYS)
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"{unexpected} unexpected key(s)"] if unexpected else []
        )
        raise DeliveryRejected("control file keys do not match the contract: " + "; ".join(parts))
    system, business_date = document["system"], document["business_date"]
    if system != delivery.feed:
        raise DeliveryRejected("control file names another system than its folder")
    if not isinstance(business_date, str) or _folder_date(business_date) != delivery.business_date:
        raise DeliveryRejected("control file names another business date than its folder")
    if document["file"] != fmt.file_name:
        # Also what stops a control file from pointing outside its folder (`../../x`).
        raise DeliveryRejected(f"control file names another data file than {fmt.file_name}")
    rows = document["rows"]
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise DeliveryRejected("control file rows is not a non-negative integer")
    sha256 = document["sha256"]
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise DeliveryRejected("control file sha256 is not 64 hex digits")
    data_path = delivery.path / fmt.file_name
    if not data_path.is_file() or data_path.is_symlink():
        raise DeliveryRejected(f"data file {fmt.file_name} is missing")
    return ControlFile(
        system=system,
        business_date=delivery.business_date,
        file=fmt.file_name,
        rows=rows,
        sha256=sha256.lower(),
    )


def _folder_date(name: str) -> date | None:
    if not _DATE_NAME.match(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _printable(name: str) -> str:
    """A folder name made safe for one log line (hostile names may hold anything)."""
    return "".join(ch if ch.isprintable() else "?" for ch in name)[:80]
