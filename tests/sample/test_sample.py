"""The synthetic inbox (`flows.sample`): contract-conformant, deterministic, every quirk present.

The files are read back with the Python standard library (csv, json), not with
the job's own reader, so that a mistake shared by the generator and the reader
cannot hide here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from flows.sample import BAD_KINDS, SCENARIOS, SYSTEMS, UNITS, business_dates, generate_inbox
from transforms.canonical import DeliveryContext
from transforms.sources import common, melior

RECORDS = 2_000
SEED = 11
END = date(2026, 11, 25)
FEEDS = (*SYSTEMS, "blocks")
STOCKHOLM = ZoneInfo("Europe/Stockholm")

# shared/spec/rules.md section 3, searched in the normalised unit name.
EXEMPT_PATTERNS = [
    r"\bbup\b", r"barn- ?och ungdomspsykiatri", r"bedomningsteam forsakringsmedicin",
    r"flykting- ?barnmottagning", r"kris- ?och traumaenhet", r"mottagningen for unga vuxna",
    r"modra- ?barnhalsovardsteam", r"rattspsykiatri", r"\bsmc\b", r"sexualmedicinsk",
    r"\bstd\b", r"\bsti\b", r"konsmottagning", r"ungdomsmottagning", r"\butvag\b",
]  # fmt: skip
EXEMPT_IDS = {f"SE2321000131-E0000000{n}" for n in range(11001, 11020)}


def normalise(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.lower())
    stripped = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped).strip()


def exempt_by_name(name: str) -> bool:
    return any(re.search(p, normalise(name)) for p in EXEMPT_PATTERNS)


# ---------------------------------------------------------------------------
# Reading an inbox back


@dataclass
class Delivery:
    system: str
    business_date: date
    folder: Path
    rows: list[dict[str, object]] = field(default_factory=list)
    """Rows that have the right shape (field count / parseable JSON)."""
    malformed: list[str] = field(default_factory=list)
    """Rows with a wrong field count or JSON that does not parse."""

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.malformed)


def read_delivery(folder: Path, system: str) -> Delivery:
    delivery = Delivery(system, date.fromisoformat(folder.name), folder)
    if system == "asynjavisph":
        for line in (folder / "records.ndjson").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                delivery.rows.append(json.loads(line))
            except json.JSONDecodeError:
                delivery.malformed.append(line)
        return delivery
    file_name = "blocks.csv" if system == "blocks" else SYSTEMS[system].file_name
    encoding = "utf-8" if system == "blocks" else SYSTEMS[system].encoding
    delimiter = "," if system == "blocks" else SYSTEMS[system].delimiter
    text = (folder / file_name).read_bytes().decode(encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    for fields in reader:
        if len(fields) == len(header):
            delivery.rows.append(dict(zip(header, fields, strict=True)))
        else:
            delivery.malformed.append(repr(fields))
    return delivery


@dataclass
class Inbox:
    root: Path
    summary: object
    deliveries: dict[tuple[str, date], Delivery]

    def of(self, system: str) -> list[Delivery]:
        return sorted(
            (d for (s, _), d in self.deliveries.items() if s == system),
            key=lambda d: d.business_date,
        )

    def history(self, system: str) -> Delivery:
        return self.of(system)[0]


def load(root: Path, summary: object) -> Inbox:
    deliveries = {}
    for system in FEEDS:
        for folder in sorted((root / system).iterdir()):
            deliveries[(system, date.fromisoformat(folder.name))] = read_delivery(folder, system)
    return Inbox(root, summary, deliveries)


def field_of(system: str, role: str) -> str:
    return getattr(SYSTEMS[system].roles, role)


def record_id(system: str, row: dict[str, object]) -> str:
    return str(row[field_of(system, "id")])


def pnr_of(system: str, row: dict[str, object]) -> str:
    if system == "asynjavisph":
        patient = row["patient"]
        assert isinstance(patient, dict)
        return str(patient["pnr"])
    return str(row[field_of(system, "pnr")])


def unit_of(system: str, row: dict[str, object]) -> tuple[str, str]:
    if system == "asynjavisph":
        unit = row["unit"]
        assert isinstance(unit, dict)
        return str(unit["hsaId"]), str(unit["name"])
    hsa, name = {
        "melior": ("HSAid", "Enhetsnamn"),
        "obstetrix": ("unit_hsa_id", "unit_name"),
        "journalia": ("hsa_id", "unit_name"),
        "t4": ("clinic_hsa_id", "clinic_name"),
    }[system]
    return str(row[hsa]), str(row[name])


def code_of(system: str, row: dict[str, object]) -> str:
    column = {
        "melior": "Informationstyp",
        "asynjavisph": "type",
        "obstetrix": "document_type",
        "journalia": "doc_kind",
        "t4": "entry_type",
    }[system]
    return str(row[column])


def local_date(system: str, text: str) -> date | None:
    """The Stockholm date of a documentation time as the system writes it; None if bad."""
    try:
        if system in ("asynjavisph", "t4"):
            if not re.search(r"(Z|[+-]\d\d:\d\d)$", text):
                return None
            return datetime.fromisoformat(text).astimezone(STOCKHOLM).date()
        fmt = {
            "melior": "%Y-%m-%d %H:%M",
            "obstetrix": "%Y-%m-%d",
            "journalia": "%Y-%m-%d %H:%M:%S",
        }[system]
        return datetime.strptime(text, fmt).date()
    except ValueError:
        return None


def valid_pnrs(values: list[str]) -> list[bool]:
    """The job's own personnummer check (Luhn, real birth date), for many values at once."""
    frame = pl.DataFrame({"p": values}, schema={"p": pl.String})
    valid = (
        common.personnummer_parts(common.personnummer(pl.col("p")))
        .patient_id.is_not_null()
        .alias("valid")
    )
    return frame.select(valid)["valid"].to_list()


def valid_pnr(text: str) -> bool:
    return valid_pnrs([text])[0]


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Inbox:
    root = tmp_path_factory.mktemp("inbox")
    messages: list[str] = []
    summary = generate_inbox(root, records=RECORDS, seed=SEED, progress=messages.append)
    assert messages, "progress is reported through the callback"
    return load(root, summary)


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------------
# Layout, control files, determinism


def test_layout_and_business_dates(inbox: Inbox) -> None:
    dates = business_dates(END, 5)
    assert dates == [
        date(2026, 11, 19),
        date(2026, 11, 20),
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
    ]
    for system in FEEDS:
        assert sorted(p.name for p in (inbox.root / system).iterdir()) == [
            d.isoformat() for d in dates
        ]
    assert len(inbox.summary.deliveries) == len(FEEDS) * 5
    assert all(p.is_dir() for p in inbox.summary.deliveries)


def test_control_files_match_the_data(inbox: Inbox) -> None:
    total = 0
    for (system, business_date), delivery in inbox.deliveries.items():
        control = json.loads((delivery.folder / "_control.json").read_text(encoding="utf-8"))
        assert list(control) == ["system", "business_date", "file", "rows", "sha256"]
        data_file = delivery.folder / control["file"]
        assert control["system"] == system
        assert control["business_date"] == business_date.isoformat()
        assert control["sha256"] == hashlib.sha256(data_file.read_bytes()).hexdigest()
        # Rows, not lines: quoted fields hold newlines.
        assert control["rows"] == delivery.count
        total += control["rows"]
        assert sorted(p.name for p in delivery.folder.iterdir()) == sorted(
            ["_control.json", control["file"]]
        )
    assert inbox.summary.rows_written == total


def test_same_arguments_give_a_byte_identical_inbox(inbox: Inbox, tmp_path: Path) -> None:
    generate_inbox(tmp_path / "again", records=RECORDS, seed=SEED)
    assert files_of(tmp_path / "again") == files_of(inbox.root)


def test_another_seed_gives_another_inbox(tmp_path: Path) -> None:
    a = generate_inbox(tmp_path / "a", records=300, seed=1, days=2)
    b = generate_inbox(tmp_path / "b", records=300, seed=2, days=2)
    assert files_of(tmp_path / "a") != files_of(tmp_path / "b")
    assert a.records_per_system == b.records_per_system


def test_records_per_system_in_realistic_proportions(inbox: Inbox) -> None:
    counts = inbox.summary.records_per_system
    assert set(counts) == set(SYSTEMS)
    assert counts["asynjavisph"] > counts["melior"] > counts["t4"] > counts["obstetrix"]
    assert counts["obstetrix"] > counts["journalia"]
    assert 0.9 * RECORDS < sum(counts.values()) < 1.2 * RECORDS
    for system in SYSTEMS:
        ids = {record_id(system, r) for d in inbox.of(system) for r in d.rows}
        ids.discard("")
        assert counts[system] - inbox.summary.bad_rows <= len(ids) <= counts[system]


# ---------------------------------------------------------------------------
# Formats


def test_melior_is_cp1252_with_crlf_and_quoted_newlines(inbox: Inbox) -> None:
    data = (inbox.history("melior").folder / "journal.csv").read_bytes()
    text = data.decode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert data.count(b"\n") == data.count(b"\r\n"), "every line end is CRLF"
    assert text.startswith("DokumentID;Version;Personnummer;")
    for char in "åäöÅÄÖé€“”–":
        assert char in text, char
    texts = [str(r["Text"]) for r in inbox.history("melior").rows]
    assert any("\n" in t for t in texts), "a quoted field holds a newline"
    assert any(";" in t and '"' in t for t in texts)


def test_encodings_and_byte_order_marks(inbox: Inbox) -> None:
    journalia = (inbox.history("journalia").folder / "export.csv").read_bytes()
    assert journalia.startswith(b"\xef\xbb\xbfid,version,pnr,")
    for system, name in [
        ("obstetrix", "journal.csv"),
        ("t4", "entries.csv"),
        ("asynjavisph", "records.ndjson"),
    ]:
        data = (inbox.history(system).folder / name).read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        data.decode("utf-8")
    t4 = (inbox.history("t4").folder / "entries.csv").read_text(encoding="utf-8")
    assert t4.startswith("journal_id|rev|patient_pnr|")
    blocks = (inbox.history("blocks").folder / "blocks.csv").read_text(encoding="utf-8")
    assert blocks.startswith("block_id,version,pnr,scope,hsa_id,valid_from,valid_to,status\n")


def test_asynjavisph_json_shape(inbox: Inbox) -> None:
    rows = inbox.history("asynjavisph").rows
    keys = Counter(frozenset(r) for r in rows)
    assert any("keyword" not in k for k in keys), "keyword absent"
    assert any("signedAt" not in k for k in keys), "signedAt absent"
    assert any(r.get("keyword", "x") is None for r in rows), "keyword null"
    assert any("signedAt" in r and r["signedAt"] is None for r in rows), "signedAt null"
    offsets = {str(r["documentedAt"])[-6:] for r in rows} | {
        str(r["documentedAt"])[-1:] for r in rows
    }
    assert {"Z", "+01:00", "+02:00"} <= set(offsets)
    good = [r for r in rows if isinstance(r["rev"], int)]
    assert all(
        isinstance(r["signed"], bool) and isinstance(r["retracted"], bool)
        for r in good
        if r["signed"] in (True, False)
    )
    pnrs = [pnr_of("asynjavisph", r) for r in rows]
    assert any("-" in p for p in pnrs) and any("-" not in p for p in pnrs)


def test_personnummer_formats_per_system(inbox: Inbox) -> None:
    for system in SYSTEMS:
        pnrs = [pnr_of(system, r) for d in inbox.of(system) for r in d.rows]
        if system == "t4":
            assert all(re.fullmatch(r"\d{8}-\d{4}", p) for p in pnrs)
        elif system != "asynjavisph":
            assert all(re.fullmatch(r"\d{12}", p) for p in pnrs)
        invalid = [p for p, ok in zip(pnrs, valid_pnrs(pnrs), strict=True) if not ok]
        assert len(invalid) <= inbox.summary.bad_rows
        # Two forced (bad checksum, month 13) plus about 0.1 % random ones.
        assert len(invalid) <= 2 + 0.01 * len(pnrs)


def test_patients_cover_children_samordning_and_leap_days(inbox: Inbox) -> None:
    pnrs = {pnr_of(s, r).replace("-", "") for s in SYSTEMS for r in inbox.history(s).rows}
    ordered = sorted(pnrs)
    pnrs = {p for p, ok in zip(ordered, valid_pnrs(ordered), strict=True) if ok}
    years = Counter(int(p[:4]) for p in pnrs)
    assert min(years) < 1940 and max(years) >= 2015
    assert sum(n for y, n in years.items() if 2005 <= y <= 2020) > 0.1 * len(pnrs)
    assert any(int(p[6:8]) > 60 for p in pnrs), "samordningsnummer"
    assert len({p for p in pnrs if p[4:8] == "0229"}) >= 2, "29 February birthdays"


# ---------------------------------------------------------------------------
# Content that exercises the rules


START_DATES = {
    "melior": [date(2016, 6, 1)],
    "asynjavisph": [date(2016, 11, 1), date(2019, 11, 1)],
    "obstetrix": [date(2019, 5, 15)],
    "journalia": [date(2019, 4, 1)],
    "t4": [date(2020, 12, 1), date(2020, 12, 8), date(2022, 3, 1)],
}


def test_documentation_dates_on_both_sides_of_every_start(inbox: Inbox) -> None:
    for system, starts in START_DATES.items():
        days = [
            local_date(system, str(r[field_of(system, "doc")])) for r in inbox.history(system).rows
        ]
        known = [d for d in days if d is not None]
        assert min(known) < date(2011, 1, 1)
        for start in starts:
            assert any(d < start for d in known) and any(d >= start for d in known), start
    melior_rows = inbox.history("melior").rows
    for specialty, start in [
        ("Psykiatri, vuxen", date(2018, 9, 3)),
        ("Klinisk genetik", date(2019, 11, 1)),
    ]:
        days = [
            local_date("melior", str(r["Dokumenttid"]))
            for r in melior_rows
            if r["Specialitet"] == specialty
        ]
        assert any(d and d < start for d in days) and any(d and d >= start for d in days)


def test_near_midnight_times_and_the_t4_connection_week(inbox: Inbox) -> None:
    t4 = [str(r["entry_datetime"]) for r in inbox.history("t4").rows]
    assert "2020-11-30T23:30:00Z" in t4 and "2020-11-30T22:59:00Z" in t4
    week = Counter(local_date("t4", t) for t in t4)
    assert sum(week[date(2020, 12, d)] for d in range(1, 8)) >= 5
    assert week[date(2020, 12, 8)] >= 1
    asynja = [str(r["documentedAt"]) for r in inbox.history("asynjavisph").rows]
    assert "2016-10-31T23:30:00Z" in asynja
    melior_times = [str(r["Dokumenttid"]) for r in inbox.history("melior").rows]
    assert "2016-05-31 23:59" in melior_times


def test_no_valid_row_is_documented_after_its_business_date(inbox: Inbox) -> None:
    future = 0
    for (system, business_date), delivery in inbox.deliveries.items():
        if system == "blocks":
            continue
        for row in delivery.rows:
            day = local_date(system, str(row[field_of(system, "doc")]))
            if day is not None and day > business_date:
                future += 1
    # Only the bad rows of kind future_date (one forced per system, and random ones).
    assert len(SYSTEMS) <= future <= inbox.summary.bad_rows


def test_units_exempt_name_only_and_lookalikes(inbox: Inbox) -> None:
    for table in UNITS.values():
        for unit in table.ordinary + table.lookalike:
            assert not exempt_by_name(unit.name), unit.name
            assert unit.hsa not in EXEMPT_IDS
        for unit in table.name_only:
            assert exempt_by_name(unit.name) and unit.hsa not in EXEMPT_IDS, unit.name
        # Listed units are exempt by HSA-id; not every listed name matches a pattern
        # ("Kris och traumaenheten" lacks the hyphen of `kris- ?och traumaenhet`).
        for unit in table.exempt:
            assert unit.hsa in EXEMPT_IDS, unit.name
    assert 150 <= len({u.hsa for t in UNITS.values() for u in t.ordinary}) <= 260
    rows = [(s, r) for s in SYSTEMS for r in inbox.history(s).rows]
    units = [unit_of(s, r) for s, r in rows]
    listed = [u for u in units if u[0] in EXEMPT_IDS]
    assert 0.015 * len(units) < len(listed) < 0.06 * len(units)
    assert any(name != name.strip() or name.isupper() or "  " in name for _, name in listed)
    names = {name for _, name in units}
    assert "Ungdomsmottagningen Nyby" in names
    assert {"Utvägen hälsocentral", "Stigens vårdcentral", "Bupkiss barnklinik"} <= names


def test_specialties_keywords_and_codes(inbox: Inbox) -> None:
    melior_rows = inbox.history("melior").rows
    specialties = {r["Specialitet"] for r in melior_rows}
    assert {"Psykiatri, vuxen", "Klinisk genetik", "Internmedicin", "Kirurgi"} <= specialties
    keywords = [str(r["Sokord"]) for r in melior_rows]
    assert "  tidiga   HYPOTESER " in keywords
    assert "Våldsutsatthet i nära relationer" in keywords
    asynja_keywords = {r.get("keyword") for r in inbox.history("asynjavisph").rows}
    assert any(k and "våldsutsatthet" in k.lower() for k in asynja_keywords)
    unknown = {
        "melior": "INTYG",
        "asynjavisph": "certificate",
        "obstetrix": "EPIKRIS",
        "journalia": "RECEPT",
        "t4": "INTYG",
    }
    for system, spec in SYSTEMS.items():
        codes = Counter(code_of(system, r) for r in inbox.history(system).rows)
        listed = {c for c, _ in spec.codes} - {unknown[system]}
        assert listed <= set(codes), system
        assert codes[unknown[system]] >= 1, system


def code(value: object) -> str:
    """A CSV field as written, or a JSON boolean as the contract writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_unsigned_and_retracted_rates(inbox: Inbox) -> None:
    for system in SYSTEMS:
        r = SYSTEMS[system].roles
        rows = inbox.history(system).rows
        unsigned = sum(code(row[r.signed]) == r.signed_codes[1] for row in rows)
        retracted = sum(code(row[r.retracted]) == r.retracted_codes[0] for row in rows)
        assert 0.01 * len(rows) < unsigned < 0.15 * len(rows), system
        assert 1 <= retracted < 0.05 * len(rows), system
    unsigned_feb = [
        row
        for row in inbox.history("melior").rows
        if row["Signerad"] == "N" and str(row["Dokumenttid"]).startswith("2022-02-20")
    ]
    assert unsigned_feb


def test_deltas_hold_new_higher_lower_and_equal_versions(inbox: Inbox) -> None:
    for system in SYSTEMS:
        deliveries = inbox.of(system)
        version_field = field_of(system, "version")
        seen: dict[str, int] = {}
        kinds: Counter[str] = Counter()
        for n, delivery in enumerate(deliveries):
            current = dict(seen)
            for row in delivery.rows:
                rid = record_id(system, row)
                try:
                    version = int(str(row[version_field]))
                except ValueError:
                    continue
                if n > 0:
                    if rid not in current:
                        kinds["new"] += 1
                    elif version > current[rid]:
                        kinds["higher"] += 1
                    elif version == current[rid]:
                        kinds["equal"] += 1
                    else:
                        kinds["lower"] += 1
                seen[rid] = max(version, seen.get(rid, 0))
        assert kinds["new"] and kinds["higher"] and (kinds["equal"] + kinds["lower"]), system
        # The delta is small: about 0.3 % of the records per day.
        assert len(deliveries[1].rows) < 0.05 * len(deliveries[0].rows) + 20
    melior_versions = Counter()
    for delivery in inbox.of("melior")[1:]:
        for row in delivery.rows:
            melior_versions[row["Status"]] += 1
    assert melior_versions["MAKULERAD"] >= 1, "a retraction arrives in a delta"


def test_history_holds_two_versions_of_some_records(inbox: Inbox) -> None:
    ids = Counter(record_id("melior", r) for r in inbox.history("melior").rows)
    assert any(n >= 2 for rid, n in ids.items() if rid)


# ---------------------------------------------------------------------------
# Bad rows


def test_every_kind_of_bad_row_is_present(inbox: Inbox) -> None:
    for system in SYSTEMS:
        history = inbox.history(system)
        by_id = {record_id(system, r): r for r in history.rows}
        r = SYSTEMS[system].roles
        forced = {
            s.what.removeprefix("bad row: "): s.record_id.split(":", 1)[1]
            for s in SCENARIOS
            if s.record_id.startswith(system + ":") and s.what.startswith("bad row: ")
        }
        assert set(forced) == set(BAD_KINDS) - {"empty_id"}
        row = by_id[forced["bad_date"]]
        assert local_date(system, str(row[r.doc])) is None
        assert not valid_pnr(pnr_of(system, by_id[forced["bad_checksum"]]))
        impossible = pnr_of(system, by_id[forced["impossible_birth"]]).replace("-", "")
        assert impossible[4:6] == "13" and not valid_pnr(impossible)
        assert not re.fullmatch(r"[1-9]\d*", str(by_id[forced["bad_version"]][r.version]))
        assert local_date(system, str(by_id[forced["future_date"]][r.doc])) > history.business_date
        assert code(by_id[forced["bad_flag"]][r.signed]) not in r.signed_codes
        assert "" in by_id, "a row with an empty id"
        assert len(history.malformed) == 1, "one row with a wrong field count / broken JSON"
    # Per system: one of each kind and one malformed; plus the scenario bad updates.
    updates = sum(s.what.startswith("bad update") for s in SCENARIOS)
    assert inbox.summary.bad_rows >= len(SYSTEMS) * (len(BAD_KINDS) + 1) + updates


def test_a_later_delta_holds_a_bad_update_of_an_existing_record(inbox: Inbox) -> None:
    updates = [s for s in SCENARIOS if s.what.startswith("bad update")]
    assert updates
    for scenario in updates:
        system, rid = scenario.record_id.split(":", 1)
        second = {record_id(system, r): r for r in inbox.of(system)[1].rows}
        first = {record_id(system, r): r for r in inbox.history(system).rows}
        version = field_of(system, "version")
        assert int(str(second[rid][version])) == int(str(first[rid][version])) + 1


def test_melior_reads_through_the_reference_adapter(inbox: Inbox) -> None:
    """Only the intended bad rows fail the Melior adapter's checks."""
    bad_ids = {s.record_id for s in SCENARIOS if s.expected_reason == "invalid_record"}
    errors = 0
    for delivery in inbox.of("melior"):
        frame = pl.DataFrame(
            delivery.rows, schema=dict.fromkeys(SYSTEMS["melior"].columns, pl.String)
        ).with_columns(source_row=pl.int_range(1, len(delivery.rows) + 1, dtype=pl.Int64))
        context = DeliveryContext(delivery.folder.name, "melior", delivery.business_date)
        out = melior.to_canonical(frame.lazy(), context).collect()
        failed = out.filter(pl.col("error").is_not_null())
        errors += failed.height
        scenario_ids = {s.record_id for s in SCENARIOS if s.record_id.startswith("melior:")}
        wrongly_failed = set(failed["record_id"].drop_nulls()) & (scenario_ids - bad_ids)
        assert not wrongly_failed
    assert len(BAD_KINDS) <= errors <= inbox.summary.bad_rows


def test_without_bad_rows_everything_reads(tmp_path: Path) -> None:
    summary = generate_inbox(tmp_path, records=500, seed=3, days=2, bad_rows=False)
    assert summary.bad_rows == 0
    inbox = load(tmp_path, summary)
    for (system, business_date), delivery in inbox.deliveries.items():
        assert not delivery.malformed
        if system == "blocks":
            continue
        assert all(valid_pnrs([pnr_of(system, row) for row in delivery.rows]))
        for row in delivery.rows:
            assert record_id(system, row)
            day = local_date(system, str(row[field_of(system, "doc")]))
            assert day is not None and day <= business_date


# ---------------------------------------------------------------------------
# Blocks, scenarios, bad deliveries


def test_blocks_cover_scopes_states_and_versions(inbox: Inbox) -> None:
    history = inbox.history("blocks").rows
    later = [r for d in inbox.of("blocks")[1:] for r in d.rows]
    rows = history + later
    assert {r["scope"] for r in rows} == {"ALL", "UNIT"}
    assert all((r["hsa_id"] == "") == (r["scope"] == "ALL") for r in rows)
    assert {r["status"] for r in history} == {"active", "revoked"}
    assert any(r["status"] == "revoked" for r in later)
    assert any(r["valid_to"] == "" for r in history), "open-ended"
    assert any(r["valid_to"] and date.fromisoformat(r["valid_to"]) < END for r in history)
    assert any(date.fromisoformat(r["valid_from"]) > END for r in history), "not yet valid"
    assert any(int(r["version"]) > 1 for r in rows)
    assert all(valid_pnrs([r["pnr"] for r in rows]))
    patients = {pnr_of(s, r).replace("-", "") for s in SYSTEMS for r in inbox.history(s).rows}
    assert {r["pnr"] for r in rows} <= patients, "every block covers a patient with records"


def test_scenario_rows_are_all_written(inbox: Inbox) -> None:
    written = {f"{s}:{record_id(s, r)}" for s in SYSTEMS for r in inbox.history(s).rows}
    assert {s.record_id for s in SCENARIOS} <= written
    reasons = {s.expected_reason for s in SCENARIOS}
    assert reasons == {
        "shown",
        "invalid_record",
        "retracted",
        "info_type_not_connected",
        "before_system_start",
        "before_psychiatry_start",
        "before_genetics_start",
        "before_children_start",
        "exempt_unit",
        "exempt_term",
        "patient_block",
    }


def test_bad_deliveries_are_spoilt_each_in_its_own_way(tmp_path: Path) -> None:
    summary = generate_inbox(tmp_path, records=300, seed=5, days=3, bad_deliveries=True)
    last = business_dates(END, 3)[-1].isoformat()
    inbox = load(tmp_path, summary)

    def check(system: str) -> list[str]:
        folder = tmp_path / system / last
        control_path = folder / "_control.json"
        if not control_path.exists():
            return ["missing control"]
        control = json.loads(control_path.read_text(encoding="utf-8"))
        problems = []
        if control["system"] != system:
            problems.append("other system")
        data = (folder / control["file"]).read_bytes()
        if control["sha256"] != hashlib.sha256(data).hexdigest():
            problems.append("sha256")
        if control["rows"] != inbox.deliveries[(system, date.fromisoformat(last))].count:
            problems.append("rows")
        return problems

    assert check("obstetrix") == ["sha256"]
    assert check("journalia") == ["rows"]
    assert check("t4") == ["missing control"]
    assert check("blocks") == ["other system"]
    assert check("melior") == [] and check("asynjavisph") == []
    assert (tmp_path / "t4" / last / "entries.csv").exists()
