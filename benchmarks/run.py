"""Region-scale benchmark: jvn against a hand-written DuckDB peer, at several sizes.

For each size N it generates an inbox with `jvn sample` (day 1: the whole
history, day 2: a ~0.3 % delta), then measures, each in a fresh process
(wall time and peak RSS of the process tree, via GNU time):

  full      `jvn run` for day 1 from an empty warehouse
  nightly   `jvn run` for day 2 on top (the delta)
  rerun     `jvn run` for day 2 again under a changed rule file (T4 start moved)
  peer      benchmarks/peer.sql over day 1's deliveries (Melior transcoded first)
  floor     benchmarks/floor.py on the full run's warehouse: what the contract makes
            any job write and read beyond the peer, each timed alone, so that
            "floor / peer" is the least a full run can cost against the peer

and prints a Markdown table (also written to <out>/results.md and results.json).
Timings are medians of --repeat runs where repeated. This is a benchmark, not a
test: nothing here asserts.

    uv run python benchmarks/run.py --sizes 1000000 10000000 --out bench-out

Without --prefect-api-url each `jvn run` starts and stops Prefect's temporary
server (~15 s), as a run on a laptop does; with it, runs use that server, as
they do in production (`jvn serve`).
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY_1, DAY_2 = date(2026, 11, 24), date(2026, 11, 25)
RECORDS_PER_PARTITION = 200_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="repeat full and peer runs, alternating (full, peer, full, peer, ...)",
    )
    parser.add_argument(
        "--job-args",
        default="",
        help="extra `jvn run` options for every job run, e.g. '--dask --dask-workers 2'",
    )
    parser.add_argument("--keep", action="store_true", help="keep generated inboxes")
    parser.add_argument(
        "--stages",
        default="full,peer,floor,nightly,rerun",
        help="which measurements (comma-separated; full is always run)",
    )
    parser.add_argument(
        "--prefect-api-url",
        help="run the job against this Prefect server (as production does) instead of a "
        "temporary server started by each run, e.g. http://127.0.0.1:4200/api after "
        "`uv run prefect server start`",
    )
    arguments = parser.parse_args()
    if arguments.prefect_api_url:
        os.environ["PREFECT_API_URL"] = arguments.prefect_api_url
    arguments.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for size in arguments.sizes:
        stages = set(arguments.stages.split(",")) | {"full"}
        results.append(
            bench_size(
                size,
                arguments.out / str(size),
                arguments.repeat,
                stages,
                shlex.split(arguments.job_args),
            )
        )
        if not arguments.keep:
            shutil.rmtree(arguments.out / str(size) / "inbox", ignore_errors=True)
        write_results(arguments.out, results)
    print(render(results))


def bench_size(
    size: int, folder: Path, repeat: int, stages: set[str], job_args: list[str]
) -> dict[str, Any]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    inbox = folder / "inbox"
    generated = measure(
        [
            "jvn",
            "sample",
            "--out",
            str(inbox),
            "--records",
            str(size),
            "--seed",
            "7",
            "--days",
            "2",
            "--end-date",
            DAY_2.isoformat(),
        ],
        folder / "sample.log",
    )
    partitions = max(4, -(-size // RECORDS_PER_PARTITION))
    result: dict[str, Any] = {"records": size, "partitions": partitions, "generate": generated}

    def job(tag: str, as_of: date, *extra: str) -> dict[str, Any]:
        data = folder / "data"
        return measure(
            [
                "jvn",
                "run",
                "--as-of",
                as_of.isoformat(),
                "--inbox",
                str(inbox),
                "--warehouse",
                str(data / "warehouse.duckdb"),
                "--analytics",
                str(data / "analytics.duckdb"),
                "--feed",
                str(data / "feed"),
                "--partitions",
                str(partitions),
                "--json",
                *job_args,
                *extra,
            ],
            folder / f"{tag}.log",
            summary=True,
        )

    result["job_args"] = " ".join(job_args)
    # Job and peer alternate, so that both see the same state of the machine.
    fulls, peers = [], []
    for _ in range(repeat):
        shutil.rmtree(folder / "data", ignore_errors=True)
        fulls.append(job("full", DAY_1))
        if "peer" in stages:
            peers.append(run_peer(inbox, folder, DAY_1))
    result["full"] = median_of(fulls)
    if peers:
        result["peer"] = median_of(peers)
    if "floor" in stages:  # on the full run's warehouse, before the nightly run adds to it
        result["floor"] = run_floor(inbox, folder, DAY_1, repeat)
    if "nightly" in stages:
        result["nightly"] = job("nightly", DAY_2)
    rules = folder / "rules-t4-moved.toml"
    rules.write_text(
        (ROOT / "rules" / "region.toml")
        .read_text(encoding="utf-8")
        .replace('version = "2026.1"', 'version = "2026.1-bench"')
        .replace("start = 2020-12-01", "start = 2020-12-08"),
        encoding="utf-8",
    )
    if "rerun" in stages:
        result["rerun"] = job("rerun", DAY_2, "--rules", str(rules))
    for stage in ("full", "nightly", "rerun", "peer"):
        if stage in result:
            result[stage]["records_per_s"] = round(size / result[stage]["wall_s"])
    return result


def run_peer(inbox: Path, folder: Path, as_of: date) -> dict[str, Any]:
    """The peer in its own process (benchmarks/peer.py)."""
    exempt_units = ROOT.parent / "shared" / "spec" / "exempt_units.csv"
    if not exempt_units.exists():
        exempt_units = folder / "exempt_units.csv"
        exempt_units.write_text(exempt_units_from_rules(), encoding="utf-8")
    return measure(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "peer.py"),
            str(inbox),
            str(folder / "peer"),
            as_of.isoformat(),
            str(exempt_units),
        ],
        folder / "peer.log",
    )


def run_floor(inbox: Path, folder: Path, as_of: date, repeat: int) -> dict[str, Any]:
    """benchmarks/floor.py on the full run's warehouse, in its own process."""
    figures = folder / "floor.json"
    measure(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "floor.py"),
            str(folder / "data" / "warehouse.duckdb"),
            str(folder / "floor"),
            "--repeat",
            str(max(repeat, 3)),
            "--inbox",
            str(inbox),
            "--as-of",
            as_of.isoformat(),
            "--json",
            str(figures),
        ],
        folder / "floor.log",
    )
    shutil.rmtree(folder / "floor", ignore_errors=True)
    floor: dict[str, Any] = json.loads(figures.read_text(encoding="utf-8"))
    return floor


def exempt_units_from_rules() -> str:
    """exempt_units.csv rebuilt from the rule file, where the spec folder is absent."""
    from transforms.rules import default_rules_path, load_rules

    rules = load_rules(default_rules_path())
    rows = [f"{unit.hsa_id},{unit.name}" for unit in rules.exempt_units.hsa_ids]
    return "hsa_id,name\n" + "\n".join(rows) + "\n"


def measure(command: list[str], log: Path, *, summary: bool = False) -> dict[str, Any]:
    """Run a command under GNU time; wall seconds, peak RSS of the tree, the JSON summary."""
    environment = {
        **os.environ,
        "JVN_PSEUDONYM_KEY": "benchmark-key-not-a-secret-000",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    completed = subprocess.run(
        ["/usr/bin/time", "-v", *command],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    wall = time.perf_counter() - started
    log.write_text(completed.stdout + "\n" + completed.stderr, encoding="utf-8")
    if completed.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command[:2])} failed ({completed.returncode}); see {log}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
    outcome: dict[str, Any] = {
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(int(peak.group(1)) / 1024) if peak else None,
    }
    if summary:
        document = json.loads(completed.stdout[completed.stdout.index("{") :])
        outcome["stage_seconds"] = document["stage_seconds"]
        outcome["stage_peak_rss_mib"] = document["stage_peak_rss_mib"]
        outcome["partitions_decided"] = document["partitions_decided"]
        outcome["visible"] = document["visible"]
        outcome["records"] = document["records"]
    return outcome


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median wall time; the other figures (stages, memory) of the run at the median."""
    middle = dict(sorted(runs, key=lambda run: run["wall_s"])[(len(runs) - 1) // 2])
    middle["wall_s"] = round(statistics.median(r["wall_s"] for r in runs), 2)
    middle["all_wall_s"] = [r["wall_s"] for r in runs]
    middle["runs"] = len(runs)
    return middle


def write_results(out: Path, results: list[dict[str, Any]]) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out / "results.md").write_text(render(results), encoding="utf-8")


def render(results: list[dict[str, Any]]) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{_memory_gib():.0f} GiB, Python {platform.python_version()}; Prefect: "
        + (
            f"the server at {os.environ['PREFECT_API_URL']}"
            if os.environ.get("PREFECT_API_URL")
            else "a temporary server per run"
        ),
        "",
        "| records | partitions | generate s | full s | peer s | full / peer | floor / peer | "
        "nightly s | nightly / full | rerun s | peak RSS full MiB | peak RSS peer MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        full, peer, floor = r["full"], r.get("peer"), r.get("floor")
        nightly, rerun = r.get("nightly"), r.get("rerun")
        versus_peer = f"{full['wall_s'] / peer['wall_s']:.2f}" if peer else "-"
        floor_versus_peer = (
            f"{(peer['wall_s'] + floor['extra_s']) / peer['wall_s']:.2f}" if peer and floor else "-"
        )
        versus_full = f"{nightly['wall_s'] / full['wall_s']:.2f}" if nightly else "-"
        lines.append(
            f"| {r['records']:,} | {r['partitions']} | {r['generate']['wall_s']} | "
            f"{full['wall_s']} | {peer['wall_s'] if peer else '-'} | {versus_peer} | "
            f"{floor_versus_peer} | "
            f"{nightly['wall_s'] if nightly else '-'} | {versus_full} | "
            f"{rerun['wall_s'] if rerun else '-'} | "
            f"{full['peak_rss_mib']} | {peer['peak_rss_mib'] if peer else '-'} |"
        )
    for r in results:
        if "floor" in r:
            items = ", ".join(f"{item['what']} {item['wall_s']}" for item in r["floor"]["items"])
            lines += [
                "",
                f"Floor at {r['records']:,} (benchmarks/floor.py; seconds, medians): {items}; "
                f"added to the peer's time: {r['floor']['extra_s']}",
            ]
    lines += ["", "Stage seconds (full / nightly / rerun):", ""]
    for r in results:
        for tag in ("full", "nightly", "rerun"):
            if tag not in r:
                continue
            stages = ", ".join(f"{k} {v}" for k, v in r[tag]["stage_seconds"].items())
            peaks = ", ".join(f"{k} {v}" for k, v in r[tag]["stage_peak_rss_mib"].items())
            outside = r[tag]["wall_s"] - sum(r[tag]["stage_seconds"].values())
            lines.append(
                f"- {r['records']:,} {tag}{' ' + r['job_args'] if r.get('job_args') else ''}: "
                f"{stages}; outside the stages (process, Prefect) {outside:.1f} "
                f"(partitions decided: {r[tag]['partitions_decided']}); "
                f"peak RSS so far, MiB: {peaks}"
            )
    return "\n".join(lines) + "\n"


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


if __name__ == "__main__":
    codecs.lookup("cp1252")
    main()
