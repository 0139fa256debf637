"""Preparing a delivery reads its bytes once for checksum, encoding and line lengths.

The one pass finds every verdict at once; these tests hold that they still come
out in the contract's order (control file, then checksum, then encoding, then
header, then line lengths), and that a delivery whose control file names bytes
loaded before is only hashed, as every nightly run does for the old
deliveries still in its inbox.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.load import encoding, prepare, reader
from flows.load.inbox import DeliveryFolder, discover
from flows.load.prepare import PreparedDelivery, prepare_delivery
from tests.inbox_builder import delivery_bytes, melior_row, t4_row, write_delivery
from transforms.sources import t4

DAY = date(2026, 11, 25)


def _delivery(inbox: Path, feed: str) -> DeliveryFolder:
    (found,) = [d for d in discover(inbox, DAY).deliveries if d.feed == feed]
    return found


def _prepare(
    tmp_path: Path, feed: str, known: frozenset[str] = frozenset(), **write: Any
) -> PreparedDelivery:
    write_delivery(tmp_path / "inbox", feed, DAY, **write)
    return prepare_delivery(_delivery(tmp_path / "inbox", feed), tmp_path / "work", known)


def test_new_bytes_are_read_once_before_the_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[Path] = []
    read_delivered = prepare.read_delivered

    def counted(path: Path, *args: Any) -> encoding.DeliveredBytes:
        passes.append(path)
        return read_delivered(path, *args)

    def no_second_pass(*_: object) -> None:
        raise AssertionError("a second pass over the bytes")

    monkeypatch.setattr(prepare, "read_delivered", counted)
    monkeypatch.setattr(reader, "sha256_of", no_second_pass)
    monkeypatch.setattr(reader, "_refuse_uncountable_lines", no_second_pass)
    monkeypatch.setattr(encoding, "scan_line_lengths", no_second_pass)
    prepared = _prepare(tmp_path, "melior", rows=[melior_row("D-1"), melior_row("D-2")])
    assert prepared.verdict == "prepared"
    assert prepared.rows == 2
    assert len(passes) == 1


def test_a_delivery_whose_control_file_names_known_bytes_is_only_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = delivery_bytes("melior", [melior_row()])
    known = frozenset({hashlib.sha256(payload).hexdigest()})

    def no_encoding_pass(*_: object) -> None:
        raise AssertionError("known bytes were read for their encoding")

    monkeypatch.setattr(prepare, "read_delivered", no_encoding_pass)
    prepared = _prepare(tmp_path, "melior", known, data=payload, control={"rows": 1})
    sha256 = hashlib.sha256(payload).hexdigest()
    # The hash also stamps the file, so that the next run need not read it at all.
    assert prepared.file_stamp is not None and prepared.file_stamp.sha256 == sha256
    assert replace(prepared, file_stamp=None) == PreparedDelivery("known", sha256=sha256)


def test_known_bytes_under_a_control_file_naming_others_are_known(tmp_path: Path) -> None:
    payload = "not the contract's encoding: “”".encode()
    known = frozenset({hashlib.sha256(payload).hexdigest()})
    prepared = _prepare(tmp_path, "melior", known, data=payload, control={"sha256": "0" * 64})
    assert prepared.verdict == "known"
    assert not (tmp_path / "work" / "deliveries" / "melior" / DAY.isoformat()).exists()


def test_a_checksum_mismatch_comes_before_the_encoding(tmp_path: Path) -> None:
    prepared = _prepare(tmp_path, "melior", data="“utf-8”".encode(), control={"sha256": "0" * 64})
    assert prepared.verdict == "rejected"
    assert prepared.error == (
        "checksum mismatch: the data file's sha256 differs from the control file's"
    )


def test_a_control_file_problem_comes_before_the_data_files_and_names_its_bytes(
    tmp_path: Path,
) -> None:
    payload = b"\xff\xfe not utf-8"
    prepared = _prepare(tmp_path, "t4", data=payload, control={"system": "melior"})
    assert prepared.verdict == "rejected"
    assert prepared.sha256 == hashlib.sha256(payload).hexdigest()
    assert prepared.error is not None and "UTF-8" not in prepared.error


@pytest.mark.parametrize(
    ("feed", "payload", "reason"),
    [
        ("t4", b"journal_id|\xff", "not valid UTF-8 (first bad byte near offset 11)"),
        ("melior", "DokumentID;“x”".encode(), encoding._UTF8_NOT_CP1252),
        (
            "melior",
            b"DokumentID;\x81\xff",
            "not valid Windows-1252 (undefined byte near offset 11)",
        ),
        ("journalia", b"id,rev", "file does not start with the UTF-8 byte-order mark"),
        (
            "t4",
            b"\xef\xbb\xbfjournal_id",
            "file starts with a byte-order mark, the contract has none",
        ),
        ("t4", b"", "file is empty"),
    ],
)
def test_encoding_verdicts_of_the_one_pass(
    tmp_path: Path, feed: str, payload: bytes, reason: str
) -> None:
    prepared = _prepare(tmp_path, feed, data=payload)
    assert prepared.verdict == "rejected"
    assert prepared.error == reason
    assert prepared.sha256 == hashlib.sha256(payload).hexdigest()
    assert prepared.past_known_check


def test_a_line_too_long_to_count_is_told_after_the_header_and_by_its_line(
    tmp_path: Path,
) -> None:
    rows = [t4_row("T-1"), t4_row("T-2", entry_text="x" * (65 << 20)), t4_row("T-3")]
    prepared = _prepare(tmp_path / "good_header", "t4", rows=rows)
    assert prepared.error == encoding.long_line_reason(3)
    assert prepared.past_known_check

    payload = delivery_bytes("t4", rows).replace(b"journal_id", b"journal_nr", 1)
    prepared = _prepare(tmp_path / "bad_header", "t4", data=payload, control={"rows": 3})
    assert prepared.error is not None
    assert prepared.error.startswith("header does not match the contract")


def test_a_structural_reject_counts_in_the_row_count_and_the_parts_number_by_file_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "ROWS_PER_SLICE", 4)
    fmt = t4.FORMAT
    rows = [t4_row(f"T-{n}") for n in range(1, 11)]
    lines = delivery_bytes("t4", rows).split(b"\n")
    lines.insert(3, fmt.delimiter.join(["x"] * (len(fmt.columns) + 2)).encode())  # file row 3
    payload = b"\n".join(lines)
    prepared = _prepare(tmp_path, "t4", data=payload, control={"rows": 11})
    assert prepared.verdict == "prepared"
    assert prepared.rows == 11
    assert len(prepared.canonical_files) == 3

    miscounted = _prepare(tmp_path / "again", "t4", data=payload, control={"rows": 10})
    assert miscounted.error == (
        "row count mismatch: the control file says 10, the file holds 11 data rows"
    )
    assert miscounted.rows == 11
