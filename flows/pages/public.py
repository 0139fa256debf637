"""The citizens' page "Det här visas i 1177 Journalen", rendered from the rule file alone.

Facts come from the rules (systems, start dates, information types, parts
connected later, exempt units and terms, the unsigned delay in force on the
page's date); words come from the rule file's `[page]` table
(transforms.rule_page). With an old rule file to compare against, every fact
the proposal alters is marked (new, changed with its old value, removed) and
listed at the top, for the people who approve the change.

`build_page` is pure (rules in, a view model out); `render` turns the view
model into HTML or Markdown with the Jinja2 templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal

from flows.pages import environment
from transforms.canonical import SYSTEMS
from transforms.rule_page import PageWording
from transforms.rules import LaterScope, RuleSet, SystemRule, normalise_text

MONTHS: Final = (
    "januari", "februari", "mars", "april", "maj", "juni",
    "juli", "augusti", "september", "oktober", "november", "december",
)  # fmt: skip

NEW: Final = "ny"
CHANGED: Final = "ändrad"
REMOVED: Final = "borttagen"

Mark = Literal["ny", "ändrad", "borttagen"] | None


class PageError(Exception):
    """The page cannot be made from this rule file (one line, for exit 2)."""


def swedish_date(day: date) -> str:
    """`1 juni 2016`: how the region's page writes a date."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def unsigned_text(days: int | None) -> str:
    """What the page says about unsigned notes under a delay of `days` (None: never shown)."""
    if days is None:
        return "Anteckningar som inte är signerade visas inte."
    if days == 0:
        return "Anteckningar som ännu inte är signerade visas direkt."
    unit = "dag" if days == 1 else "dagar"
    return f"Anteckningar som inte är signerade visas {days} {unit} efter att de skrevs."


def delay_text(days: int | None) -> str:
    """What the page says about an information type's release delay."""
    if days is None:
        return "visas inte än"
    if days == 0:
        return "visas direkt"
    return f"visas {days} {'dag' if days == 1 else 'dagar'} efter att det dokumenterades"


def _type_label(label: str, system: SystemRule | None, code: str) -> str:
    """A type's name, with its own start when it starts after its system."""
    if system is None:
        return label
    start = system.start_for(code)
    if start == system.start:
        return label
    return f"{label} (från och med {swedish_date(start)})"


@dataclass(frozen=True)
class Item:
    """One fact as a person reads it; under --compare, how the proposal alters it."""

    text: str
    mark: Mark = None
    before: str | None = None
    """The text under the old rules, when `mark` is CHANGED."""


@dataclass(frozen=True)
class LaterPart:
    """A part of a system connected later than the system itself."""

    name: Item
    start: Item


@dataclass(frozen=True)
class SystemSection:
    key: str
    name: Item
    description: str | None
    start: Item
    info_types: list[Item]
    later_parts: list[LaterPart]


@dataclass(frozen=True)
class UnitGroup:
    """An exempt unit group by its public name; under --compare, the units added or removed."""

    name: Item
    units: list[Item]


@dataclass(frozen=True)
class PublicPage:
    wording: PageWording
    version: str
    rules_version: str
    old_rules_version: str | None
    as_of: str
    systems: list[SystemSection]
    exempt_groups: list[UnitGroup]
    terms: list[Item]
    unsigned: list[Item]
    release_delays: list[Item] = field(default_factory=list)
    """Information types shown only some days after they are documented."""
    changes: list[str] = field(default_factory=list)
    """Under --compare: every alteration, one plain line each."""
    warnings: list[str] = field(default_factory=list)
    """Wording missing for a fact (the fact is still shown, by its code or own name)."""

    @property
    def compare(self) -> bool:
        return self.old_rules_version is not None


def build_page(rules: RuleSet, *, as_of: date, old: RuleSet | None = None) -> PublicPage:
    """The page's content: the rules' facts in the `[page]` wording, marked against `old`."""
    if rules.page is None:
        raise PageError("the rule file has no [page] table: the public page's wording lives there")
    return _Builder(rules, old, rules.page, as_of).page()


class _Builder:
    """Walks the facts once, collecting the change lines and wording warnings on the way."""

    def __init__(self, rules: RuleSet, old: RuleSet | None, wording: PageWording, as_of: date):
        self.rules, self.old, self.wording, self.as_of = rules, old, wording, as_of
        self.comparing = old is not None
        self.changes: list[str] = []
        self.warnings: list[str] = []

    def page(self) -> PublicPage:
        return PublicPage(
            wording=self.wording,
            version=self.rules.version,
            rules_version=self.rules.rules_version,
            old_rules_version=self.old.rules_version if self.old is not None else None,
            as_of=swedish_date(self.as_of),
            systems=[section for key in SYSTEMS if (section := self._system(key))],
            exempt_groups=self._exempt_groups(),
            terms=self._terms(),
            unsigned=self._unsigned(),
            release_delays=self._release_delays(),
            changes=self.changes,
            warnings=self.warnings,
        )

    def _item(
        self, new: str | None, old: str | None, subject: str, *, compare: bool = True
    ) -> Item:
        """The item for a value under the new and the old rules; notes the change."""
        if not (self.comparing and compare):
            return Item(new if new is not None else old or "")
        if new is None:
            self.changes.append(f"{subject}: tas bort – {old}")
            return Item(old or "", REMOVED)
        if old is None:
            self.changes.append(f"{subject}: nytt – {new}")
            return Item(new, NEW)
        if new != old:
            self.changes.append(f"{subject}: {new} (i dag: {old})")
            return Item(new, CHANGED, before=old)
        return Item(new)

    # --- systems and the parts connected later --------------------------------

    def _system(self, key: str) -> SystemSection | None:
        new_rule = self.rules.systems.get(key)
        old_rule = self.old.systems.get(key) if self.old is not None else None
        if new_rule is None and old_rule is None:
            return None
        public = self.wording.systems.get(key)
        if public is None:
            self.warnings.append(f"system {key!r} has no [page.systems.{key}]: shown by its code")
        display = public.public_name if public is not None else key
        name = self._item(
            display if new_rule else None, display if old_rule else None, "Journalsystem"
        )
        # A system added or removed as a whole is marked once, on its name.
        whole = name.mark is None
        start = self._item(
            swedish_date(new_rule.start) if new_rule else None,
            swedish_date(old_rule.start) if old_rule else None,
            f"{display}, visar information från och med",
            compare=whole,
        )
        new_types = new_rule.info_types if new_rule else ()
        old_types = old_rule.info_types if old_rule else ()
        info_types = []
        for code in (*new_types, *(code for code in old_types if code not in new_types)):
            label = self.wording.info_types.get(code)
            if label is None:
                self.warnings.append(f"information type {code!r} has no [page.info_types] name")
                label = code
            info_types.append(
                self._item(
                    _type_label(label, new_rule, code) if code in new_types else None,
                    _type_label(label, old_rule, code) if code in old_types else None,
                    f"{display}, informationstyp",
                    compare=whole,
                )
            )
        return SystemSection(
            key=key,
            name=name,
            description=public.description if public is not None else None,
            start=start,
            info_types=info_types,
            later_parts=self._later_parts(key, display, compare=whole),
        )

    def _scope_name(self, scope: LaterScope) -> str:
        # A scope's own name (other regions' unit scopes) before the wording per reason.
        name = scope.name or self.wording.later_scopes.get(scope.reason)
        if name is None:
            self.warnings.append(f"later scope {scope.reason!r} has no [page.later_scopes] name")
            name = scope.specialty or scope.reason
        if scope.patient_under_age is not None:
            name = f"{name} under {scope.patient_under_age} år"
        return name

    def _later_parts(self, system: str, display: str, *, compare: bool) -> list[LaterPart]:
        def scopes(rules: RuleSet | None) -> dict[tuple[str, str | None, str | None], LaterScope]:
            if rules is None:
                return {}
            return {
                (scope.reason, scope.specialty, scope.name): scope
                for scope in rules.later_scopes
                if system in scope.systems
            }

        new, old = scopes(self.rules), scopes(self.old)
        parts = []
        for key in (*new, *(key for key in old if key not in new)):
            new_scope, old_scope = new.get(key), old.get(key)
            new_name = self._scope_name(new_scope) if new_scope else None
            old_name = self._scope_name(old_scope) if old_scope else None
            name = self._item(
                new_name, old_name, f"{display}, del som visas senare", compare=compare
            )
            start = self._item(
                swedish_date(new_scope.start) if new_scope else None,
                swedish_date(old_scope.start) if old_scope else None,
                f"{display}, {new_name or old_name}, visas från och med",
                compare=compare and name.mark not in (NEW, REMOVED),
            )
            parts.append(LaterPart(name=name, start=start))
        return parts

    # --- exempt units and terms -----------------------------------------------

    def _exempt_groups(self) -> list[UnitGroup]:
        def units(rules: RuleSet | None) -> dict[str, str]:
            if rules is None:
                return {}
            return {unit.hsa_id.strip().upper(): unit.name for unit in rules.exempt_units.hsa_ids}

        new, old = units(self.rules), units(self.old)
        grouped: set[str] = set()
        groups = []
        for group in self.wording.exempt_unit_groups:
            names = set(group.units)
            members_new = [hsa for hsa, name in new.items() if name in names]
            members_old = [hsa for hsa, name in old.items() if name in names]
            known = {*new.values(), *old.values()}
            for unit_name in group.units:
                if unit_name not in known:
                    self.warnings.append(
                        f"exempt unit group {group.public_name!r} names {unit_name!r}, "
                        "which is not a listed exempt unit"
                    )
            if not members_new and not members_old:
                continue
            grouped.update(members_new, members_old)
            name = self._item(
                group.public_name if members_new else None,
                group.public_name if members_old else None,
                "Undantagen mottagning",
            )
            added_or_removed = self._unit_items(
                members_new, members_old, new, old, compare=name.mark is None
            )
            groups.append(UnitGroup(name=name, units=added_or_removed))
        for hsa in (*new, *(hsa for hsa in old if hsa not in new)):
            if hsa in grouped:
                continue
            unit_name = new.get(hsa) or old[hsa]
            self.warnings.append(
                f"exempt unit {unit_name!r} is in no [[page.exempt_unit_groups]]: "
                "shown by its own name"
            )
            item = self._item(
                unit_name if hsa in new else None,
                unit_name if hsa in old else None,
                "Undantagen mottagning",
            )
            groups.append(UnitGroup(name=item, units=[]))
        return groups

    def _unit_items(
        self,
        members_new: list[str],
        members_old: list[str],
        new: dict[str, str],
        old: dict[str, str],
        *,
        compare: bool,
    ) -> list[Item]:
        """Under --compare, the units of a group that the proposal adds or removes."""
        if not (self.comparing and compare):
            return []
        items = []
        for hsa in members_new:
            if hsa not in old:
                items.append(self._item(new[hsa], None, "Undantagen enhet"))
        for hsa in members_old:
            if hsa not in new:
                items.append(self._item(None, old[hsa], "Undantagen enhet"))
        return items

    def _terms(self) -> list[Item]:
        def terms(rules: RuleSet | None) -> dict[str, str]:
            if rules is None:
                return {}
            return {normalise_text(term): term for term in rules.exempt_terms.terms}

        new, old = terms(self.rules), terms(self.old)
        # Same term when equal after normalising (as the rules compare keywords).
        items = [
            self._item(text, text if key in old else None, "Sökord") for key, text in new.items()
        ]
        items += [self._item(None, text, "Sökord") for key, text in old.items() if key not in new]
        return items

    def _patterns_changed(self) -> None:
        """Name patterns are not shown to citizens, but the approvers must see them change."""
        if self.old is None:
            return
        new = set(self.rules.exempt_units.name_patterns)
        old = set(self.old.exempt_units.name_patterns)
        for pattern in sorted(new - old):
            self.changes.append(f"Namnmönster för undantagna mottagningar: nytt – {pattern}")
        for pattern in sorted(old - new):
            self.changes.append(f"Namnmönster för undantagna mottagningar: tas bort – {pattern}")

    # --- unsigned notes -------------------------------------------------------

    def _unsigned(self) -> list[Item]:
        self._patterns_changed()
        new_days = self.rules.unsigned_delay_days(self.as_of)
        old_days = self.old.unsigned_delay_days(self.as_of) if self.old is not None else None
        items = [
            self._item(unsigned_text(new_days), unsigned_text(old_days), "Osignerade anteckningar")
        ]

        def coming(rules: RuleSet | None) -> dict[date, str]:
            if rules is None:
                return {}
            return {
                delay.valid_from: (
                    f"Från och med {swedish_date(delay.valid_from)}: {unsigned_text(delay.days)}"
                )
                for delay in rules.unsigned_delay
                if delay.valid_from > self.as_of
            }

        new, old = coming(self.rules), coming(self.old)
        for day in sorted({*new, *old}):
            items.append(self._item(new.get(day), old.get(day), "Osignerade anteckningar"))
        return items

    def _release_delays(self) -> list[Item]:
        """Types shown only some days after they are documented (other regions' rules)."""

        def delays(rules: RuleSet | None) -> dict[str, str]:
            if rules is None:
                return {}
            texts = {}
            for code in rules.release_delay_types:
                days = rules.release_delay_days(code, self.as_of)
                label = self.wording.info_types.get(code, code)
                texts[code] = f"{label}: {delay_text(days)}"
            return texts

        new, old = delays(self.rules), delays(self.old)
        return [
            self._item(new.get(code), old.get(code), "Visas efter en tid")
            for code in (*new, *(code for code in old if code not in new))
        ]


def render(page: PublicPage, fmt: Literal["html", "md"] = "html") -> str:
    """The page as one self-contained HTML file, or as Markdown."""
    template = environment().get_template("public.html.j2" if fmt == "html" else "public.md.j2")
    return template.render(page=page, NEW=NEW, CHANGED=CHANGED, REMOVED=REMOVED)
