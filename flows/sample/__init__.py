"""Synthetic inbox generator behind `jvn sample`.

Writes an inbox exactly as the source systems deliver it (shared/spec/sources.md):
`<out>/<system>/<YYYY-MM-DD>/<file>` plus `_control.json`, for the five journal
systems and the citizen-block register, for `days` consecutive business dates
(Monday to Friday) ending at `end_date`. The first date of each system holds its
whole history; each later date holds a small delta: new records, higher versions
of existing ones (edits, signings, retractions) and a few lower or equal versions
that must not replace anything.

The data are made to exercise every rule of shared/spec/rules.md on both sides of
each boundary, so the generator has two layers:

* random rows at realistic rates (units, codes, exempt units and terms, children,
  samordningsnummer, unsigned and retracted rows, bad rows), and
* a fixed set of *scenario* rows with known ids (`SCENARIOS`), placed at the start
  of each system's history, that pin the edge cases (a timestamp 30 minutes either
  side of a start date, a 29 February birthday, a look-alike unit name, a bad
  update in a later delta, ...) whatever the requested size.

Everything is vectorised (polars expressions over record indices) and
deterministic: every value is a pure function of (seed, stream name, index),
drawn from a counter-based hash written in exact integer arithmetic, so the same
arguments give a byte-identical inbox whatever the thread scheduling or polars
version. The history of a big system is generated and appended in chunks of
`CHUNK_RECORDS` records, so memory stays bounded (about 0.7 GB peak at any size);
the checksum is computed over the bytes as they are written.

Nothing is printed: progress goes to the optional `progress` callback.

The package follows the data's way through the generator; each module imports
only the ones above it in this list:

* `settings`, `results`: constants and the public result types;
* `rng`: the counter-based random draws; `dates`: dates, times and zones;
* `patients`, `units`, `vocabulary`: personnummer, care units and text;
* `systems`: the five journal systems' codes, formats and raw columns;
* `scenarios`: the fixed scenario rows (`SCENARIOS`);
* `raw`: internal record columns -> a system's raw columns;
* `generator`: the plan of sizes and dates and the record generator;
* `serialise`: raw rows -> file bytes, the delivery writer and control file;
* `deliveries`: one history or delta delivery, and the block register;
* `inbox`: `generate_inbox`, the entry point.
"""

from flows.sample.dates import business_dates
from flows.sample.inbox import generate_inbox
from flows.sample.results import SampleScenario, SampleSummary
from flows.sample.scenarios import SCENARIOS
from flows.sample.settings import BAD_KINDS, CHUNK_RECORDS
from flows.sample.systems import BLOCK_COLUMNS, BLOCKS_FILE, SYSTEMS
from flows.sample.units import UNITS

__all__ = [
    "BAD_KINDS",
    "BLOCKS_FILE",
    "BLOCK_COLUMNS",
    "CHUNK_RECORDS",
    "SCENARIOS",
    "SYSTEMS",
    "UNITS",
    "SampleScenario",
    "SampleSummary",
    "business_dates",
    "generate_inbox",
]
