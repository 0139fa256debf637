"""The five journal systems: codes, file formats, encodings, which raw column plays which part.

Also the citizen-block register's file and columns, and the fixed dates the
history is drawn between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal


@dataclass(frozen=True)
class _Roles:
    """Which raw column plays which part, so deltas and bad rows are generic."""

    id: str
    version: str
    pnr: str
    doc: str
    signed: str
    signed_at: str | None
    retracted: str
    title: str
    text: str
    signed_codes: tuple[str, str]
    retracted_codes: tuple[str, str]


@dataclass(frozen=True)
class System:
    name: str
    file_name: str
    kind: Literal["csv", "ndjson"]
    encoding: Literal["utf-8", "utf-8-sig", "cp1252"]
    delimiter: str
    line_end: str
    share: float
    id_prefix: str
    id_offset: int
    columns: tuple[str, ...]
    roles: _Roles
    codes: tuple[tuple[str, float], ...]
    titles: dict[str, tuple[str, str, str]]
    bad_dates: tuple[str, ...]
    bad_flag: str
    iso_times: bool
    """Times written as ISO 8601 with an offset (else local wall-clock)."""
    doc_format: str
    """strftime of the local documentation time, for non-ISO systems."""

    def record_id(self, index: int) -> str:
        return f"{self.id_prefix}{self.id_offset + index}"


_MELIOR = System(
    name="melior",
    file_name="journal.csv",
    kind="csv",
    encoding="cp1252",
    delimiter=";",
    line_end="\r\n",
    share=0.35,
    id_prefix="D-",
    id_offset=1_000_000,
    columns=(
        "DokumentID",
        "Version",
        "Personnummer",
        "HSAid",
        "Enhetsnamn",
        "Specialitet",
        "Informationstyp",
        "Sokord",
        "Dokumenttid",
        "Signerad",
        "Signeringstid",
        "Status",
        "Rubrik",
        "Text",
    ),
    roles=_Roles(
        "DokumentID",
        "Version",
        "Personnummer",
        "Dokumenttid",
        "Signerad",
        "Signeringstid",
        "Status",
        "Rubrik",
        "Text",
        ("J", "N"),
        ("MAKULERAD", "AKTIV"),
    ),
    codes=(
        ("ANTECKNING", 45.0),
        ("DIAGNOS", 12.0),
        ("UPPMARKSAMHETSSIGNAL", 1.0),
        ("VARDKONTAKT", 20.0),
        ("PROVSVAR", 12.0),
        ("LAKEMEDEL", 6.0),
        ("REMISS", 3.5),
        ("INTYG", 0.5),
    ),
    titles={
        "ANTECKNING": ("Daganteckning", "Besöksanteckning", "Inskrivningsanteckning"),
        "DIAGNOS": ("Diagnos", "Huvuddiagnos", "Bidiagnos"),
        "UPPMARKSAMHETSSIGNAL": ("Överkänslighet", "Uppmärksamhetssignal", "Smitta"),
        "VARDKONTAKT": ("Öppenvårdsbesök", "Slutenvårdstillfälle", "Telefonkontakt"),
        "PROVSVAR": ("Klinisk kemi", "Mikrobiologi", "Patologi"),
        "LAKEMEDEL": ("Ordination", "Läkemedelslista", "Utsättning"),
        "REMISS": ("Remiss", "Konsultremiss", "Remissvar"),
        "INTYG": ("Läkarintyg", "Intyg till Försäkringskassan", "Intyg"),
    },
    bad_dates=("2021-13-05 10:15", "igår 14:00", "2021-06-31 08:00", "05/06/2021 10:15"),
    bad_flag="Ja",
    iso_times=False,
    doc_format="%Y-%m-%d %H:%M",
)
_ASYNJA = System(
    name="asynjavisph",
    file_name="records.ndjson",
    kind="ndjson",
    encoding="utf-8",
    delimiter="",
    line_end="\n",
    share=0.45,
    id_prefix="AV-",
    id_offset=100_000,
    columns=(
        "id",
        "rev",
        "pnr",
        "hsaId",
        "name",
        "type",
        "keyword",
        "documentedAt",
        "signed",
        "signedAt",
        "retracted",
        "title",
        "body",
    ),
    roles=_Roles(
        "id",
        "rev",
        "pnr",
        "documentedAt",
        "signed",
        "signedAt",
        "retracted",
        "title",
        "body",
        ("true", "false"),
        ("true", "false"),
    ),
    codes=(
        ("note", 45.0),
        ("diagnosis", 10.0),
        ("attention_signal", 0.5),
        ("care_contact", 20.0),
        ("lab_result", 12.0),
        ("vaccination", 4.0),
        ("medication", 5.0),
        ("referral", 3.0),
        ("certificate", 0.5),
    ),
    titles={
        "note": ("Besöksanteckning", "Telefonanteckning", "Journalanteckning"),
        "diagnosis": ("Diagnos", "Diagnos", "Bidiagnos"),
        "attention_signal": ("Överkänslighet", "Uppmärksamhetssignal", "Allergi"),
        "care_contact": ("Besök", "Telefonkontakt", "Digital vårdkontakt"),
        "lab_result": ("Provsvar", "Labbsvar", "Snabbtest"),
        "vaccination": ("Vaccination", "Influensavaccination", "Vaccination, barn"),
        "medication": ("Recept", "Läkemedelslista", "Förnyelse"),
        "referral": ("Remiss", "Remiss", "Remissvar"),
        "certificate": ("Intyg", "Läkarintyg", "Intyg för körkort"),
    },
    bad_dates=("2021-06-15 10:00", "2021-06-31T10:00:00+02:00", "igår", "2021-06-15T10:00:00"),
    bad_flag="ja",
    iso_times=True,
    doc_format="",
)
_OBSTETRIX = System(
    name="obstetrix",
    file_name="journal.csv",
    kind="csv",
    encoding="utf-8",
    delimiter=",",
    line_end="\n",
    share=0.05,
    id_prefix="OX",
    id_offset=5_000_000,
    columns=(
        "record_id",
        "version",
        "personal_number",
        "unit_hsa_id",
        "unit_name",
        "document_type",
        "document_date",
        "signed",
        "status",
        "title",
        "text",
    ),
    roles=_Roles(
        "record_id",
        "version",
        "personal_number",
        "document_date",
        "signed",
        None,
        "status",
        "title",
        "text",
        ("true", "false"),
        ("retracted", "active"),
    ),
    codes=(
        ("SAMMANFATTNING", 15.0),
        ("ANTECKNING", 50.0),
        ("MATVARDE", 25.0),
        ("FORLOSSNINGSJOURNAL", 9.5),
        ("EPIKRIS", 0.5),
    ),
    titles={
        "SAMMANFATTNING": ("Journalsammanfattning", "Sammanfattning", "Graviditetssammanfattning"),
        "ANTECKNING": ("Besök barnmorska", "Telefonsamtal", "Anteckning"),
        "MATVARDE": ("Blodtryck", "Vikt", "SF-mått"),
        "FORLOSSNINGSJOURNAL": ("Förlossningsjournal", "Partogram", "Förlossningsberättelse"),
        "EPIKRIS": ("Epikris", "Epikris", "Utskrivning"),
    },
    bad_dates=("15/06/2021", "2021-13-01", "2021-02-30", "juni 2021"),
    bad_flag="yes",
    iso_times=False,
    doc_format="%Y-%m-%d",
)
_JOURNALIA = System(
    name="journalia",
    file_name="export.csv",
    kind="csv",
    encoding="utf-8-sig",
    delimiter=",",
    line_end="\n",
    share=0.03,
    id_prefix="JL",
    id_offset=700_000,
    columns=(
        "id",
        "version",
        "pnr",
        "hsa_id",
        "unit_name",
        "doc_kind",
        "created",
        "signed",
        "state",
        "title",
        "text",
    ),
    roles=_Roles(
        "id",
        "version",
        "pnr",
        "created",
        "signed",
        None,
        "state",
        "title",
        "text",
        ("1", "0"),
        ("M", "A"),
    ),
    codes=(
        ("AK-BREV", 30.0),
        ("DIABETESANTECKNING", 40.0),
        ("LABBVARDE", 29.5),
        ("RECEPT", 0.5),
    ),
    titles={
        "AK-BREV": ("AK-brev", "Doseringsbrev", "AK-brev, ny dos"),
        "DIABETESANTECKNING": ("Diabetesbesök", "Årskontroll", "Telefonkontakt"),
        "LABBVARDE": ("HbA1c", "INR", "Lipider"),
        "RECEPT": ("Recept", "Recept", "Recept"),
    },
    bad_dates=("2021-06-15T10:00:00", "2021-06-15 25:00:00", "15.06.2021 10:00:00"),
    bad_flag="ja",
    iso_times=False,
    doc_format="%Y-%m-%d %H:%M:%S",
)
_T4 = System(
    name="t4",
    file_name="entries.csv",
    kind="csv",
    encoding="utf-8",
    delimiter="|",
    line_end="\n",
    share=0.12,
    id_prefix="FTV-",
    id_offset=3_000_000,
    columns=(
        "journal_id",
        "rev",
        "patient_pnr",
        "clinic_hsa_id",
        "clinic_name",
        "entry_type",
        "entry_datetime",
        "signed",
        "cancelled",
        "heading",
        "entry_text",
    ),
    roles=_Roles(
        "journal_id",
        "rev",
        "patient_pnr",
        "entry_datetime",
        "signed",
        None,
        "cancelled",
        "heading",
        "entry_text",
        ("Y", "N"),
        ("Y", "N"),
    ),
    codes=(
        ("ANTECKNING", 40.0),
        ("DIAGNOS", 10.0),
        ("BESOK", 35.0),
        ("RONTGEN", 8.0),
        ("BEHANDLINGSPLAN", 6.5),
        ("INTYG", 0.5),
    ),
    titles={
        "ANTECKNING": ("Journalanteckning", "Akutbesök", "Revisionsundersökning"),
        "DIAGNOS": ("Diagnos", "Karies", "Parodontit"),
        "BESOK": ("Besök", "Revisionsbesök", "Akutbesök"),
        "RONTGEN": ("Bitewing", "Panoramaröntgen", "Intraoral röntgen"),
        "BEHANDLINGSPLAN": ("Behandlingsplan", "Terapiplan", "Behandlingsförslag"),
        "INTYG": ("Intyg", "Intyg", "Intyg"),
    },
    bad_dates=("2021-06-15 10:00", "2021-06-31T10:00:00+02:00", "15/06/2021 10:00"),
    bad_flag="J",
    iso_times=True,
    doc_format="",
)

SYSTEMS: Final = {s.name: s for s in (_MELIOR, _ASYNJA, _OBSTETRIX, _JOURNALIA, _T4)}
"""The journal systems in load order (the order of transforms.canonical.SYSTEMS)."""

BLOCKS_FILE: Final = "blocks.csv"
BLOCK_COLUMNS: Final = (
    "block_id",
    "version",
    "pnr",
    "scope",
    "hsa_id",
    "valid_from",
    "valid_to",
    "status",
)
BLOCK_ID_OFFSET: Final = 1_000_000

HISTORY_START: Final = date(2010, 1, 1)
T4_CLUSTER: Final = date(2020, 12, 1)
