"""An NDJSON line's fields: picked out by DuckDB, keys written twice resolved by polars.

DuckDB parses each line once per JSON function and hands over, per line, the
adapter's fields (`SourceFormat.json_fields`), `json_object`, and the key lists
of every object a field is read from. polars then finds keys written twice
(`"rev": 1, "rev": 2`, `patient.pnr` twice): such a line gets
`json_duplicate_key` "true", and a field at such a key, or below one, is not
read (null): DuckDB would take the first, other readers the last, and the
contract says never guess. The sender's own key names are never part of the
output.

Why polars for the keys: DuckDB's `list_distinct` over the three key lists of
each line cost more than all its JSON parsing of it (0.97 s of a 2.7 s parse of
452,000 lines); polars' `list.n_unique` does the same in 0.06 s a list.
"""

from __future__ import annotations

import polars as pl

from flows.common.files import sql_string
from transforms.sources.base import SourceFormat

_KEYS_PREFIX = "__jvn_keys_"
"""The key lists' columns between DuckDB and polars (never an adapter's column)."""


def applies(fmt: SourceFormat) -> bool:
    """Whether the format's rows are picked out of JSON lines (`select_fields`)."""
    return fmt.kind == "ndjson" and bool(fmt.json_fields)


def prefixes(path: str) -> list[str]:
    """`$.a.b` -> [`$`, `$.a`, `$.a.b`]: the path and the objects above it."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _parents(fmt: SourceFormat) -> list[str]:
    """The objects the fields are read from or through, in a fixed order."""
    return sorted({prefix for _, path, _ in fmt.json_fields for prefix in prefixes(path)[:-1]})


def _key_columns(fmt: SourceFormat) -> dict[str, str]:
    """Each parent object's key-list column."""
    return {parent: f"{_KEYS_PREFIX}{i}" for i, parent in enumerate(_parents(fmt), start=1)}


def select_fields(read: str, fmt: SourceFormat) -> str:
    """The query giving the adapter's columns but `json_duplicate_key`, and the key lists.

    `read` yields one column `line`. A line that is not a JSON object yields
    nulls (and `json_object` "false"); the guard keeps DuckDB's JSON functions
    from ever seeing invalid JSON, whose error messages would quote the line.
    """
    texts = [(name, path) for name, path, kind in fmt.json_fields if kind == "text"]
    jsons = [(name, path) for name, path, kind in fmt.json_fields if kind == "json"]
    key_columns = _key_columns(fmt)
    keys = f"json_keys(line, [{', '.join(sql_string(parent) for parent in key_columns)}])"
    selects = [
        "line",
        "CASE WHEN is_object THEN 'true' ELSE 'false' END AS json_object",
        *(
            f"object_keys[{i}] AS {column}"
            for i, column in enumerate(key_columns.values(), start=1)
        ),
    ]
    fields: list[str] = []
    for group, function, cast in (
        (texts, "json_extract_string", ""),
        (jsons, "json_extract", "::VARCHAR[]"),
    ):
        if not group:
            continue
        paths = ", ".join(sql_string(path) for _, path in group)
        selects.append(
            f"CASE WHEN is_object THEN {function}(line, [{paths}]){cast} END AS {function}_values"
        )
        fields += [
            f"{function}_values[{index}] AS {name}"
            for index, (name, _) in enumerate(group, start=1)
        ]
    columns = [*fmt.columns, "json_object", *fields, *key_columns.values()]
    return (
        # Valid JSON that opens with a brace is an object: its type is asked only
        # of the rest (one parse of every line fewer).
        "WITH lines AS (SELECT line, CASE WHEN NOT json_valid(line) THEN false "
        "WHEN starts_with(line, '{') THEN true "
        f"ELSE json_type(line) = 'OBJECT' END AS is_object FROM ({read})), "
        f"keyed AS (SELECT line, is_object, CASE WHEN is_object THEN {keys} END AS object_keys "
        "FROM lines), "
        f"extracted AS (SELECT {', '.join(selects)} FROM keyed) "
        f"SELECT {', '.join(columns)} FROM extracted"
    )


def resolve_duplicate_keys(rows: pl.DataFrame, fmt: SourceFormat) -> pl.DataFrame:
    """Rows of `select_fields` -> the adapter's columns: `json_duplicate_key` set, each
    field at (or below) a key written twice null, the key lists gone."""
    key_columns = _key_columns(fmt)
    # A null list (not an object, or no such object) has no key written twice.
    written_twice = pl.any_horizontal(
        (pl.col(column).list.n_unique() != pl.col(column).list.len()).fill_null(False)
        for column in key_columns.values()
    )
    rows = rows.with_columns(duplicate=written_twice)
    if rows["duplicate"].any():

        def twice(parent: str, key: str) -> pl.Expr:
            return (pl.col(key_columns[parent]).list.count_matches(key) > 1).fill_null(False)

        rows = rows.with_columns(
            pl.when(
                pl.col("duplicate")
                & pl.any_horizontal(twice(*prefix.rsplit(".", 1)) for prefix in prefixes(path)[1:])
            )
            .then(pl.lit(None, dtype=pl.String))
            .otherwise(pl.col(name))
            .alias(name)
            for name, path, _ in fmt.json_fields
        )
    return rows.with_columns(
        json_duplicate_key=pl.when(pl.col("duplicate"))
        .then(pl.lit("true"))
        .otherwise(pl.lit("false"))
    ).select(fmt.raw_columns)
