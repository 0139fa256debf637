"""Deterministic randomness: a counter-based hash in exact integer arithmetic.

numpy is not a dependency of the project, and polars' own `hash` is only
stable within one polars version. Wellons' `lowbias32` mixer on values kept
below 2**32 (so every product fits in 64 bits) is exact in any version, fast
as a handful of column operations, and a bijection, so distinct indices get
distinct draws within a stream. It runs eagerly on the index column (through
`map_batches`): written as one nested expression, each step would repeat the
previous ones and the tree would grow exponentially.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import polars as pl

_MASK32: Final = 0xFFFFFFFF
_TWO32: Final = 1 << 32


def _hash_series(index: pl.Series, k1: int, k2: int) -> pl.Series:
    """Two rounds of lowbias32 over (index + k1) mod 2**32, keyed by k2; UInt64 < 2**32."""
    # Eager Series arithmetic: each step is computed once, in place.
    x = (index.cast(pl.UInt64) + k1) & _MASK32
    for round_key in (None, k2):
        if round_key is not None:
            x = x ^ round_key
        x = x ^ (x // (1 << 16))
        x = (x * 0x7FEB352D) & _MASK32
        x = x ^ (x // (1 << 15))
        x = (x * 0x846CA68B) & _MASK32
        x = x ^ (x // (1 << 16))
    return x


class Rng:
    """Named random streams over an index column: `uniform(i, "melior.unit")`."""

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def keys(self, stream: str) -> tuple[int, int]:
        digest = hashlib.blake2b(f"{self._seed}/{stream}".encode(), digest_size=8).digest()
        return int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:], "big")

    def bits(self, index: pl.Expr, stream: str) -> pl.Expr:
        """32 random bits per row, a pure function of (seed, stream, index value)."""
        k1, k2 = self.keys(stream)
        return index.map_batches(
            lambda values: _hash_series(values, k1, k2),
            return_dtype=pl.UInt64,
            is_elementwise=True,
        )

    def uniform(self, index: pl.Expr, stream: str) -> pl.Expr:
        """Floats in [0, 1)."""
        return self.bits(index, stream).cast(pl.Float64) / float(_TWO32)

    def integers(self, index: pl.Expr, stream: str, n: int | pl.Expr) -> pl.Expr:
        """Integers in [0, n) for 1 <= n < 2**32 (Int64)."""
        if isinstance(n, int):
            assert 1 <= n < _TWO32
            count = pl.lit(n, dtype=pl.UInt64)
        else:
            count = n.cast(pl.UInt64)
        return (self.bits(index, stream) * count // pl.lit(_TWO32, dtype=pl.UInt64)).cast(pl.Int64)

    def choice(self, index: pl.Expr, stream: str, values: Sequence[str]) -> pl.Expr:
        """One of `values`, uniformly."""
        return lookup(self.integers(index, stream, len(values)), values)


def weighted_bucket(u: pl.Expr, weights: Sequence[float]) -> pl.Expr:
    """The index of the weighted bucket each uniform falls in (u is evaluated once)."""
    total = sum(weights)
    bounds: list[float] = []
    acc = 0.0
    for weight in weights[:-1]:
        acc += weight / total
        bounds.append(acc)
    return pl.lit(pl.Series(bounds, dtype=pl.Float64)).search_sorted(u, side="right").cast(pl.Int64)


def weighted(u: pl.Expr, options: Sequence[tuple[str | None, float]]) -> pl.Expr:
    """Map uniforms to weighted string options (None: null)."""
    bucket = weighted_bucket(u, [weight for _, weight in options])
    return lookup(bucket, [value for value, _ in options])


def lookup(index: pl.Expr, values: Sequence[str | None]) -> pl.Expr:
    """`values[index]` as a string column."""
    return index.replace_strict(
        list(range(len(values))), list(values), default=None, return_dtype=pl.String
    )
