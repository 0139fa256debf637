"""The one pass's UTF-8 check says what Python's decoder says, however the file is chunked.

The check validates with Arrow and asks Python's decoder only where Arrow finds
a problem; a character split between two chunks is held back and checked with
the next. Whatever the bytes and the chunk boundaries, the verdict, and the
offset a rejection names, are those of decoding the whole file at once.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.load.encoding import _UTF8_BOM, CHUNK, _Utf8Check, read_delivered
from transforms.sources import t4

_PIECES = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8).map(lambda s: s.encode()),
    st.binary(max_size=4),
    st.sampled_from([b"\xc3", b"\xa5", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0"]),
)


def _verdict_by_python(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not valid UTF-8 (first bad byte near offset {error.start})"
    return None


def _verdict_of_the_check(chunks: list[bytes]) -> str | None:
    check = _Utf8Check(require_bom=False, path=Path("delivery.ndjson"))
    for chunk in [*chunks, b""]:
        check.feed(chunk, final=not chunk)
    return None if check.problem is None else str(check.problem)


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({cut % (len(data) + 1) for cut in cuts}), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds) if end > start]


@settings(max_examples=400)
@given(pieces=st.lists(_PIECES, max_size=12), cuts=st.lists(st.integers(0, 200), max_size=6))
def test_the_check_agrees_with_pythons_decoder_however_the_bytes_are_chunked(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    if data.startswith(_UTF8_BOM):
        data = b"x" + data
    assert _verdict_of_the_check(_chunked(data, cuts)) == _verdict_by_python(data)


def test_a_character_split_between_chunks_is_valid() -> None:
    assert _verdict_of_the_check([b"ab\xc3", b"\xa5c", b"\xf0\x9f", b"\x98\x80"]) is None


def test_a_character_cut_off_by_the_end_of_the_file_names_where_it_starts() -> None:
    expected = "not valid UTF-8 (first bad byte near offset 3)"
    assert _verdict_of_the_check([b"abc\xe2", b"\x82"]) == expected


def test_a_bad_byte_after_a_held_back_character_is_named_by_its_file_offset() -> None:
    expected = "not valid UTF-8 (first bad byte near offset 2)"
    assert _verdict_of_the_check([b"ab\xc3", b"\xffc"]) == expected


def _read(tmp_path: Path, data: bytes) -> str | None:
    """The one pass's verdict on a T4 file holding `data` (read in the pass's own chunks)."""
    path = tmp_path / "entries.csv"
    path.write_bytes(data)
    delivered = read_delivered(path, t4.FORMAT, tmp_path / "work")
    return None if delivered.problem is None else str(delivered.problem)


def test_a_character_across_the_passs_chunk_boundary_is_valid(tmp_path: Path) -> None:
    # The pass reads the byte-order mark's length first, then CHUNK bytes at a time.
    boundary = len(_UTF8_BOM) + CHUNK
    data = b"a" * (boundary - 1) + "å".encode() + b"b\n"
    assert _read(tmp_path, data) is None


def test_a_bad_byte_past_the_first_chunk_is_named_by_its_file_offset(tmp_path: Path) -> None:
    boundary = len(_UTF8_BOM) + CHUNK
    data = b"a" * (boundary - 1) + b"\xc3" + b"b" * 10 + b"\n"
    expected = f"not valid UTF-8 (first bad byte near offset {boundary - 1})"
    assert _read(tmp_path, data) == expected
