"""NTSB's flat "AviationData" export: one row per aircraft, 31 columns, in the three forms
NTSB and data portals have served it, recognised by content (not by file name):

- ``csv``: comma-separated with a dotted header (``Event.Id,Investigation.Type,...``) and ISO
  dates, in UTF-8 or Latin-1 (the copy on data portals);
- ``txt``: NTSB's pipe-delimited ``AviationData.txt`` (``Event Id | Investigation Type | ...``,
  ``MM/DD/YYYY`` dates, every line ending in `` | ``);
- ``xml``: NTSB's ``AviationData.xml``, ``<ROW EventId="..." .../>`` elements whose attribute
  values hold unescaped ``<br />``: not well-formed XML, so it is read attribute by attribute.

Each row maps into the avall tables the warehouse has (docs/ingestion.md has the table,
column by column): the event's columns into one ``events`` row (repeated for each aircraft of
the event: identical repeats load once, conflicting ones are quarantined as a
``duplicate_key``, like an avall key collision), the aircraft's into one ``aircraft`` row
numbered within the event, its engine type into one ``engines`` row. The report status and
publication date have no avall column: they stay in the release's archived original. Labels
become codes
through NTSB's code sets (``Substantial`` is ``SUBS``, ``Part 135: Air Taxi & Commuter`` is
``135``); a label no code set knows is kept as delivered and reported as an unknown code.

Every physical line is decoded on its own: UTF-8 when it decodes, else Windows-1252, else
Latin-1, so a file that mixes encodings stores no U+FFFD. A row with too few fields (a
truncated last row) is quarantined with the rule ``field_count``, naming its line.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .sources import RowReject, SourceError, TableSource

# The export's 31 columns, in the CSV's spelling; the TXT and XML spell the same names
# with spaces or none, and other capitals (see key()).
COLUMNS = (
    "Event.Id",
    "Investigation.Type",
    "Accident.Number",
    "Event.Date",
    "Location",
    "Country",
    "Latitude",
    "Longitude",
    "Airport.Code",
    "Airport.Name",
    "Injury.Severity",
    "Aircraft.damage",
    "Aircraft.Category",
    "Registration.Number",
    "Make",
    "Model",
    "Amateur.Built",
    "Number.of.Engines",
    "Engine.Type",
    "FAR.Description",
    "Schedule",
    "Purpose.of.flight",
    "Air.carrier",
    "Total.Fatal.Injuries",
    "Total.Serious.Injuries",
    "Total.Minor.Injuries",
    "Total.Uninjured",
    "Weather.Condition",
    "Broad.phase.of.flight",
    "Report.Status",
    "Publication.Date",
)

SNIFF_BYTES = 1 << 16


def key(name: str) -> str:
    """A column's name in any of the three spellings -> one key (``Event.Id``, ``Event Id``
    and ``EventId`` -> ``eventid``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


KEYS = {key(c): c for c in COLUMNS}


def decode(line: bytes) -> str:
    """One physical line: UTF-8 when it decodes, else Windows-1252, else Latin-1."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return line.decode(encoding)
        except UnicodeDecodeError:
            continue
    return line.decode("latin-1")


def _header_keys(fields: list[str]) -> list[str]:
    return [key(f) for f in fields]


def detect(path: Path) -> str | None:
    """``csv``, ``txt`` or ``xml`` when the file is the flat AviationData export (by its
    content), else None."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES).removeprefix(b"\xef\xbb\xbf")
    text = decode(head.split(b"\n", 1)[0]).strip()
    if head.lstrip().startswith(b"<"):
        return "xml" if re.search(rb"<ROW\b[^>]*\bEventId=", head) else None
    keys = _header_keys(text.split("|") if "|" in text else next(csv.reader([text]), []))
    if "eventid" in keys and "investigationtype" in keys:
        return "txt" if "|" in text else "csv"
    return None


def _check_header(file: str, fields: list[str]) -> list[str]:
    """The header's keys, or a refusal naming the columns that are missing or not expected."""
    keys = _header_keys(fields)
    missing = [c for k, c in KEYS.items() if k not in keys]
    unexpected = [f for f, k in zip(fields, keys, strict=True) if k not in KEYS]
    repeated = sorted({f for f, k in zip(fields, keys, strict=True) if keys.count(k) > 1})
    if missing or unexpected or repeated:
        parts = [
            f"missing {', '.join(missing)}" if missing else "",
            f"not expected {', '.join(unexpected)}" if unexpected else "",
            f"repeated {', '.join(repeated)}" if repeated else "",
        ]
        raise SourceError(
            file,
            None,
            1,
            "flat_header",
            "not the flat AviationData layout (31 columns, Event.Id ... Publication.Date): "
            + "; ".join(p for p in parts if p),
        )
    return keys


@dataclass
class Row:
    """One row of the export: its line, and its values by key (or why it cannot be read)."""

    line: int
    values: dict[str, str] | None
    reject: RowReject | None = None


def rows(path: Path) -> Iterator[Row]:
    """Every row of a flat export, whatever its form."""
    path = Path(path)
    form = detect(path)
    if form is None:
        raise SourceError(path.name, None, None, "release_kind", "not the flat AviationData export")
    with open(path, "rb") as fh:
        data = fh.read().removeprefix(b"\xef\xbb\xbf")
    if form == "xml":
        yield from _xml_rows(path.name, data)
    else:
        yield from _delimited_rows(path.name, data, form)


def _delimited_rows(file: str, data: bytes, form: str) -> Iterator[Row]:
    lines = [decode(b) for b in data.splitlines(keepends=True)]
    if form == "txt":
        header = [f.strip() for f in lines[0].split("|")]
        if header and header[-1] == "":
            header.pop()  # every line ends in " | "
        keys = _check_header(file, header)
        for n, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.rstrip("\r\n").split("|")]
            if len(fields) == len(keys) + 1 and fields[-1] == "":
                fields.pop()
            yield _row(file, n, keys, fields, header)
        return
    yield from csv_rows(file, lines, lambda header: _check_header(file, header))


def csv_rows(file: str, lines: list[str], check: Callable[[list[str]], list[str]]) -> Iterator[Row]:
    """The rows of CSV text (lines decoded one by one), keyed by ``check(header)``; a row
    with another number of fields, or an open quote at the end (a truncated file), is a reject."""
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise SourceError(file, None, 1, "csv_syntax", f"unreadable header: {exc}") from None
    keys = check(header)
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # an open quote at the end of the file: a truncated row
            rest = "".join(lines[start - 1 :])
            yield Row(
                start, None, RowReject("field_count", f"unreadable row ({exc}): a truncated file?", {"line": rest})
            )
            return
        if fields:
            yield _row(file, start, keys, fields, header)
        start = reader.line_num + 1


def _row(file: str, line: int, keys: list[str], fields: list[str], header: list[str]) -> Row:
    if len(fields) != len(keys):
        original = dict(zip(header, fields, strict=False))
        if len(fields) > len(keys):
            original["_extra"] = json.dumps(fields[len(keys) :])
        return Row(
            line,
            None,
            RowReject(
                "field_count",
                f"{len(fields)} fields where the header has {len(keys)}"
                + (" (a truncated row?)" if len(fields) < len(keys) else ""),
                original,
            ),
        )
    return Row(line, dict(zip(keys, fields, strict=True)))


_ROW = re.compile(rb'<ROW\b((?:\s+[A-Za-z_][\w.-]*="[^"]*")*)\s*/?>')
_ATTR = re.compile(r'([A-Za-z_][\w.-]*)="([^"]*)"')


def _xml_rows(file: str, data: bytes) -> Iterator[Row]:
    checked = None
    for m in _ROW.finditer(data):
        line = data.count(b"\n", 0, m.start()) + 1
        attrs = [(name, html.unescape(value)) for name, value in _ATTR.findall(decode(m.group(1)))]
        names = [n for n, _ in attrs]
        if checked is None or names != checked:
            _check_header(f"{file} (line {line})", names)
            checked = names
        yield Row(line, {key(n): v.strip() for n, v in attrs})


# ---------------------------------------------------------------- labels -> codes


@cache
def _labels() -> dict[tuple[str, str], dict[str, str]]:
    """(table, column) -> {label (lower case): code}, from the code sets the project ships."""
    path = Path(__file__).with_name("code_sets.json")
    out: dict[tuple[str, str], dict[str, str]] = {}
    for table, column, code, meaning, _src in json.loads(path.read_text(encoding="utf-8"))["codes"]:
        out.setdefault((table.lower(), column.lower()), {}).setdefault(meaning.strip().lower(), code)
    return out


# Labels of the export that differ from the code sets' meanings (the export's own wording)
ALIASES: dict[tuple[str, str], dict[str, str]] = {
    ("aircraft", "type_fly"): {"executive/corporate": "EXEC", "public aircraft": "PUBU"},
    ("events", "wx_cond_basic"): {"vmc": "VMC", "imc": "IMC", "unk": "UNK"},
    ("aircraft", "phase_flt_spec"): {"go-around": "565"},
    ("aircraft", "oper_sched"): {"schd": "SCHD", "nsch": "NSCH", "unk": "UNK"},
}
# Labels that say "not known": no code, the column is left empty
UNKNOWN = {"", "unknown", "unk", "unavailable", "n/a"}


def code(table: str, column: str, label: str) -> str | None:
    """The code of a label, or the label as delivered when no code set knows it."""
    text = label.strip()
    if text.lower() in UNKNOWN and (table, column) not in {("events", "wx_cond_basic"), ("aircraft", "oper_sched")}:
        return None
    lower = text.lower()
    alias = ALIASES.get((table, column), {}).get(lower)
    if alias:
        return alias
    return _labels().get((table, column), {}).get(lower, text) or None


# ---------------------------------------------------------------- rows -> avall tables

EVENTS = [
    "ev_id",
    "ntsb_no",
    "ev_type",
    "ev_date",
    "ev_city",
    "ev_state",
    "ev_country",
    "dec_latitude",
    "dec_longitude",
    "latitude",
    "longitude",
    "ev_nr_apt_id",
    "apt_name",
    "ev_highest_injury",
    "inj_tot_f",
    "inj_tot_s",
    "inj_tot_m",
    "inj_tot_n",
    "wx_cond_basic",
]
AIRCRAFT = [
    "ev_id",
    "Aircraft_Key",
    "ntsb_no",
    "damage",
    "acft_category",
    "regis_no",
    "acft_make",
    "acft_model",
    "homebuilt",
    "num_eng",
    "far_part",
    "oper_sched",
    "type_fly",
    "oper_name",
    "phase_flt_spec",
]
ENGINES = ["ev_id", "Aircraft_Key", "eng_no", "eng_type"]
TABLES = {"events": EVENTS, "aircraft": AIRCRAFT, "engines": ENGINES}

_FATAL = re.compile(r"^fatal\s*\((\d+)\)$", re.IGNORECASE)
_NTSB_NO_AIRCRAFT = re.compile(r"^(.*\d)([A-Z])$")  # DCA82AA012B: aircraft B of DCA82AA012


def _date(text: str) -> str:
    """ISO ``YYYY-MM-DD`` from the export's ``YYYY-MM-DD``, ``MM/DD/YYYY`` or ``DD-MM-YYYY``;
    anything else as delivered (the extraction then quarantines it as a bad date)."""
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%d-%m-%Y", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return text


@cache
def codes_of(table: str, column: str) -> frozenset[str]:
    """The codes NTSB's code sets know for one column."""
    return frozenset(_labels().get((table, column), {}).values())


def place(location: str) -> tuple[str, str]:
    """(city, state) from ``MOOSE CREEK, ID`` when the last part is a US state's code."""
    city, _, state = location.rpartition(",")
    state = state.strip().upper()
    if city and state in codes_of("events", "ev_state"):
        return city.strip(), state
    return location.strip(), ""


def _country(name: str) -> str:
    lower = name.strip().lower()
    if lower == "united states":
        return "USA"
    return _labels().get(("events", "ev_country"), {}).get(lower, name.strip())


def _number(text: str) -> str:
    return text.strip()


def _coordinate(text: str) -> tuple[str, str]:
    """(decimal, DMS): decimal degrees go to NTSB's decimal column; anything else (older rows
    carry DMS strings such as ``336925N``) to the DMS column, which the extraction converts."""
    text = text.strip()
    try:
        float(text)
    except ValueError:
        return "", text
    return text, ""


def event_row(v: dict[str, str]) -> list[str]:
    severity = v["injuryseverity"].strip()
    fatal = _FATAL.match(severity)
    highest = "FATL" if fatal or severity.lower() == "fatal" else (code("events", "ev_highest_injury", severity) or "")
    if severity.lower() in {"non-fatal", "incident"}:
        highest = ""  # no single NTSB level: the staging view derives severity from the counts
    fatalities = v["totalfatalinjuries"].strip() or (fatal.group(1) if fatal else "")
    number = v["accidentnumber"].strip()
    m = _NTSB_NO_AIRCRAFT.match(number)
    city, state = place(v["location"])
    (lat, lat_dms), (lon, lon_dms) = _coordinate(v["latitude"]), _coordinate(v["longitude"])
    return [
        v["eventid"].strip(),
        m.group(1) if m else number,
        code("events", "ev_type", v["investigationtype"]) or "",
        _date(v["eventdate"]),
        city,
        state,
        _country(v["country"]),
        lat,
        lon,
        lat_dms,
        lon_dms,
        v["airportcode"].strip(),
        v["airportname"].strip(),
        highest,
        fatalities,
        _number(v["totalseriousinjuries"]),
        _number(v["totalminorinjuries"]),
        _number(v["totaluninjured"]),
        code("events", "wx_cond_basic", v["weathercondition"]) or "",
    ]


def aircraft_row(v: dict[str, str], aircraft_key: int) -> list[str]:
    homebuilt = {"yes": "Y", "no": "N"}.get(v["amateurbuilt"].strip().lower(), v["amateurbuilt"].strip())
    return [
        v["eventid"].strip(),
        str(aircraft_key),
        v["accidentnumber"].strip(),
        code("aircraft", "damage", v["aircraftdamage"]) or "",
        code("aircraft", "acft_category", v["aircraftcategory"]) or "",
        v["registrationnumber"].strip(),
        v["make"].strip(),
        v["model"].strip(),
        homebuilt,
        _number(v["numberofengines"]),
        code("aircraft", "far_part", v["fardescription"]) or "",
        code("aircraft", "oper_sched", v["schedule"]) or "",
        code("aircraft", "type_fly", v["purposeofflight"]) or "",
        v["aircarrier"].strip(),
        code("aircraft", "phase_flt_spec", v["broadphaseofflight"]) or "",
    ]


def numbered(path: Path) -> Iterator[tuple[Row, int]]:
    """Every row with its aircraft's number within the event: by the accident number's
    aircraft letter (DCA82AA012B is aircraft 2) where every row of the event carries one,
    else in file order."""
    all_rows = list(rows(path))
    by_event: dict[str, list[tuple[Row, dict[str, str]]]] = {}
    for r in all_rows:
        if r.values is not None:
            by_event.setdefault(r.values["eventid"].strip(), []).append((r, r.values))
    keys: dict[int, int] = {}
    for event_rows in by_event.values():
        letters = [_NTSB_NO_AIRCRAFT.match(v["accidentnumber"].strip()) for _, v in event_rows]
        if len(event_rows) > 1 and all(letters):
            for (r, _), m in zip(event_rows, letters, strict=True):
                keys[r.line] = ord(m.group(2)) - ord("A") + 1  # type: ignore[union-attr]
        else:
            for i, (r, _) in enumerate(event_rows, start=1):
                keys[r.line] = i
    for r in all_rows:
        yield r, keys.get(r.line, 0)


Mapped = Iterator[tuple[int, "list[str] | RowReject"]]


@dataclass
class MappedTable(TableSource):
    """One avall table of a single-file export (the flat export, a CAROL download): its rows
    mapped as they are read, by ``mapping(path, table)``."""

    path: Path | None = None
    header: list[str] = field(default_factory=list)
    mapping: Callable[[Path, str], Mapped] | None = None

    @contextmanager
    def rows(self):
        assert self.path is not None and self.mapping is not None
        yield self.header, self.mapping(self.path, self.name), "per line (UTF-8, else Windows-1252, else Latin-1)"


def mapped_tables(
    path: Path, tables: dict[str, list[str]], mapping: Callable[[Path, str], Mapped]
) -> list[TableSource]:
    path = Path(path)
    return [
        MappedTable(name, path.name, _no_opener, path=path, header=header, mapping=mapping)
        for name, header in tables.items()
    ]


def _no_opener():  # a MappedTable reads through rows()
    raise NotImplementedError


def _mapped(path: Path, table: str) -> Mapped:
    for row, aircraft_key in numbered(path):
        if row.reject is not None:
            if table != "engines":  # the row's event and aircraft are quarantined
                yield row.line, row.reject
            continue
        v = row.values or {}
        if table == "events":
            yield row.line, event_row(v)
        elif table == "aircraft":
            yield row.line, aircraft_row(v, aircraft_key)
        else:
            engine = code("engines", "eng_type", v["enginetype"]) or ""
            if engine:
                yield row.line, [v["eventid"].strip(), str(aircraft_key), "1", engine]


def table_sources(path: Path) -> list[TableSource]:
    return mapped_tables(path, TABLES, _mapped)


# ---------------------------------------------------------------- avall tables -> flat export


@cache
def meanings() -> dict[tuple[str, str, str], str]:
    """(table, column, code) -> the code sets' meaning, as written."""
    path = Path(__file__).with_name("code_sets.json")
    out: dict[tuple[str, str, str], str] = {}
    for table, column, code_, meaning, _src in json.loads(path.read_text(encoding="utf-8"))["codes"]:
        out.setdefault((table.lower(), column.lower(), code_), meaning.strip())
    return out


# The flat export's own wording where it differs from the code sets' meaning
_WORDING = {
    ("aircraft", "type_fly", "EXEC"): "Executive/corporate",
    ("aircraft", "type_fly", "PUBU"): "Public Aircraft",
}


def _meaning(table: str, column: str, value: str) -> str:
    """The label NTSB's flat export writes for a code, or the value when no code set knows it.
    A phase of flight is written as its group (``551`` Descent - normal -> ``Descent``)."""
    code_ = value.strip()
    if column == "phase_flt_spec" and code_.isdigit():
        code_ = str(int(code_) // 10 * 10)
    if not code_:
        return ""
    return _WORDING.get((table, column, code_)) or meanings().get((table, column, code_), code_)


def write(release: Path, out: Path) -> int:
    """The flat AviationData CSV of an avall-shaped release folder (events, aircraft, engines
    as mdb-export writes them, for example from `ntsb synth`): one row per aircraft, labels
    for codes, as NTSB's export writes them. Returns the rows written."""
    from .parsing import parse_date

    def table(name: str) -> Iterator[dict[str, str]]:
        with open(Path(release) / f"{name}.csv", encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)

    events = {r["ev_id"]: r for r in table("events")}
    engines: dict[tuple[str, str], str] = {}
    for r in table("engines"):
        engines.setdefault((r["ev_id"], r["Aircraft_Key"]), r["eng_type"].strip())
    n = 0
    with open(out, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for a in table("aircraft"):
            e = events.get(a["ev_id"])
            if e is None:
                continue
            date = parse_date(e["ev_date"])
            highest = e["ev_highest_injury"].strip()
            fatal = (e["inj_tot_f"] or "0").strip()
            severity = (
                f"Fatal({fatal})"
                if highest == "FATL"
                else ("Incident" if e["ev_type"].strip() == "INC" else "Non-Fatal")
            )
            state = e["ev_state"].strip()
            w.writerow(
                [
                    e["ev_id"],
                    _meaning("events", "ev_type", e["ev_type"]),
                    a["ntsb_no"].strip() or e["ntsb_no"].strip(),
                    date.isoformat() if date else "",
                    f"{e['ev_city'].strip()}, {state}"
                    if state in codes_of("events", "ev_state")
                    else e["ev_city"].strip(),
                    "United States"
                    if e["ev_country"].strip() == "USA"
                    else _meaning("events", "ev_country", e["ev_country"]),
                    (e.get("dec_latitude") or e["latitude"]).strip(),
                    (e.get("dec_longitude") or e["longitude"]).strip(),
                    e["ev_nr_apt_id"].strip(),
                    e["apt_name"].strip(),
                    severity,
                    _meaning("aircraft", "damage", a["damage"]),
                    _meaning("aircraft", "acft_category", a["acft_category"]),
                    a["regis_no"].strip(),
                    a["acft_make"].strip(),
                    a["acft_model"].strip(),
                    {"Y": "Yes", "N": "No"}.get(a["homebuilt"].strip(), ""),
                    a["num_eng"].strip(),
                    _meaning("engines", "eng_type", engines.get((a["ev_id"], a["Aircraft_Key"]), "")),
                    _meaning("aircraft", "far_part", a["far_part"]),
                    a["oper_sched"].strip(),
                    _meaning("aircraft", "type_fly", a["type_fly"]),
                    a.get("oper_name", "").strip(),
                    e["inj_tot_f"].strip(),
                    e["inj_tot_s"].strip(),
                    e["inj_tot_m"].strip(),
                    e["inj_tot_n"].strip(),
                    e["wx_cond_basic"].strip(),
                    _meaning("aircraft", "phase_flt_spec", a["phase_flt_spec"]),
                    "Probable Cause",
                    "",
                ]
            )
            n += 1
    return n
