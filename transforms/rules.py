"""The region's visibility rules as a typed, validated model, and its loader.

The rules of rules.md live in a TOML file that an administrator edits
(`rules/region.toml` by default); nothing about the region is written in code.
`load_rules` reads the file into frozen pydantic models that reject unknown
keys, missing fields, values of the wrong type, unknown systems and information
types, and regular expressions that either Python or polars cannot compile. A
bad file stops the job before it decides anything, with a one-line message that
names the file, the key and the problem, because a rule that is silently
ignored would show what must not be shown.

Every decision carries `RuleSet.rules_version`: the administrator's `version`
plus the start of a hash of the model's content, so two runs that claim the
same version but used different rules can still be told apart.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import unicodedata
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Final, Self

import polars as pl
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from transforms.canonical import INFO_TYPES, SYSTEMS
from transforms.rule_page import PageWording

LATER_SCOPE_REASONS: Final = (
    "before_psychiatry_start",
    "before_genetics_start",
    "before_children_start",
    "before_scope_start",
)
"""The reason codes a later-connected scope (rules.md §2, §8) may yield, in rule order.

The first three name the region's own scopes; any other later-connected part
(another region's, say) takes `before_scope_start`."""

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)
"""Strict: TOML has real dates and integers, so a quoted "2016-06-01" or "14" is a mistake."""


class RuleFileError(Exception):
    """The rule file cannot be used. The message is one line: `<file>: <key>: <problem>`."""


def normalise_text(value: str) -> str:
    """Python twin of `transforms.decide.normalised`: lower case, no accents, spaces folded.

    NFKD splits `å` into `a` plus a combining ring; dropping every mark (Unicode
    category M, as polars' `\\p{M}` does) leaves the base letter.
    """
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    return re.sub(r"\s+", " ", stripped.lower()).strip()


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_non_blank)]


def _list_as_tuple(value: object) -> object:
    # TOML arrays arrive as lists; the frozen model keeps tuples. Strict mode
    # would refuse the list, so convert here and let strict check the rest.
    return tuple(value) if isinstance(value, list) else value


AsTuple = BeforeValidator(_list_as_tuple)


def _check_info_types(values: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [value for value in values if value not in INFO_TYPES]
    if unknown:
        raise ValueError(f"unknown information type {unknown[0]!r}")
    if len(set(values)) != len(values):
        raise ValueError("information type listed twice")
    return values


def _check_systems(values: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [value for value in values if value not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system {unknown[0]!r}")
    if not values:
        raise ValueError("must name at least one system")
    return values


def _check_pattern(pattern: str) -> str:
    """Reject a pattern that Python or polars (Rust regex) cannot compile, or can never match."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r} (python: {exc})") from None
    try:
        pl.select(pl.lit("", dtype=pl.String).str.contains(pattern))
    except pl.exceptions.PolarsError:
        raise ValueError(f"invalid regular expression {pattern!r} (polars)") from None
    # Names are normalised before matching, so an upper-case or accented letter
    # outside an escape (`\B` is fine) would silently never match anything.
    letters = re.sub(r"\\.", "", pattern)
    if any(ch != ch.lower() or unicodedata.normalize("NFKD", ch) != ch for ch in letters):
        raise ValueError(
            f"pattern {pattern!r} must be lower case without accents "
            "(unit names are normalised before matching)"
        )
    return pattern


class SystemRule(BaseModel):
    """One connected source system (rules.md §1)."""

    model_config = _MODEL_CONFIG

    info_types: Annotated[tuple[str, ...], AsTuple, AfterValidator(_check_info_types)]
    start: date
    info_type_starts: dict[str, date] = Field(default_factory=dict)
    """rules.md §8: a later start for some of the system's types; the others start with
    the system. Only later, never earlier: an earlier date is more likely a typo than a
    rule, and would show what the system's start hides."""

    @field_validator("info_type_starts")
    @classmethod
    def _known_types(cls, value: dict[str, date]) -> dict[str, date]:
        _check_info_types(tuple(value))
        return value

    @model_validator(mode="after")
    def _type_starts_fit_the_system(self) -> SystemRule:
        for info_type, start in self.info_type_starts.items():
            if info_type not in self.info_types:
                raise ValueError(f"information type {info_type!r} is not connected for this system")
            if start < self.start:
                raise ValueError(f"the start of {info_type!r} is before the system's start")
        return self

    def start_for(self, info_type: str) -> date:
        """The start in force for one of the system's information types."""
        return self.info_type_starts.get(info_type, self.start)

    @property
    def latest_start(self) -> date:
        """The latest start of any of its types: what holds a row of unreadable type."""
        return max((self.start, *self.info_type_starts.values()))


class ExemptUnit(BaseModel):
    """One listed unit (exempt, or in a later scope). The name is documentation; the HSA-id
    is what matches."""

    model_config = _MODEL_CONFIG

    hsa_id: NonBlank
    name: NonBlank


def _unique_units(value: tuple[ExemptUnit, ...]) -> tuple[ExemptUnit, ...]:
    keys = [unit.hsa_id.strip().upper() for unit in value]
    if len(set(keys)) != len(keys):
        raise ValueError("an HSA-id is listed twice")
    return value


Pattern = Annotated[str, AfterValidator(_check_pattern)]


class _UnitsByIdOrName(BaseModel):
    """Units named by HSA-id and/or name pattern, compared as rules.md §3 says: HSA-ids
    trimmed and upper case, patterns searched in the normalised unit name."""

    model_config = _MODEL_CONFIG

    hsa_ids: tuple[ExemptUnit, ...]
    name_patterns: tuple[str, ...]

    @model_validator(mode="after")
    def _patterns_combine(self) -> Self:
        # decide.py searches one alternation of all patterns; make sure it compiles too
        # (a mid-pattern inline flag compiles alone but not inside an alternation).
        if self.name_patterns:
            _check_pattern(self.combined_pattern)
        return self

    @property
    def normalised_hsa_ids(self) -> tuple[str, ...]:
        """The HSA-ids as compared: trimmed, upper case."""
        return tuple(unit.hsa_id.strip().upper() for unit in self.hsa_ids)

    @property
    def combined_pattern(self) -> str:
        """All name patterns as one alternation: one regex pass per row instead of many
        ("" when there are none)."""
        return "|".join(f"(?:{pattern})" for pattern in self.name_patterns)


class UnitMatch(_UnitsByIdOrName):
    """Units a later scope matches (rules.md §8): listed HSA-ids and/or name patterns.

    Compared as the exempt units are (§3). A row without an HSA-id matches (it cannot
    be ruled out); so does a row without a unit name when the scope has patterns.
    """

    hsa_ids: Annotated[tuple[ExemptUnit, ...], AsTuple, AfterValidator(_unique_units)] = ()
    name_patterns: Annotated[tuple[Pattern, ...], AsTuple] = ()

    @model_validator(mode="after")
    def _something_to_match(self) -> UnitMatch:
        if not self.hsa_ids and not self.name_patterns:
            raise ValueError("give at least one HSA-id or name pattern")
        return self


class LaterScope(BaseModel):
    """A part of a system connected after the system itself (rules.md §2, §8).

    Matches by specialty, by patient age or by unit: exactly one of the three.
    """

    model_config = _MODEL_CONFIG

    reason: str
    systems: Annotated[tuple[str, ...], AsTuple, AfterValidator(_check_systems)]
    start: date
    name: NonBlank | None = None
    """Optional: what the part is called (for people: `jvn explain`, the public page)."""
    specialty: NonBlank | None = None
    patient_under_age: Annotated[int, Field(gt=0, le=150)] | None = None
    units: UnitMatch | None = None

    @field_validator("reason")
    @classmethod
    def _known_reason(cls, value: str) -> str:
        if value not in LATER_SCOPE_REASONS:
            raise ValueError(
                f"unknown reason code {value!r} (one of {', '.join(LATER_SCOPE_REASONS)})"
            )
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> LaterScope:
        given = [self.specialty, self.patient_under_age, self.units]
        if sum(matcher is not None for matcher in given) != 1:
            raise ValueError("give exactly one of specialty, patient_under_age, units")
        return self


class ExemptUnits(_UnitsByIdOrName):
    """Exempt units (rules.md §3): listed HSA-ids, and name patterns as a safety net."""

    hsa_ids: Annotated[tuple[ExemptUnit, ...], AsTuple]
    name_patterns: Annotated[tuple[Annotated[str, AfterValidator(_check_pattern)], ...], AsTuple]

    @field_validator("hsa_ids")
    @classmethod
    def _unique_ids(cls, value: tuple[ExemptUnit, ...]) -> tuple[ExemptUnit, ...]:
        return _unique_units(value)


class ExemptTerms(BaseModel):
    """Exempt note keywords (rules.md §4)."""

    model_config = _MODEL_CONFIG

    terms: Annotated[tuple[NonBlank, ...], AsTuple]

    @property
    def normalised(self) -> tuple[str, ...]:
        """The terms as compared: lower case, accents removed, spaces folded, trimmed."""
        return tuple(sorted({normalise_text(term) for term in self.terms}))


class DatedDelay(BaseModel):
    """One value of the unsigned-entry delay, in force from `from` (rules.md §6)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    valid_from: date = Field(alias="from")
    days: Annotated[int, Field(ge=0, le=36500)]


class ReleaseDelay(BaseModel):
    """One dated value of an information type's release delay (rules.md §8).

    Like the unsigned delay: a run for AS_OF uses the type's value with the latest
    `from <= AS_OF`; a row of the type is shown once AS_OF >= documentation date +
    days; before the type's first value the delay is infinite (fail closed).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    info_type: str
    valid_from: date = Field(alias="from")
    days: Annotated[int, Field(ge=0, le=36500)]

    @model_validator(mode="before")
    @classmethod
    def _dated(cls, data: object) -> object:
        if isinstance(data, dict) and "from" not in data and "valid_from" not in data:
            raise ValueError(
                "a release delay needs `from`: the date its value is in force from "
                "(write `from = 1900-01-01` for always)"
            )
        return data

    @field_validator("info_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        _check_info_types((value,))
        return value


class RuleSet(BaseModel):
    """The whole rule file. Frozen: a run decides with exactly one rule set."""

    model_config = _MODEL_CONFIG

    version: NonBlank
    systems: dict[str, SystemRule]
    later_scopes: Annotated[tuple[LaterScope, ...], AsTuple]
    exempt_units: ExemptUnits
    exempt_terms: ExemptTerms
    unsigned_delay: Annotated[tuple[DatedDelay, ...], AsTuple]
    release_delay: Annotated[tuple[ReleaseDelay, ...], AsTuple] = ()
    page: PageWording | None = None
    """Wording of the public page (`jvn page`); decides nothing, so not in the hash."""

    @field_validator("systems")
    @classmethod
    def _known_systems(cls, value: dict[str, SystemRule]) -> dict[str, SystemRule]:
        unknown = [name for name in value if name not in SYSTEMS]
        if unknown:
            raise ValueError(f"unknown system {unknown[0]!r}")
        return value

    @field_validator("unsigned_delay")
    @classmethod
    def _distinct_dates(cls, value: tuple[DatedDelay, ...]) -> tuple[DatedDelay, ...]:
        dates = [delay.valid_from for delay in value]
        if len(set(dates)) != len(dates):
            raise ValueError("two values start on the same date")
        return value

    @field_validator("release_delay")
    @classmethod
    def _no_overlap(cls, value: tuple[ReleaseDelay, ...]) -> tuple[ReleaseDelay, ...]:
        seen: set[tuple[str, date]] = set()
        for delay in value:
            key = (delay.info_type, delay.valid_from)
            if key in seen:
                raise ValueError(
                    f"two values for {delay.info_type!r} start on the same date "
                    f"{delay.valid_from.isoformat()}"
                )
            seen.add(key)
        return value

    def start_for(self, system: str, info_type: str) -> date | None:
        """The start in force for a system's information type (None: system not connected)."""
        rule = self.systems.get(system)
        return None if rule is None else rule.start_for(info_type)

    @property
    def release_delay_types(self) -> tuple[str, ...]:
        """The information types that have a release delay, in first-mention order."""
        return tuple(dict.fromkeys(delay.info_type for delay in self.release_delay))

    def release_delay_days(self, info_type: str, as_of: date) -> int | None:
        """The release delay of `info_type` in force on `as_of`; 0 for a type without one.

        None when the type has values but none is in force yet: the delay is then
        infinite and rows of that type stay hidden (fail closed, as the unsigned delay).
        """
        values = [delay for delay in self.release_delay if delay.info_type == info_type]
        if not values:
            return 0
        in_force = [delay for delay in values if delay.valid_from <= as_of]
        if not in_force:
            return None
        return max(in_force, key=lambda delay: delay.valid_from).days

    def release_delay_in_force(self, as_of: date) -> bool:
        """Whether some type's release delay on `as_of` is not 0 (time alone moves decisions)."""
        return any(self.release_delay_days(t, as_of) != 0 for t in self.release_delay_types)

    def unsigned_delay_days(self, as_of: date) -> int | None:
        """The delay in force on `as_of`: the value with the latest `from <= as_of`.

        None when no value is in force yet: the delay is then infinite and
        unsigned rows stay hidden (fail closed).
        """
        in_force = [delay for delay in self.unsigned_delay if delay.valid_from <= as_of]
        if not in_force:
            return None
        return max(in_force, key=lambda delay: delay.valid_from).days

    @property
    def content_sha256(self) -> str:
        """sha256 of a canonical JSON dump: independent of comments, layout and line ends.

        The `[page]` wording is left out: it decides nothing (transforms.rule_page).
        So are a later scope's `name` (documentation) and the keys of rules.md §8's
        kinds while a file does not use them: a file written before they existed
        keeps its hash, its `rules_version` and so its decisions byte for byte.
        """
        dump = self.model_dump(mode="json", by_alias=True, exclude={"page"})
        for system in dump["systems"].values():
            if not system["info_type_starts"]:
                del system["info_type_starts"]
        for scope in dump["later_scopes"]:
            del scope["name"]
            if scope["units"] is None:
                del scope["units"]
        if not dump["release_delay"]:
            del dump["release_delay"]
        canonical = json.dumps(dump, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def rules_version(self) -> str:
        """What every decision carries: `<version>+<first 12 hex digits of the content hash>`."""
        return f"{self.version}+{self.content_sha256[:12]}"


def default_rules_path() -> Path:
    """The region's default rule file, `rules/region.toml` in the project."""
    return Path(__file__).resolve().parents[1] / "rules" / "region.toml"


_ERROR_TEXT: Final[dict[str, str]] = {
    "missing": "missing field",
    "extra_forbidden": "unknown key",
    "date_type": "invalid date",
    "date_parsing": "invalid date",
    "date_from_datetime_inexact": "invalid date",
    "int_type": "must be an integer",
    "string_type": "must be a string",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "value_error":
        problem = str(error["ctx"]["error"])
    else:
        problem = _ERROR_TEXT.get(kind) or error["msg"]
    return f"{location}: {problem}"


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rule file. Raises `RuleFileError` with a one-line message."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RuleFileError(f"{name}: cannot read file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RuleFileError(f"{name}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(f"{name}: invalid TOML: {exc}") from None
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        message = f"{name}: {problems}".replace("\n", " ")
        raise RuleFileError(message) from None
