"""Hostile deliveries: every adapter, through the real reader, on broken and malicious input.

Two levels:

- **File level** (`run_adapter`: the reader + the adapter, exactly as a run
  reads a delivered file). Valid files are mutated by hypothesis: truncated,
  bytes flipped, inserted or deleted, structure characters sprinkled in, lines
  duplicated, re-encoded, huge fields, deeply nested and malformed JSON. The
  only exception allowed out is `DeliveryFileError` (the delivery is rejected
  whole, with a message that quotes nothing from the file); otherwise every row
  is accounted for exactly once (output or structural reject), every bad row
  carries a reason that quotes nothing, and every row that comes out valid
  passes an independent re-check of the contract.
- **Inbox level** (`discover` + `load_delivery` on a real warehouse). Control
  files that lie or point outside their folder (`../../x`), symlinked data,
  control and delivery folders, folder names that are not dates or systems, and
  hypothesis-made control documents. Nothing is read outside the inbox (every
  Python-level `open` is audited), every delivery ends loaded or rejected with
  a reason, and what is loaded adds up.

Budget: `JVN_FUZZ_PROFILE=jvn-fuzz-ci` (default, small, for CI) or
`jvn-fuzz-nightly` (docs/guarantees.md). Profiles are applied per test, so
other suites' hypothesis settings are untouched.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flows.common.errors import DeliveryFileError
from flows.common.warehouse import connect
from flows.load.inbox import DeliveryFolder, discover
from flows.load.ingest import load_delivery
from tests.inbox_builder import delivery_bytes, write_delivery
from tests.sources.helpers import AdapterRun, run_adapter
from tests.trust_support import PATIENTS, day_rows
from transforms.canonical import FEEDS, INFO_TYPES
from transforms.sources.registry import adapter_for

_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
    HealthCheck.filter_too_much,
]
settings.register_profile(
    "jvn-fuzz-ci", max_examples=25, deadline=None, suppress_health_check=_HEALTH
)
settings.register_profile(
    "jvn-fuzz-nightly", max_examples=1000, deadline=None, suppress_health_check=_HEALTH
)
FUZZ = settings.get_profile(os.environ.get("JVN_FUZZ_PROFILE", "jvn-fuzz-ci"))
INBOX_FUZZ = settings(FUZZ, max_examples=max(8, FUZZ.max_examples // 3))

BUSINESS_DATE = date(2026, 11, 25)
STOCKHOLM = ZoneInfo("Europe/Stockholm")
SECRETS = [*PATIENTS, *(f"{p[:8]}-{p[8:]}" for p in PATIENTS), "Journaltext"]
"""Values from the seed files that no error message may quote."""


# --- seeds and mutations -----------------------------------------------------------


def seed_bytes(feed: str, day: int) -> bytes:
    return delivery_bytes(feed, day_rows(day)[feed])


STRUCTURE = [
    b";",
    b",",
    b"|",
    b'"',
    b"\r",
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b"[",
    b"\\",
    b"\x00",
    b"\xef\xbb\xbf",
]


TEXT_ALPHABET = st.sampled_from(list('0123456789-:T+Z ;,|"\r\nabcÅÄÖåäö€“”{}[]\\'))


@st.composite
def mutated(draw: st.DrawFn, feed: str) -> bytes:
    """A valid delivery of `feed`, then 1-4 hostile edits."""
    data = bytearray(seed_bytes(feed, draw(st.sampled_from([1, 2]))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                ["truncate", "flip", "insert", "delete", "structure", "duplicate", "huge",
                 "reencode", "swap_lines", "text", "text", "structure"]
            )
        )  # fmt: skip
        position = draw(st.integers(0, max(0, len(data))))
        if kind == "truncate":
            data = data[:position]
        elif kind == "flip" and data:
            index = min(position, len(data) - 1)
            data[index] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif kind == "text":
            # Readable in the feed's own encoding: damages fields, not the file.
            encoding = adapter_for(feed).FORMAT.encoding.replace("-sig", "")
            text = draw(st.text(alphabet=TEXT_ALPHABET, min_size=1, max_size=24))
            data[position:position] = text.encode(encoding, errors="replace")
        elif kind == "structure":
            data[position:position] = draw(st.sampled_from(STRUCTURE))
        elif kind == "duplicate":
            lines = bytes(data).splitlines(keepends=True)
            if lines:
                index = draw(st.integers(0, len(lines) - 1))
                lines.insert(index, lines[index])
                data = bytearray(b"".join(lines))
        elif kind == "swap_lines":
            lines = bytes(data).splitlines(keepends=True)
            if len(lines) > 1:
                i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"".join(lines))
        elif kind == "huge":
            size = draw(st.sampled_from([1_000, 70_000, 300_000]))
            data[position:position] = draw(st.sampled_from([b"A", b"\xc3\xa5", b"9"])) * size
        elif kind == "reencode":
            data = bytearray(reencode(bytes(data), draw(st.sampled_from(ENCODINGS))))
    return bytes(data)


ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "utf-16-le", "utf-32"]


def reencode(data: bytes, target: str) -> bytes:
    """The same text in another encoding (a sender's wrong export setting)."""
    for source in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(source)
            break
        except UnicodeDecodeError:
            continue
    return text.encode(target, errors="replace")


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def hostile_ndjson(draw: st.DrawFn) -> bytes:
    """AsynjaVisph lines with wrong types, deep nesting, broken JSON."""
    rows = [dict(row) for row in day_rows(draw(st.sampled_from([1, 2])))["asynjavisph"]]
    lines = [json.dumps(row, ensure_ascii=draw(st.booleans())) for row in rows]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["field", "nested", "broken", "raw", "duplicate_key"]))
        index = draw(st.integers(0, len(lines) - 1))
        if kind == "field":
            row = dict(rows[index % len(rows)])
            key = draw(st.sampled_from([*row.keys(), "extra"]))
            row[key] = draw(JSON_VALUES)
            lines[index] = json.dumps(row, allow_nan=True)
        elif kind == "nested":
            depth = draw(st.sampled_from([50, 1_000, 100_000]))
            row = dict(rows[index % len(rows)])
            key = draw(st.sampled_from(["patient", "rev", "body", "unit"]))
            nested = "[" * depth + "]" * depth
            lines[index] = json.dumps(row).replace(f'"{key}": ', f'"{key}": {nested}, "_": ', 1)
        elif kind == "broken":
            cut = draw(st.integers(0, len(lines[index])))
            lines[index] = lines[index][:cut] + draw(
                st.sampled_from(["", '"', "}", "\\", "\\ud800"])
            )
        elif kind == "raw":
            lines.insert(index, draw(st.text(max_size=80)).replace("\n", " "))
        else:
            lines[index] = lines[index][:-1] + ', "rev": "2", "signed": "true"}'
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")


# --- the properties ---------------------------------------------------------------


def check_run(feed: str, path: Path, work: Path) -> AdapterRun | None:
    """Read a hostile file; assert the properties; None when rejected whole."""
    adapter = adapter_for(feed)
    try:
        result = run_adapter(adapter, path, work, BUSINESS_DATE)
    except DeliveryFileError as error:
        assert_safe(str(error), allow_digits=True)
        return None
    assert_accounted_for(result)
    for message in result.invalid["error"].to_list() + result.rejects["error"].to_list():
        assert message, "a bad row without a reason"
        assert_safe(message, allow_digits=False)
    if feed == "blocks":
        assert_valid_blocks(result.valid)
    else:
        assert_valid_records(result.valid, feed)
    return result


def assert_safe(message: str, *, allow_digits: bool) -> None:
    for secret in SECRETS:
        assert secret not in message, "an error message quotes the delivery"
    assert message.isprintable() and len(message) < 600
    if not allow_digits:
        assert not re.search(r"[0-9]{3}", message), "a row error quotes a number"


def assert_accounted_for(result: AdapterRun) -> None:
    """Every data row exactly once: parsed (valid or not) or rejected, positions 1..n."""
    positions = result.output["source_row"].to_list() + result.rejects["source_row"].to_list()
    assert len(positions) == result.row_count
    assert sorted(positions) == list(range(1, result.row_count + 1))


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(digits[2:]):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def birth_date_of(pnr: str) -> date | None:
    day = int(pnr[6:8])
    try:
        return date(int(pnr[:4]), int(pnr[4:6]), day - 60 if day > 60 else day)
    except ValueError:
        return None


def assert_valid_patient(patient_id: Any, birth: Any = None) -> None:
    assert isinstance(patient_id, str) and re.fullmatch(r"[0-9]{12}", patient_id)
    assert luhn_ok(patient_id), "a row with a bad personnummer came out valid"
    expected = birth_date_of(patient_id)
    assert expected is not None and expected >= date(1870, 1, 1)
    if birth is not None:
        assert birth == expected


def assert_valid_records(valid: pl.DataFrame, feed: str) -> None:
    for row in valid.iter_rows(named=True):
        assert row["record_id"].startswith(f"{feed}:") and len(row["record_id"]) > len(feed) + 1
        assert row["source_system"] == feed
        assert isinstance(row["record_version"], int) and row["record_version"] >= 1
        assert_valid_patient(row["patient_id"], row["birth_date"])
        assert row["care_unit_hsa_id"] and row["care_unit_name"]
        assert row["info_type"] in INFO_TYPES and row["source_code"]
        documented_at: datetime = row["documented_at"]
        assert documented_at is not None
        assert row["documented_date"] == documented_at.astimezone(STOCKHOLM).date()
        assert row["documented_date"] <= BUSINESS_DATE
        assert row["signed"] is not None and row["retracted"] is not None


def assert_valid_blocks(valid: pl.DataFrame) -> None:
    for row in valid.iter_rows(named=True):
        assert row["block_id"]
        assert isinstance(row["block_version"], int) and row["block_version"] >= 1
        assert_valid_patient(row["patient_id"])
        assert row["scope"] in ("ALL", "UNIT")
        assert (row["care_unit_hsa_id"] is not None) == (row["scope"] == "UNIT")
        assert row["valid_from"] is not None
        assert row["valid_to"] is None or row["valid_to"] >= row["valid_from"]
        assert row["revoked"] is not None


# --- file level -----------------------------------------------------------------------


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Callable[[str, bytes], tuple[Path, Path]]]:
    counter = iter(range(1_000_000))

    def write(feed: str, data: bytes) -> tuple[Path, Path]:
        folder = tmp_path / f"example-{next(counter)}"
        folder.mkdir()
        path = folder / adapter_for(feed).FORMAT.file_name
        path.write_bytes(data)
        return path, folder / "work"

    yield write


@pytest.mark.parametrize("feed", FEEDS)
def test_seed_files_are_valid(feed: str, scratch: Any) -> None:
    """The mutations start from files every adapter reads cleanly."""
    for day in (1, 2):
        path, work = scratch(feed, seed_bytes(feed, day))
        result = check_run(feed, path, work)
        assert result is not None and result.row_count == len(day_rows(day)[feed])


@pytest.mark.parametrize("feed", FEEDS)
def test_mutated_files(feed: str, scratch: Any) -> None:
    @FUZZ
    @given(data=mutated(feed))
    def property(data: bytes) -> None:
        path, work = scratch(feed, data)
        check_run(feed, path, work)

    property()


@FUZZ
@given(data=hostile_ndjson())
def test_hostile_json_lines(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("ndjson")
    path = folder / "records.ndjson"
    path.write_bytes(data)
    check_run("asynjavisph", path, folder / "work")


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_wrong_encoding(feed: str, encoding: str, scratch: Any) -> None:
    path, work = scratch(feed, reencode(seed_bytes(feed, 1), encoding))
    result = check_run(feed, path, work)
    declared = adapter_for(feed).FORMAT.encoding
    if encoding.startswith(("utf-16", "utf-32")) or (
        declared == "cp1252" and encoding.startswith("utf-8")
    ):
        assert result is None, f"{encoding} read as {declared}"


@pytest.mark.parametrize("feed", FEEDS)
def test_a_row_over_the_line_limit_is_quarantined_or_rejected(feed: str, scratch: Any) -> None:
    """A 9 MiB field (over the reader's 8 MiB line limit) in the first data row."""
    rows = [dict(row) for row in day_rows(1)[feed]]
    text_field = {
        "melior": "Text", "asynjavisph": "body", "obstetrix": "text", "journalia": "text",
        "t4": "entry_text", "blocks": "hsa_id",
    }[feed]  # fmt: skip
    rows[0][text_field] = "Å" * (9 << 20)
    path, work = scratch(feed, delivery_bytes(feed, rows))
    result = check_run(feed, path, work)
    if result is not None:
        first = result.output.filter(pl.col("source_row") == 1)
        assert first.is_empty() or first["error"][0] is not None or feed == "blocks"
        # The id is read from the whole row, not from the 10,000 characters kept of it.
        assert bad_row_id(result, feed, 1) == row_id(feed, rows[0])


# --- long bad rows and repeated keys: the id is still read, or nothing is guessed ----


ID_COLUMN = {"melior": "DokumentID", "obstetrix": "record_id", "journalia": "id",
             "t4": "journal_id", "blocks": "block_id", "asynjavisph": "id"}  # fmt: skip
LONG_FIELD = {"melior": "Text", "asynjavisph": "body", "obstetrix": "text", "journalia": "text",
              "t4": "entry_text", "blocks": "hsa_id"}  # fmt: skip


def row_id(feed: str, row: dict[str, Any]) -> str:
    return str(row[ID_COLUMN[feed]])


def bad_row_id(result: AdapterRun, feed: str, source_row: int) -> str | None:
    """The id the job keeps for a bad row (quarantined by the adapter or the reader)."""
    rejected = result.rejects.filter(pl.col("source_row") == source_row)
    if not rejected.is_empty():
        return rejected["record_key"][0]
    row = result.output.filter(pl.col("source_row") == source_row)
    assert row.height == 1 and row["error"][0] is not None, "the bad row came out valid"
    if feed == "blocks":
        return row["block_id"][0]
    record_id = row["record_id"][0]
    return None if record_id is None else record_id.removeprefix(f"{feed}:")


@st.composite
def long_bad_row(draw: st.DrawFn, feed: str) -> tuple[bytes, int, str]:
    """A valid delivery with one row made bad and longer than DuckDB keeps of a reject."""
    rows = [dict(row) for row in day_rows(draw(st.sampled_from([1, 2])))[feed]]
    index = draw(st.integers(0, len(rows) - 1))
    row = rows[index]
    row[LONG_FIELD[feed]] = draw(st.sampled_from(["A", "å", "x;,|"])) * draw(
        st.sampled_from([10_001, 40_000, 200_000])
    )
    how = draw(st.sampled_from(["version", "structure"]))
    version_key = {"melior": "Version", "t4": "rev", "asynjavisph": "rev"}.get(feed, "version")
    fmt = adapter_for(feed).FORMAT
    if how == "version":
        row[version_key] = 0 if feed == "asynjavisph" else "0"
        data = delivery_bytes(feed, rows)
    elif fmt.kind == "ndjson":
        # Broken JSON after the long field: the id must come from the line as written.
        ordered = {LONG_FIELD[feed]: row[LONG_FIELD[feed]], **row}
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        lines[index] = json.dumps(ordered, ensure_ascii=False)[:-1] + ', "x": }'
        data = ("\n".join(lines) + "\n").encode("utf-8")
    else:
        data = delivery_bytes(feed, rows)
        text = data.decode(fmt.encoding)
        header, *records = text.split("\r\n" if fmt.encoding == "cp1252" else "\n")
        records[index] += fmt.delimiter + "extra"  # one field too many
        data = (
            ("\r\n" if fmt.encoding == "cp1252" else "\n")
            .join([header, *records])
            .encode(fmt.encoding)
        )
    return data, index + 1, row_id(feed, row)


@pytest.mark.parametrize("feed", FEEDS)
def test_long_bad_rows_keep_their_id(feed: str, scratch: Any) -> None:
    @FUZZ
    @given(case=long_bad_row(feed))
    def property(case: tuple[bytes, int, str]) -> None:
        data, source_row, expected = case
        path, work = scratch(feed, data)
        result = check_run(feed, path, work)
        assert result is not None
        found = bad_row_id(result, feed, source_row)
        if feed == "asynjavisph" and found is None:
            # Broken JSON: an id is never guessed from a line that is not JSON.
            assert result.output.filter(pl.col("source_row") == source_row)["error"][0]
        else:
            assert found == expected

    property()


DUPLICABLE = ["id", "rev", "retracted", "signed", "type", "documentedAt", "title", "body",
              "patient.pnr", "unit.hsaId", "unit.name", "patient", "unit"]  # fmt: skip


@FUZZ
@given(
    key=st.sampled_from(DUPLICABLE),
    value=JSON_VALUES,
    second_first=st.booleans(),
    day=st.sampled_from([1, 2]),
)
def test_a_key_written_twice_is_a_bad_row_and_the_id_is_kept_only_if_unique(
    key: str, value: Any, second_first: bool, day: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rows = [dict(row) for row in day_rows(day)["asynjavisph"]]
    parent, _, name = key.rpartition(".")
    line = json.dumps(rows[0], ensure_ascii=False)
    extra = f"{json.dumps(name)}: {json.dumps(value)}"
    if parent:
        opening = f'"{parent}": {{'
        at = line.index(opening) + len(opening)
        line = line[:at] + extra + ", " + line[at:]
    elif second_first:
        line = "{" + extra + ", " + line[1:]
    else:
        line = line[:-1] + ", " + extra + "}"
    folder = tmp_path_factory.mktemp("duplicate")
    path = folder / "records.ndjson"
    path.write_bytes(("\n".join([line, *map(json.dumps, rows[1:])]) + "\n").encode("utf-8"))
    result = check_run("asynjavisph", path, folder / "work")
    assert result is not None
    first = result.output.filter(pl.col("source_row") == 1)
    assert "duplicate key in the JSON object" in (first["error"][0] or "")
    expected = None if key == "id" else f"asynjavisph:{rows[0]['id']}"
    assert first["record_id"][0] == expected


@pytest.mark.parametrize("feed", [f for f in FEEDS if adapter_for(f).FORMAT.kind == "csv"])
def test_a_header_with_a_repeated_column_rejects_the_delivery(feed: str, scratch: Any) -> None:
    fmt = adapter_for(feed).FORMAT

    @FUZZ
    @given(
        source=st.integers(0, len(fmt.columns) - 1),
        target=st.integers(0, len(fmt.columns)),
    )
    def property(source: int, target: int) -> None:
        columns = list(fmt.columns)
        if target == len(columns):
            columns.append(columns[source])  # one column too many, repeating another
        elif target != source:
            columns[target] = columns[source]
        else:
            columns.insert(target, columns[source])
        data = seed_bytes(feed, 1)
        text = data.decode(fmt.encoding)
        line_end = "\r\n" if fmt.encoding == "cp1252" else "\n"
        _, rest = text.split(line_end, 1)
        header = fmt.delimiter.join(columns)
        path, work = scratch(feed, (header + line_end + rest).encode(fmt.encoding))
        assert check_run(feed, path, work) is None, "a repeated column was read"

    property()


def test_deeply_nested_json_is_a_bad_row_not_a_crash(scratch: Any) -> None:
    rows = [dict(row) for row in day_rows(1)["asynjavisph"]]
    lines = [json.dumps(row) for row in rows]
    lines[0] = '{"id": "AV-X", "rev": 1, "patient": ' + "[" * 200_000 + "]" * 200_000 + "}"
    path, work = scratch("asynjavisph", ("\n".join(lines) + "\n").encode())
    result = check_run("asynjavisph", path, work)
    assert result is not None
    assert result.output.filter(pl.col("source_row") == 1)["error"][0] is not None


# --- inbox level ------------------------------------------------------------------------

_OPENED: list[str] = []
_AUDITING: list[bool] = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDITING[0] and event == "open" and args and isinstance(args[0], str | bytes | Path):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """Every file Python opens inside the block (DuckDB and polars are handed only
    paths the job built, so the Python side decides what is read)."""
    _OPENED.clear()
    _AUDITING[0] = True
    try:
        yield _OPENED
    finally:
        _AUDITING[0] = False


def assert_inside(opened: list[str], *allowed: Path) -> None:
    roots = [str(p.resolve()) for p in allowed]
    for name in opened:
        if not os.path.isabs(name) or name.startswith(("/proc/", "/dev/", "/sys/")):
            continue
        resolved = os.path.realpath(name)
        assert any(resolved == r or resolved.startswith(r + os.sep) for r in roots) or (
            "site-packages" in resolved or resolved.startswith(sys.prefix) or "/usr/" in resolved
        ), f"read outside the inbox: {name}"


class Warehouse:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.path = root / "data" / "warehouse.duckdb"
        self.work = root / "data" / "work"
        self.outside = root / "outside"
        self.outside.mkdir(parents=True)
        self.inbox.mkdir()
        self.runs = 0

    def load(self, feed: str, business_date: date = BUSINESS_DATE) -> Any:
        folder = DeliveryFolder(feed, business_date, self.inbox / feed / business_date.isoformat())
        self.runs += 1
        with connect(self.path) as connection, opened_files() as opened:
            outcome = load_delivery(
                connection, folder, run_id=f"fuzz-{self.runs}", work_dir=self.work
            )
            snapshot = list(opened)
        assert_inside(snapshot, self.inbox, self.path.parent)
        return outcome

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with connect(self.path, read_only=True) as connection:
            return connection.execute(sql, params or None).fetchall()


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path)


def test_control_file_pointing_outside_its_folder(warehouse: Warehouse) -> None:
    secret = warehouse.root / "x"
    secret.write_bytes(seed_bytes("t4", 1))
    rows = day_rows(1)["t4"]
    for target in ("../../x", "../../../x", str(secret), "./entries.csv/../../../x"):
        write_delivery(warehouse.inbox, "t4", BUSINESS_DATE, rows, control={"file": target})
        outcome = warehouse.load("t4")
        assert outcome.status == "rejected" and outcome.error
        assert "another data file" in outcome.error


def test_symlinked_control_file_is_rejected_unread(warehouse: Warehouse) -> None:
    folder = write_delivery(warehouse.inbox, "t4", BUSINESS_DATE, day_rows(1)["t4"])
    outside = warehouse.outside / "_control.json"
    (folder / "_control.json").rename(outside)
    (folder / "_control.json").symlink_to(outside)
    with opened_files() as opened:
        outcome = warehouse.load("t4")
        snapshot = list(opened)
    assert outcome.status == "rejected"
    assert str(outside) not in snapshot


def test_symlinked_data_file_is_rejected_unread(warehouse: Warehouse) -> None:
    rows = day_rows(1)["melior"]
    folder = write_delivery(warehouse.inbox, "melior", BUSINESS_DATE, rows)
    outside = warehouse.outside / "journal.csv"
    (folder / "journal.csv").rename(outside)
    (folder / "journal.csv").symlink_to(outside)
    with opened_files() as opened:
        outcome = warehouse.load("melior")
        snapshot = list(opened)
    assert outcome.status == "rejected", outcome
    assert not any(os.path.realpath(name) == str(outside) for name in snapshot), (
        "the symlinked data file outside the inbox was read"
    )


def test_odd_folders_are_reported_and_never_entered(warehouse: Warehouse) -> None:
    inbox = warehouse.inbox
    write_delivery(inbox, "t4", BUSINESS_DATE, day_rows(1)["t4"])
    target = write_delivery(warehouse.outside, "melior", BUSINESS_DATE, day_rows(1)["melior"])
    names = [
        "2026-13-01", "2026-02-30", "20261125", "2026-11-25 ", "2026-11-25\n", "..2026-11-25",
        "x" * 255, "2026-11-2\u0665", "latest",
    ]  # fmt: skip
    for name in names:
        (inbox / "t4" / name).mkdir()
        (inbox / "t4" / name / "entries.csv").write_text("not read")
    (inbox / "melior").mkdir()
    (inbox / "melior" / "2026-11-24").symlink_to(target, target_is_directory=True)
    (inbox / "journalia").symlink_to(warehouse.outside, target_is_directory=True)
    (inbox / "unknown-system").mkdir()
    (inbox / "blocks").write_text("a file, not a folder")
    (inbox / os.fsdecode(b"melior\xff")).mkdir()
    with opened_files() as opened:
        listing = discover(inbox, BUSINESS_DATE)
        snapshot = list(opened)
    assert [(d.feed, d.business_date) for d in listing.deliveries] == [("t4", BUSINESS_DATE)]
    hidden = [name for name in names if name.startswith(".")]  # skipped without a word
    assert len(listing.ignored) == len(names) - len(hidden) + 5
    for message in listing.ignored:
        assert message.isprintable() and len(message) < 200
    assert_inside(snapshot, inbox)


@pytest.mark.parametrize("feed", FEEDS)
def test_fifo_or_folder_as_data_file_is_rejected_without_hanging(
    feed: str, warehouse: Warehouse
) -> None:
    fmt = adapter_for(feed).FORMAT
    folder = write_delivery(warehouse.inbox, feed, BUSINESS_DATE, day_rows(1)[feed])
    (folder / fmt.file_name).unlink()
    if feed in ("melior", "t4", "blocks"):
        os.mkfifo(folder / fmt.file_name)
    else:
        (folder / fmt.file_name).mkdir()
    outcome = warehouse.load(feed)
    assert outcome.status == "rejected" and outcome.error


CONTROL_KEYS = ["system", "business_date", "file", "rows", "sha256"]


@st.composite
def hostile_control(draw: st.DrawFn) -> bytes:
    correct: dict[str, Any] = {
        "system": "t4", "business_date": BUSINESS_DATE.isoformat(), "file": "entries.csv",
        "rows": 3, "sha256": "0" * 64,
    }  # fmt: skip
    kind = draw(st.sampled_from(["value", "drop", "extra", "document", "bytes"]))
    if kind == "value":
        key = draw(st.sampled_from(CONTROL_KEYS))
        correct[key] = draw(JSON_VALUES)
    elif kind == "drop":
        del correct[draw(st.sampled_from(CONTROL_KEYS))]
    elif kind == "extra":
        correct[draw(st.sampled_from(["Rows", "file ", "", "sha256\u0000"]))] = 1
    elif kind == "document":
        return json.dumps(draw(JSON_VALUES), allow_nan=True).encode()
    else:
        return draw(st.binary(max_size=200))
    return json.dumps(correct, allow_nan=True).encode()


def test_hostile_control_files(tmp_path_factory: pytest.TempPathFactory) -> None:
    warehouse = Warehouse(tmp_path_factory.mktemp("control"))
    data = seed_bytes("t4", 1)

    @INBOX_FUZZ
    @given(control=hostile_control())
    def property(control: bytes) -> None:
        folder = write_delivery(warehouse.inbox, "t4", BUSINESS_DATE, data=data)
        (folder / "_control.json").write_bytes(control)
        outcome = warehouse.load("t4")
        assert outcome.status == "rejected", "a broken control file was accepted"
        assert outcome.error and outcome.error.isprintable()
        assert_safe(outcome.error, allow_digits=True)

    property()


@pytest.mark.parametrize("feed", FEEDS)
def test_hostile_deliveries_load_whole_or_not_at_all(
    feed: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Mutated files with a truthful control file: loaded rows plus quarantined rows
    are the file's rows; what is loaded is valid; a rejection says why."""
    warehouse = Warehouse(tmp_path_factory.mktemp(f"inbox-{feed}"))
    counter = iter(range(1_000_000))

    @INBOX_FUZZ
    @given(data=mutated(feed))
    def property(data: bytes) -> None:
        business_date = date.fromordinal(BUSINESS_DATE.toordinal() - next(counter))
        probe = warehouse.root / "probe" / adapter_for(feed).FORMAT.file_name
        probe.parent.mkdir(exist_ok=True)
        probe.write_bytes(data)
        try:
            rows = run_adapter(adapter_for(feed), probe, warehouse.root / "probe-work").row_count
        except DeliveryFileError:
            rows = 0
        write_delivery(warehouse.inbox, feed, business_date, data=data, control={"rows": rows})
        outcome = warehouse.load(feed, business_date)
        event(outcome.status)
        if outcome.status in ("already_loaded", "duplicate"):
            return
        if outcome.status == "rejected":
            assert outcome.error
            assert_safe(outcome.error, allow_digits=True)
            return
        assert outcome.status == "loaded"
        assert outcome.records_loaded + outcome.rows_quarantined == rows
        table = "block_versions" if feed == "blocks" else "record_versions"
        stored = warehouse.query(
            f"SELECT count(*) FROM {table} WHERE delivery_id = $d", d=outcome.delivery_id
        )[0][0]
        assert stored == outcome.records_loaded
        errors = warehouse.query(
            "SELECT error FROM quarantine WHERE delivery_id = $d", d=outcome.delivery_id
        )
        assert len(errors) == outcome.rows_quarantined
        assert all(error for (error,) in errors), "a quarantined row without a reason"

    property()
