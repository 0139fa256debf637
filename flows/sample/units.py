"""Care units per system (`UNITS`): HSA-ids, names and their variants, specialties, exemptions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class _Unit:
    hsa: str
    name: str
    specialty: str | None = None


def _hsa(number: int) -> str:
    return f"SE2321000131-E{number:012d}"


_PLACES: Final = (
    "Dalen", "Nyby", "Backa", "Biskopsgården", "Frölunda", "Gamlestaden", "Hjällbo",
    "Kortedala", "Lerum", "Partille", "Mölnlycke", "Kungsbacka", "Tjörn", "Stenungsund",
    "Vänersborg", "Åmål", "Mariestad", "Tidaholm", "Ulricehamn", "Herrljunga", "Vara",
    "Götene", "Tibro", "Hjo", "Tranemo", "Svenljunga", "Bengtsfors", "Strömstad",
    "Lysekil", "Orust", "Kungshamn", "Tanumshede", "Härryda", "Öckerö", "Torslanda",
    "Majorna", "Linnéstaden", "Johanneberg", "Guldheden", "Askim",
)  # fmt: skip
_HOSPITALS: Final = (
    "Sahlgrenska", "Östra sjukhuset", "Mölndals sjukhus", "NÄL", "SÄS Borås",
    "Skaraborgs sjukhus Skövde", "Alingsås lasarett", "Kungälvs sjukhus",
    "Uddevalla sjukhus", "Lidköpings sjukhus",
)  # fmt: skip
_CLINICS: Final = (
    ("Medicinkliniken", "Internmedicin"),
    ("Kirurgkliniken", "Kirurgi"),
    ("Psykiatriska kliniken", "Psykiatri, vuxen"),
    ("Ortopedkliniken", "Ortopedi"),
    ("Kvinnokliniken", "Obstetrik och gynekologi"),
    ("Akutmottagningen", "Akutsjukvård"),
    ("Barnmedicinska kliniken", "Barn- och ungdomsmedicin"),
)

_EXEMPT_LISTED: Final = {
    11001: "BUP Göteborg",
    11002: "BUP Borås",
    11003: "BUP Skövde",
    11004: "Borås bedömningsteam försäkringsmedicin",
    11005: "Flykting- barnmottagningen Angered",
    11006: "Göteborg bedömningsteam försäkringsmedicin",
    11007: "Kris och traumaenheten",
    11008: "Mottagningen för unga vuxna",
    11009: "Mödra-barnhälsovårdsteamet i Haga",
    11010: "Rättspsykiatri Sahlgrenska",
    11011: "Rättspsykiatriska regionkliniken",
    11012: "SMC Sexualmedicinskt centrum",
    11013: "STD-STI-mottagningen Sahlgrenska",
    11014: "Könsmottagningen Skövde",
    11015: "Ungdomsmottagningen Angered",
    11016: "Ungdomsmottagningen Trollhättan",
    11017: "Ungdomsmottagningen Borås",
    11018: "Utväg Skövde",
    11019: "Utväg Borås",
}
"""shared/spec/exempt_units.csv: the listed exempt units."""

_EXEMPT_SPECIALTY: Final = {
    11001: "Barn- och ungdomspsykiatri",
    11002: "Barn- och ungdomspsykiatri",
    11003: "Barn- och ungdomspsykiatri",
    11004: "Försäkringsmedicin",
    11006: "Försäkringsmedicin",
    11007: "Psykiatri, vuxen",
    11010: "Rättspsykiatri",
    11011: "Rättspsykiatri",
    11012: "Sexualmedicin",
    11013: "Venereologi",
    11014: "Venereologi",
}


def _name_variants(name: str) -> list[str]:
    """The name as the list has it, and spellings a system may use instead."""
    return [name, name.upper(), "  ".join(name.lower().split(" ")), " " + name + "  "]


@dataclass(frozen=True)
class _UnitTable:
    ordinary: tuple[_Unit, ...]
    exempt: tuple[_Unit, ...]
    """Listed HSA-ids (exempt_units.csv), names in several spellings."""
    name_only: tuple[_Unit, ...]
    """Unlisted HSA-ids whose name matches an exempt pattern."""
    lookalike: tuple[_Unit, ...]
    """Names that resemble an exempt unit but must not match a pattern."""

    @property
    def all(self) -> tuple[_Unit, ...]:
        return self.ordinary + self.exempt + self.name_only + self.lookalike

    def find(self, name: str) -> _Unit:
        for unit in self.all:
            if unit.name == name:
                return unit
        raise KeyError(name)


def _build_units() -> dict[str, _UnitTable]:
    counter = iter(range(1001, 11000))

    def new(name: str, specialty: str | None = None) -> _Unit:
        return _Unit(_hsa(next(counter)), name, specialty)

    def listed(numbers: Sequence[int], with_specialty: bool = False) -> tuple[_Unit, ...]:
        return tuple(
            _Unit(
                _hsa(n),
                variant,
                _EXEMPT_SPECIALTY.get(n, "Psykiatri, vuxen") if with_specialty else None,
            )
            for n in numbers
            for variant in _name_variants(_EXEMPT_LISTED[n])
        )

    name_only_numbers = iter(range(19001, 19100))

    def unlisted(name: str, specialty: str | None = None) -> _Unit:
        return _Unit(_hsa(next(name_only_numbers)), name, specialty)

    melior_ordinary = [new(f"{c} {h}", s) for h in _HOSPITALS for c, s in _CLINICS]
    melior_ordinary += [
        new("Klinisk genetik Sahlgrenska", "Klinisk genetik"),
        new("Onkologiska kliniken Sahlgrenska", "Onkologi"),
        new("Neurologiska kliniken Sahlgrenska", "Neurologi"),
    ]
    melior = _UnitTable(
        ordinary=tuple(melior_ordinary),
        exempt=listed(
            [11001, 11002, 11003, 11004, 11006, 11007, 11010, 11011, 11012, 11013, 11014],
            with_specialty=True,
        ),
        name_only=(
            unlisted("Barn- och ungdomspsykiatri Kungälv", "Barn- och ungdomspsykiatri"),
            unlisted("Könsmottagningen Uddevalla", "Venereologi"),
            unlisted("Kris- och traumaenheten Östra", "Psykiatri, vuxen"),
        ),
        lookalike=(
            new("Bupkiss barnklinik", "Barn- och ungdomsmedicin"),
            new("Smcare ortopedmottagning", "Ortopedi"),
        ),
    )
    primary = [new(f"Vårdcentralen {p}") for p in _PLACES]
    primary += [new(f"Hälsocentralen {p}") for p in _PLACES[:30]]
    primary += [new(f"Habiliteringen {p}") for p in _PLACES[:6]]
    primary += [new(f"Hjälpmedelscentralen {p}") for p in _PLACES[:3]]
    primary += [new(f"Barnavårdscentralen {p}") for p in _PLACES[:8]]
    asynjavisph = _UnitTable(
        ordinary=tuple(primary),
        exempt=listed([11005, 11008, 11009, 11015, 11016, 11017, 11018, 11019]),
        name_only=(
            unlisted("Ungdomsmottagningen Nyby"),
            unlisted("STI-mottagningen Borås"),
            unlisted("Utväg Trollhättan"),
        ),
        lookalike=(
            new("Utvägen hälsocentral"),
            new("Stigens vårdcentral"),
            new("Mottagningen för unga familjer Nyby"),
        ),
    )
    obstetrix = _UnitTable(
        ordinary=tuple(
            [new(f"Barnmorskemottagningen {p}") for p in _PLACES[:10]]
            + [new(f"Förlossningen {h}") for h in _HOSPITALS[:5]]
        ),
        exempt=listed([11009]),
        name_only=(unlisted("Mödra-barnhälsovårdsteamet Nyby"),),
        lookalike=(new("Barnmorskemottagningen Utvägen"),),
    )
    # Journalia runs at the hospitals' medical clinics: same HSA-ids as Melior,
    # names spelt the journalia way.
    shared = [melior.find(f"Medicinkliniken {h}") for h in _HOSPITALS[:5]]
    journalia_ordinary = [
        _Unit(u.hsa, u.name.replace("Medicinkliniken ", "Medicinkliniken, ")) for u in shared[:3]
    ]
    journalia_ordinary += [_Unit(u.hsa, u.name.upper()) for u in shared[3:]]
    journalia_ordinary += [new(f"Diabetesmottagningen {h}") for h in _HOSPITALS[:5]]
    journalia_ordinary += [new(f"AK-mottagningen {h}") for h in _HOSPITALS[:3]]
    journalia = _UnitTable(
        ordinary=tuple(journalia_ordinary),
        exempt=listed([11008]),
        name_only=(unlisted("Mottagningen för unga vuxna Kungälv"),),
        lookalike=(new("Diabetesmottagningen Stigamo"),),
    )
    t4 = _UnitTable(
        ordinary=tuple(new(f"Folktandvården {p}") for p in _PLACES[:26]),
        exempt=listed([11005]),
        name_only=(unlisted("Folktandvården Ungdomsmottagningen Hisingen"),),
        lookalike=(new("Folktandvården Stigen"),),
    )
    return {
        "melior": melior,
        "asynjavisph": asynjavisph,
        "obstetrix": obstetrix,
        "journalia": journalia,
        "t4": t4,
    }


UNITS: Final = _build_units()
"""The care units each system writes (ordinary, exempt, name-only, look-alike)."""
