"""A delivered file's bytes, read once: its checksum, its encoding, its lines.

One streaming pass over the data file (`read_delivered`) hashes it, checks its
declared encoding and measures its lines: DuckDB reads only UTF-8 and Latin-1,
so UTF-8 files are validated and used in place, and a Windows-1252 file is
transcoded to UTF-8 in the work folder on the way. For a CSV file the pass also
counts its line-break bytes (`LineBreaks`), which lets the reader number rows
DuckDB rejects without a second pass over the file. A file in another encoding
than its contract says is rejected whole, naming the first bad byte's offset.
Reading the bytes once matters at scale: each pass over a large delivery costs
as much as the hashing itself.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import os
import stat
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from flows.common.errors import DeliveryFileError, LocalFailure
from transforms.sources.base import SourceFormat

CHUNK = 1 << 20
_UTF8_BOM = codecs.BOM_UTF8
MAX_LINE_BYTES = 8 << 20
"""DuckDB's limit on one row (`max_line_size`): a longer row is a rejected row."""
UNCOUNTABLE_LINE_BYTES = 64 << 20
"""DuckDB rejects a line over `MAX_LINE_BYTES` as a bad row, but silently drops one
longer than its read buffer (16 x that, 128 MiB): the row would go uncounted. A
line over this (half the buffer, a margin) rejects the delivery with that reason."""
_HASH_ON_A_THREAD = 64 << 10
"""hashlib lets go of the GIL for large buffers: a chunk this size or more is hashed
on a thread while this one checks the encoding of it (measured: the pass over a
183 MB file took 0.45 s instead of 0.93 s one after the other)."""


def cannot_read(error: OSError) -> str:
    code = errno.errorcode.get(error.errno or 0)
    cause = f"{code}: {os.strerror(error.errno or 0)}" if code else type(error).__name__
    return f"cannot be read ({cause})"


def long_line_reason(line: int) -> str:
    """Why a delivery with a line too long to be counted is rejected (no content quoted)."""
    return (
        f"line {line} is longer than {UNCOUNTABLE_LINE_BYTES >> 20} MiB: too long for the "
        f"reader to count it as a row (rows may be at most {MAX_LINE_BYTES >> 20} MiB)"
    )


@dataclass(frozen=True)
class DeliveredBytes:
    """What the one pass over a data file found.

    The verdicts come out in the contract's order (the checksum before the
    encoding, the encoding before the header, the header before line lengths):
    the pass finds them all at once, the caller asks for them in turn.
    """

    sha256: str
    size: int
    utf8_path: Path
    """The UTF-8 bytes DuckDB reads: the file itself, or its transcoded copy."""
    problem: DeliveryFileError | LocalFailure | None
    """The first thing wrong in the bytes' order: an empty file, bytes the declared
    encoding cannot hold (DeliveryFileError), or writing the transcoded copy failed
    (LocalFailure, this machine's). The pass still hashed every byte."""
    long_line: int | None
    """The first line of the UTF-8 bytes too long for DuckDB to count, if any."""
    line_breaks: LineBreaks | None = None
    """A CSV file's line-break bytes (None: not counted, an NDJSON file or a long line)."""

    def utf8(self) -> Path:
        """The UTF-8 bytes to read, once the encoding holds; raises its problem if not."""
        if self.problem is not None:
            raise self.problem
        return self.utf8_path


def read_delivered(path: Path, fmt: SourceFormat, work_dir: Path) -> DeliveredBytes:
    """Stream a data file once: sha256, size, encoding check (or transcode), line lengths.

    Only a regular file is read, never through a link, never blocking on a FIFO;
    a file that cannot be read (no permission, an I/O error) is a DeliveryFileError,
    raised. Anything else wrong with the bytes is told in the result, so that the
    caller can take the verdicts in the contract's order.
    """
    try:
        handle = open_regular(path)
    except OSError as error:
        raise DeliveryFileError(f"data file {path.name} {cannot_read(error)}") from None
    if fmt.encoding == "cp1252":
        encoding: _Encoding = _Cp1252ToUtf8(work_dir / f"{fmt.system}.utf8.csv")
    else:
        encoding = _Utf8Check(require_bom=fmt.encoding == "utf-8-sig", path=path)
    digest = hashlib.sha256()
    lines = _LineScan(count_breaks=fmt.kind == "csv")
    size = 0
    pending: Future[None] | None = None
    try:
        with handle, ThreadPoolExecutor(max_workers=1) as hasher:
            # The first read is the byte-order mark's length: the check of the mark,
            # and the offsets the UTF-8 check names, are those of reading it first.
            chunk = handle.read(len(_UTF8_BOM))
            while True:
                if pending is not None:
                    pending.result()
                    pending = None
                if len(chunk) >= _HASH_ON_A_THREAD:
                    pending = hasher.submit(digest.update, chunk)
                else:
                    digest.update(chunk)
                final = not chunk
                if size or chunk:
                    lines.feed(encoding.feed(chunk, final=final))
                if final:
                    break
                size += len(chunk)
                chunk = handle.read(CHUNK)
    except OSError as error:
        encoding.close()
        raise DeliveryFileError(f"data file {path.name} {cannot_read(error)}") from None
    problem = DeliveryFileError("file is empty") if size == 0 else encoding.problem
    return DeliveredBytes(
        sha256=digest.hexdigest(),
        size=size,
        utf8_path=encoding.target,
        problem=problem,
        long_line=lines.found,
        line_breaks=lines.breaks(),
    )


def prepare_utf8(path: Path, fmt: SourceFormat, work_dir: Path) -> Path:
    """Return a UTF-8 version of the file, checking its declared encoding.

    UTF-8 files are only validated (and a required BOM checked) and used in
    place, BOM included (the header check and DuckDB skip it); Windows-1252
    files are transcoded into `work_dir`. Raises DeliveryFileError on an empty
    file and on bytes the declared encoding cannot hold. (Loading reads the
    bytes with `read_delivered`, which hashes them in the same pass.)
    """
    return read_delivered(path, fmt, work_dir).utf8()


def open_regular(path: Path) -> BinaryIO:
    """Open a data file to read: a regular file only, never through a link, never
    blocking on a FIFO (DeliveryFileError for those, OSError if it cannot be read)."""
    # A symbolic link is not even opened: it could point out of the inbox.
    if stat.S_ISLNK(path.lstat().st_mode):
        raise DeliveryFileError(f"data file {path.name} is a symbolic link")
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise DeliveryFileError(f"data file {path.name} is not a regular file")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def scan_line_lengths(utf8_path: Path) -> int | None:
    """The first line longer than `UNCOUNTABLE_LINE_BYTES` in a UTF-8 file, in a pass of its own.

    Only a file larger than the limit can hold such a line, so only such a file is read.
    """
    if utf8_path.stat().st_size <= UNCOUNTABLE_LINE_BYTES:
        return None
    lines = _LineScan()
    with utf8_path.open("rb") as handle:
        while lines.found is None and (chunk := handle.read(CHUNK)):
            lines.feed(chunk)
    return lines.found


@dataclass(frozen=True)
class BreakCounts:
    """Line-break characters in some text: CRs, LFs, and CR LF pairs (which cannot overlap)."""

    carriage_returns: int = 0
    line_feeds: int = 0
    crlf_pairs: int = 0

    def __add__(self, other: BreakCounts) -> BreakCounts:
        return BreakCounts(
            self.carriage_returns + other.carriage_returns,
            self.line_feeds + other.line_feeds,
            self.crlf_pairs + other.crlf_pairs,
        )

    def __sub__(self, other: BreakCounts) -> BreakCounts:
        return BreakCounts(
            self.carriage_returns - other.carriage_returns,
            self.line_feeds - other.line_feeds,
            self.crlf_pairs - other.crlf_pairs,
        )


@dataclass(frozen=True)
class LineBreaks:
    """How many line-break bytes a file's UTF-8 bytes hold, and how they end.

    Carriage returns and line feeds are ASCII, so the counts of a Windows-1252
    file are those of its UTF-8 copy.
    """

    carriage_returns: int
    line_feeds: int
    crlf_pairs: int
    """CR immediately followed by LF (a pair cannot overlap another)."""
    ends_with_break: bool
    """The last byte is a CR or an LF: the last record has its line end."""

    @property
    def counts(self) -> BreakCounts:
        return BreakCounts(self.carriage_returns, self.line_feeds, self.crlf_pairs)


class _LineScan:
    """Finds the first line longer than `UNCOUNTABLE_LINE_BYTES`, fed a chunk at a time,
    and, asked to, counts the line-break bytes (`LineBreaks`).

    Only a chunk's first and last line ends are looked at: a line within one
    chunk is shorter than the limit (a chunk is a few MiB at most).
    """

    def __init__(self, count_breaks: bool = False) -> None:
        self.found: int | None = None
        self._line = 1
        self._run = 0
        self._count_breaks = count_breaks
        self._carriage_returns = 0
        self._crlf_pairs = 0
        self._last_byte = b""

    def feed(self, data: bytes) -> None:
        if self.found is not None or not data:
            return
        first = data.find(b"\n")
        if first < 0:
            self._run += len(data)
        else:
            if self._run + first > UNCOUNTABLE_LINE_BYTES:
                self.found = self._line
                return
            self._line += data.count(b"\n")
            self._run = len(data) - data.rfind(b"\n") - 1
        if self._run > UNCOUNTABLE_LINE_BYTES:
            self.found = self._line
        if self._count_breaks:
            # Most files hold no CR at all: looking for one is cheaper than counting.
            if b"\r" in data:
                self._carriage_returns += data.count(b"\r")
                self._crlf_pairs += data.count(b"\r\n")
            if self._last_byte == b"\r" and data[:1] == b"\n":
                self._crlf_pairs += 1
            self._last_byte = data[-1:]

    def breaks(self) -> LineBreaks | None:
        """The line-break counts, if asked for and the whole file was scanned."""
        if not self._count_breaks or self.found is not None:
            return None
        return LineBreaks(
            carriage_returns=self._carriage_returns,
            line_feeds=self._line - 1,
            crlf_pairs=self._crlf_pairs,
            ends_with_break=self._last_byte in (b"\r", b"\n"),
        )


class _Encoding:
    """One encoding's check, fed the file's chunks in order; stops at its first problem."""

    target: Path
    problem: DeliveryFileError | LocalFailure | None = None

    def feed(self, chunk: bytes, *, final: bool) -> bytes:
        """Check a chunk; return its UTF-8 bytes (what DuckDB will read of it)."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of what the check holds open."""


class _Utf8Check(_Encoding):
    """Checks that the bytes are UTF-8 without decoding them: Arrow's validator takes a
    quarter of the time Python's decoder does (1.0 s against 4.1 s over a 1.8 GB
    delivery), the pass's largest part. Python's decoder, the reference, is asked only
    where Arrow finds a problem, and names the offset of the first bad byte."""

    def __init__(self, *, require_bom: bool, path: Path) -> None:
        self.target = path
        self._require_bom = require_bom
        self._offset = 0
        """Bytes checked so far; `_held` not included."""
        self._held = b""
        """The start of a character the chunk after completes (at most 3 bytes)."""
        self._started = False

    def feed(self, chunk: bytes, *, final: bool) -> bytes:
        if self.problem is not None:
            return b""
        if not self._started and chunk:
            self._started = True
            if self._require_bom and chunk != _UTF8_BOM:
                self.problem = DeliveryFileError(
                    "file does not start with the UTF-8 byte-order mark"
                )
                return b""
            if not self._require_bom and chunk == _UTF8_BOM:
                self.problem = DeliveryFileError(
                    "file starts with a byte-order mark, the contract has none"
                )
                return b""
        data = self._held + chunk if self._held else chunk
        checked = len(data) if final else _whole_characters(data)
        bad_at = _first_bad_utf8_byte(memoryview(data)[:checked])
        if bad_at is not None:
            self.problem = DeliveryFileError(
                f"not valid UTF-8 (first bad byte near offset {self._offset + bad_at})"
            )
            return b""
        self._offset += checked
        self._held = data[checked:]
        return chunk


def _whole_characters(data: bytes) -> int:
    """How many of `data`'s bytes to check now: all but a last character whose lead
    byte announces more bytes than are left (the next chunk holds the rest)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: where the last character starts
            needs = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            if byte < 0x80 or byte >> 3 > 0b11110 or needs <= back:
                return len(data)
            return len(data) - back
    return len(data)


def _first_bad_utf8_byte(data: memoryview) -> int | None:
    """Where the first byte that is not UTF-8 lies in `data`, or None if all of it is."""
    offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        try:
            codecs.decode(data, "utf-8", errors="strict")
        except UnicodeDecodeError as error:
            return int(error.start)
    return None


_UTF8_NOT_CP1252 = "file is UTF-8 encoded, the contract says Windows-1252"


class _Cp1252ToUtf8(_Encoding):
    """Windows-1252 -> UTF-8 into `target`; refuse bytes cp1252 leaves undefined.

    A file that is valid UTF-8 and holds non-ASCII bytes was almost surely sent
    in the wrong encoding (real Windows-1252 text with åäö is not valid UTF-8):
    reading it as cp1252 would silently garble names, so it is rejected. A write
    that fails (disk full) is this machine's (LocalFailure).
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self._decoder = codecs.getincrementaldecoder("cp1252")(errors="strict")
        self._utf8_probe = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._could_be_utf8 = True
        self._saw_non_ascii = False
        self._offset = 0
        self._sink: BinaryIO | None = None
        self._undefined_at: int | None = None
        """Where cp1252 found an undefined byte; set while the rest is probed as UTF-8."""

    def feed(self, chunk: bytes, *, final: bool) -> bytes:
        if self.problem is not None:
            return b""
        if self._undefined_at is not None:
            self._probe_the_rest(chunk, final=final)
            return b""
        try:
            text = self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as error:
            # UTF-8 text holds bytes cp1252 leaves undefined (the 0x9d of a
            # curly quote): name the real cause, not the byte it tripped on,
            # which takes reading the rest of the file as UTF-8.
            self._undefined_at = self._offset + error.start
            self._close_sink()
            if self._could_be_utf8:
                self._probe_the_rest(chunk, final=final)
            else:
                self.problem = DeliveryFileError(self._undefined())
            return b""
        utf8 = text.encode("utf-8")
        self._write(utf8)
        if chunk and not self._saw_non_ascii and not chunk.isascii():
            self._saw_non_ascii = True
        if self._could_be_utf8:
            try:
                self._utf8_probe.decode(chunk, final=final)
            except UnicodeDecodeError:
                self._could_be_utf8 = False
        self._offset += len(chunk)
        if final:
            self._close_sink()
            if self.problem is None and self._saw_non_ascii and self._could_be_utf8:
                self.problem = DeliveryFileError(_UTF8_NOT_CP1252)
        return utf8 if self.problem is None else b""

    def close(self) -> None:
        self._close_sink()

    def _undefined(self) -> str:
        return f"not valid Windows-1252 (undefined byte near offset {self._undefined_at})"

    def _probe_the_rest(self, chunk: bytes, *, final: bool) -> None:
        try:
            self._utf8_probe.decode(chunk, final=final)
        except UnicodeDecodeError:
            self.problem = DeliveryFileError(self._undefined())
            return
        if final:
            self.problem = DeliveryFileError(_UTF8_NOT_CP1252)

    def _write(self, data: bytes) -> None:
        try:
            if self._sink is None:
                self.target.parent.mkdir(parents=True, exist_ok=True)
                self._sink = self.target.open("wb")
            self._sink.write(data)
        except OSError as error:
            self._fail(error)

    def _close_sink(self) -> None:
        if self._sink is None:
            return
        sink, self._sink = self._sink, None
        try:
            sink.close()
        except OSError as error:
            self._fail(error)

    def _fail(self, error: OSError) -> None:
        """Writing the work folder failed: the machine's failure, told once the bytes are hashed."""
        if self._sink is not None:
            sink, self._sink = self._sink, None
            # The write already failed: a second error closing says nothing more.
            with contextlib.suppress(OSError):
                sink.close()
        if self.problem is None:
            self.problem = LocalFailure.of(error, self.target.parent, "writing the work folder")
