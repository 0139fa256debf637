"""Decide, per record, whether the patient portal may show it, and why not.

A pure transform: the current state of every record, the latest version of
every citizen block, the rule set and the business date in; the same records
with `visible`, `reason`, `reasons`, `rules_version` and
`exempt_unit_by_name_only` out. No I/O, no Prefect, nothing collected: the
caller decides how to run the plan (streaming, in batches, or eagerly in tests).

Three things shape the code:

* **Fail closed.** Every rule is written so that a null input makes the rule
  apply (`fill_null(True)` on "applies", `fill_null(False)` on "is fine").
  There is no `otherwise(visible)`: a row is shown only when every one of the
  fourteen rules evaluated to a definite False. The one deliberate exception is
  the note keyword, whose null is the canonical "no keyword" (canonical.py).
* **Streaming.** Only row-wise expressions (three text columns are normalised
  per distinct value, through a lookup built from the column) and left joins
  with small frames: three derived from the blocks, each aggregated to one row
  per join key first so a join can never duplicate a record (blocks limited to
  a documentation period are matched to the records of their patients first,
  then reduced per record). `reasons` comes from a bit mask of the applying
  rules looked up in a constant table. No sort, no window over the records.
* **Order independence.** Nothing depends on row order: blocks are reduced to
  sets of keys before the joins, and every rule is row-wise.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Final

import polars as pl

from transforms.rules import LATER_SCOPE_REASONS, LaterScope, RuleSet, normalise_text

REASONS: Final = (
    "invalid_record",
    "retracted",
    "system_not_connected",
    "info_type_not_connected",
    "before_system_start",
    "before_psychiatry_start",
    "before_genetics_start",
    "before_children_start",
    "before_scope_start",
    "exempt_unit",
    "exempt_term",
    "patient_block",
    "unsigned_delay",
    "release_delay",
)
"""The stable reason codes of rules.md, in rule order: `reason` is the first that applies."""

SHOWN: Final = "shown"
"""The `reason` of a visible record."""

DECISION_COLUMNS: Final = (
    "visible",
    "reason",
    "reasons",
    "rules_version",
    "exempt_unit_by_name_only",
)
"""The columns `decide` adds to the records."""

RULE_COLUMNS: Final = tuple(f"rule_{code}" for code in REASONS)
"""With `with_verdicts=True`: one Boolean per reason, True exactly when it is in `reasons`."""

_INTERMEDIATES: Final = (
    "age_at_documentation",  # Int32, whole years at documented_date; null if unknown
    "system_start",  # Date in force for the record's system and type; null: not connected
    "unsigned_delay_days",  # Int64 in force on as_of; null: infinite (no value in force)
    "release_delay_days",  # Int64 for the record's type on as_of; 0: none; null: infinite
    "later_scopes_applying",  # List[Int64]: indices into rules.later_scopes that hide the row
    "normalised_unit_name",
    "normalised_keyword",
    "normalised_specialty",
    "unit_key",  # care_unit_hsa_id trimmed, upper case; null if missing
    "exempt_unit_hsa_listed",
    "exempt_unit_name_matched",  # null when the name is missing
    # Blocks below count only where they cover the record's documentation date.
    "block_all_holds",  # a block of scope ALL (or an untrusted block) holds for the patient
    "block_unit_holds",  # a UNIT block for this record's unit holds
    "block_any_unit_holds",  # some UNIT block holds for the patient (used when unit is unknown)
)
VERDICT_COLUMNS: Final = RULE_COLUMNS + _INTERMEDIATES
"""The extra columns `with_verdicts=True` keeps, for `jvn explain`."""

_PREFIX: Final = "__jvn_decide_"
"""Working columns carry this prefix so they cannot clash with pass-through columns."""


def _tmp(name: str) -> str:
    return f"{_PREFIX}{name}"


assert set(LATER_SCOPE_REASONS) <= set(REASONS), "rules.py and decide.py disagree on codes"


def normalised(text: pl.Expr) -> pl.Expr:
    """Lower case, accents removed, runs of white space folded to one space, trimmed.

    NFKD splits `å` into `a` plus a combining mark; removing every mark
    (`\\p{M}`) leaves the base letter. Twin of `transforms.rules.normalise_text`,
    which normalises the rule file's side of each comparison the same way.
    """
    return (
        text.str.normalize("NFKD")
        .str.replace_all(r"\p{M}+", "")
        .str.to_lowercase()
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def normalised_by_value(text: pl.Expr) -> pl.Expr:
    """`normalised(text)`, worked out once per distinct value and looked up per row.

    A partition's 200,000 records name a few hundred units, twenty keywords and
    fifteen specialties: normalising every row (NFKD and two regexes) cost
    about 100 ms a partition, the lookup 30. The distinct values keep their
    order of first appearance on both sides of the lookup, so each maps to its
    own normal form; a value missing from the lookup raises, never passes.
    """
    distinct = text.unique(maintain_order=True)
    return text.replace_strict(distinct, normalised(distinct))


def hsa_key(hsa_id: pl.Expr) -> pl.Expr:
    """An HSA-id as compared: trimmed, upper case; empty becomes null (unknown)."""
    key = hsa_id.str.strip_chars().str.to_uppercase()
    return pl.when(key.str.len_chars() > 0).then(key).otherwise(pl.lit(None, dtype=pl.String))


def held_blocks(blocks: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """The blocks that hold on `as_of`, as (patient_id, unit_key, documented_from,
    documented_to); unit_key null = scope ALL, both dates null = every documentation date.

    A block holds when not revoked and valid_from <= as_of <= valid_to (null
    valid_to: open). A block that cannot be trusted (latest version invalid,
    unreadable status or valid_from) holds, and for the whole journal and every
    documentation date. A UNIT block without a readable unit, or a scope that is
    neither ALL nor UNIT, also widens to ALL. A block without a patient cannot be
    attributed and is ignored.
    """
    day = pl.lit(as_of, dtype=pl.Date)
    revoked = pl.col("revoked")
    valid_from = pl.col("valid_from")
    valid_to = pl.col("valid_to")
    untrusted = pl.col("invalid").fill_null(True) | revoked.is_null() | valid_from.is_null()
    in_window = ~revoked & (valid_from <= day) & (valid_to.is_null() | (day <= valid_to))
    holds = untrusted | in_window.fill_null(False)
    unit = hsa_key(pl.col("care_unit_hsa_id").cast(pl.String))
    scope = pl.col("scope").cast(pl.String).str.strip_chars().str.to_uppercase()
    is_unit = ~untrusted & (scope == "UNIT").fill_null(False) & unit.is_not_null()
    return blocks.filter(holds & pl.col("patient_id").is_not_null()).select(
        pl.col("patient_id").cast(pl.String),
        pl.when(is_unit).then(unit).otherwise(pl.lit(None, dtype=pl.String)).alias(_tmp("unit")),
        *(
            pl.when(~untrusted).then(pl.col(name).cast(pl.Date)).alias(_tmp(name))
            for name in ("documented_from", "documented_to")
        ),
    )


def _block_flags(
    records: pl.LazyFrame, blocks: pl.LazyFrame, as_of: date
) -> tuple[pl.LazyFrame, tuple[pl.Expr, pl.Expr, pl.Expr]]:
    """Join to each record whether an ALL block, its UNIT block, or any UNIT block holds.

    Each right-hand frame has one row per join key, so the left joins keep
    exactly one output row per record. Blocks without a documentation period are
    reduced per patient and per (patient, unit); blocks with one are joined to
    their patient's records, checked against each record's documentation date
    (an unknown date is covered: it cannot be ruled out) and reduced per record.
    """
    held_all = held_blocks(blocks, as_of)
    first, last = pl.col(_tmp("documented_from")), pl.col(_tmp("documented_to"))
    unbounded = first.is_null() & last.is_null()
    held = held_all.filter(unbounded)
    unit = pl.col(_tmp("unit"))
    per_patient = held.group_by("patient_id").agg(
        unit.is_null().any().alias(_tmp("b_all")),
        unit.is_not_null().any().alias(_tmp("b_any_unit")),
    )
    per_unit = (
        held.filter(unit.is_not_null())
        .select("patient_id", unit)
        .unique()
        .with_columns(pl.lit(True).alias(_tmp("b_unit")))
    )
    documented = pl.col("documented_date")
    covers = (
        (first.is_null() | (documented >= first)) & (last.is_null() | (documented <= last))
    ).fill_null(True)
    block_unit = pl.col(_tmp("block_unit"))
    per_record = (
        records.select("record_id", "patient_id", _tmp("unit"), "documented_date")
        .join(
            held_all.filter(~unbounded).rename({_tmp("unit"): _tmp("block_unit")}),
            on="patient_id",
            how="inner",
        )
        .filter(covers)
        .group_by("record_id")
        .agg(
            block_unit.is_null().any().alias(_tmp("p_all")),
            (block_unit == pl.col(_tmp("unit"))).fill_null(False).any().alias(_tmp("p_unit")),
            block_unit.is_not_null().any().alias(_tmp("p_any_unit")),
        )
    )
    joined = (
        records.join(per_patient, on="patient_id", how="left", maintain_order="left")
        .join(per_unit, on=["patient_id", _tmp("unit")], how="left", maintain_order="left")
        # A null record id (never valid) joins as one key: fail closed, never duplicated.
        .join(per_record, on="record_id", how="left", maintain_order="left", nulls_equal=True)
    )
    flags = (
        pl.col(_tmp("b_all")).fill_null(False) | pl.col(_tmp("p_all")).fill_null(False),
        pl.col(_tmp("b_unit")).fill_null(False) | pl.col(_tmp("p_unit")).fill_null(False),
        pl.col(_tmp("b_any_unit")).fill_null(False) | pl.col(_tmp("p_any_unit")).fill_null(False),
    )
    return joined, flags


def _age_in_years(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Whole years from `birth` to `on`; null if either is null.

    Comparing (month, day) as month*100+day makes a 29 February birthday fall
    on 1 March in other years: (2, 28) < (2, 29) is still before it, (3, 1) is not.
    """
    birthday_not_reached = (on.dt.month().cast(pl.Int32) * 100 + on.dt.day().cast(pl.Int32)) < (
        birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day().cast(pl.Int32)
    )
    return (
        on.dt.year().cast(pl.Int32)
        - birth.dt.year().cast(pl.Int32)
        - birthday_not_reached.cast(pl.Int32)
    )


def _start_in_force(rules: RuleSet, system: pl.Expr, info_type: pl.Expr, pair: pl.Expr) -> pl.Expr:
    """The start in force for each row's system and type (rules.md §1, §8).

    A type with its own start uses it; the others start with the system. A row
    whose type is unreadable waits for the latest start of its system (it may be
    the type that starts latest). Null when the system is not connected.
    """
    if not rules.systems:
        return pl.lit(None, dtype=pl.Date)
    names = list(rules.systems)
    system_start = system.replace_strict(
        names, [rule.start for rule in rules.systems.values()], default=None, return_dtype=pl.Date
    )
    latest_start = system.replace_strict(
        names,
        [rule.latest_start for rule in rules.systems.values()],
        default=None,
        return_dtype=pl.Date,
    )
    type_pairs = [
        (f"{name}\x1f{info}", start)
        for name, rule in rules.systems.items()
        for info, start in rule.info_type_starts.items()
    ]
    if not type_pairs:
        # No type has its own start: exactly the system's start (rules.md §1).
        return system_start
    type_start = pair.replace_strict(
        [key for key, _ in type_pairs],
        [start for _, start in type_pairs],
        default=None,
        return_dtype=pl.Date,
    )
    return (
        pl.when(info_type.is_null())
        .then(latest_start)
        .otherwise(pl.coalesce(type_start, system_start))
    )


def _release_delay_in_force(days: dict[str, int | None], info_type: pl.Expr) -> pl.Expr:
    """Each row's release delay on the business date: 0 for a type without one.

    Null means the row waits for ever: its type's delay has no value in force yet,
    or its type is unreadable while some type's delay is in force (it could be
    that type).
    """
    if not days:
        return pl.lit(0, dtype=pl.Int64)
    typed = info_type.replace_strict(
        list(days),
        pl.Series(list(days.values()), dtype=pl.Int64),
        default=pl.lit(0, dtype=pl.Int64),
        return_dtype=pl.Int64,
    )
    if all(value == 0 for value in days.values()):
        return typed.fill_null(0)
    return pl.when(info_type.is_not_null()).then(typed)


def _scope_matches(scope: LaterScope, age: pl.Expr, unit_name: pl.Expr) -> pl.Expr:
    """Whether a row falls in a later scope (specialty, age or unit), null inputs matching."""
    if scope.specialty is not None:
        # A null specialty matches: the row cannot be ruled out of the scope.
        return (pl.col(_tmp("normalised_specialty")) == normalise_text(scope.specialty)).fill_null(
            True
        )
    if scope.patient_under_age is not None:
        # A null birth date (or documentation date) matches: treat as a child.
        return (age < scope.patient_under_age).fill_null(True)
    assert scope.units is not None  # the model requires exactly one matcher
    # Without an HSA-id the unit cannot be ruled out of the list; without a name,
    # not out of the patterns.
    listed = _is_in(pl.col(_tmp("unit")), scope.units.normalised_hsa_ids).fill_null(True)
    pattern = scope.units.combined_pattern
    if not pattern:
        return listed
    return listed | unit_name.str.contains(pattern).fill_null(True)


@cache
def _reason_table() -> pl.DataFrame:
    """Every combination of applying rules (bit i = REASONS[i]) with its reasons and reason.

    Built by polars, not from Python lists: 16,384 lists made in Python cost
    0.3 s of every run's first decision.
    """
    mask = pl.col(_tmp("mask"))
    applying = [
        pl.when((mask // (1 << bit)) % 2 == 1).then(pl.lit(code))
        for bit, code in enumerate(REASONS)
    ]
    return (
        pl.DataFrame({_tmp("mask"): pl.int_range(0, 1 << len(REASONS), dtype=pl.Int32, eager=True)})
        .with_columns(pl.concat_list(applying).list.drop_nulls().alias(_tmp("reasons")))
        .with_columns(pl.col(_tmp("reasons")).list.first().fill_null(SHOWN).alias(_tmp("reason")))
    )


def _is_in(expr: pl.Expr, values: tuple[str, ...] | list[str]) -> pl.Expr:
    """Membership in a fixed set of strings; null stays null (callers decide its meaning)."""
    # A typed, imploded Series: an empty set keeps its dtype, and polars does not
    # have to guess whether a flat collection is one list or many values.
    return expr.is_in(pl.Series(values=list(values), dtype=pl.String).implode())


def decide(
    records: pl.LazyFrame,
    blocks: pl.LazyFrame,
    rules: RuleSet,
    as_of: date,
    *,
    with_verdicts: bool = False,
) -> pl.LazyFrame:
    """Add `visible`, `reason`, `reasons`, `rules_version`, `exempt_unit_by_name_only`.

    `records`: RECORD_SCHEMA columns plus `invalid` (extra columns pass through
    unchanged). `blocks`: BLOCK_SCHEMA columns plus `invalid`. With
    `with_verdicts=True` the result also keeps VERDICT_COLUMNS.
    """
    day = pl.lit(as_of, dtype=pl.Date)
    joined, (b_all, b_unit, b_any_unit) = _block_flags(
        records.with_columns(hsa_key(pl.col("care_unit_hsa_id")).alias(_tmp("unit"))),
        blocks,
        as_of,
    )

    system = pl.col("source_system")
    info_type = pl.col("info_type")
    documented = pl.col("documented_date")
    names = list(rules.systems)
    # "system<US>info_type" pairs: one set lookup instead of a branch per system.
    pair = pl.concat_str([system, pl.lit("\x1f"), info_type])
    connected_pairs = [
        f"{name}\x1f{info}" for name, rule in rules.systems.items() for info in rule.info_types
    ]
    delay_days = rules.unsigned_delay_days(as_of)
    release_days = {t: rules.release_delay_days(t, as_of) for t in rules.release_delay_types}
    patterns = rules.exempt_units.combined_pattern
    name_norm = normalised_by_value(pl.col("care_unit_name"))

    # Step 1: the values the rules look at, once each (also shown by `jvn explain`).
    inputs = joined.with_columns(
        _age_in_years(pl.col("birth_date"), documented).alias(_tmp("age_at_documentation")),
        _start_in_force(rules, system, info_type, pair).alias(_tmp("system_start")),
        pl.lit(delay_days, dtype=pl.Int64).alias(_tmp("unsigned_delay_days")),
        _release_delay_in_force(release_days, info_type).alias(_tmp("release_delay_days")),
        name_norm.alias(_tmp("normalised_unit_name")),
        normalised_by_value(pl.col("keyword")).alias(_tmp("normalised_keyword")),
        normalised_by_value(pl.col("specialty")).alias(_tmp("normalised_specialty")),
        pl.col(_tmp("unit")).alias(_tmp("unit_key")),
        _is_in(pl.col(_tmp("unit")), rules.exempt_units.normalised_hsa_ids)
        .fill_null(False)
        .alias(_tmp("exempt_unit_hsa_listed")),
        (name_norm.str.contains(patterns) if patterns else pl.lit(False))
        .cast(pl.Boolean)
        .alias(_tmp("exempt_unit_name_matched")),
        b_all.alias(_tmp("block_all_holds")),
        b_unit.alias(_tmp("block_unit_holds")),
        b_any_unit.alias(_tmp("block_any_unit_holds")),
    )

    # Step 2: each rule as "applies", null inputs making it apply.
    invalid = pl.col("invalid").fill_null(True)
    age = pl.col(_tmp("age_at_documentation"))
    applies: dict[str, pl.Expr] = {
        "invalid_record": invalid,
        "retracted": pl.col("retracted").fill_null(True),
        "system_not_connected": ~_is_in(system, names).fill_null(False),
        "info_type_not_connected": ~_is_in(pair, connected_pairs).fill_null(False),
        # No start date (system not connected, or no documentation date): applies.
        "before_system_start": (documented < pl.col(_tmp("system_start"))).fill_null(True),
    }
    scope_hides = [
        _is_in(system, scope.systems).fill_null(True)
        & _scope_matches(scope, age, name_norm)
        & (documented < pl.lit(scope.start, dtype=pl.Date)).fill_null(True)
        for scope in rules.later_scopes
    ]
    for code in LATER_SCOPE_REASONS:
        scope_rules = [
            hides
            for scope, hides in zip(rules.later_scopes, scope_hides, strict=True)
            if scope.reason == code
        ]
        applies[code] = pl.any_horizontal(scope_rules) if scope_rules else pl.lit(False)
    applies["exempt_unit"] = (
        pl.col(_tmp("exempt_unit_hsa_listed"))
        | pl.col(_tmp("exempt_unit_name_matched")).fill_null(True)
        # Without an HSA-id the unit cannot be ruled out of the list.
        | pl.col(_tmp("unit")).is_null()
    )
    # A null keyword means "no keyword" (canonical.py): not filed under any term.
    applies["exempt_term"] = _is_in(
        pl.col(_tmp("normalised_keyword")), rules.exempt_terms.normalised
    ).fill_null(False)
    applies["patient_block"] = (
        pl.col("patient_id").is_null()  # cannot be matched to blocks: cannot be ruled out
        | pl.col(_tmp("block_all_holds"))
        | pl.col(_tmp("block_unit_holds"))
        | (pl.col(_tmp("unit")).is_null() & pl.col(_tmp("block_any_unit_holds")))
    )
    signed = pl.col("signed")
    if delay_days is None:
        # No value in force: the delay is infinite, every unsigned row waits.
        applies["unsigned_delay"] = ~signed.fill_null(False)
    else:
        waited = (day - documented).dt.total_days()
        # An unknown signed flag applies the rule outright, even when the delay
        # is 0: "not known to be signed" is not the same as "unsigned".
        applies["unsigned_delay"] = signed.is_null() | (
            ~signed & (waited < delay_days).fill_null(True)
        )
    release = pl.col(_tmp("release_delay_days"))
    waited_release = (day - documented).dt.total_days()
    # Null days (infinite, or an unreadable type a delay could cover) or an unknown
    # documentation date: the row waits.
    applies["release_delay"] = (waited_release < release).fill_null(True) & (
        release.is_null() | (release > 0)
    )
    assert tuple(applies) == REASONS

    # An invalid record has only invalid_record: nothing else about it can be trusted.
    rule_columns = [
        (expr if code == "invalid_record" else ~invalid & expr)
        .fill_null(True)  # belt and braces: every expression above is already non-null
        .alias(_tmp(f"rule_{code}"))
        for code, expr in applies.items()
    ]
    # The applying rules as a bit mask, mapped to `reasons` and `reason` through
    # the constant table of all 16384 masks: building a list per row from fourteen
    # when/then branches was ~20x slower than this lookup.
    mask = pl.sum_horizontal(
        pl.col(_tmp(f"rule_{code}")).cast(pl.Int32) * (1 << bit) for bit, code in enumerate(REASONS)
    )
    table = _reason_table()
    masks = pl.lit(table[_tmp("mask")]).implode()

    # Step 3: the decision columns, all derived from the mask so they cannot disagree.
    decided = (
        inputs.with_columns(rule_columns)
        .with_columns(mask.alias(_tmp("mask")))
        .with_columns(
            pl.col(_tmp("mask"))
            .replace_strict(masks, pl.lit(table[_tmp("reasons")]).implode())
            .alias("reasons"),
            pl.col(_tmp("mask"))
            .replace_strict(masks, pl.lit(table[_tmp("reason")]).implode())
            .alias("reason"),
        )
        .with_columns(
            (pl.col("reason") == SHOWN).fill_null(False).alias("visible"),
            pl.lit(rules.rules_version, dtype=pl.String).alias("rules_version"),
            (
                ~invalid
                & pl.col(_tmp("exempt_unit_name_matched")).fill_null(False)
                & ~pl.col(_tmp("exempt_unit_hsa_listed"))
            ).alias("exempt_unit_by_name_only"),
        )
    )
    if with_verdicts:
        # Which later scopes hide the row (indices into rules.later_scopes), for explain.
        applying = [
            pl.when(~invalid & hides).then(pl.lit(index, dtype=pl.Int64))
            for index, hides in enumerate(scope_hides)
        ]
        decided = decided.with_columns(
            (
                pl.concat_list(applying).list.drop_nulls()
                if applying
                else pl.lit([], dtype=pl.List(pl.Int64))
            ).alias(_tmp("later_scopes_applying"))
        )
        decided = decided.with_columns(pl.col(_tmp(name)).alias(name) for name in VERDICT_COLUMNS)
    decided = decided.select(pl.exclude(f"^{_PREFIX}.*$"))
    # Put the decision columns after the input's own columns, in a fixed order.
    tail = list(DECISION_COLUMNS) + (list(VERDICT_COLUMNS) if with_verdicts else [])
    return decided.select(pl.exclude(tail), *tail)
