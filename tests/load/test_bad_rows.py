"""Bad rows end to end: a bad update hides its record whatever the row looks like.

Each test delivers a record that is shown, then a bad update of it (too long to
parse, duplicate JSON keys), and runs the real `jvn run`: the record must be
hidden as `invalid_record`, never left on show at the older version. A bad row
whose record id cannot be read at all is counted, loudly, in the run summary.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.audit.reports import print_run_summary
from flows.cli import main
from tests.inbox_builder import write_delivery
from tests.trust_support import _asynja

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "pseudonym_key")]

DAY_1 = date(2026, 11, 24)
DAY_2 = date(2026, 11, 25)
PATIENT = "198503122387"
RECORD = "asynjavisph:AV-101357"


def _run(root: Path, as_of: date, *extra: str) -> int:
    data = root / "data"
    return main(
        [
            "run", "--as-of", as_of.isoformat(), "--inbox", str(root / "inbox"),
            "--warehouse", str(data / "warehouse.duckdb"),
            "--analytics", str(data / "analytics.duckdb"), "--feed", str(data / "feed"),
            "--partitions", "2", *extra,
        ]
    )  # fmt: skip


def _decision(root: Path, record_id: str) -> tuple[bool, str]:
    with duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True) as connection:
        row = connection.execute(
            "SELECT visible, reason FROM decisions WHERE record_id = $id", {"id": record_id}
        ).fetchone()
    assert row is not None
    return bool(row[0]), str(row[1])


def _shown_then_updated(root: Path, update_line: str) -> None:
    """AV-101357 delivered visible on day 1; on day 2 one line, `update_line`."""
    inbox = root / "inbox"
    write_delivery(inbox, "asynjavisph", DAY_1, [_asynja("AV-101357", PATIENT, "Rubrik", "Text")])
    assert _run(root, DAY_1) == 0
    assert _decision(root, RECORD)[0] is True
    data = (update_line + "\n").encode("utf-8")
    write_delivery(inbox, "asynjavisph", DAY_2, data=data, control={"rows": 1})


def _update(**changes: Any) -> dict[str, Any]:
    row = _asynja("AV-101357", PATIENT, "Rubrik", "Text")
    row.update(changes)
    return row


def test_bad_update_longer_than_a_row_may_be_hides_the_record(tmp_path: Path) -> None:
    line = json.dumps(_update(rev=9, retracted=True, body="x" * (9 << 20)))
    _shown_then_updated(tmp_path, line)

    assert _run(tmp_path, DAY_2) == 0

    assert _decision(tmp_path, RECORD)[0] is False


def test_update_with_a_duplicate_rev_key_hides_the_record(tmp_path: Path) -> None:
    line = json.dumps(_update(rev=2)).replace('"rev": 2', '"rev": 2, "rev": 1')
    _shown_then_updated(tmp_path, line)

    assert _run(tmp_path, DAY_2) == 0

    assert _decision(tmp_path, RECORD) == (False, "invalid_record")


def test_bad_row_whose_id_cannot_be_read_is_counted_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = json.dumps(_update(rev=2))[:-1]  # not JSON any more: no id can be read
    _shown_then_updated(tmp_path, line)
    capsys.readouterr()

    assert _run(tmp_path, DAY_2, "--json") == 0

    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_quarantined"] == 1
    assert summary["rows_quarantined_without_id"] == 1


def _summary(**changes: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "run_id": "r", "as_of": "2026-11-25", "rules_version": "v", "status": "published",
        "snapshot": "s", "deliveries_loaded": 1, "deliveries_already_loaded": 0,
        "deliveries_rejected": [], "deliveries_duplicate": 0, "records_loaded": 1,
        "rows_quarantined": 0, "records": 1, "visible": 1, "reasons": {},
        "units_exempt_by_name_only": [], "unknown_codes": [],
    }  # fmt: skip
    summary.update(changes)
    return summary


def test_summary_names_quarantined_rows_without_a_record_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_run_summary(_summary(rows_quarantined=3, rows_quarantined_without_id=2))
    printed = capsys.readouterr().out
    assert "2 quarantined rows whose record id could not be read" in printed


def test_summary_escapes_control_characters_from_deliveries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    forged = "SE2321000131-E1\x1b[2K\r\n  status        published\x00\u202e"
    print_run_summary(
        _summary(
            units_exempt_by_name_only=[
                {"care_unit_hsa_id": forged, "care_unit_name": forged, "records": 1}
            ],
            unknown_codes=[{"source_system": "t4", "source_code": forged, "records": 1}],
            deliveries_rejected=[{"delivery": "t4/2026-11-25\x1b]0;x\x07", "error": "e"}],
        )
    )
    printed = capsys.readouterr().out
    assert not any(ch in printed for ch in "\x1b\x00\r\x07\u202e")
    assert "\\x1b[2K" in printed
    assert [line for line in printed.splitlines() if line.startswith("  status")] == [
        "  status        published  snapshot s"
    ]  # no forged line
