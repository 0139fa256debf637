"""The pages people read: the public "what is shown" page and the analysts' report.

The page's wording lives in the rule file's `[page]` table without changing
`rules_version`; the page is rendered from the rule file alone; the report from
`analytics.duckdb` alone. Browser tests open both in Debian's headless chromium
with the network off and check what a person sees.
"""

from __future__ import annotations

from pathlib import Path

from tests.decide_fixtures import default_rules, rules_text, write_rules
from transforms.rules import load_rules

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
    import pytest

    from transforms.rules import RuleFileError

    edited = rules_text().replace("[page]\n", '[page]\ncolour = "blue"\n')
    with pytest.raises(RuleFileError, match=r"page\.colour: unknown key"):
        load_rules(write_rules(tmp_path, edited))
