"""Journal text and keywords the random rows are written with: general and per-system phrases."""

from __future__ import annotations

from typing import Final

GENERAL_TEXT: Final = (
    "Mår efter omständigheterna bra.",
    "Åter vid behov.",
    "Ingen feber, äter och dricker som vanligt.",
    'Pat. uppger: "ont i magen; värre på natten".',
    "“Känner mig piggare” enligt patienten – följs upp.",
    "Egenavgift 200 kr (ca 18 €) betald.",
    "Uppföljning om 3–4 veckor; kallelse skickas.",
    "Närstående informerad, önskar återkoppling.",
    "Blodtryck 132/84, puls 72.",
    'Remiss till Öron-näsa-hals; "prio 2".',
    "Café au lait-fläckar, oförändrade.",
    "Överenskommet med patienten att avvakta.",
    "Ökad trötthet – utreds vidare.",
    "Smärta VAS 4/10 | tidigare 7/10.",
    "Hänvisad till 1177 för egenvårdsråd.",
    "ÅÄÖ-test: Åsa Ärlig, Örjan Éklund.",
)
SYSTEM_TEXT: Final = {
    "melior": (
        "Inkommer med bröstsmärta sedan igår.",
        "EKG utan ischemitecken.",
        "Postoperativt förlopp utan anmärkning.",
        "Diskuterat vid röntgenrond.",
        "Utskrivning planeras till imorgon.",
        "Inläggning för observation.",
    ),
    "asynjavisph": (
        "Söker för halsont sedan 3 dagar.",
        "Hosta och snuva, ingen andnöd.",
        "Vaccination given i vänster överarm.",
        "Hälsosamtal genomfört.",
        "Förnyat recept.",
        "Provtagning: CRP 12, Hb 134.",
    ),
    "obstetrix": (
        "Graviditetsvecka 32+4.",
        "Symfys-fundusmått följer kurvan.",
        "Fosterljud 140 slag/min.",
        "Förlossning planerad vid Östra sjukhuset.",
        "Amning fungerar bra.",
    ),
    "journalia": (
        "INR 2,4 – oförändrad dos.",
        "HbA1c 52 mmol/mol.",
        "Ny dosering Waran enligt bifogat schema.",
        "Insulinpump fungerar väl.",
        "Nästa INR-kontroll om 2 veckor.",
    ),
    "t4": (
        "Undersökning utan anmärkning.",
        "Karies 36 distalt, fyllning planeras.",
        "Tandsten avlägsnad.",
        "Bitewing-röntgen tagen.",
        "Tandvårdsrädsla, lugnt tempo.",
    ),
}
SEPARATORS: Final = (" ", " ", " ", "\n", "\n\n")

MELIOR_KEYWORDS: Final = (
    ("Bedömning", 20.0),
    ("Anamnes", 15.0),
    ("Aktuellt", 15.0),
    ("Status", 12.0),
    ("Planering", 12.0),
    ("Åtgärd", 8.0),
    ("Social bakgrund", 5.0),
    ("Läkemedelsgenomgång", 5.0),
    ("Utredning", 5.0),
    (None, 2.0),
    ("Tidiga hypoteser", 0.8),
    ("tidiga hypoteser", 0.3),
    ("  tidiga   HYPOTESER ", 0.2),
    ("Våldsutsatthet i nära relationer", 0.5),
    ("VÅLDSUTSATTHET I NÄRA  RELATIONER", 0.2),
)
ASYNJA_KEYWORDS: Final = (
    ("Bedömning", 20.0),
    ("Kontaktorsak", 18.0),
    ("Aktuellt", 15.0),
    ("Status", 12.0),
    ("Åtgärd", 10.0),
    ("Planering", 10.0),
    ("Hälsosamtal", 5.0),
    ("Egenvårdsråd", 5.0),
    ("Tidiga hypoteser", 0.6),
    ("TIDIGA HYPOTESER", 0.2),
    ("Våldsutsatthet i nära relationer", 0.5),
    ("våldsutsatthet i  nära relationer ", 0.3),
)
