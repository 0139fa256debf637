"""Numbering rejected CSV rows from the line breaks the one pass counted.

DuckDB counts an empty line in a rejected row's line number but yields no row
for it. The reader used to find the empty lines with a second pass over the
file (Python's csv reader: about 12 s of a 10 M load); now the line-break
counts of the one pass over the bytes prove most files hold none, and only a
file they cannot clear is read again. Whichever way, the numbers must be the
same: the property test at the end compares both on files built to be awkward.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.load import encoding, reader, skipped_lines
from transforms.sources import asynjavisph, melior, obstetrix
from transforms.sources.base import SourceFormat

ROW = (
    "OB-{n},1,198503122387,SE2321000131-E000000003001,Kvinnokliniken,ANTECKNING,"
    "2019-11-01,true,active,Rubrik,{text}"
)
"""An Obstetrix row (11 fields); `text` may be a quoted field."""
MELIOR_ROW = (
    "D-{n};1;198503122387;SE2321000131-E000000000001;Kirurgkliniken;Internmedicin;"
    "ANTECKNING;Bedömning;2019-11-01 00:30;J;;AKTIV;Rubrik;{text}"
)


def _obstetrix_row(n: int, text: str = "text") -> str:
    return ROW.format(n=n, text=text)


def _file(fmt: SourceFormat, lines: list[str], line_end: str, final_end: bool = True) -> str:
    body = line_end.join([fmt.delimiter.join(fmt.columns), *lines])
    return body + (line_end if final_end else "")


def _parse(tmp_path: Path, fmt: SourceFormat, text: str, counted: bool) -> reader.RawDelivery:
    """Parse as loading does: with the pass's line-break counts, or without them."""
    path = tmp_path / fmt.file_name
    encoded = text.encode("cp1252" if fmt.encoding == "cp1252" else "utf-8")
    path.write_bytes(encoded)
    work = tmp_path / ("counted" if counted else "plain")
    delivered = encoding.read_delivered(path, fmt, work)
    breaks = delivered.line_breaks if counted else None
    return reader.parse_rows(delivered.utf8(), fmt, work, breaks)


@pytest.fixture
def second_pass(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each time the reader reads the file again for its empty lines."""
    calls: list[int] = []
    empty_lines = skipped_lines.empty_lines

    def counted(*args: object) -> list[int]:
        calls.append(1)
        return empty_lines(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(skipped_lines, "empty_lines", counted)
    return calls


def _numbers(raw: reader.RawDelivery, fmt: SourceFormat) -> tuple[list[int], list[int]]:
    parsed = reader.scan_raw(raw, fmt).collect()
    return raw.rejects["source_row"].to_list(), parsed["source_row"].to_list()


def test_quoted_blank_lines_do_not_cost_a_second_pass(
    tmp_path: Path, second_pass: list[int]
) -> None:
    lines = [
        _obstetrix_row(1, '"stycke ett\n\nstycke två"'),
        _obstetrix_row(2) + ",extra",
        _obstetrix_row(3),
    ]
    raw = _parse(tmp_path, obstetrix.FORMAT, _file(obstetrix.FORMAT, lines, "\n"), counted=True)
    assert _numbers(raw, obstetrix.FORMAT) == ([2], [1, 3])
    assert second_pass == []


def test_crlf_file_with_quoted_paragraphs_needs_no_second_pass(
    tmp_path: Path, second_pass: list[int]
) -> None:
    lines = [
        MELIOR_ROW.format(n=1, text='"rad ett\r\n\r\nrad tre"'),
        MELIOR_ROW.format(n=2, text="kort") + ";extra",
        MELIOR_ROW.format(n=3, text="kort"),
    ]
    raw = _parse(tmp_path, melior.FORMAT, _file(melior.FORMAT, lines, "\r\n"), counted=True)
    assert _numbers(raw, melior.FORMAT) == ([2], [1, 3])
    assert second_pass == []


def test_rejected_row_with_a_quoted_line_break_needs_no_second_pass(
    tmp_path: Path, second_pass: list[int]
) -> None:
    lines = [
        _obstetrix_row(1),
        _obstetrix_row(2, '"över\ntvå rader"') + ",extra",
        _obstetrix_row(3),
    ]
    raw = _parse(tmp_path, obstetrix.FORMAT, _file(obstetrix.FORMAT, lines, "\n"), counted=True)
    assert _numbers(raw, obstetrix.FORMAT) == ([2], [1, 3])
    assert second_pass == []


def test_an_empty_line_before_a_reject_is_found_by_the_second_pass(
    tmp_path: Path, second_pass: list[int]
) -> None:
    lines = [_obstetrix_row(1), "", _obstetrix_row(2) + ",extra", _obstetrix_row(3)]
    raw = _parse(tmp_path, obstetrix.FORMAT, _file(obstetrix.FORMAT, lines, "\n"), counted=True)
    assert _numbers(raw, obstetrix.FORMAT) == ([2], [1, 3])
    assert second_pass == [1]


def test_an_empty_crlf_line_is_not_mistaken_for_line_ends(
    tmp_path: Path, second_pass: list[int]
) -> None:
    lines = [
        MELIOR_ROW.format(n=1, text="kort"),
        "",
        MELIOR_ROW.format(n=2, text="kort") + ";extra",
    ]
    raw = _parse(tmp_path, melior.FORMAT, _file(melior.FORMAT, lines, "\r\n"), counted=True)
    assert _numbers(raw, melior.FORMAT) == ([2], [1])
    assert second_pass == [1]


def test_carriage_returns_inside_fields_of_an_lf_file_need_no_second_pass(
    tmp_path: Path, second_pass: list[int]
) -> None:
    lines = [
        _obstetrix_row(1, '"ensam\rretur och\r\npar"'),
        _obstetrix_row(2) + ",extra",
        _obstetrix_row(3),
    ]
    raw = _parse(tmp_path, obstetrix.FORMAT, _file(obstetrix.FORMAT, lines, "\n"), counted=True)
    assert _numbers(raw, obstetrix.FORMAT) == ([2], [1, 3])
    assert second_pass == []


def test_rejected_row_with_an_open_quote_takes_the_second_pass(
    tmp_path: Path, second_pass: list[int]
) -> None:
    lines = [_obstetrix_row(1), _obstetrix_row(2, '"öppen\nfnutt'), _obstetrix_row(3)]
    text = _file(obstetrix.FORMAT, lines, "\n")
    counted = _parse(tmp_path, obstetrix.FORMAT, text, counted=True)
    plain = _parse(tmp_path, obstetrix.FORMAT, text, counted=False)
    assert counted.rejects.equals(plain.rejects)
    assert counted.rows.equals(plain.rows)


def test_rejected_row_longer_than_duckdb_keeps_is_numbered_as_when_re_read(
    tmp_path: Path,
) -> None:
    # DuckDB keeps a rejected row's first 10,000 characters: line breaks past them
    # are not counted as inside the row, so the counts cannot clear the file.
    long_text = '"' + "x" * 20_000 + '\n\nslut"'
    lines = [_obstetrix_row(1), _obstetrix_row(2, long_text) + ",extra", _obstetrix_row(3)]
    text = _file(obstetrix.FORMAT, lines, "\n")
    counted = _parse(tmp_path, obstetrix.FORMAT, text, counted=True)
    plain = _parse(tmp_path, obstetrix.FORMAT, text, counted=False)
    assert counted.rejects.equals(plain.rejects)
    assert _numbers(counted, obstetrix.FORMAT) == ([2], [1, 3])


def test_line_breaks_are_counted_across_chunk_boundaries(tmp_path: Path) -> None:
    # The pass reads the byte-order mark's length first, then whole chunks: a
    # CR LF pair is put across the first chunk boundary.
    header = obstetrix.FORMAT.delimiter.join(obstetrix.FORMAT.columns)
    before_filler = len(header) + 1 + len(_obstetrix_row(1, ""))
    filler = "x" * (3 + encoding.CHUNK - 1 - before_filler)
    text = f"{header}\n{_obstetrix_row(1, filler)}\r\n{_obstetrix_row(2)}\n"
    data = text.encode("utf-8")
    assert data[3 + encoding.CHUNK - 1 : 3 + encoding.CHUNK + 1] == b"\r\n"
    path = tmp_path / obstetrix.FORMAT.file_name
    path.write_bytes(data)
    breaks = encoding.read_delivered(path, obstetrix.FORMAT, tmp_path / "work").line_breaks
    assert breaks == encoding.LineBreaks(
        carriage_returns=1, line_feeds=3, crlf_pairs=1, ends_with_break=True
    )


def test_ndjson_files_are_not_counted(tmp_path: Path) -> None:
    path = tmp_path / asynjavisph.FORMAT.file_name
    path.write_bytes(b'{"id": "A-1"}\n')
    delivered = encoding.read_delivered(path, asynjavisph.FORMAT, tmp_path / "work")
    assert delivered.line_breaks is None


# --- property: the counted numbering is the re-read one ------------------------

_TEXTS = st.sampled_from(
    [
        "text",
        '"med, komma"',
        '"rad ett\nrad två"',
        '"stycke\n\nstycke"',
        '"crlf\r\n\r\ninuti"',
        '"ensam\rretur"',
        '"citat ""så"" här"',
        '""',
        "",
    ]
)
_LINES = st.one_of(
    _TEXTS.map(lambda text: ("row", text)),
    st.just(("empty", "")),
    st.just(("blank crlf", "")),
    _TEXTS.map(lambda text: ("too many", text)),
    st.just(("too few", "")),
    st.just(("open quote", "")),
    st.just(("stray quote", "")),
)


def _line(kind: str, text: str, n: int) -> str:
    if kind == "row":
        return _obstetrix_row(n, text)
    if kind == "too many":
        return _obstetrix_row(n, text) + ",extra"
    if kind == "too few":
        return f"OB-{n},1,198503122387"
    if kind == "open quote":
        return _obstetrix_row(n, '"öppen\nfnutt')
    if kind == "stray quote":
        return _obstetrix_row(n, 'ett"citat"')
    if kind == "blank crlf":
        return "\r"
    return ""


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lines=st.lists(_LINES, min_size=1, max_size=8),
    line_end=st.sampled_from(["\n", "\r\n"]),
    final_end=st.booleans(),
)
def test_counted_numbering_is_the_re_read_numbering(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[tuple[str, str]],
    line_end: str,
    final_end: bool,
) -> None:
    folder = tmp_path_factory.mktemp("numbering")
    text = _file(
        obstetrix.FORMAT,
        [_line(kind, body, n) for n, (kind, body) in enumerate(lines, start=1)],
        line_end,
        final_end,
    )
    try:
        plain = _parse(folder, obstetrix.FORMAT, text, counted=False)
    except reader.DeliveryFileError:
        with pytest.raises(reader.DeliveryFileError):
            _parse(folder, obstetrix.FORMAT, text, counted=True)
        return
    counted = _parse(folder, obstetrix.FORMAT, text, counted=True)
    assert counted.rejects.equals(plain.rejects)
    assert counted.row_count == plain.row_count
    assert counted.rows.equals(plain.rows)
    numbered = reader.scan_raw(counted, obstetrix.FORMAT).select("source_row").collect()
    assert numbered.equals(reader.scan_raw(plain, obstetrix.FORMAT).select("source_row").collect())
    assert isinstance(numbered, pl.DataFrame)
