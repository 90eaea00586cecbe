"""CSV downloads of NTSB's CAROL search (data.ntsb.gov/carol-main-public): one row per event,
UTF-8 with a byte-order mark, CAROL's own column names (``NtsbNo``, ``Mkey``, ``EventID``,
``HighestInjuryLevel``, ``ProbableCause``, ...), recognised by content.

Each row maps into the avall tables (docs/ingestion.md has the table, column by column): one
``events`` row, one ``aircraft`` row (aircraft 1), and the probable cause into ``narratives``
(``narr_cause``). CAROL writes most coded fields as NTSB's codes already (``AIR``, ``PERS``);
the others go through the same code sets as the flat export's labels. ``EventID`` is avall's
``ev_id`` where CAROL fills it; where it is empty (as in many downloads) the event gets
``CAROL`` and its nine-digit ``Mkey``, CAROL's own key of the investigation, so that the same
download ingested twice gives the same rows.

Not checked against a real file: a CAROL row of an event with several aircraft (the sample
holds single-aircraft events only); such a row is loaded as aircraft 1 with the values as
delivered.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from . import flat
from .flat import (
    SNIFF_BYTES,
    Mapped,
    Row,
    _coordinate,
    _country,
    _date,
    _labels,
    code,
    codes_of,
    csv_rows,
    decode,
    key,
    mapped_tables,
)
from .sources import SourceError, TableSource

# The columns read (CAROL's spelling). A download's other columns (report type, docket URL,
# publication dates, flags) have no avall column: they stay in the release's archived original.
COLUMNS = (
    "NtsbNo",
    "EventType",
    "Mkey",
    "EventDate",
    "City",
    "State",
    "Country",
    "N",
    "HighestInjuryLevel",
    "FatalInjuryCount",
    "SeriousInjuryCount",
    "MinorInjuryCount",
    "ProbableCause",
    "EventID",
    "Latitude",
    "Longitude",
    "Make",
    "Model",
    "AirCraftCategory",
    "AirportID",
    "AirportName",
    "AmateurBuilt",
    "NumberOfEngines",
    "Scheduled",
    "PurposeOfFlight",
    "FAR",
    "AirCraftDamage",
    "WeatherCondition",
    "Operator",
)
KEYS = {key(c): c for c in COLUMNS}

EVENTS = [c for c in flat.EVENTS if c != "inj_tot_n"]  # the flat export's, without the uninjured count
AIRCRAFT = [
    "ev_id",
    "Aircraft_Key",
    "ntsb_no",
    "regis_no",
    "acft_make",
    "acft_model",
    "acft_category",
    "homebuilt",
    "num_eng",
    "oper_sched",
    "type_fly",
    "far_part",
    "damage",
    "oper_name",
]
NARRATIVES = ["ev_id", "Aircraft_Key", "narr_cause"]
TABLES = {"events": EVENTS, "aircraft": AIRCRAFT, "narratives": NARRATIVES}


def detect(path: Path) -> bool:
    """True when the file is a CAROL CSV download (by its header)."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES).removeprefix(b"\xef\xbb\xbf")
    first = decode(head.split(b"\n", 1)[0]).strip()
    keys = {key(f) for f in next(csv.reader([first]), [])}
    return {"ntsbno", "mkey", "eventdate"} <= keys


def rows(path: Path) -> Iterator[Row]:
    path = Path(path)
    with open(path, "rb") as fh:
        data = fh.read().removeprefix(b"\xef\xbb\xbf")
    return csv_rows(
        path.name, [decode(b) for b in data.splitlines(keepends=True)], lambda h: _check_header(path.name, h)
    )


def _check_header(file: str, header: list[str]) -> list[str]:
    keys = [key(h) for h in header]
    missing = [c for k, c in KEYS.items() if k not in keys]
    if missing:
        raise SourceError(
            file,
            None,
            1,
            "carol_header",
            f"a CAROL download without the columns {', '.join(missing)} (renamed or left out?)",
        )
    return keys


def ev_id(v: dict[str, str]) -> str:
    """avall's ev_id where CAROL gives it, else CAROL and the nine-digit Mkey."""
    given = v["eventid"].strip()
    if given:
        return given
    mkey = v["mkey"].strip()
    return f"CAROL{int(mkey):09d}" if mkey.isdigit() else f"CAROL{mkey}"


def _flag(text: str) -> str:
    return {"true": "Y", "false": "N"}.get(text.strip().lower(), text.strip())


def _state(name: str) -> str:
    text = name.strip()
    return _labels().get(("events", "ev_state"), {}).get(text.lower(), text)


def _far(text: str) -> str:
    text = text.strip()
    return text.zfill(3) if text.isdigit() else text  # CAROL writes part 91 as 91, avall as 091


def _coded(table: str, column: str, text: str) -> str:
    """A value CAROL writes as NTSB's code already, or a label the code sets know."""
    text = text.strip()
    if text.upper() in codes_of(table, column):
        return text.upper()
    return code(table, column, text) or ""


def event_row(v: dict[str, str]) -> list[str]:
    (lat, lat_dms), (lon, lon_dms) = _coordinate(v["latitude"]), _coordinate(v["longitude"])
    return [
        ev_id(v),
        v["ntsbno"].strip(),
        _coded("events", "ev_type", v["eventtype"]),
        _date(re.sub(r"T.*$", "", v["eventdate"].strip())),
        v["city"].strip(),
        _state(v["state"]),
        _country(v["country"]),
        lat,
        lon,
        lat_dms,
        lon_dms,
        v["airportid"].strip(),
        v["airportname"].strip(),
        _coded("events", "ev_highest_injury", v["highestinjurylevel"]),
        v["fatalinjurycount"].strip(),
        v["seriousinjurycount"].strip(),
        v["minorinjurycount"].strip(),
        _coded("events", "wx_cond_basic", v["weathercondition"]),
    ]


def aircraft_row(v: dict[str, str]) -> list[str]:
    return [
        ev_id(v),
        "1",
        v["ntsbno"].strip(),
        v["n"].strip(),
        v["make"].strip(),
        v["model"].strip(),
        _coded("aircraft", "acft_category", v["aircraftcategory"]),
        _flag(v["amateurbuilt"]),
        v["numberofengines"].strip(),
        _coded("aircraft", "oper_sched", v["scheduled"]),
        _coded("aircraft", "type_fly", v["purposeofflight"]),
        _far(v["far"]),
        _coded("aircraft", "damage", v["aircraftdamage"]),
        v["operator"].strip(),
    ]


def _mapped(path: Path, table: str) -> Mapped:
    for row in rows(path):
        if row.reject is not None:
            if table != "narratives":
                yield row.line, row.reject
            continue
        v = row.values or {}
        if table == "events":
            yield row.line, event_row(v)
        elif table == "aircraft":
            yield row.line, aircraft_row(v)
        elif v["probablecause"].strip():
            yield row.line, [ev_id(v), "1", v["probablecause"].strip()]


def table_sources(path: Path) -> list[TableSource]:
    return mapped_tables(path, TABLES, _mapped)
