"""Counts in words for what operators read: `1 record`, `2 records`.

One helper, so that every summary line and command output agrees in number.
"""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and `noun` in the number of the count: "1 record", "0 records".

    `plural_noun` for a noun whose plural is not noun + "s" ("deliveries").
    """
    word = noun if count == 1 else (plural_noun or f"{noun}s")
    return f"{count} {word}"
