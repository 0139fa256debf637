"""The example rule files of other regions (rules/examples/): each loads, and the real
job run on the sample inbox under it decides a few records as that region's rules say.

The pinned records are from the bundled sample inbox (data/inbox); the comment by
each says what the region's rule is and what the region's own file decides instead,
so a pin shows the example file at work, not the default rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from flows.cli import main
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.trust_support import SAMPLE_INBOX
from transforms.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "rules" / "examples"
AS_OF = date(2026, 11, 25)
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.toml"))


def test_there_are_the_three_example_files_of_issue_12() -> None:
    assert [path.stem for path in EXAMPLE_FILES] == [
        "blekinge",
        "jamtland_harjedalen",
        "vasternorrland",
    ]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_example_rule_file_loads(path: Path) -> None:
    assert load_rules(path).version.startswith("example-")


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_example_names_the_page_it_follows(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert re.search(r'page "Journalen" on 1177', text)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_example_hsa_ids_are_marked_as_placeholders(path: Path) -> None:
    rules = load_rules(path)
    listed = [*rules.exempt_units.hsa_ids]
    for scope in rules.later_scopes:
        if scope.units is not None:
            listed += scope.units.hsa_ids
    for unit in listed:
        assert "PLACEHOLDER" in unit.hsa_id and "PLACEHOLDER" in unit.name


# --- the real job on the sample inbox, once per example file ------------------------------

Decisions = Callable[[str], pl.DataFrame]


@pytest.fixture(scope="module")
def decided(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Decisions]:
    """`decided(name)`: the decisions of `jvn run` under rules/examples/<name>.toml."""
    runs: dict[str, pl.DataFrame] = {}

    def run(name: str) -> pl.DataFrame:
        if name not in runs:
            root = tmp_path_factory.mktemp(name)
            with pytest.MonkeyPatch.context() as environment:
                environment.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
                environment.delenv("JVN_PSEUDONYM_KEY_FILE", raising=False)
                code = main(
                    [
                        "run",
                        "--as-of",
                        AS_OF.isoformat(),
                        "--inbox",
                        str(SAMPLE_INBOX),
                        "--warehouse",
                        str(root / "warehouse.duckdb"),
                        "--analytics",
                        str(root / "analytics.duckdb"),
                        "--feed",
                        str(root / "feed"),
                        "--rules",
                        str(EXAMPLES / f"{name}.toml"),
                        "--no-report",
                    ]
                )
            assert code == 0
            with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as connection:
                runs[name] = connection.sql(
                    "SELECT record_id, source_system, info_type, documented_date, visible, reason "
                    "FROM decisions"
                ).pl()
        return runs[name]

    yield run


def _reasons(frame: pl.DataFrame) -> dict[str, str]:
    return dict(zip(frame["record_id"], frame["reason"], strict=True))


@pytest.mark.slow
def test_vasternorrland_decides_the_pinned_sample_records(decided: Decisions) -> None:
    reasons = _reasons(decided("vasternorrland"))
    # Information from 2015-01-01 (region.toml: asynjavisph from 2016-11-01).
    assert reasons["asynjavisph:AV-100057"] == "shown"  # Hälsocentralen, 2015-04-22
    # Child and youth psychiatry connected from 2018-10-01, matched by unit name.
    assert reasons["melior:D-1000042"] == "before_scope_start"  # BUP Borås, 2015-03-03
    # The youth clinic is a later-connected part here, not exempt (region.toml: exempt).
    assert reasons["asynjavisph:AV-100011"] == "shown"  # Ungdomsmottagningen, 2021-05-03
    # Forensic psychiatry exempt.
    assert reasons["melior:D-1000121"] == "exempt_unit"  # Rättspsykiatri, 2022-07-18


@pytest.mark.slow
def test_blekinge_decides_the_pinned_sample_records(decided: Decisions) -> None:
    reasons = _reasons(decided("blekinge"))
    # Habilitation connected from 2016-12-01 (by unit); shown after that.
    assert reasons["asynjavisph:AV-100189"] == "before_scope_start"  # 2016-09-23
    assert reasons["asynjavisph:AV-100036"] == "shown"  # Habiliteringen, 2019-06-05
    # Youth clinic and public dental care exempt.
    assert reasons["asynjavisph:AV-100011"] == "exempt_unit"
    assert reasons["t4:FTV-3000000"] == "exempt_unit"  # Folktandvården Dalen
    # Unsigned notes wait 14 days, always (region.toml: at once since 2022-03-01).
    assert reasons["asynjavisph:AV-101354"] == "unsigned_delay"  # unsigned, 2026-11-24


@pytest.mark.slow
def test_jamtland_harjedalen_decides_the_pinned_sample_records(decided: Decisions) -> None:
    reasons = _reasons(decided("jamtland_harjedalen"))
    # Attention signals from 2021-06-08, a start of their own (region.toml: shown).
    assert reasons["melior:D-1000025"] == "before_system_start"  # 2021-03-02
    assert reasons["melior:D-1000987"] == "shown"  # attention signal, 2022-06-17
    # Other types from 2018-01-15 (region.toml hides this child's note until 2019-11-01).
    assert reasons["asynjavisph:AV-100149"] == "shown"  # note, 2018-02-23
    assert reasons["asynjavisph:AV-100015"] == "exempt_term"


@pytest.mark.slow
def test_jamtland_harjedalen_shows_no_type_before_its_own_start(decided: Decisions) -> None:
    frame = decided("jamtland_harjedalen")
    starts = {
        "vaccination": date(2019, 12, 1),
        "referral": date(2021, 6, 8),
        "attention_signal": date(2021, 6, 8),
    }
    early = frame.filter(
        pl.col("info_type").replace_strict(starts, default=None, return_dtype=pl.Date)
        > pl.col("documented_date")
    )
    assert early.height > 0
    assert early["visible"].to_list() == [False] * early.height


@pytest.mark.slow
def test_later_connected_units_are_hidden_before_their_start_in_both_unit_examples(
    decided: Decisions,
) -> None:
    for name, start in (("vasternorrland", date(2018, 10, 1)), ("blekinge", date(2016, 12, 1))):
        frame = decided(name)
        scoped = frame.filter(pl.col("reason") == "before_scope_start")
        assert scoped.height > 0, name
        assert (scoped["documented_date"] < start).all(), name


# --- a release delay makes a nightly run decide everything ---------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_release_delay_in_force_makes_the_nightly_run_full(tmp_path: Path) -> None:
    # Time alone moves a release delay's decisions, as it does the unsigned delay's.
    from tests.test_incremental import DAY_1, DAY_2, _history_inbox, _runs
    from tests.test_nightly import Job
    from transforms.rules import default_rules_path

    job = Job(tmp_path)
    _history_inbox(job.inbox)
    rules = tmp_path / "rules.toml"
    rules.write_text(
        default_rules_path().read_text(encoding="utf-8")
        + '\n[[release_delay]]\ninfo_type = "lab_result"\nfrom = 1900-01-01\ndays = 14\n',
        encoding="utf-8",
    )

    assert job.run(DAY_1, "--rules", str(rules)) == 0
    assert job.run(DAY_2, "--rules", str(rules)) == 0

    assert _runs(job) == [(4, 4), (4, 4)]
