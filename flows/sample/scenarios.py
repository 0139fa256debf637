"""Scenario rows: fixed rows with known ids that pin each rule's edge cases, and their catalogue.

`SCENARIOS` lists every one with the reason the region's default rules must give
it; tests/sample/test_sample_inbox.py runs the job on the committed sample and checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flows.sample.results import SampleScenario
from flows.sample.settings import BAD_KINDS
from flows.sample.systems import SYSTEMS


@dataclass(frozen=True)
class _Scenario:
    what: str
    expect: str
    doc: str
    """As the system writes it; its local date must not be after the first delivery."""
    patient: str = "adult"
    unit: str | None = None
    """Unit name in the system's table (None: the system's default unit)."""
    unit_as: str | None = None
    """The unit name as written, when it differs from the table."""
    code: str | None = None
    keyword: str | None = "Bedömning"
    kw_mode: int = 0
    """asynjavisph: 0 keyword present, 1 null, 2 absent (signedAt too when unsigned)."""
    signed: bool = True
    retracted: bool = False
    version: int = 1
    text: str | None = None
    dash: bool = True
    action: str | None = None
    """A change in the second delivery: edit, sign, retract, bad_update, stale_lower,
    stale_equal."""
    also_earlier: bool = False
    """The history also holds version - 1, written after this version."""


_QUIRKY_TEXT: Final = (
    'Pat. säger: "ont; värre på natten".\nÅter om 2 veckor – kostnad 20 €.\n'
    "“Citat” från anhörig; åäö ÅÄÖ é."
)
DEFAULT_UNIT: Final = {
    "melior": "Medicinkliniken Sahlgrenska",
    "asynjavisph": "Vårdcentralen Dalen",
    "obstetrix": "Barnmorskemottagningen Dalen",
    "journalia": "AK-mottagningen Sahlgrenska",
    "t4": "Folktandvården Dalen",
}
DEFAULT_CODE: Final = {
    "melior": "ANTECKNING",
    "asynjavisph": "note",
    "obstetrix": "SAMMANFATTNING",
    "journalia": "AK-BREV",
    "t4": "ANTECKNING",
}

_S = _Scenario
SCENARIO_ROWS: Final[dict[str, tuple[_Scenario, ...]]] = {
    "melior": (
        _S("before system start, 1 minute to midnight", "before_system_start", "2016-05-31 23:59"),
        _S("system start day, just after midnight", "shown", "2016-06-01 00:01"),
        _S("adult psychiatry the day before its start", "before_psychiatry_start",
           "2018-09-02 16:00", unit="Psykiatriska kliniken Sahlgrenska"),
        _S("adult psychiatry on its start date", "shown", "2018-09-03 08:00",
           unit="Psykiatriska kliniken Sahlgrenska"),
        _S("clinical genetics 10 minutes before its start", "before_genetics_start",
           "2019-10-31 23:50", unit="Klinisk genetik Sahlgrenska"),
        _S("clinical genetics on its start date", "shown", "2019-11-01 00:05",
           unit="Klinisk genetik Sahlgrenska"),
        _S("child, day before the children's start", "before_children_start",
           "2019-10-31 10:00", patient="child_2010"),
        _S("child on the children's start date", "shown", "2019-11-01 10:00",
           patient="child_2010"),
        _S("17 years old: the day before the 18th birthday", "before_children_start",
           "2019-10-30 12:00", patient="turns18_2019"),
        _S("on the 18th birthday", "shown", "2019-10-31 12:00", patient="turns18_2019"),
        _S("born 29 February: 28 February of the 18th year, still 17", "before_children_start",
           "2018-02-28 12:00", patient="leap_2000"),
        _S("born 29 February: 18 on 1 March", "shown", "2018-03-01 12:00", patient="leap_2000"),
        _S("samordningsnummer, adult", "shown", "2020-03-10 09:00", patient="samordning"),
        _S("samordningsnummer, child before the children's start", "before_children_start",
           "2019-01-15 09:00", patient="samordning_child"),
        _S("unknown information type INTYG reads as other", "info_type_not_connected",
           "2021-04-12 10:00", code="INTYG", keyword=None),
        _S("listed but unconnected type PROVSVAR", "info_type_not_connected",
           "2021-04-12 10:30", code="PROVSVAR", keyword=None),
        _S("exempt unit by HSA-id, name in odd case/spacing", "exempt_unit", "2021-05-03 11:00",
           unit="BUP Göteborg", unit_as="bup  GÖTEBORG"),
        _S("exempt unit by name only (unlisted HSA-id)", "exempt_unit", "2021-05-03 11:30",
           unit="Barn- och ungdomspsykiatri Kungälv"),
        _S("look-alike unit name that must not match", "shown", "2021-05-03 12:00",
           unit="Bupkiss barnklinik"),
        _S("exempt term in odd case and spacing", "exempt_term", "2021-06-01 09:00",
           keyword="  tidiga   HYPOTESER "),
        _S("exempt term", "exempt_term", "2021-06-01 09:30",
           keyword="Våldsutsatthet i nära relationer"),
        _S("unsigned, documented 2022-02-20 (delay applies before 2022-03-01)", "shown",
           "2022-02-20 14:00", signed=False),
        _S("retracted (MAKULERAD, version 2)", "retracted", "2021-02-01 10:00", retracted=True,
           version=2),
        _S("text with ; quotes newlines åäö € curly quotes and dash", "shown",
           "2021-03-01 10:00", text=_QUIRKY_TEXT),
        _S("diagnosis", "shown", "2021-03-02 10:00", code="DIAGNOS", keyword=None),
        _S("attention signal", "shown", "2021-03-02 10:05", code="UPPMARKSAMHETSSIGNAL",
           keyword=None),
        _S("care contact", "shown", "2021-03-02 10:10", code="VARDKONTAKT", keyword=None),
        _S("patient with an active whole-journal block", "patient_block", "2021-03-03 10:00",
           patient="block_all"),
        _S("patient with a unit block, at that unit", "patient_block", "2021-03-03 10:00",
           patient="block_unit"),
        _S("patient with a unit block, at another unit", "shown", "2021-03-03 10:00",
           patient="block_unit", unit="Kirurgkliniken Sahlgrenska"),
        _S("patient whose block has expired", "shown", "2021-03-03 10:00",
           patient="block_expired"),
        _S("patient whose block starts after end_date", "shown", "2021-03-03 10:00",
           patient="block_future"),
        _S("patient whose block is revoked in the second delivery", "shown",
           "2021-03-03 10:00", patient="block_revoked"),
        _S("patient whose block arrives in the second delivery", "patient_block",
           "2021-03-03 10:00", patient="block_new"),
        _S("patient whose block gets a stale lower revoked version", "patient_block",
           "2021-03-03 10:00", patient="block_lower"),
        _S("unsigned in history, signed (version 2) in the second delivery", "shown",
           "2021-09-01 10:00", signed=False, action="sign"),
        _S("retracted (version 2) in the second delivery", "retracted", "2021-09-01 10:10",
           action="retract"),
        _S("edited (version 2) in the second delivery", "shown", "2021-09-01 10:20",
           action="edit"),
        _S("bad update: version 2 with a bad personnummer checksum", "invalid_record",
           "2021-09-01 10:30", action="bad_update"),
        _S("version 3 in history, stale version 2 in the second delivery", "shown",
           "2021-09-01 10:40", version=3, action="stale_lower"),
        _S("version 2 in history, equal version 2 again in the second delivery", "shown",
           "2021-09-01 10:50", version=2, action="stale_equal"),
        _S("history holds version 2 and then version 1", "shown", "2021-09-02 10:00",
           version=2, also_earlier=True),
        _S("before system start and exempt unit: two reasons", "before_system_start",
           "2015-03-03 10:00", unit="BUP Borås"),
        _S("retracted, unsigned and exempt: retracted comes first", "retracted",
           "2021-09-03 10:00", unit="Rättspsykiatri Sahlgrenska", signed=False,
           retracted=True, version=2),
        _S("autumn DST: the hour that occurs twice", "shown", "2021-10-31 02:30"),
        _S("spring DST: a time no clock showed", "shown", "2021-03-28 02:30"),
        _S("born 29 February 1948, adult", "shown", "2021-03-04 09:00", patient="leap_1948"),
    ),
    "asynjavisph": (
        _S("UTC 22:30 on 31 Oct is local 23:30: before start", "before_system_start",
           "2016-10-31T22:30:00Z"),
        _S("UTC 23:30 on 31 Oct is local 00:30 on the start date", "shown",
           "2016-10-31T23:30:00Z"),
        _S("start date with a +01:00 offset", "shown", "2016-11-01T00:30:00+01:00"),
        _S("child, local 23:59 the day before the children's start", "before_children_start",
           "2019-10-31T22:59:00Z", patient="child_2010"),
        _S("child, UTC 23:30 is local 00:30 on the children's start", "shown",
           "2019-10-31T23:30:00Z", patient="child_2010"),
        _S("unknown type certificate reads as other", "info_type_not_connected",
           "2021-04-12T10:00:00+02:00", code="certificate", kw_mode=1),
        _S("listed but unconnected type medication", "info_type_not_connected",
           "2021-04-12T10:30:00+02:00", code="medication", kw_mode=2),
        _S("vaccination", "shown", "2021-04-13T09:00:00+02:00", code="vaccination", kw_mode=1),
        _S("lab result", "shown", "2021-04-13T09:10:00Z", code="lab_result", kw_mode=2),
        _S("keyword null", "shown", "2021-04-13T09:20:00+02:00", kw_mode=1),
        _S("unsigned, keyword and signedAt absent", "shown", "2023-01-10T09:00:00+01:00",
           kw_mode=2, signed=False),
        _S("exempt unit by HSA-id, name upper case", "exempt_unit", "2021-05-03T11:00:00+02:00",
           unit="UNGDOMSMOTTAGNINGEN ANGERED"),
        _S("exempt unit by name only (unlisted HSA-id)", "exempt_unit",
           "2021-05-03T11:30:00+02:00", unit="Ungdomsmottagningen Nyby"),
        _S("look-alike Utvägen must not match \\butvag\\b", "shown",
           "2021-05-03T12:00:00+02:00", unit="Utvägen hälsocentral"),
        _S("look-alike Stigens must not match \\bsti\\b", "shown", "2021-05-03T12:10:00+02:00",
           unit="Stigens vårdcentral"),
        _S("exempt term, lower case and double space", "exempt_term",
           "2021-06-01T09:00:00+02:00", keyword="våldsutsatthet i  nära relationer "),
        _S("summer time +02:00 late evening", "shown", "2020-06-15T23:30:00+02:00"),
        _S("personnummer without dash", "shown", "2021-02-02T10:00:00+01:00", dash=False),
        _S("samordningsnummer with dash", "shown", "2021-02-02T10:10:00+01:00",
           patient="samordning"),
        _S("retracted", "retracted", "2021-02-03T10:00:00+01:00", retracted=True, version=2),
        _S("unsigned, documented 2022-02-20", "shown", "2022-02-20T13:00:00+01:00",
           signed=False),
        _S("retracted in the second delivery", "retracted", "2021-09-01T10:00:00+02:00",
           action="retract"),
        _S("bad update: rev 2 with documentedAt without offset", "invalid_record",
           "2021-09-01T10:10:00+02:00", action="bad_update"),
        _S("patient with an active whole-journal block", "patient_block",
           "2021-03-03T10:00:00+01:00", patient="block_all"),
        _S("unit-blocked patient at a unit without block", "shown",
           "2021-03-03T10:00:00+01:00", patient="block_unit"),
        _S("born 29 February 1948", "shown", "2021-03-04T09:00:00+01:00", patient="leap_1948"),
        _S("attention signal", "shown", "2021-03-04T09:10:00+01:00", code="attention_signal",
           kw_mode=2),
    ),
    "obstetrix": (
        _S("journal summary the day before the start", "before_system_start", "2019-05-14",
           patient="adult2"),
        _S("journal summary on the start date", "shown", "2019-05-15", patient="adult2"),
        _S("note: not connected", "info_type_not_connected", "2020-01-10", patient="adult2",
           code="ANTECKNING"),
        _S("unknown type EPIKRIS reads as other", "info_type_not_connected", "2020-01-11",
           patient="adult2", code="EPIKRIS"),
        _S("16-year-old mother before 2019-11-01: child rule does not apply", "shown",
           "2019-06-01", patient="mother_16"),
        _S("retracted", "retracted", "2020-02-01", patient="adult2", retracted=True, version=2),
        _S("exempt unit by HSA-id, upper case", "exempt_unit", "2020-02-02", patient="adult2",
           unit="MÖDRA-BARNHÄLSOVÅRDSTEAMET I HAGA"),
        _S("edited in the second delivery", "shown", "2020-02-03", patient="adult2",
           action="edit"),
    ),
    "journalia": (
        _S("AK letter 1 second before the start", "before_system_start", "2019-03-31 23:59:59"),
        _S("AK letter at the start", "shown", "2019-04-01 00:00:00"),
        _S("diabetes note: not connected", "info_type_not_connected", "2020-01-10 10:00:00",
           code="DIABETESANTECKNING"),
        _S("unknown type RECEPT reads as other", "info_type_not_connected",
           "2020-01-10 10:05:00", code="RECEPT"),
        _S("retracted (state M)", "retracted", "2020-02-01 10:00:00", retracted=True,
           version=2),
        _S("unsigned, documented 2022-02-20", "shown", "2022-02-20 08:00:00", signed=False),
        _S("child AK letter before 2019-11-01: child rule does not apply", "shown",
           "2019-06-01 10:00:00", patient="child_2010"),
        _S("version 3 in history, stale version 2 in the second delivery", "shown",
           "2020-03-01 10:00:00", version=3, action="stale_lower"),
    ),
    "t4": (
        _S("UTC 22:59 on 30 Nov is local 23:59: before start", "before_system_start",
           "2020-11-30T22:59:00Z"),
        _S("UTC 23:30 on 30 Nov is local 00:30 on 1 Dec: start date", "shown",
           "2020-11-30T23:30:00Z"),
        _S("7 Dec late evening: shown, hidden if the start moves to 2020-12-08", "shown",
           "2020-12-07T23:30:00+01:00"),
        _S("8 Dec just after midnight", "shown", "2020-12-08T00:10:00+01:00"),
        _S("visit (BESOK) is a care contact", "shown", "2021-01-11T09:00:00+01:00", code="BESOK"),
        _S("x-ray: not connected", "info_type_not_connected", "2021-01-11T09:30:00+01:00",
           code="RONTGEN"),
        _S("diagnosis: not connected for T4", "info_type_not_connected",
           "2021-01-11T09:40:00+01:00", code="DIAGNOS"),
        _S("unknown type INTYG reads as other", "info_type_not_connected",
           "2021-01-11T09:50:00+01:00", code="INTYG"),
        _S("cancelled (retracted)", "retracted", "2021-01-12T09:00:00+01:00", retracted=True,
           version=2),
        _S("child in T4: child rule does not apply", "shown", "2020-12-03T10:00:00+01:00",
           patient="child_2010"),
        _S("unsigned in history, signed in the second delivery", "shown",
           "2021-09-01T10:00:00+02:00", signed=False, action="sign"),
        _S("bad update: rev 2 with signed flag J", "invalid_record",
           "2021-09-01T10:10:00+02:00", action="bad_update"),
    ),
}  # fmt: skip
del _S


@dataclass(frozen=True)
class _BlockScenario:
    what: str
    patient: str
    scope: str
    unit: str | None
    valid_from: str
    valid_to: str | None
    history: tuple[tuple[int, str], ...]
    """(version, status) rows in the first delivery, in file order."""
    delta: tuple[tuple[int, str], ...] = ()
    """(version, status) rows in the second delivery."""


BLOCK_SCENARIOS: Final = (
    _BlockScenario("whole journal, open-ended", "block_all", "ALL", None, "2020-01-01", None,
                   ((1, "active"),)),
    _BlockScenario("one unit, until 2030", "block_unit", "UNIT", "Medicinkliniken Sahlgrenska",
                   "2021-01-01", "2030-12-31", ((1, "active"),)),
    _BlockScenario("expired", "block_expired", "ALL", None, "2018-01-01", "2019-12-31",
                   ((1, "active"),)),
    _BlockScenario("not yet valid (from end_date + 60 days)", "block_future", "ALL", None,
                   "+60", None, ((1, "active"),)),
    _BlockScenario("revoked in the second delivery", "block_revoked", "ALL", None,
                   "2020-05-01", None, ((1, "active"),), ((2, "revoked"),)),
    _BlockScenario("new in the second delivery", "block_new", "ALL", None, "2021-01-01", None,
                   (), ((1, "active"),)),
    _BlockScenario("version 2 active; stale version 1 revoked later", "block_lower", "ALL",
                   None, "2020-06-01", None, ((2, "active"),), ((1, "revoked"),)),
    _BlockScenario("unit block revoked already in history", "adult2", "UNIT",
                   "Kirurgkliniken Sahlgrenska", "2019-01-01", None,
                   ((1, "active"), (2, "revoked"))),
)  # fmt: skip


def _scenario_catalogue() -> tuple[SampleScenario, ...]:
    out: list[SampleScenario] = []
    for name, system in SYSTEMS.items():
        rows = SCENARIO_ROWS[name]
        out += [
            SampleScenario(f"{name}:{system.record_id(n)}", row.what, row.expect)
            for n, row in enumerate(rows)
        ]
        # The forced bad rows right after the scenario rows (one of each kind).
        out += [
            SampleScenario(f"{name}:{system.record_id(len(rows) + k)}", f"bad row: {kind}",
                           "invalid_record")
            for k, kind in enumerate(BAD_KINDS)
            if kind != "empty_id"
        ]  # fmt: skip
    return tuple(out)


SCENARIOS: Final = _scenario_catalogue()
"""Fixed rows every sample holds, with the reason the default rules must give."""
