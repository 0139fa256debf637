"""Rule changes end to end: `jvn whatif`, the real rerun, `jvn diff`, the feed's change set.

One small inbox is run once with the default rules (module fixture); each
scenario copies that installation, proposes a rule file made by editing the
text of `rules/region.toml` (so the scenarios follow the default file), and
asserts the exact set of records that change: first by `jvn whatif` (which must
leave the warehouse and feed untouched), then by the real rerun's
`decision_changes`, then by `jvn diff`, then in the new snapshot's change set.

The helpers here (`Job`, `build_inbox`, ...) are shared with test_diff.py and
test_rollback.py.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli import main
from flows.common.feed_folder import CURRENT, live_snapshot
from flows.publish.change_set import CHANGE_SET_FILE, apply_change_set
from tests.inbox_builder import block_row, melior_row, t4_row, write_delivery
from transforms.rules import default_rules_path

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DELIVERED = date(2026, 11, 24)
AS_OF = date(2026, 11, 25)
OTHER_PATIENT = "194107086995"
UNIT_B = "SE2321000131-E000000000301"
UNIT_B_NAME = "Vårdcentralen Björkdalen"
NEW_TERM = "Sociala förhållanden"
TEST_KEY = "test-only-pseudonym-key-0123456789"
JOB_TABLES = ("runs", "decisions", "decision_history", "decision_changes", "run_deliveries")


@dataclass(frozen=True)
class Job:
    """One isolated installation of the job (inbox, warehouse, analytics, feed)."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def warehouse(self) -> Path:
        return self.root / "data" / "warehouse.duckdb"

    @property
    def analytics(self) -> Path:
        return self.root / "data" / "analytics.duckdb"

    @property
    def feed(self) -> Path:
        return self.root / "data" / "feed"

    def run(self, as_of: date = AS_OF, *extra: str) -> int:
        return main(
            [
                "run", "--as-of", as_of.isoformat(), "--inbox", str(self.inbox),
                "--warehouse", str(self.warehouse), "--analytics", str(self.analytics),
                "--feed", str(self.feed), "--partitions", "4", *extra,
            ]
        )  # fmt: skip

    def whatif(self, rules: Path, export: Path, *extra: str) -> int:
        return main(
            [
                "whatif", "--rules", str(rules), "--warehouse", str(self.warehouse),
                "--partitions", "4", "--export", str(export), *extra,
            ]
        )  # fmt: skip

    def diff(self, export: Path, *extra: str) -> int:
        return main(["diff", "--warehouse", str(self.warehouse), "--export", str(export), *extra])

    def query(self, sql: str, parameters: dict[str, object] | None = None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            return connection.execute(sql, parameters).fetchall()

    def latest_run_id(self) -> str:
        return str(
            self.query(
                "SELECT run_id FROM runs WHERE status = 'published' ORDER BY run_seq DESC LIMIT 1"
            )[0][0]
        )

    def recorded_changes(self, run_id: str | None = None) -> set[tuple[str, str]]:
        """(record_id, direction) the warehouse recorded for a run (default: the latest)."""
        rows = self.query(
            "SELECT record_id, direction FROM decision_changes WHERE run_id = $run_id",
            {"run_id": run_id or self.latest_run_id()},
        )
        return {(str(r), str(d)) for r, d in rows}

    def table_counts(self) -> dict[str, int]:
        return {t: int(self.query(f"SELECT count(*) FROM {t}")[0][0]) for t in JOB_TABLES}

    def feed_listing(self) -> tuple[str, list[str]]:
        current = (self.feed / CURRENT).read_text(encoding="utf-8")
        return current, sorted(str(p.relative_to(self.feed)) for p in self.feed.rglob("*"))


def changes_in(export: Path) -> set[tuple[str, str]]:
    """(record_id, direction) in a `--export` file."""
    frame = pl.read_parquet(export) if export.suffix == ".parquet" else pl.read_csv(export)
    return {(str(r), str(d)) for r, d in frame.select("record_id", "direction").iter_rows()}


def snapshot_rows(snapshot: Path) -> pl.DataFrame:
    """The visible records of one snapshot, as a reader sees them (its manifest's files)."""
    import json

    manifest = json.loads((snapshot / "manifest.json").read_text(encoding="utf-8"))
    frames = [pl.read_parquet(snapshot / entry["name"]) for entry in manifest["files"]]
    return pl.concat(frames).sort("record_id")


def change_set(snapshot: Path) -> pl.DataFrame:
    return pl.read_parquet(snapshot / CHANGE_SET_FILE)


def proposed_rules(
    folder: Path, name: str, replacements: list[tuple[str, str]], *, bump: bool = True
) -> Path:
    """The default rule file with each `old` text replaced once by `new`, version raised."""
    text = default_rules_path().read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, f"rules/region.toml no longer holds {old!r} once"
        text = text.replace(old, new)
    if bump:
        text, bumped = re.subn(r'(?m)^version = "([^"]+)"', r'version = "\1-proposed"', text)
        assert bumped == 1
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def build_inbox(inbox: Path) -> None:
    """The scenario records: each exists to be affected, or not, by one rule change."""
    write_delivery(inbox, "melior", DELIVERED, [
        melior_row("M-1"),
        melior_row("M-2", HSAid=UNIT_B, Enhetsnamn=UNIT_B_NAME),
        melior_row("M-3", HSAid=UNIT_B, Enhetsnamn=UNIT_B_NAME, Dokumenttid="2022-05-06 08:00",
                   Signeringstid="2022-05-06 09:00"),
        melior_row("M-4", HSAid=UNIT_B, Enhetsnamn=UNIT_B_NAME, Dokumenttid="2015-01-01 10:00",
                   Signeringstid="2015-01-01 11:00"),
        melior_row("M-5", Sokord=NEW_TERM),
        melior_row("M-6", HSAid=UNIT_B, Enhetsnamn=UNIT_B_NAME, Sokord="  sociala   FÖRHÅLLANDEN "),
        melior_row("M-7", Sokord=NEW_TERM, Dokumenttid="2015-02-01 10:00",
                   Signeringstid="2015-02-01 11:00"),
        melior_row("M-8", Sokord="Sociala förhållanden i hemmet"),
    ])  # fmt: skip
    write_delivery(inbox, "t4", DELIVERED, [
        t4_row("T-1", entry_datetime="2020-11-30T12:00:00+01:00"),
        t4_row("T-2", entry_datetime="2020-12-01T00:30:00+01:00"),
        t4_row("T-3", entry_datetime="2020-12-04T10:00:00+01:00"),
        t4_row("T-4", entry_datetime="2020-12-07T23:30:00+01:00"),
        # 23:30 UTC on 7 December is 00:30 on 8 December in Stockholm: stays shown.
        t4_row("T-5", entry_datetime="2020-12-07T23:30:00+00:00"),
        t4_row("T-6", entry_datetime="2020-12-08T09:00:00+01:00"),
        t4_row("T-7", entry_datetime="2020-12-03T09:00:00+01:00", patient_pnr="19410708-6995"),
        t4_row("T-8"),
    ])  # fmt: skip
    write_delivery(inbox, "blocks", DELIVERED, [block_row("B-1", pnr=OTHER_PATIENT)])


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Job]:
    """The scenario inbox, run once with the default rules."""
    job = Job(tmp_path_factory.mktemp("baseline"))
    build_inbox(job.inbox)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JVN_PSEUDONYM_KEY", TEST_KEY)
        assert job.run() == 0
    yield job


@pytest.fixture
def job(baseline: Job, tmp_path: Path) -> Job:
    """A private copy of the baseline installation."""
    copy = Job(tmp_path / "job")
    shutil.copytree(baseline.root, copy.root, symlinks=True)
    return copy


def decided(job: Job) -> dict[str, tuple[bool, str]]:
    return {r: (bool(v), str(reason)) for r, v, reason in job.query(
        "SELECT record_id, visible, reason FROM decisions"
    )}  # fmt: skip


def test_baseline_decides_as_the_scenarios_assume(baseline: Job) -> None:
    shown = {r for r, (visible, _) in decided(baseline).items() if visible}
    assert shown == {
        "melior:M-1", "melior:M-2", "melior:M-3", "melior:M-5", "melior:M-6", "melior:M-8",
        "t4:T-2", "t4:T-3", "t4:T-4", "t4:T-5", "t4:T-6", "t4:T-8",
    }  # fmt: skip
    assert decided(baseline)["t4:T-7"] == (False, "patient_block")


def rule_change_round_trip(
    job: Job, tmp_path: Path, rules: Path, expected: set[tuple[str, str]]
) -> None:
    """whatif == real rerun == jvn diff == expected; the change set rebuilds the new feed."""
    before_counts, before_feed = job.table_counts(), job.feed_listing()
    previous = live_snapshot(job.feed)
    assert previous is not None

    assert job.whatif(rules, tmp_path / "whatif.parquet") == 0

    whatif = changes_in(tmp_path / "whatif.parquet")
    assert whatif == expected
    assert job.table_counts() == before_counts, "whatif must record nothing"
    assert job.feed_listing() == before_feed, "whatif must not touch the feed"

    assert job.run(AS_OF, "--rules", str(rules)) == 0

    assert job.recorded_changes() == expected
    assert job.diff(tmp_path / "diff.csv") == 0
    assert changes_in(tmp_path / "diff.csv") == expected

    live = live_snapshot(job.feed)
    assert live is not None and live.name != previous.name
    changes = change_set(live.path)
    newly_hidden = {r for r, d in expected if d == "hidden"}
    assert set(changes.filter(pl.col("change") == "disappeared")["record_id"]) == newly_hidden
    assert changes.filter(pl.col("change") == "appeared").is_empty()
    assert apply_change_set(snapshot_rows(previous.path), changes).equals(snapshot_rows(live.path))


def test_moving_t4_start_to_8_december_hides_exactly_t4_records_of_1_to_7_december(
    job: Job, tmp_path: Path
) -> None:
    rules = proposed_rules(tmp_path, "t4", [("start = 2020-12-01", "start = 2020-12-08")])
    in_window = {
        r for (r,) in job.query(
            "SELECT record_id FROM decisions WHERE source_system = 't4' AND visible "
            "AND documented_date BETWEEN DATE '2020-12-01' AND DATE '2020-12-07'"
        )
    }  # fmt: skip
    assert in_window == {"t4:T-2", "t4:T-3", "t4:T-4"}

    rule_change_round_trip(
        job,
        tmp_path,
        rules,
        {(r, "hidden") for r in in_window} | {("t4:T-7", "reason_changed")},
    )
    assert decided(job)["t4:T-7"] == (False, "before_system_start")


def test_adding_an_hsa_id_to_exempt_units_hides_exactly_that_units_visible_records(
    job: Job, tmp_path: Path
) -> None:
    rules = proposed_rules(
        tmp_path,
        "unit",
        [("hsa_ids = [\n", f'hsa_ids = [\n  {{ hsa_id = "{UNIT_B}", name = "{UNIT_B_NAME}" }},\n')],
    )
    unit_visible = {
        r for (r,) in job.query(
            "SELECT record_id FROM decisions WHERE care_unit_hsa_id = $unit AND visible",
            {"unit": UNIT_B},
        )
    }  # fmt: skip
    assert unit_visible == {"melior:M-2", "melior:M-3", "melior:M-6"}

    rule_change_round_trip(
        job,
        tmp_path,
        rules,
        {(r, "hidden") for r in unit_visible} | {("melior:M-4", "reason_changed")},
    )
    assert decided(job)["melior:M-2"] == (False, "exempt_unit")


def test_adding_an_exempt_term_hides_exactly_the_visible_records_under_it(
    job: Job, tmp_path: Path
) -> None:
    rules = proposed_rules(tmp_path, "term", [("terms = [\n", f'terms = [\n  "{NEW_TERM}",\n')])

    rule_change_round_trip(
        job,
        tmp_path,
        rules,
        {
            ("melior:M-5", "hidden"),
            ("melior:M-6", "hidden"),
            ("melior:M-7", "reason_changed"),
        },
    )
    assert decided(job)["melior:M-5"] == (False, "exempt_term")
    assert decided(job)["melior:M-8"] == (True, "shown")


def test_by_reason_shows_the_reasons_gained_where_the_main_reason_stays(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = proposed_rules(tmp_path, "term", [("terms = [\n", f'terms = [\n  "{NEW_TERM}",\n')])
    (before_reason,) = [reason for (reason,) in job.query(
        "SELECT reason FROM decisions WHERE record_id = 'melior:M-7'"
    )]  # fmt: skip
    capsys.readouterr()

    assert job.whatif(rules, tmp_path / "whatif.csv", "--by", "reason") == 0

    out = capsys.readouterr().out
    assert f"{before_reason} -> {before_reason}" not in out
    assert f"{before_reason}: reasons gained exempt_term" in out


def test_rerun_with_unchanged_rules_changes_nothing(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = live_snapshot(job.feed)
    assert previous is not None
    assert job.whatif(default_rules_path(), tmp_path / "whatif.csv") == 0
    assert changes_in(tmp_path / "whatif.csv") == set()

    assert job.run() == 0

    assert job.recorded_changes() == set()
    capsys.readouterr()
    assert job.diff(tmp_path / "diff.csv") == 0
    assert "no record changed visibility or reason" in capsys.readouterr().out
    assert changes_in(tmp_path / "diff.csv") == set()
    live = live_snapshot(job.feed)
    assert live is not None and live.name != previous.name
    assert change_set(live.path).is_empty()
    assert live.manifest["change_set"]["since_snapshot"] == previous.name
    assert snapshot_rows(live.path).equals(snapshot_rows(previous.path))


def test_whatif_with_a_bad_rule_file_exits_2_and_records_nothing(
    job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\nsurprise = 1\n', encoding="utf-8")
    counts = job.table_counts()

    assert job.whatif(bad, tmp_path / "w.csv") == 2

    error = capsys.readouterr().err.strip()
    assert error.startswith("jvn: ") and "\n" not in error
    assert job.table_counts() == counts
    assert not any((job.warehouse.parent / "work").glob("whatif-*"))
