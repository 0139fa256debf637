"""Shared pieces of the trust suites (crash safety, no leaks, concurrency, verify).

These tests run `jvn` the way an operator does: as a separate process, with its
own environment, so that a SIGKILL, a held lock or a debug log level affects
that process only. Everything here is plain subprocess and file handling.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from tests.inbox_builder import block_row, melior_row, t4_row, write_delivery

REPO = Path(__file__).resolve().parents[1]
SAMPLE_INBOX = REPO / "data" / "inbox"
"""The bundled sample inbox: what the README's first command runs."""
PSEUDONYM_KEY = "trust-suite-pseudonym-key-0123456789"
DAY_1 = date(2026, 11, 24)
DAY_2 = date(2026, 11, 25)
RUN_TIMEOUT_S = 300


# --- the job's files ---------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One isolated installation of the job: inbox, warehouse, analytics, feed."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def warehouse(self) -> Path:
        return self.data / "warehouse.duckdb"

    @property
    def analytics(self) -> Path:
        return self.data / "analytics.duckdb"

    @property
    def feed(self) -> Path:
        return self.data / "feed"

    def storage_args(self) -> list[str]:
        return [
            "--warehouse", str(self.warehouse), "--analytics", str(self.analytics),
            "--feed", str(self.feed),
        ]  # fmt: skip

    def run_args(self, as_of: date, partitions: int = 4) -> list[str]:
        return [
            "run", "--as-of", as_of.isoformat(), "--inbox", str(self.inbox),
            *self.storage_args(), "--partitions", str(partitions),
        ]  # fmt: skip

    def copy_to(self, root: Path) -> Job:
        shutil.copytree(self.root, root, symlinks=True)
        return Job(root)


# --- running jvn as a process ------------------------------------------------


def job_env(prefect_home: Path, *, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of one `jvn` process: isolated Prefect, no telemetry, a key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "JVN_")) and k != "DO_NOT_TRACK"
    }
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        DO_NOT_TRACK="1",
        JVN_PSEUDONYM_KEY=PSEUDONYM_KEY,
        PYTHONPATH=str(REPO),
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def jvn(
    args: list[str], env: dict[str, str], *, timeout: float = RUN_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run `python -m flows.cli ARGS` in its own process and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sample_run_storage(data: Path) -> list[str]:
    """`jvn run`'s arguments for the bundled sample inbox, its outputs in `data`."""
    return [
        "--inbox", str(SAMPLE_INBOX), "--warehouse", str(data / "warehouse.duckdb"),
        "--analytics", str(data / "analytics.duckdb"), "--feed", str(data / "feed"),
    ]  # fmt: skip


# --- a small inbox that exercises every feed ----------------------------------

PATIENTS = ("191212121212", "194107086995", "198503122387", "196408233234")
"""Valid personnummer (Luhn-checked), adult on every documentation date used."""

BAD_PATIENT = "191212121213"
"""Fails the Luhn check: its rows are quarantined."""


def _text(tag: str) -> str:
    return f"Journaltext {tag}: patienten uppger smärta; “citat” åäö"


def day_rows(day: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of every feed for day 1 or 2: visible, hidden, updated and bad ones."""
    p0, p1, p2, p3 = PATIENTS
    if day == 1:
        melior = [
            melior_row("D-1", Personnummer=p0, Rubrik="Rubrik D1", Text=_text("D1")),
            melior_row(
                "D-2", Personnummer=p1, Sokord="Tidiga hypoteser", Rubrik="Rubrik D2",
                Text=_text("D2"),
            ),
            melior_row("D-3", Personnummer=BAD_PATIENT, Rubrik="Rubrik D3", Text=_text("D3")),
            melior_row(
                "D-4", Personnummer=p2, Signerad="N", Signeringstid="", Rubrik="Rubrik D4",
                Text=_text("D4"),
            ),
        ]  # fmt: skip
        t4 = [
            t4_row("T-1", patient_pnr=f"{p1[:8]}-{p1[8:]}", heading="Rubrik T1",
                   entry_text=_text("T1")),
            t4_row("T-2", patient_pnr=f"{p3[:8]}-{p3[8:]}", heading="Rubrik T2",
                   entry_text=_text("T2")),
            t4_row("T-3", patient_pnr=f"{p2[:8]}-{p2[8:]}", entry_datetime="2021-13-01T09:00Z",
                   heading="Rubrik T3", entry_text=_text("T3")),
        ]  # fmt: skip
        blocks = [block_row("B-1", pnr=p3)]
        asynja = [
            _asynja("AV-1", p2, "Rubrik AV1", _text("AV1")),
            _asynja("AV-2", p0, "Rubrik AV2", _text("AV2"), retracted=True),
        ]
        obstetrix = [_obstetrix("OB-1", p2, "Rubrik OB1", _text("OB1"))]
        journalia = [_journalia("J-1", p0, "Rubrik J1", _text("J1"))]
    else:
        melior = [
            melior_row("D-1", 2, Personnummer=p0, Rubrik="Rubrik D1v2", Text=_text("D1v2")),
            melior_row("D-5", Personnummer=p3, Rubrik="Rubrik D5", Text=_text("D5")),
            melior_row("D-6", Personnummer=p1, Dokumenttid="2021-02-30 10:00",
                       Rubrik="Rubrik D6", Text=_text("D6")),
        ]  # fmt: skip
        t4 = [t4_row("T-4", patient_pnr=p0, heading="Rubrik T4", entry_text=_text("T4"))]
        blocks = [block_row("B-2", pnr=p1, scope="UNIT", hsa_id="SE2321000131-E000000000201")]
        asynja = [_asynja("AV-3", p1, "Rubrik AV3", _text("AV3"))]
        obstetrix = [_obstetrix("OB-2", p0, "Rubrik OB2", _text("OB2"))]
        journalia = [_journalia("J-2", p2, "Rubrik J2", _text("J2"), state="M")]
    return {
        "melior": melior,
        "asynjavisph": asynja,
        "obstetrix": obstetrix,
        "journalia": journalia,
        "t4": t4,
        "blocks": blocks,
    }


def _asynja(record_id: str, pnr: str, title: str, body: str, *, retracted: bool = False) -> Any:
    return {
        "id": record_id, "rev": 1, "patient": {"pnr": f"{pnr[:8]}-{pnr[8:]}"},
        "unit": {"hsaId": "SE2321000131-E000000004567", "name": "Vårdcentralen Dalen"},
        "type": "note", "keyword": "Bedömning", "documentedAt": "2021-11-01T00:30:00+01:00",
        "signed": True, "signedAt": "2021-11-01T09:12:00+01:00", "retracted": retracted,
        "title": title, "body": body,
    }  # fmt: skip


def _obstetrix(record_id: str, pnr: str, title: str, text: str) -> dict[str, Any]:
    return {
        "record_id": record_id, "version": "1", "personal_number": pnr,
        "unit_hsa_id": "SE2321000131-E000000003001", "unit_name": "Kvinnokliniken",
        "document_type": "SAMMANFATTNING", "document_date": "2021-03-31", "signed": "true",
        "status": "active", "title": title, "text": text,
    }  # fmt: skip


def _journalia(record_id: str, pnr: str, title: str, text: str, state: str = "A") -> Any:
    return {
        "id": record_id, "version": "1", "pnr": pnr, "hsa_id": "SE2321000131-E000000005001",
        "unit_name": "Diabetesmottagningen", "doc_kind": "AK-BREV",
        "created": "2021-04-01 10:00:00", "signed": "1", "state": state, "title": title,
        "text": text,
    }  # fmt: skip


REJECTED_TEXT = "Avvisad leveranstext med känsligt innehåll"


def write_inbox(inbox: Path, days: tuple[int, ...] = (1, 2)) -> None:
    """Every feed on each day; on day 1 also a structurally bad Melior row and an
    AsynjaVisph line that is not JSON; on day 2 a T4 delivery rejected whole
    (its control file's row count is wrong)."""
    from tests.inbox_builder import delivery_bytes

    for day in days:
        business_date = DAY_1 if day == 1 else DAY_2
        for feed, rows in day_rows(day).items():
            if day == 1 and feed in {"melior", "asynjavisph"}:
                data = delivery_bytes(feed, rows)
                if feed == "melior":
                    extra = f"D-9;1;{PATIENTS[0]};too;few;fields;{REJECTED_TEXT} melior\r\n"
                    data += extra.encode("cp1252")
                else:
                    data += f'{{"id": "AV-9", "rev": 1, "body": "{REJECTED_TEXT} av"\n'.encode()
                write_delivery(
                    inbox, feed, business_date, rows, data=data, control={"rows": len(rows) + 1}
                )
            else:
                write_delivery(inbox, feed, business_date, rows)
    if 2 in days:
        rejected = [
            t4_row("T-8", patient_pnr=f"{PATIENTS[2][:8]}-{PATIENTS[2][8:]}",
                   heading="Rubrik T8", entry_text=f"{REJECTED_TEXT} t4"),
        ]  # fmt: skip
        write_delivery(inbox, "t4", date(2026, 11, 23), rejected, control={"rows": 5})


def secrets_of_inbox() -> dict[str, str]:
    """What must never leave the warehouse and the feed: label -> value.

    Labels say what kind of value it is (and which record), never the value.
    """
    found: dict[str, str] = {}
    for day in (1, 2):
        for feed, rows in day_rows(day).items():
            for row in rows:
                for key in ("Personnummer", "patient_pnr", "pnr", "personal_number"):
                    if key in row:
                        _add_pnr(found, f"{feed} personnummer", row[key])
                if "patient" in row:
                    _add_pnr(found, f"{feed} personnummer", row["patient"]["pnr"])
                for key in ("Rubrik", "heading", "title", "Text", "entry_text", "text", "body"):
                    if key in row:
                        found[f"{feed} {key} of {_row_id(row)}"] = row[key]
    for index, pnr in enumerate((*PATIENTS, BAD_PATIENT)):
        _add_pnr(found, f"patient {index}", pnr)
    found["rejected delivery text"] = REJECTED_TEXT
    return found


def _add_pnr(found: dict[str, str], label: str, value: str) -> None:
    digits = value.replace("-", "")
    found[f"{label} (12 digits, {digits[:2]}…)"] = digits
    found[f"{label} (with dash, {digits[:2]}…)"] = f"{digits[:8]}-{digits[8:]}"


def _row_id(row: dict[str, Any]) -> str:
    for key in ("DokumentID", "journal_id", "record_id", "id", "block_id"):
        if key in row:
            return str(row[key])
    return "?"


# --- what a run produced ------------------------------------------------------


def feed_rows(feed_dir: Path) -> pl.DataFrame:
    """The live snapshot's rows, sorted by record id (empty frame when none)."""
    name = (feed_dir / "CURRENT").read_text(encoding="utf-8").strip()
    manifest = json.loads((feed_dir / name / "manifest.json").read_text(encoding="utf-8"))
    files = [feed_dir / name / entry["name"] for entry in manifest["files"]]
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files]).sort("record_id")


def decisions(warehouse: Path) -> pl.DataFrame:
    """The warehouse's decisions without the run id, sorted by record id."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        frame = connection.sql("SELECT * EXCLUDE (run_id) FROM decisions").pl()
    return frame.sort("record_id")


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """The tail of a process's output, for an assertion message (test data only)."""
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n"
        + (result.stderr[-6000:])
    )
