"""What operators read: counts in words (`1 record`, `2 records`) and values made
safe to print (control characters escaped).

One helper each, so that every summary line, command output and Prefect artifact
agrees in number and escapes the same characters.
"""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and `noun` in the number of the count: "1 record", "0 records".

    `plural_noun` for a noun whose plural is not noun + "s" ("deliveries").
    """
    word = noun if count == 1 else (plural_noun or f"{noun}s")
    return f"{count} {word}"


def printable(text: object) -> str:
    """Text safe for an operator's terminal: control characters (C0, DEL, C1, NUL,
    the ESC of a terminal escape) and the bidirectional overrides that can reorder a
    line are written as `\\x1b`-style escapes. Only the printout changes: the
    warehouse and the feed keep the value exactly as delivered."""
    return "".join(_ESCAPED.get(ch, ch) for ch in str(text))


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ESCAPED = {
    ch: _escape(ch)
    for ch in map(
        chr,
        [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)],
    )
}
