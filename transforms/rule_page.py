"""The public page's wording, kept in the rule file's `[page]` table.

The citizen-facing page ("what is shown in 1177 Journalen") is rendered from the
rule file alone (`jvn page`): the rules give the facts (systems, dates, exempt
units, terms, delays) and this table gives the words a person reads instead of
codes: each system's public name, each information type and later-connected
part in Swedish, the public names of the exempt unit groups, and the texts on
blocking and on ordering a copy.

None of it decides anything, so `RuleSet.content_sha256` leaves it out: a
wording fix does not change `rules_version`, so it neither marks every decision
as made under new rules nor forces a full re-decision of every record.

Same model settings as the rules (unknown keys, wrong types and blank texts are
refused), so a typo in the wording is caught when the file is loaded.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _list_as_tuple(value: object) -> object:
    # TOML arrays arrive as lists; the frozen model keeps tuples (as in transforms.rules).
    return tuple(value) if isinstance(value, list) else value


Text = Annotated[str, AfterValidator(_non_blank)]
TextList = Annotated[tuple[Text, ...], BeforeValidator(_list_as_tuple)]


class PageSystem(BaseModel):
    """How the page names one connected system."""

    model_config = _MODEL_CONFIG

    public_name: Text
    """What patients call it, e.g. "Sjukhusens journalsystem (Melior)"."""
    description: Text | None = None
    """One sentence on who documents in it."""


class ExemptUnitGroup(BaseModel):
    """A group of exempt units as the public page names it (e.g. all BUP units as one)."""

    model_config = _MODEL_CONFIG

    public_name: Text
    units: TextList = ()
    """The listed units this group stands for, by their `name` under `[exempt_units] hsa_ids`
    (names, not HSA-ids: the ids are the rules, and each is written once in the file)."""


class PageWording(BaseModel):
    """The `[page]` table: every word on the public page that is not a rule."""

    model_config = _MODEL_CONFIG

    title: Text
    intro: Text
    systems: dict[str, PageSystem]
    """Keyed like `[systems]`."""
    info_types: dict[str, Text]
    """Information-type code → Swedish name."""
    later_scopes: dict[str, Text]
    """Later-scope reason code → Swedish name of the part connected later."""
    exempt_units_intro: Text
    exempt_unit_groups: Annotated[tuple[ExemptUnitGroup, ...], BeforeValidator(_list_as_tuple)]
    exempt_terms_intro: Text
    blocking: TextList
    """Paragraphs on what a citizen can block."""
    copy_ordering: TextList
    """Paragraphs on ordering a copy of what is not shown (with the harm assessment)."""
