"""Which adapter reads which feed: the only place the systems are wired to modules."""

from __future__ import annotations

from types import MappingProxyType, ModuleType

from transforms.sources import asynjavisph, blocks, journalia, melior, obstetrix, t4

RECORD_ADAPTERS: MappingProxyType[str, ModuleType] = MappingProxyType(
    {
        "melior": melior,
        "asynjavisph": asynjavisph,
        "obstetrix": obstetrix,
        "journalia": journalia,
        "t4": t4,
    }
)
"""Journal-record systems, in load order."""

BLOCK_ADAPTER: ModuleType = blocks
"""The citizen-block register."""


def adapter_for(feed: str) -> ModuleType:
    """The adapter module of a feed (`melior`, ..., `blocks`)."""
    if feed == "blocks":
        return BLOCK_ADAPTER
    return RECORD_ADAPTERS[feed]
