"""The inbox: which delivery folders exist, and whether their control files hold.

`<inbox>/<feed>/<YYYY-MM-DD>/<data file> + _control.json`. A folder whose name
is not a known feed or not a date is reported and left alone; a delivery dated
after the run's date is listed as left for later. A control file is checked
before a byte of the data file is parsed. The sender's files are hostile input:
whatever they hold (nesting, size, types, a FIFO, no read permission), a bad
delivery becomes a `DeliveryRejected` with a reason, never an error of the run.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from transforms.canonical import FEEDS
from transforms.sources.base import SourceFormat

CONTROL_FILE = "_control.json"
_CONTROL_KEYS = frozenset({"system", "business_date", "file", "rows", "sha256"})
_DATE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_CONTROL_BYTES = 64 << 10
"""A control file is five short fields; anything larger is not read into memory."""


class DeliveryRejected(Exception):
    """A delivery breaks the contract and is rejected whole. The message is safe to log."""


@dataclass(frozen=True)
class DeliveryFolder:
    """One delivery: a feed's folder for one business date."""

    feed: str
    business_date: date
    path: Path
    size_bytes: int | None = field(default=None, compare=False)
    """The regular files' bytes when the inbox was listed; None: not known (not
    listed, or the folder could not be read: preparing it says why)."""

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
    later: list[DeliveryFolder] = field(default_factory=list)
    """Deliveries dated after the run's date: not loaded now, and not counted as seen."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(folder, reason) for system or delivery folders that cannot even be listed."""


def discover(inbox: Path, as_of: date) -> InboxListing:
    """Delivery folders with business date <= as_of, oldest first, feeds in load order.

    Later ones are listed apart. A folder that cannot be listed or examined
    (no permission, an I/O error) is reported as unreadable, and the rest of
    the inbox is still listed.
    """
    deliveries: list[DeliveryFolder] = []
    later: list[DeliveryFolder] = []
    ignored: list[str] = []
    unreadable: list[tuple[str, str]] = []
    if not inbox.is_dir():
        return InboxListing(deliveries=[], ignored=[f"inbox {inbox} does not exist"])
    for feed_dir in sorted(inbox.iterdir()):
        if feed_dir.name.startswith("."):
            continue
        try:
            is_feed = feed_dir.name in FEEDS and _is_real_dir(feed_dir)
            date_dirs = sorted(feed_dir.iterdir()) if is_feed else []
        except OSError as error:
            unreadable.append((_printable(feed_dir.name), f"folder {os_error_name(error)}"))
            continue
        if not is_feed:
            ignored.append(f"{_printable(feed_dir.name)}: not a known source system folder")
            continue
        for date_dir in date_dirs:
            name = f"{feed_dir.name}/{_printable(date_dir.name)}"
            if date_dir.name.startswith("."):
                continue
            business_date = _folder_date(date_dir.name)
            try:
                is_delivery = business_date is not None and _is_real_dir(date_dir)
            except OSError as error:
                unreadable.append((name, f"folder {os_error_name(error)}"))
                continue
            if business_date is None or not is_delivery:
                ignored.append(f"{name}: not a delivery folder named YYYY-MM-DD")
                continue
            if business_date <= as_of:
                deliveries.append(
                    DeliveryFolder(feed_dir.name, business_date, date_dir, _folder_bytes(date_dir))
                )
            else:
                later.append(DeliveryFolder(feed_dir.name, business_date, date_dir))
    deliveries.sort(key=lambda d: (d.business_date, FEEDS.index(d.feed)))
    later.sort(key=lambda d: (d.business_date, FEEDS.index(d.feed)))
    return InboxListing(deliveries=deliveries, ignored=ignored, later=later, unreadable=unreadable)


def _folder_bytes(folder: Path) -> int | None:
    """The bytes of the regular files in `folder` (links and the rest not followed);
    None when it cannot be listed: only a size hint, the prepare step checks the files."""
    try:
        with os.scandir(folder) as entries:
            return sum(
                entry.stat(follow_symlinks=False).st_size
                for entry in entries
                if entry.is_file(follow_symlinks=False)
            )
    except OSError:
        return None


@dataclass(frozen=True)
class FileStamp:
    """A delivered data file as the file system describes it, tied to the bytes hashed.

    Taken around a hash of the file (the same before and after), and kept in the
    warehouse when the delivery is loaded: a later run that finds the folder's
    file with the same size and modification time, and a control file naming the
    same digest, takes the delivery as loaded without reading its bytes again.
    """

    folder: str
    """The delivery folder, as operators name it: `melior/2026-11-25`."""
    sha256: str
    size: int
    mtime_ns: int


def file_stat(path: Path) -> tuple[int, int] | None:
    """A regular file's (size, modification time in ns), its link not followed; None
    for anything else or on any error: the caller then reads the bytes."""
    try:
        status = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return status.st_size, status.st_mtime_ns


def _is_real_dir(path: Path) -> bool:
    """A directory, not a link to one. Raises OSError when the entry cannot be examined."""
    return stat.S_ISDIR(path.lstat().st_mode)


def os_error_name(error: OSError) -> str:
    """`cannot be read (EACCES: Permission denied)`: what an OSError says, without its path."""
    code = errno.errorcode.get(error.errno or 0)
    if code is None:
        return f"cannot be read ({type(error).__name__})"
    return f"cannot be read ({code}: {os.strerror(error.errno or 0)})"


def unreadable_reason(error: OSError, delivery: DeliveryFolder, data_file: str) -> str:
    """Why a delivery could not be read, naming only the contract's own file names."""
    named = error.filename
    filename = Path(os.fsdecode(named)) if isinstance(named, (str, bytes)) and named else None
    if (
        filename is not None
        and filename.parent == delivery.path
        and filename.name
        in (
            CONTROL_FILE,
            data_file,
        )
    ):
        return f"{filename.name} {os_error_name(error)}"
    return f"delivery folder {os_error_name(error)}"


def read_control(delivery: DeliveryFolder, fmt: SourceFormat) -> ControlFile:
    """Parse and check a delivery's control file against its folder and the contract."""
    control_path = delivery.path / CONTROL_FILE
    # Listing the folder first tells "cannot read the folder" from a missing file.
    os.listdir(delivery.path)
    document = _parse_control(_read_control_bytes(control_path))
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
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
        raise DeliveryRejected("control file sha256 is not 64 hex digits")
    data_path = delivery.path / fmt.file_name
    try:
        data_mode: int | None = data_path.lstat().st_mode
    except FileNotFoundError:
        data_mode = None
    if data_mode is None or stat.S_ISLNK(data_mode):
        raise DeliveryRejected(f"data file {fmt.file_name} is missing")
    if not stat.S_ISREG(data_mode):
        raise DeliveryRejected(f"data file {fmt.file_name} is not a regular file")
    return ControlFile(
        system=system,
        business_date=delivery.business_date,
        file=fmt.file_name,
        rows=rows,
        sha256=sha256.lower(),
    )


def _read_control_bytes(control_path: Path) -> bytes:
    """The control file's bytes, at most MAX_CONTROL_BYTES, from a regular file only.

    Opened without following a link and without blocking (a FIFO would wait for
    a writer forever); checked on the open descriptor, so it cannot be swapped.
    OSError (no permission, an I/O error) is left to the caller to name.
    """
    try:
        # A symbolic link is not even opened: it could point out of the inbox.
        if stat.S_ISLNK(control_path.lstat().st_mode):
            raise FileNotFoundError
        descriptor = os.open(control_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DeliveryRejected("control file _control.json is missing") from None
    except OSError as error:
        if error.errno == errno.ELOOP:  # made a link since: still never followed
            raise DeliveryRejected("control file _control.json is missing") from None
        raise
    try:
        regular = stat.S_ISREG(os.fstat(descriptor).st_mode)
    except BaseException:
        os.close(descriptor)
        raise
    if not regular:
        os.close(descriptor)
        raise DeliveryRejected("control file _control.json is not a regular file")
    with os.fdopen(descriptor, "rb") as handle:
        content = handle.read(MAX_CONTROL_BYTES + 1)
    if len(content) > MAX_CONTROL_BYTES:
        raise DeliveryRejected(f"control file is larger than {MAX_CONTROL_BYTES // 1024} KiB")
    return content


def _parse_control(content: bytes) -> object:
    """JSON, strictly: any way the sender's bytes fail to be it is a rejection.

    Python's parser raises more than JSONDecodeError on hostile input: RecursionError
    on deep nesting, ValueError on an integer of more than 4,300 digits. Duplicate
    keys are refused rather than resolved by guessing which one the sender meant.
    """
    try:
        return json.loads(
            content.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
        )
    except _DuplicateKey:
        raise DeliveryRejected("control file repeats a key") from None
    except RecursionError:
        raise DeliveryRejected("control file is nested too deeply to be read") from None
    except (UnicodeDecodeError, ValueError, OverflowError, MemoryError):
        raise DeliveryRejected("control file is not readable JSON") from None


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKey
    return document


def _no_constant(name: str) -> object:
    """`NaN`, `Infinity`: not JSON, though Python's parser would take them."""
    raise ValueError("not JSON")


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
