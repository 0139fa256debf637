"""The benchmark's peer, run in its own process: transcode Melior, then one DuckDB query.

    python benchmarks/peer.py INBOX OUT_DIR AS_OF EXEMPT_UNITS_CSV

Prints the number of visible records it wrote to OUT_DIR/visible.parquet.
"""

from __future__ import annotations

import codecs
import shutil
import sys
from pathlib import Path

import duckdb

SQL = Path(__file__).with_name("peer.sql")


def main(inbox: Path, out: Path, as_of: str, exempt_units: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    melior = []
    for source in sorted(inbox.glob("melior/*/journal.csv")):
        if source.parent.name > as_of:
            continue
        target = out / f"melior-{source.parent.name}.csv"
        decoder = codecs.getincrementaldecoder("cp1252")(errors="replace")
        with source.open("rb") as raw, target.open("w", encoding="utf-8", newline="") as sink:
            while chunk := raw.read(1 << 20):
                sink.write(decoder.decode(chunk))
            sink.write(decoder.decode(b"", final=True))
        melior.append(str(target))

    def dated(feed: str, name: str) -> list[str]:
        return [str(p) for p in sorted(inbox.glob(f"{feed}/*/{name}")) if p.parent.name <= as_of]

    sql = SQL.read_text(encoding="utf-8").replace("__OUT__", str(out / "visible.parquet"))
    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    connection.execute(
        sql,
        {
            "as_of": as_of,
            "melior": melior,
            "asynjavisph": dated("asynjavisph", "records.ndjson"),
            "obstetrix": dated("obstetrix", "journal.csv"),
            "journalia": dated("journalia", "export.csv"),
            "t4": dated("t4", "entries.csv"),
            "blocks": dated("blocks", "blocks.csv"),
            "exempt_units": str(exempt_units),
        },
    )
    row = connection.execute(f"SELECT count(*) FROM '{out}/visible.parquet'").fetchone()
    print(row[0] if row else 0)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
