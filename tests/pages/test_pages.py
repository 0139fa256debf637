"""The pages people read: the public "what is shown" page and the analysts' report.

The page's wording lives in the rule file's `[page]` table without changing
`rules_version`; the page is rendered from the rule file alone; the report from
`analytics.duckdb` alone. Browser tests open both in Debian's headless chromium
with the network off and check what a person sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.cli import main
from flows.pages.public import build_page, swedish_date
from flows.pages.report import build_report, render
from flows.pages.report_charts import warm_up
from tests.browser import CHARTS_DRAWN, PHONE, Browser, Visit, chromium_path
from tests.conftest import TEST_PSEUDONYM_KEY
from tests.decide_fixtures import default_rules, rules_text, write_rules
from tests.inbox_builder import melior_row, write_delivery
from tests.test_nightly import DAY_2, Job
from tests.trust_support import sample_run_storage
from transforms.rules import RuleFileError, RuleSet, default_rules_path, load_rules

DEFAULT_RULES = str(default_rules_path())

PAGE_MARKER = "# --- The public page's wording"
DEFAULT_RULES_VERSION = "2026.1+1af464428307"
"""The default file's rules_version before the `[page]` table existed: decisions keep it."""


# --- the wording in the rule file ---------------------------------------------


def test_page_wording_leaves_the_default_rules_version_as_it_was() -> None:
    assert default_rules().page is not None
    assert default_rules().rules_version == DEFAULT_RULES_VERSION


def test_rule_file_without_page_wording_has_the_same_rules_version(tmp_path: Path) -> None:
    without_page = rules_text().split(PAGE_MARKER)[0]
    rules = load_rules(write_rules(tmp_path, without_page))
    assert rules.page is None
    assert rules.rules_version == default_rules().rules_version


def test_editing_page_wording_does_not_change_rules_version(tmp_path: Path) -> None:
    edited = rules_text().replace('title = "Det här visas i 1177 Journalen"', 'title = "Annat"')
    assert load_rules(write_rules(tmp_path, edited)).rules_version == DEFAULT_RULES_VERSION


def test_unknown_key_in_page_wording_is_refused(tmp_path: Path) -> None:
    edited = rules_text().replace("[page]\n", '[page]\ncolour = "blue"\n')
    with pytest.raises(RuleFileError, match=r"page\.colour: unknown key"):
        load_rules(write_rules(tmp_path, edited))


# --- the public page, in a real browser -----------------------------------------

REGION_PAGE_UNIT_GROUPS = (
    "Barn- och ungdomspsykiatri (BUP)",
    "Borås bedömningsteam försäkringsmedicin",
    "Flykting- barnmottagningen, Angered",
    "Göteborg bedömningsteam försäkringsmedicin",
    "Kris och traumaenheten",
    "Mottagningen för unga vuxna",
    "Mödra-barnhälsovårdsteamet i Haga",
    "Rättspsykiatri",
    "SMC (Sexualmedicinskt centrum)",
    "STD-STI-mottagningar (könsmottagningar)",
    "Ungdomsmottagningar",
    "Utväg (Skövde/Borås)",
)
"""The exempt units as the region's present page names them (rules.md §3)."""

PAGE_DATE = "2026-11-25"
NEW_UNIT = '{ hsa_id = "SE2321000131-E000000019004", name = "Ungdomsmottagningen Nyby" },'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: while Playwright's sync API is started, its event
    # loop counts as running in this thread, and Prefect's sync-or-async methods
    # (`Flow.to_deployment`) then hand later tests a coroutine instead of a result.
    executable = chromium_path()
    if executable is None:
        pytest.fail("no chromium: install Debian's (apt-get install chromium), as .ci/run does")
    opened = Browser(executable)
    yield opened
    opened.close()


def make_page(tmp_path: Path, *extra: str, name: str = "page.html") -> Path:
    out = tmp_path / name
    status = main(["page", "--out", str(out), "--as-of", PAGE_DATE, *extra])
    assert status == 0
    return out


@pytest.fixture(scope="module")
def default_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_page(tmp_path_factory.mktemp("page"))


def proposal(tmp_path: Path) -> Path:
    """The rule change the approvers review: T4 moved to 2020-12-08, one unit added."""
    text = rules_text().replace("start = 2020-12-01", "start = 2020-12-08")
    text = text.replace('version = "2026.1"', 'version = "2026.2"')
    text = text.replace("hsa_ids = [\n", f"hsa_ids = [\n  {NEW_UNIT}\n", 1)
    group = 'units = ["Ungdomsmottagningen Angered",'
    assert text.count(group) == 1
    text = text.replace(
        group, 'units = ["Ungdomsmottagningen Nyby", "Ungdomsmottagningen Angered",'
    )
    return write_rules(tmp_path, text, "proposal.toml")


def seen_text(browser: Browser, path: Path) -> str:
    with browser.open(path, PHONE) as visit:
        assert visit.console_errors == []
        assert visit.refused_requests == []
        return " ".join(visit.text().split())


@pytest.mark.browser
def test_public_page_shows_every_system_with_its_start_date_and_information_types(
    browser: Browser, default_page: Path
) -> None:
    rules = default_rules()
    assert rules.page is not None
    text = seen_text(browser, default_page)
    for key, system in rules.systems.items():
        name = rules.page.systems[key].public_name
        assert name in text
        assert f"Visar information från och med {swedish_date(system.start)}" in text
        for code in system.info_types:
            assert rules.page.info_types[code] in text, (key, code)


@pytest.mark.browser
def test_public_page_shows_every_part_connected_later_with_its_date(
    browser: Browser, default_page: Path
) -> None:
    rules = default_rules()
    assert rules.page is not None
    with browser.open(default_page, PHONE) as visit:
        parts = {
            key: visit.evaluate(
                f"[...document.querySelectorAll('#system-{key} .later-parts li')]"
                ".map(li => li.innerText.replace(/\\s+/g, ' ').trim())"
            )
            for key in rules.systems
        }
    for scope in rules.later_scopes:
        name = rules.page.later_scopes[scope.reason]
        if scope.patient_under_age is not None:
            name = f"{name} under {scope.patient_under_age} år"
        for key in scope.systems:
            assert f"{name}: visas från och med {swedish_date(scope.start)}" in parts[key]
    assert parts["t4"] == []


@pytest.mark.browser
def test_public_page_names_the_exempt_units_as_the_regions_page_does(
    browser: Browser, default_page: Path
) -> None:
    with browser.open(default_page, PHONE) as visit:
        shown = visit.evaluate(
            "[...document.querySelectorAll('.exempt-units > li')].map(li => li.innerText.trim())"
        )
    assert shown == list(REGION_PAGE_UNIT_GROUPS)


def test_every_listed_exempt_unit_belongs_to_a_group_on_the_page() -> None:
    rules = default_rules()
    assert rules.page is not None
    grouped = {name for group in rules.page.exempt_unit_groups for name in group.units}
    assert {unit.name for unit in rules.exempt_units.hsa_ids} == grouped
    assert build_page(rules, as_of=date(2026, 11, 25)).warnings == []


@pytest.mark.browser
def test_public_page_lists_every_exempt_term(browser: Browser, default_page: Path) -> None:
    with browser.open(default_page, PHONE) as visit:
        shown = visit.evaluate(
            "[...document.querySelectorAll('.exempt-terms li')].map(li => li.innerText.trim())"
        )
    assert shown == list(default_rules().exempt_terms.terms)


@pytest.mark.browser
def test_public_page_says_what_a_citizen_can_block_and_how_to_order_a_copy(
    browser: Browser, default_page: Path
) -> None:
    wording = default_rules().page
    assert wording is not None
    text = seen_text(browser, default_page)
    for paragraph in (*wording.blocking, *wording.copy_ordering):
        assert " ".join(paragraph.split()) in text
    assert "menprövning" in text


@pytest.mark.browser
def test_public_page_states_the_unsigned_delay_in_force_on_its_date(
    browser: Browser, default_page: Path, tmp_path: Path
) -> None:
    assert "Anteckningar som ännu inte är signerade visas direkt." in seen_text(
        browser, default_page
    )
    before_2022 = make_page(tmp_path, "--as-of", "2021-06-01")
    text = seen_text(browser, before_2022)
    assert "Anteckningar som inte är signerade visas 14 dagar efter att de skrevs." in text
    assert "Från och med 1 mars 2022: Anteckningar som ännu inte är signerade visas direkt." in text


@pytest.mark.browser
def test_public_page_is_swedish_fits_a_phone_and_loads_nothing_from_the_network(
    browser: Browser, default_page: Path, tmp_path: Path
) -> None:
    with browser.open(default_page, PHONE) as visit:
        assert visit.evaluate("document.documentElement.lang") == "sv"
        assert visit.evaluate("document.querySelectorAll('h1').length") == 1
        assert visit.evaluate("document.querySelectorAll('h2').length") >= 5
        assert visit.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert visit.evaluate("document.querySelectorAll('script, link, img').length") == 0
        visit.screenshot(tmp_path / "page.png")
        assert visit.console_errors == []
        assert visit.refused_requests == []
    assert (tmp_path / "page.png").stat().st_size > 10_000


@pytest.mark.browser
def test_public_page_prints(browser: Browser, default_page: Path) -> None:
    with browser.open(default_page) as visit:
        pdf = visit.page.pdf(format="A4")
        assert visit.console_errors == []
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000


@pytest.mark.browser
def test_compared_page_marks_the_moved_start_date_with_the_date_in_force_today(
    browser: Browser, tmp_path: Path
) -> None:
    page = make_page(tmp_path, "--rules", str(proposal(tmp_path)), "--compare", DEFAULT_RULES)
    with browser.open(page, PHONE) as visit:
        marked = visit.evaluate("document.querySelector('#system-t4 .start .is-ändrad').innerText")
        start = " ".join(
            visit.evaluate("document.querySelector('#system-t4 .start').innerText").split()
        )
        assert visit.console_errors == []
    assert "8 december 2020" in marked
    assert "(i dag: 1 december 2020)" in start


@pytest.mark.browser
def test_compared_page_marks_an_added_exempt_unit_in_its_group(
    browser: Browser, tmp_path: Path
) -> None:
    page = make_page(tmp_path, "--rules", str(proposal(tmp_path)), "--compare", DEFAULT_RULES)
    with browser.open(page, PHONE) as visit:
        added = visit.evaluate(
            "[...document.querySelectorAll('.exempt-units > li')]"
            ".filter(li => li.querySelector('.is-ny'))"
            ".map(li => li.textContent.replace(/\\s+/g, ' ').trim())"
        )
        changes = visit.evaluate(
            "[...document.querySelectorAll('.changes li')].map(li => li.innerText)"
        )
    assert added == ["Ungdomsmottagningar Nytt: Ungdomsmottagningen Nyby"]
    assert any("Folktandvården (T4)" in line and "8 december 2020" in line for line in changes)
    assert any("Ungdomsmottagningen Nyby" in line for line in changes)
    assert len(changes) == 2


def test_page_of_unchanged_rules_compared_with_themselves_marks_nothing() -> None:
    page = build_page(default_rules(), as_of=date(2026, 11, 25), old=default_rules())
    assert page.changes == []


def test_markdown_page_holds_the_same_facts(tmp_path: Path) -> None:
    text = make_page(tmp_path, name="page.md").read_text(encoding="utf-8")
    assert text.startswith("# Det här visas i 1177 Journalen")
    for group in REGION_PAGE_UNIT_GROUPS:
        assert f"- {group}\n" in text
    assert "Visar information från och med 1 december 2020" in text


def test_page_from_a_rule_file_without_wording_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write_rules(tmp_path, rules_text().split(PAGE_MARKER)[0])
    status = main(["page", "--rules", str(rules), "--out", str(tmp_path / "p.html")])
    assert status == 2
    assert "no [page] table" in capsys.readouterr().err
    assert not (tmp_path / "p.html").exists()


# --- the analysts' report, from the sample's analytics.duckdb --------------------

REPORT_CHARTS = 7
"""Share by month, reasons (latest and over runs), deliveries, quarantine, changes, rule change."""


@dataclass(frozen=True)
class SampleRuns:
    """The committed sample run twice: 2026-11-24 under the region's rules, then
    2026-11-25 under a proposal that moves T4's start (a recorded rule change)."""

    analytics: Path
    report: Path
    rules: Path
    """The rules of the latest run."""


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> SampleRuns:
    root = tmp_path_factory.mktemp("sample-report")
    data = root / "data"
    storage = sample_run_storage(data)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("JVN_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
        assert main(["run", "--as-of", "2026-11-24", *storage]) == 0
        rules = proposal(root)
        assert main(["run", "--as-of", "2026-11-25", *storage, "--rules", str(rules)]) == 0
    return SampleRuns(data / "analytics.duckdb", data / "analytics.html", rules)


def sql(runs: SampleRuns, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(runs.analytics), read_only=True) as connection:
        return connection.execute(query).fetchall()


def table_rows(visit: Visit, name: str) -> list[list[str]]:
    return list(
        visit.evaluate(
            f"[...document.querySelectorAll('table[data-table=\"{name}\"] tbody tr')]"
            ".map(tr => [...tr.cells].map(td => td.textContent.trim()))"
        )
    )


@pytest.fixture(scope="module")
def report_visit(sample_runs: SampleRuns, browser: Browser) -> Iterator[Visit]:
    with browser.open(sample_runs.report) as visit:
        yield visit


@pytest.mark.slow
def test_run_writes_the_report_beside_the_analysts_database(sample_runs: SampleRuns) -> None:
    assert sample_runs.report.is_file()
    assert sample_runs.report.stat().st_mtime >= sample_runs.analytics.stat().st_mtime
    assert oct(sample_runs.report.stat().st_mode & 0o777) == oct(0o640)


@pytest.mark.slow
def test_reasons_by_run_in_analytics_end_at_the_latest_decisions(sample_runs: SampleRuns) -> None:
    latest = sql(
        sample_runs,
        "SELECT reason, records FROM reasons_by_run "
        "WHERE run_seq = (SELECT max(run_seq) FROM reasons_by_run) ORDER BY reason",
    )
    counted = sql(
        sample_runs,
        "SELECT reason, count(*) FROM record_visibility GROUP BY reason ORDER BY reason",
    )
    assert latest == counted


@pytest.mark.slow
@pytest.mark.browser
def test_report_shows_visible_share_per_system_as_sql_counts_it(
    sample_runs: SampleRuns, report_visit: Visit
) -> None:
    expected = [
        [system, str(records), str(visible), f"{100.0 * visible / records:.1f} %"]
        for system, records, visible in sql(
            sample_runs,
            "SELECT source_system, count(*), count(*) FILTER (WHERE visible) "
            "FROM record_visibility GROUP BY ALL ORDER BY ALL",
        )
    ]
    assert table_rows(report_visit, "share-by-system") == expected
    months = sql(
        sample_runs,
        "SELECT count(DISTINCT date_trunc('month', documented_date)) FROM record_visibility",
    )[0][0]
    assert len(table_rows(report_visit, "share-by-month")) == months


@pytest.mark.slow
@pytest.mark.browser
def test_report_shows_records_per_reason_at_each_run_as_sql_counts_them(
    sample_runs: SampleRuns, report_visit: Visit
) -> None:
    shown = {row[0]: row[1:] for row in table_rows(report_visit, "reasons-by-run")}
    latest = dict(
        sql(sample_runs, "SELECT reason, count(*) FROM record_visibility GROUP BY reason")
    )
    assert {reason: int(counts[-1]) for reason, counts in shown.items()} == latest
    first = dict(sql(sample_runs, "SELECT reason, records FROM reasons_by_run WHERE run_seq = 1"))
    assert {reason: int(counts[0]) for reason, counts in shown.items() if int(counts[0])} == first


@pytest.mark.slow
@pytest.mark.browser
def test_report_lists_the_units_exempt_by_name_only(
    sample_runs: SampleRuns, report_visit: Visit
) -> None:
    listed = tuple(load_rules(sample_runs.rules).exempt_units.normalised_hsa_ids)
    expected = [
        [hsa_id, name, str(records)]
        for hsa_id, name, records in sql(
            sample_runs,
            "SELECT care_unit_hsa_id, min(care_unit_name), count(*) FROM record_visibility "
            "WHERE list_contains(reasons, 'exempt_unit') "
            f"AND upper(trim(care_unit_hsa_id)) NOT IN {listed} "
            "GROUP BY ALL ORDER BY ALL",
        )
    ]
    assert expected
    assert table_rows(report_visit, "units-exempt-by-name-only") == expected


@pytest.mark.slow
@pytest.mark.browser
def test_report_lists_unknown_codes_with_their_counts(
    sample_runs: SampleRuns, report_visit: Visit
) -> None:
    rows = table_rows(report_visit, "unknown-codes")
    per_system: dict[str, int] = {}
    for system, _code, records in rows:
        per_system[system] = per_system.get(system, 0) + int(records)
    other = sql(
        sample_runs,
        "SELECT source_system, count(*) FROM record_visibility WHERE info_type = 'other' "
        "GROUP BY ALL",
    )
    assert per_system == dict(other)


@pytest.mark.slow
@pytest.mark.browser
def test_report_shows_deliveries_per_night_and_quarantined_rows(
    sample_runs: SampleRuns, report_visit: Visit
) -> None:
    expected = [
        [night.isoformat(), system, status, str(count), str(rows), str(loaded), str(quarantined)]
        for night, system, status, count, rows, loaded, quarantined in sql(
            sample_runs,
            # A delivery left for later has no counts yet: the report shows 0 for it.
            "SELECT business_date, system, status, count(*), coalesce(sum(rows), 0), "
            "coalesce(sum(records_loaded), 0), coalesce(sum(rows_quarantined), 0) "
            "FROM deliveries GROUP BY ALL ORDER BY ALL",
        )
    ]
    assert table_rows(report_visit, "deliveries-by-night") == expected
    quarantined = sum(int(row[3]) for row in table_rows(report_visit, "quarantine"))
    assert quarantined == sql(sample_runs, "SELECT sum(rows) FROM quarantine_summary")[0][0]
    assert table_rows(report_visit, "rejected-deliveries") == []


@pytest.mark.slow
@pytest.mark.browser
def test_report_shows_what_the_rule_change_did(
    sample_runs: SampleRuns, report_visit: Visit
) -> None:
    rows = table_rows(report_visit, "rule-changes")
    assert rows, "the second run installed new rules"
    assert {row[0] for row in rows} == {"2"}
    assert (
        sum(int(row[-1]) for row in rows)
        == sql(
            sample_runs,
            "SELECT count(*) FROM decision_changes WHERE run_id = "
            "(SELECT run_id FROM runs WHERE run_seq = 2)",
        )[0][0]
    )
    t4_hidden = sql(
        sample_runs,
        "SELECT count(*) FROM decision_changes c JOIN runs r USING (run_id) "
        "WHERE r.run_seq = 2 AND c.source_system = 't4' AND c.direction = 'hidden' "
        "AND c.after_reason = 'before_system_start'",
    )[0][0]
    assert t4_hidden > 0
    assert ["hidden", "t4", "before_system_start", str(t4_hidden)] in [row[4:] for row in rows]


@pytest.mark.slow
@pytest.mark.browser
def test_every_chart_in_the_report_is_drawn(report_visit: Visit) -> None:
    charts = report_visit.evaluate(CHARTS_DRAWN)
    assert len(charts) == REPORT_CHARTS
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 100, chart
        assert chart["marks"] > 0, chart


@pytest.mark.slow
@pytest.mark.browser
def test_report_opens_offline_without_errors_and_fits_a_phone(
    sample_runs: SampleRuns, browser: Browser, tmp_path: Path
) -> None:
    with browser.open(sample_runs.report, PHONE) as visit:
        assert visit.evaluate("document.querySelectorAll('script, link, img').length") == 0
        assert visit.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        visit.screenshot(tmp_path / "report.png")
        pdf = visit.page.pdf(format="A4")
        assert visit.console_errors == []
        assert visit.refused_requests == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert pdf.startswith(b"%PDF")


@pytest.mark.slow
def test_report_holds_no_record_id_and_no_patient_key(sample_runs: SampleRuns) -> None:
    html = sample_runs.report.read_text(encoding="utf-8")
    identifiers = sql(sample_runs, "SELECT record_id, patient_key FROM record_visibility")
    for record_id, patient_key in identifiers:
        assert record_id not in html
        assert patient_key is None or patient_key not in html


@pytest.mark.slow
def test_report_command_writes_the_same_report(sample_runs: SampleRuns, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--analytics", str(sample_runs.analytics), "--out", str(out)]) == 0
    assert out.read_bytes() == sample_runs.report.read_bytes()


@pytest.mark.slow
def test_every_report_chart_passes_vega_lite_schema_checks_and_the_page_is_the_same(
    sample_runs: SampleRuns,
) -> None:
    # The job draws the report with Altair's schema checks off (they cost 0.4-0.6 s of
    # a 10 M report); with them on, every chart is checked and the page is the same.
    checked = render(build_report(sample_runs.analytics, validate_charts=True))
    assert checked == sample_runs.report.read_text(encoding="utf-8")


def test_the_report_warm_up_draws_sample_charts_that_pass_vega_lite_schema_checks() -> None:
    warm_up(validate_charts=True)


def test_report_of_a_missing_database_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["report", "--analytics", str(tmp_path / "none.duckdb")])
    assert status == 2
    assert "no analysts' database" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pseudonym_key")
def test_run_with_no_report_writes_no_report(tmp_path: Path) -> None:
    job = Job(tmp_path)
    write_delivery(job.inbox, "melior", DAY_2, [melior_row("D-1")])
    assert job.run(DAY_2, "--no-report") == 0
    assert job.analytics.is_file()
    assert not job.analytics.with_suffix(".html").exists()


# --- other regions' rule kinds on the page ----------------------------------------


def other_region_rules(tmp_path: Path, lab_start: str = "2017-01-01") -> RuleSet:
    text = rules_text().replace(
        "start = 2016-11-01",
        f"start = 2016-11-01\ninfo_type_starts = {{ lab_result = {lab_start} }}",
    )
    delay = '[[release_delay]]\ninfo_type = "lab_result"\nfrom = 1900-01-01\ndays = 14\n\n'
    text = text.replace(PAGE_MARKER, delay + PAGE_MARKER)
    return load_rules(write_rules(tmp_path, text, f"other-{lab_start}.toml"))


def test_page_shows_an_information_type_that_starts_after_its_system(tmp_path: Path) -> None:
    page = build_page(other_region_rules(tmp_path), as_of=date(2026, 11, 25))
    primary = next(system for system in page.systems if system.key == "asynjavisph")
    assert "Provsvar (från och med 1 januari 2017)" in [item.text for item in primary.info_types]
    assert "Vaccinationer" in [item.text for item in primary.info_types]


def test_page_shows_the_release_delay_in_force(tmp_path: Path) -> None:
    page = build_page(other_region_rules(tmp_path), as_of=date(2026, 11, 25))
    assert [item.text for item in page.release_delays] == [
        "Provsvar: visas 14 dagar efter att det dokumenterades"
    ]
    assert build_page(default_rules(), as_of=date(2026, 11, 25)).release_delays == []


def test_compared_page_marks_a_moved_information_type_start(tmp_path: Path) -> None:
    old = other_region_rules(tmp_path)
    new = other_region_rules(tmp_path, lab_start="2018-03-01")
    page = build_page(new, as_of=date(2026, 11, 25), old=old)
    primary = next(system for system in page.systems if system.key == "asynjavisph")
    marked = [item for item in primary.info_types if item.mark]
    assert [(item.text, item.before) for item in marked] == [
        ("Provsvar (från och med 1 mars 2018)", "Provsvar (från och med 1 januari 2017)")
    ]
    assert len(page.changes) == 1
