"""A delivered file's encoding: checked as UTF-8, or transcoded from Windows-1252.

DuckDB reads only UTF-8 and Latin-1: a Windows-1252 file is transcoded to
UTF-8 in the work folder, in chunks, and a file in another encoding than its
contract says is rejected whole, naming the first bad byte's offset.
"""

from __future__ import annotations

import codecs
import errno
import os
from pathlib import Path
from typing import BinaryIO

from flows.common.errors import DeliveryFileError, LocalFailure
from transforms.sources.base import SourceFormat

CHUNK = 1 << 20
_UTF8_BOM = codecs.BOM_UTF8


def cannot_read(error: OSError) -> str:
    code = errno.errorcode.get(error.errno or 0)
    cause = f"{code}: {os.strerror(error.errno or 0)}" if code else type(error).__name__
    return f"cannot be read ({cause})"


def prepare_utf8(path: Path, fmt: SourceFormat, work_dir: Path) -> Path:
    """Return a UTF-8 version of the file, checking its declared encoding.

    UTF-8 files are only validated (and a required BOM checked) and used in
    place, BOM included (the header check and DuckDB skip it); Windows-1252
    files are transcoded into `work_dir`. Raises DeliveryFileError on an empty
    file and on bytes the declared encoding cannot hold.
    """
    try:
        empty = path.stat().st_size == 0
    except OSError as error:
        raise DeliveryFileError(f"data file {path.name} {cannot_read(error)}") from None
    if empty:
        raise DeliveryFileError("file is empty")
    if fmt.encoding == "cp1252":
        return _transcode_cp1252(path, work_dir / f"{fmt.system}.utf8.csv")
    try:
        _check_utf8(path, require_bom=fmt.encoding == "utf-8-sig")
    except OSError as error:
        raise DeliveryFileError(f"data file {path.name} {cannot_read(error)}") from None
    return path


def _check_utf8(path: Path, *, require_bom: bool) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    with path.open("rb") as handle:
        first = handle.read(len(_UTF8_BOM))
        if require_bom and first != _UTF8_BOM:
            raise DeliveryFileError("file does not start with the UTF-8 byte-order mark")
        if not require_bom and first == _UTF8_BOM:
            raise DeliveryFileError("file starts with a byte-order mark, the contract has none")
        chunk = first
        while True:
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                raise DeliveryFileError(
                    f"not valid UTF-8 (first bad byte near offset {offset + error.start})"
                ) from None
            if not chunk:
                return
            offset += len(chunk)
            chunk = handle.read(CHUNK)


def _transcode_cp1252(path: Path, target: Path) -> Path:
    """Windows-1252 -> UTF-8 in chunks; refuse bytes cp1252 leaves undefined.

    A file that is valid UTF-8 and holds non-ASCII bytes was almost surely sent
    in the wrong encoding (real Windows-1252 text with åäö is not valid UTF-8):
    reading it as cp1252 would silently garble names, so it is rejected.
    A read that fails is the delivery's (DeliveryFileError); a write that fails
    (disk full) is this machine's (LocalFailure).
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as sink:
            _transcode_into(path, sink)
    except OSError as error:
        # Every read error became a DeliveryFileError inside: what is left is the sink's.
        raise LocalFailure.of(error, target.parent, "writing the work folder") from None
    return target


def _transcode_into(path: Path, sink: BinaryIO) -> None:
    decoder = codecs.getincrementaldecoder("cp1252")(errors="strict")
    utf8_probe = codecs.getincrementaldecoder("utf-8")(errors="strict")
    could_be_utf8 = True
    saw_non_ascii = False
    offset = 0
    try:
        source = path.open("rb")
    except OSError as error:
        raise DeliveryFileError(f"data file {path.name} {cannot_read(error)}") from None
    with source:
        while True:
            try:
                chunk = source.read(CHUNK)
            except OSError as error:
                raise DeliveryFileError(f"data file {path.name} {cannot_read(error)}") from None
            final = not chunk
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as error:
                # UTF-8 text holds bytes cp1252 leaves undefined (the 0x9d of a
                # curly quote): name the real cause, not the byte it tripped on.
                if could_be_utf8 and _utf8_to_the_end(utf8_probe, chunk, source):
                    raise DeliveryFileError(_UTF8_NOT_CP1252) from None
                raise DeliveryFileError(
                    f"not valid Windows-1252 (undefined byte near offset {offset + error.start})"
                ) from None
            sink.write(text.encode("utf-8"))
            if chunk and not saw_non_ascii and not chunk.isascii():
                saw_non_ascii = True
            if could_be_utf8:
                try:
                    utf8_probe.decode(chunk, final=final)
                except UnicodeDecodeError:
                    could_be_utf8 = False
            if final:
                break
            offset += len(chunk)
    if saw_non_ascii and could_be_utf8:
        raise DeliveryFileError(_UTF8_NOT_CP1252)


_UTF8_NOT_CP1252 = "file is UTF-8 encoded, the contract says Windows-1252"


def _utf8_to_the_end(probe: codecs.IncrementalDecoder, chunk: bytes, source: BinaryIO) -> bool:
    """Is the rest of the file, from `chunk` on, valid UTF-8 (continuing `probe`)?"""
    try:
        while True:
            probe.decode(chunk, final=not chunk)
            if not chunk:
                return True
            chunk = source.read(CHUNK)
    except (UnicodeDecodeError, OSError):
        return False
