"""The reader: delivery-level errors (the whole file is refused) and row structure.

Every refusal must name the problem and quote nothing from the file: its message
ends up in logs and in the warehouse's delivery table.
"""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest

from flows.load import reader
from transforms.sources import journalia, melior, obstetrix
from transforms.sources.base import SourceFormat

PNR = "198503122387"
TITLE = "Årskontroll"
TEXT = "Hemlig journaltext om patienten"
SECRETS = (PNR, "19850312", TITLE, TEXT, "Hemlig")

MELIOR_ROW = (
    f"D-1;1;{PNR};SE2321000131-E000000000001;Kirurgkliniken Västerås;Internmedicin;"
    f"ANTECKNING;Bedömning;2019-11-01 00:30;J;;AKTIV;{TITLE};{TEXT}"
)
OBSTETRIX_ROW = (
    f"OB-1,1,{PNR},SE2321000131-E000000003001,Kvinnokliniken Mälarsjukhuset,"
    f"ANTECKNING,2019-11-01,true,active,{TITLE},{TEXT}"
)
JOURNALIA_ROW = (
    f"J-1,1,{PNR},SE2321000131-E000000005001,Diabetesmottagningen,"
    f"DIABETESANTECKNING,2019-11-01 00:30:15,1,A,{TITLE},{TEXT}"
)


def _header(fmt: SourceFormat, columns: tuple[str, ...] | list[str] | None = None) -> str:
    return fmt.delimiter.join(fmt.columns if columns is None else columns)


def _read(tmp_path: Path, fmt: SourceFormat, data: bytes) -> reader.RawDelivery:
    """Read bytes as a nightly run would, up to the parsed rows."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / fmt.file_name
    path.write_bytes(data)
    work = tmp_path / "work"
    utf8 = reader.prepare_utf8(path, fmt, work)
    reader.check_header(utf8, fmt)
    return reader.parse_rows(utf8, fmt, work)


def _refusal(tmp_path: Path, fmt: SourceFormat, data: bytes) -> str:
    """The message of the DeliveryFileError the bytes cause; it must quote no content."""
    with pytest.raises(reader.DeliveryFileError) as caught:
        _read(tmp_path, fmt, data)
    message = str(caught.value)
    for secret in SECRETS:
        assert secret not in message
    return message


def _melior(*lines: str) -> str:
    return "".join(line + "\r\n" for line in [_header(melior.FORMAT), *lines])


def _obstetrix(*lines: str) -> str:
    return "".join(line + "\n" for line in [_header(obstetrix.FORMAT), *lines])


def _journalia(*lines: str) -> bytes:
    body = "".join(line + "\r\n" for line in [_header(journalia.FORMAT), *lines])
    return codecs.BOM_UTF8 + body.encode("utf-8")


# --- checksum -------------------------------------------------------------------


def test_sha256_of_matches_hashlib_and_counts_the_bytes(tmp_path: Path) -> None:
    data = _melior(MELIOR_ROW).encode("cp1252")
    path = tmp_path / "journal.csv"
    path.write_bytes(data)
    digest = reader.sha256_of(path)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.size == len(data)


def test_sha256_of_streams_files_larger_than_one_chunk(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB, not a multiple of the chunk
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert reader.sha256_of(path) == reader.FileDigest(hashlib.sha256(data).hexdigest(), len(data))


# --- encodings --------------------------------------------------------------------


def test_valid_files_of_each_encoding_are_read(tmp_path: Path) -> None:
    cases = [
        (melior.FORMAT, _melior(MELIOR_ROW).encode("cp1252")),
        (obstetrix.FORMAT, _obstetrix(OBSTETRIX_ROW).encode("utf-8")),
        (journalia.FORMAT, _journalia(JOURNALIA_ROW)),
    ]
    for number, (fmt, data) in enumerate(cases):
        raw = _read(tmp_path / str(number), fmt, data)
        assert (raw.row_count, raw.rejects.height) == (1, 0)


def test_melior_file_that_is_really_utf8_is_refused(tmp_path: Path) -> None:
    message = _refusal(tmp_path, melior.FORMAT, _melior(MELIOR_ROW).encode("utf-8"))
    assert message == "file is UTF-8 encoded, the contract says Windows-1252"


def test_utf8_melior_file_with_curly_quotes_is_refused_as_utf8(tmp_path: Path) -> None:
    # UTF-8 for ” ends in 0x9d, a byte Windows-1252 leaves undefined: the cause
    # is the encoding of the whole file, not that byte.
    data = _melior(MELIOR_ROW.replace(TEXT, f"“{TEXT}”")).encode("utf-8")
    message = _refusal(tmp_path, melior.FORMAT, data)
    assert message == "file is UTF-8 encoded, the contract says Windows-1252"


def test_melior_byte_undefined_in_windows_1252_is_refused(tmp_path: Path) -> None:
    data = _melior(MELIOR_ROW).encode("cp1252").replace(b"Hemlig", b"Hem\x81ig")
    message = _refusal(tmp_path, melior.FORMAT, data)
    assert message.startswith("not valid Windows-1252 (undefined byte near offset ")


def test_melior_windows_1252_text_is_transcoded_exactly(tmp_path: Path) -> None:
    text = "€ “citat” ‘enkla’ – åäöÅÄÖ"
    raw = _read(tmp_path, melior.FORMAT, _melior(MELIOR_ROW.replace(TEXT, text)).encode("cp1252"))
    parsed = reader.scan_raw(raw, melior.FORMAT).collect()
    assert parsed["Text"].to_list() == [text]
    assert parsed["Enhetsnamn"].to_list() == ["Kirurgkliniken Västerås"]


def test_journalia_without_byte_order_mark_is_refused(tmp_path: Path) -> None:
    data = _journalia(JOURNALIA_ROW).removeprefix(codecs.BOM_UTF8)
    message = _refusal(tmp_path, journalia.FORMAT, data)
    assert message == "file does not start with the UTF-8 byte-order mark"


def test_utf8_source_with_a_byte_order_mark_is_refused(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + _obstetrix(OBSTETRIX_ROW).encode("utf-8")
    message = _refusal(tmp_path, obstetrix.FORMAT, data)
    assert message == "file starts with a byte-order mark, the contract has none"


def test_utf8_source_with_invalid_bytes_is_refused(tmp_path: Path) -> None:
    # The unit name written in Windows-1252: 0xE4 (ä) starts no valid UTF-8 sequence here.
    data = _obstetrix(OBSTETRIX_ROW).encode("cp1252")
    message = _refusal(tmp_path, obstetrix.FORMAT, data)
    assert message.startswith("not valid UTF-8 (first bad byte near offset ")


def test_journalia_with_invalid_bytes_after_the_mark_is_refused(tmp_path: Path) -> None:
    data = _journalia(JOURNALIA_ROW).replace(b"Hemlig", b"Hem\xffig")
    message = _refusal(tmp_path, journalia.FORMAT, data)
    assert message.startswith("not valid UTF-8")


# --- empty files and headers ----------------------------------------------------------


@pytest.mark.parametrize(
    "fmt", [melior.FORMAT, obstetrix.FORMAT, journalia.FORMAT], ids=lambda f: f.system
)
def test_empty_file_is_refused(tmp_path: Path, fmt: SourceFormat) -> None:
    assert _refusal(tmp_path, fmt, b"") == "file is empty"


def test_file_with_only_a_byte_order_mark_has_no_header(tmp_path: Path) -> None:
    message = _refusal(tmp_path, journalia.FORMAT, codecs.BOM_UTF8)
    assert message == "file has no readable header row"


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    raw = _read(tmp_path, obstetrix.FORMAT, _obstetrix().encode("utf-8"))
    assert (raw.row_count, raw.rejects.height) == (0, 0)


def test_header_missing_a_column_is_refused(tmp_path: Path) -> None:
    columns = [name for name in obstetrix.FORMAT.columns if name != "title"]
    data = "\n".join([_header(obstetrix.FORMAT, columns), OBSTETRIX_ROW]) + "\n"
    message = _refusal(tmp_path, obstetrix.FORMAT, data.encode("utf-8"))
    assert message == (
        "header does not match the contract: missing column(s) title; "
        "10 columns, the contract has 11"
    )


def test_header_with_columns_out_of_order_is_refused(tmp_path: Path) -> None:
    columns = list(melior.FORMAT.columns)
    columns[12], columns[13] = columns[13], columns[12]  # Text before Rubrik
    data = "\r\n".join([_header(melior.FORMAT, columns), MELIOR_ROW]) + "\r\n"
    message = _refusal(tmp_path, melior.FORMAT, data.encode("cp1252"))
    assert message == "header does not match the contract: columns out of the contract's order"


def test_header_with_a_misspelt_column_names_its_position_only(tmp_path: Path) -> None:
    columns = [*journalia.FORMAT.columns[:-1], "Text"]
    body = "\r\n".join([_header(journalia.FORMAT, columns), JOURNALIA_ROW]) + "\r\n"
    message = _refusal(tmp_path, journalia.FORMAT, codecs.BOM_UTF8 + body.encode("utf-8"))
    assert message == (
        "header does not match the contract: missing column(s) text; "
        "unexpected column(s) at position(s) 11"
    )


def test_header_with_a_repeated_column_is_refused(tmp_path: Path) -> None:
    columns = [*obstetrix.FORMAT.columns, "text"]
    data = "\n".join([_header(obstetrix.FORMAT, columns), OBSTETRIX_ROW + ",x"]) + "\n"
    message = _refusal(tmp_path, obstetrix.FORMAT, data.encode("utf-8"))
    assert message == "header does not match the contract: 12 columns, the contract has 11"


def test_file_without_its_header_row_is_refused_without_quoting_the_data_row(
    tmp_path: Path,
) -> None:
    data = (MELIOR_ROW + "\r\n" + MELIOR_ROW + "\r\n").encode("cp1252")
    message = _refusal(tmp_path, melior.FORMAT, data)
    assert message.startswith("header does not match the contract: missing column(s) DokumentID")


# --- rows DuckDB cannot split -------------------------------------------------------


def test_quoted_newlines_do_not_split_a_row(tmp_path: Path) -> None:
    multi = OBSTETRIX_ROW.replace(TEXT, '"rad ett\n\nrad tre"')
    raw = _read(tmp_path, obstetrix.FORMAT, _obstetrix(multi, OBSTETRIX_ROW).encode("utf-8"))
    parsed = reader.scan_raw(raw, obstetrix.FORMAT).collect()
    assert parsed["text"].to_list() == ["rad ett\n\nrad tre", TEXT]
    assert parsed["source_row"].to_list() == [1, 2]
    assert raw.row_count == 2


def test_empty_line_before_a_bad_row_does_not_shift_row_numbers(tmp_path: Path) -> None:
    # DuckDB skips an empty line but counts it in a reject's line number.
    too_many = OBSTETRIX_ROW.replace("OB-1", "OB-3") + ",extra"
    lines = [
        OBSTETRIX_ROW,
        OBSTETRIX_ROW.replace("OB-1", "OB-2").replace(TEXT, '"a\n\nb"'),
        "",
        too_many,
        OBSTETRIX_ROW.replace("OB-1", "OB-4"),
    ]
    raw = _read(tmp_path, obstetrix.FORMAT, _obstetrix(*lines).encode("utf-8"))
    parsed = reader.scan_raw(raw, obstetrix.FORMAT).collect()
    assert raw.rejects.select("source_row", "raw_text").rows() == [(3, too_many)]
    assert parsed.select("record_id", "source_row").rows() == [
        ("OB-1", 1),
        ("OB-2", 2),
        ("OB-4", 4),
    ]
    assert raw.row_count == 4


def test_unclosed_quote_in_the_last_row_is_a_rejected_row(tmp_path: Path) -> None:
    broken = OBSTETRIX_ROW.replace(TEXT, '"ingen slutfnutt')
    raw = _read(tmp_path, obstetrix.FORMAT, _obstetrix(OBSTETRIX_ROW, broken).encode("utf-8"))
    assert raw.rejects.select("source_row", "error").rows() == [(2, "badly quoted field")]
    assert reader.scan_raw(raw, obstetrix.FORMAT).collect()["source_row"].to_list() == [1]


def test_parsed_rows_have_contract_columns_then_source_row(tmp_path: Path) -> None:
    expected = [*obstetrix.FORMAT.columns, "source_row"]
    clean = _read(tmp_path / "a", obstetrix.FORMAT, _obstetrix(OBSTETRIX_ROW).encode("utf-8"))
    with_reject = _read(
        tmp_path / "b", obstetrix.FORMAT, _obstetrix(OBSTETRIX_ROW, "x,y").encode("utf-8")
    )
    assert reader.scan_raw(clean, obstetrix.FORMAT).collect_schema().names() == expected
    assert reader.scan_raw(with_reject, obstetrix.FORMAT).collect_schema().names() == expected


# --- rejected rows: the id is read from the whole row ----------------------------


@pytest.mark.parametrize(
    ("fmt", "rows"),
    [
        (melior.FORMAT, lambda *lines: _melior(*lines).encode("cp1252")),
        (obstetrix.FORMAT, lambda *lines: _obstetrix(*lines).encode("utf-8")),
        (journalia.FORMAT, _journalia),
    ],
    ids=["melior", "obstetrix", "journalia"],
)
def test_rejected_row_longer_than_duckdb_keeps_has_its_id_and_version(
    tmp_path: Path, fmt: SourceFormat, rows: object
) -> None:
    first = {melior.FORMAT: MELIOR_ROW, obstetrix.FORMAT: OBSTETRIX_ROW}.get(fmt, JOURNALIA_ROW)
    d = fmt.delimiter
    long_id = "X" * 20_000  # longer than the 10,000 characters DuckDB keeps of a reject
    quoted = f'"ID{d}7";3{d}' if d == ";" else f'"ID{d}7"{d}3{d}'
    bad_rows = [f"{long_id}{d}2{d}too few", quoted + "y" * 50]
    raw = reader.parse_rows(*_prepared(tmp_path, fmt, rows(first, *bad_rows)))  # type: ignore[operator]
    assert raw.rejects["record_key"].to_list() == [long_id, f"ID{d}7"]
    assert raw.rejects["record_version"].to_list() == ["2", "3"]
    assert raw.rejects["raw_text"].str.len_chars().max() <= 10_000


def _prepared(tmp_path: Path, fmt: SourceFormat, data: bytes) -> tuple[Path, SourceFormat, Path]:
    path = tmp_path / fmt.file_name
    path.write_bytes(data)
    return reader.prepare_utf8(path, fmt, tmp_path / "work"), fmt, tmp_path / "work"


def test_line_too_long_to_be_counted_rejects_the_delivery_naming_the_line(
    tmp_path: Path,
) -> None:
    fmt = obstetrix.FORMAT
    huge = OBSTETRIX_ROW.replace(TEXT, "x" * (65 << 20))
    message = _refusal(tmp_path, fmt, _obstetrix(OBSTETRIX_ROW, huge).encode("utf-8"))
    assert message.startswith("line 3 is longer than 64 MiB: too long for the reader to count")
