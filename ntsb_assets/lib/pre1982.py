"""NTSB's PRE1982 database (1962-1981): ``PRE1982.MDB``, or its tables as ``mdb-export``
writes them (a folder or a zip), mapped into the avall tables the warehouse already has.

NTSB describes the database in the readme of its download folder: five tables, ``tblFirstHalf``
and ``tblSecondHalf`` (one record per event, split from one wide table, one to one),
``tblOccurrences`` (several per event), ``tblSeqOfEvents`` (several per occurrence) and
``ct_Pre1982``, "the look-up table used to code many of the fields". The column names read
here are those that public analyses of the file report (docs/ingestion.md cites them); no
PRE1982 file was at hand to check them, and the reader says so where it matters:

- every event gets a deterministic ``ev_id``, ``PRE1982R`` and its ``RecNum`` in six digits
  (``RecNum`` 40 is ``PRE1982R000040``), and keeps ``RecNum`` itself in the raw tables below;
- the columns with a modern counterpart go to ``events``, ``aircraft``, ``Flight_Crew``,
  ``flight_time``, ``injury`` (the wide ``PILOT_FATAL`` ... ``TOTAL_ABRD_NONE`` columns
  unpivoted, one row per person category and level) and ``narratives`` (``REMARKS`` and
  ``CAUSE``);
- a coded column is translated through the release's own ``ct_Pre1982``: the legacy code's
  meaning there becomes the modern code whose label it is (``SUBSTANTIAL`` is ``SUBS``); a code
  ``ct_Pre1982`` does not list is kept as delivered, and a meaning no modern code set knows is
  kept as that meaning: both are then reported like any unknown code;
- all five tables are also kept whole, with the ``ev_id`` beside ``RecNum``, in
  ``raw.pre1982_first_half``, ``raw.pre1982_second_half``, ``raw.pre1982_occurrences``,
  ``raw.pre1982_seq_of_events`` and ``raw.pre1982_codes``: nothing without a modern
  counterpart (the cause-factor triplets, the legacy occurrence and sequence codes) is lost.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import flat
from .sources import SYNTHETIC_MARKER, RowReject, TableSource

FIRST, SECOND, OCCURRENCES, SEQUENCE, CODES = (
    "tblFirstHalf",
    "tblSecondHalf",
    "tblOccurrences",
    "tblSeqOfEvents",
    "ct_Pre1982",
)
# The release's tables -> the raw tables that keep them whole
RAW = {
    FIRST: "pre1982_first_half",
    SECOND: "pre1982_second_half",
    OCCURRENCES: "pre1982_occurrences",
    SEQUENCE: "pre1982_seq_of_events",
    CODES: "pre1982_codes",
}
RECNUM = "RecNum"
EV_ID_PREFIX = "PRE1982R"

# Coded columns with a modern counterpart: legacy column -> (avall table, avall column)
CODED = {
    "ACC_INC_CLASS": ("events", "ev_type"),
    "LOCAT_STATE_TERR": ("events", "ev_state"),
    "LIGHT_COND": ("events", "light_cond"),
    "TYPE_CRAFT": ("aircraft", "acft_category"),
    "ACFT_ADAMG": ("aircraft", "damage"),
}
# The wide injury columns: <person>_<level>
PERSONS = {"PILOT": "PLT", "CO_PILOT": "CPLT", "PASSENGERS": "PAX", "TOTAL_ABRD": "ABRD"}
LEVELS = {"FATAL": "FATL", "SERIOUS": "SERS", "MINOR": "MINR", "NONE": "NONE"}
# The event's totals: the grand total where delivered (it counts people on the ground too),
# else the total aboard
TOTALS = ("GRAND_TOTAL", "TOTAL_ABRD")
PILOTS = {1: "PLT", 2: "CPLT"}  # the two pilots' columns end in 1 and 2

EVENTS = [
    "ev_id",
    "ntsb_no",
    "ev_type",
    "ev_date",
    "ev_time",
    "ev_city",
    "ev_state",
    "ev_country",
    "light_cond",
    "inj_tot_f",
    "inj_tot_s",
    "inj_tot_m",
    "inj_tot_n",
]
AIRCRAFT = ["ev_id", "Aircraft_Key", "regis_no", "acft_make", "acft_model", "num_eng", "acft_category", "damage"]
FLIGHT_CREW = ["ev_id", "Aircraft_Key", "crew_no", "crew_category", "crew_age"]
FLIGHT_TIME = ["ev_id", "Aircraft_Key", "crew_no", "flight_type", "flight_craft", "flight_hours"]
INJURY = ["ev_id", "Aircraft_Key", "inj_person_category", "injury_level", "inj_person_count"]
NARRATIVES = ["ev_id", "Aircraft_Key", "narr_accp", "narr_cause"]


def is_layout(table_names: Iterable[str]) -> bool:
    """Whether a release's tables are PRE1982's (it has both halves of the event table)."""
    names = {Path(n).stem.lower() for n in table_names}
    return {FIRST.lower(), SECOND.lower()} <= names


def ev_id(recnum: str) -> str:
    """The deterministic ev_id of a PRE1982 record (ValueError when RecNum is no number)."""
    n = int(recnum.strip())
    if n < 0:
        raise ValueError(recnum)
    return f"{EV_ID_PREFIX}{n:06d}"


_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")
_ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T][\d:.]+)?$")


def occurrence_date(text: str) -> str:
    """ISO date of ``DATE_OCCURRENCE``: ``MM/DD/YY HH:MM:SS`` (two-digit years are 19YY: the
    database ends in 1981), ``MM/DD/YYYY`` or ISO (as the project's mdb-export options write
    it); anything else as delivered, for the extraction to quarantine as a bad date."""
    t = text.strip()
    m = _US_DATE.match(t)
    if m:
        year = int(m[3]) + (1900 if len(m[3]) == 2 else 0)
        try:
            return dt.date(year, int(m[1]), int(m[2])).isoformat()
        except ValueError:
            return t
    m = _ISO_DATE.match(t)
    return m[1] if m else t


def _leading_number(text: str) -> str:
    """``11508A`` -> ``11508``, ``12.5`` -> ``12.5`` (hours carry a letter whose meaning is not documented here)."""
    m = re.match(r"^\s*(\d+(?:\.\d+)?)", text)
    return m[1] if m else ""


class Codes:
    """``ct_Pre1982``: (column name, legacy code) -> meaning. The ``Name`` column is read as
    the coded column's name, with or without the pilot number (``AGE_PILOT1`` finds
    ``AGE_PILOT``)."""

    def __init__(self, rows: Iterable[dict[str, str]]):
        self.meanings: dict[tuple[str, str], str] = {}
        for r in rows:
            v = {k.strip().lower(): (x or "").strip() for k, x in r.items() if k}
            if v.get("name") and v.get("code"):
                self.meanings.setdefault((v["name"].upper(), v["code"].upper()), v.get("meaning", ""))

    def meaning(self, column: str, code: str) -> str | None:
        key = code.strip().upper()
        name = column.upper()
        found = self.meanings.get((name, key))
        if found is None and name[-1:].isdigit():
            found = self.meanings.get((name.rstrip("0123456789"), key))
        return found

    def translate(self, column: str, value: str) -> str:
        """The modern code of a legacy one (see the module's docstring)."""
        v = value.strip()
        if not v:
            return ""
        meaning = self.meaning(column, v)
        if meaning is None:
            return v
        table, modern = CODED[column]
        return flat.code(table, modern, meaning) or ""


@dataclass
class Release:
    """The tables of one PRE1982 release, read as often as the mapped tables need them."""

    sources: dict[str, TableSource]  # lower-case table name -> its source
    _codes: Codes | None = None

    def source(self, table: str) -> TableSource | None:
        return self.sources.get(table.lower())

    @property
    def codes(self) -> Codes:
        if self._codes is None:
            src = self.source(CODES)
            rows: list[dict[str, str]] = []
            if src is not None:
                with src.rows() as (header, body, _enc):
                    rows = [dict(zip(header, f, strict=False)) for _n, f in body]
            self._codes = Codes(rows)
        return self._codes

    @contextmanager
    def records(self, table: str) -> Iterator[tuple[list[str], Iterator[tuple[int, dict[str, str] | RowReject]]]]:
        """(header, iterator of (row number, values by upper-case column name, with ``ev_id``)),
        or a RowReject for a row whose RecNum is missing or no number."""
        src = self.source(table)
        assert src is not None
        with src.rows() as (header, body, _enc):
            names = [h.strip().upper() for h in header]

            def gen():
                for n, fields in body:
                    if len(fields) != len(names):
                        yield (
                            n,
                            RowReject(
                                "field_count",
                                f"{len(fields)} fields where the header has {len(names)}",
                                dict(zip(header, fields, strict=False)),
                            ),
                        )
                        continue
                    values = dict(zip(names, fields, strict=True))
                    try:
                        values["EV_ID"] = ev_id(values.get(RECNUM.upper(), ""))
                    except ValueError:
                        yield (
                            n,
                            RowReject(
                                "pre1982_recnum",
                                f"{RECNUM} {values.get(RECNUM.upper(), '')!r} is not a record number: no ev_id "
                                "can be derived",
                                dict(zip(header, fields, strict=True)),
                            ),
                        )
                        continue
                    yield n, values

            yield header, gen()


Rows = Iterator[tuple[int, "list[str] | RowReject"]]
RowMapper = Callable[[dict[str, str], Codes], Iterable[list[str]]]


def _mapping(table: str, mapper: RowMapper, roots: bool) -> Callable[[Release], Rows]:
    """The rows ``mapper`` makes of each record of ``table``. A record without an ev_id is
    quarantined in the tables of its roots (``roots``: events, aircraft, narratives); the
    others leave it out (its event is quarantined: its children go with it)."""

    def rows(rel: Release) -> Rows:
        codes = rel.codes
        with rel.records(table) as (_h, body):
            for n, v in body:
                if isinstance(v, RowReject):
                    if roots:
                        yield n, v
                    continue
                for out in mapper(v, codes):
                    yield n, out

    return rows


def _event(v: dict[str, str], codes: Codes) -> Iterable[list[str]]:
    city, state = flat.place(v.get("LOCATION", ""))
    coded_state = codes.translate("LOCAT_STATE_TERR", v.get("LOCAT_STATE_TERR", ""))
    totals = next((p for p in TOTALS if any(f"{p}_{lv}" in v for lv in LEVELS)), None)
    yield [
        v["EV_ID"],
        v.get("DOCKET_NO", "").strip(),
        codes.translate("ACC_INC_CLASS", v.get("ACC_INC_CLASS", "")),
        occurrence_date(v.get("DATE_OCCURRENCE", "")),
        _leading_number(v.get("TIME_OCCUR", "")),
        city,
        coded_state or state,
        "USA",  # the database holds accidents in the United States and its territories
        codes.translate("LIGHT_COND", v.get("LIGHT_COND", "")),
        *((v.get(f"{totals}_{lv}", "").strip() if totals else "") for lv in LEVELS),
    ]


def _aircraft(v: dict[str, str], codes: Codes) -> Iterable[list[str]]:
    yield [
        v["EV_ID"],
        "1",  # one aircraft per record
        v.get("REGIST_NO", "").strip(),
        v.get("ACFT_MAKE", "").strip(),
        v.get("ACFT_MODEL", "").strip(),
        v.get("NO_ENGINES", "").strip(),
        codes.translate("TYPE_CRAFT", v.get("TYPE_CRAFT", "")),
        codes.translate("ACFT_ADAMG", v.get("ACFT_ADAMG", "")),
    ]


def _pilot_fields(v: dict[str, str], n: int) -> dict[str, str]:
    return {
        c: v.get(f"{c}{n}", "").strip()
        for c in ("PILOT_INVOLED", "AGE_PILOT", "HOURS_TOTAL_PILOT", "HOURS_IN_TYPE_PILOT")
    }


def _age(codes: Codes, column: str, value: str) -> str:
    """A pilot's age: the number as delivered, or the meaning of a coded age when that is one."""
    if value.isdigit():
        return value
    meaning = codes.meaning(column, value) if value else None
    return _leading_number(meaning) if meaning else ""


def _crew(v: dict[str, str], codes: Codes) -> Iterable[list[str]]:
    for no, category in PILOTS.items():
        p = _pilot_fields(v, no)
        if any(p.values()):
            yield [v["EV_ID"], "1", str(no), category, _age(codes, f"AGE_PILOT{no}", p["AGE_PILOT"])]


def _hours(v: dict[str, str], _codes: Codes) -> Iterable[list[str]]:
    for no in PILOTS:
        p = _pilot_fields(v, no)
        for column, craft in (("HOURS_TOTAL_PILOT", "ALL"), ("HOURS_IN_TYPE_PILOT", "MAKE")):
            hours = _leading_number(p[column])
            if hours:
                yield [v["EV_ID"], "1", str(no), "TOTL", craft, hours]


def _injuries(v: dict[str, str], _codes: Codes) -> Iterable[list[str]]:
    for person, category in PERSONS.items():
        for level, code in LEVELS.items():
            count = v.get(f"{person}_{level}", "").strip()
            if count:
                yield [v["EV_ID"], "1", category, code, count]


def _narrative(v: dict[str, str], _codes: Codes) -> Iterable[list[str]]:
    remarks, cause = v.get("REMARKS", "").strip(), v.get("CAUSE", "").strip()
    if remarks or cause:
        yield [v["EV_ID"], "1", remarks, cause]


def _whole(table: str, has_recnum: bool) -> Callable[[Release], Rows]:
    """A release table kept whole, the ev_id first when it has a RecNum (its header, read
    once by table_sources, says)."""

    def rows(rel: Release) -> Rows:
        src = rel.source(table)
        assert src is not None
        if not has_recnum:
            with src.rows() as (_header, body, _enc):
                yield from body
            return
        with rel.records(table) as (_h, records):
            for n, v in records:
                yield n, v if isinstance(v, RowReject) else [v["EV_ID"], *list(v.values())[:-1]]

    return rows


MAPPED: dict[str, tuple[list[str], Callable[[Release], Rows]]] = {
    "events": (EVENTS, _mapping(FIRST, _event, roots=True)),
    "aircraft": (AIRCRAFT, _mapping(FIRST, _aircraft, roots=True)),
    "Flight_Crew": (FLIGHT_CREW, _mapping(FIRST, _crew, roots=False)),
    "flight_time": (FLIGHT_TIME, _mapping(FIRST, _hours, roots=False)),
    "injury": (INJURY, _mapping(FIRST, _injuries, roots=False)),
    "narratives": (NARRATIVES, _mapping(SECOND, _narrative, roots=True)),
}


@dataclass
class Pre1982Table(TableSource):
    """One warehouse table of a PRE1982 release, mapped from the release's tables as it is read."""

    release: Release | None = None
    header: list[str] = field(default_factory=list)
    mapping: Callable[[Release], Rows] | None = None
    encoding: str = ""

    @contextmanager
    def rows(self):
        assert self.release is not None and self.mapping is not None
        yield self.header, self.mapping(self.release), self.encoding


def table_sources(base: list[TableSource]) -> list[TableSource]:
    """The warehouse tables of a PRE1982 release, from its own tables (``base``)."""
    rel = Release({s.name.lower(): s for s in base})
    first = rel.source(FIRST)
    assert first is not None
    encoding = f"as {first.file}"
    out: list[TableSource] = []
    for name, (header, mapping) in MAPPED.items():
        src = first if name != "narratives" else rel.source(SECOND)
        assert src is not None
        out.append(Pre1982Table(name, src.file, src.opener, None, rel, header, mapping, encoding))
    for table, raw in RAW.items():
        src = rel.source(table)
        if src is None:
            continue
        with src.rows() as (header, _body, _enc):
            has_recnum = RECNUM.upper() in [h.strip().upper() for h in header]
        out.append(
            Pre1982Table(
                raw,
                src.file,
                src.opener,
                src.mdb_types,
                rel,
                (["ev_id"] if has_recnum else []) + list(header),
                _whole(table, has_recnum),
                encoding,
            )
        )
    known = {t.lower() for t in RAW}
    # a table PRE1982 is not known to ship: loaded as delivered, as in any release
    out += [s for s in base if s.name.lower() not in known]
    return out


# ---------------------------------------------------------------- avall tables -> PRE1982 tables


# The legacy codes `ntsb synth --pre1982` writes, with their meanings in ct_Pre1982. They are
# made up to exercise the translation (NTSB's own are in its ct_Pre1982); the meanings are
# the modern code sets' labels in capitals, as the legacy tables spell them.
def _legacy_codes() -> dict[str, dict[str, str]]:
    """legacy column -> {modern code: legacy code}; the meanings come from the code sets."""
    out: dict[str, dict[str, str]] = {}
    for column, (table, modern) in CODED.items():
        codes = sorted(flat.codes_of(table, modern))
        if column == "LOCAT_STATE_TERR":  # numbered, as the file's are
            names = sorted(codes, key=lambda c: _meaning(table, modern, c))
            out[column] = {c: str(i) for i, c in enumerate(names, start=1)}
        else:
            out[column] = {c: chr(ord("A") + i) if i < 26 else f"Z{i}" for i, c in enumerate(codes)}
    return out


def _meaning(table: str, column: str, code_: str) -> str:
    return flat.meanings().get((table.lower(), column.lower(), code_), code_)


FIRST_EXTRA = ["TRANS_DATE", "ACFT_MAKE_CODE", "TYPE_OPERATOR", "CAUSE_FACTOR_1P", "CAUSE_FACTOR_1M", "CAUSE_FACTOR_1S"]
FIRST_COLUMNS = [
    RECNUM,
    "DOCKET_NO",
    "DATE_OCCURRENCE",
    "TIME_OCCUR",
    "LOCATION",
    "LOCAT_STATE_TERR",
    "ACC_INC_CLASS",
    "LIGHT_COND",
    "REGIST_NO",
    "ACFT_MAKE",
    "ACFT_MODEL",
    "NO_ENGINES",
    "TYPE_CRAFT",
    "ACFT_ADAMG",
    *(f"{c}{n}" for n in PILOTS for c in ("PILOT_INVOLED", "AGE_PILOT", "HOURS_TOTAL_PILOT", "HOURS_IN_TYPE_PILOT")),
    *(f"{p}_{lv}" for p in PERSONS for lv in LEVELS),
    *(f"GRAND_TOTAL_{lv}" for lv in LEVELS),
    *FIRST_EXTRA,
]
SECOND_COLUMNS = [RECNUM, "REMARKS", "CAUSE", "GENERAL_WEATHER"]
OCCURRENCE_COLUMNS = [RECNUM, "OCCURRENCE_NO", "OCCURRENCE_CODE", "PHASE_OF_OPERATION"]
SEQUENCE_COLUMNS = [RECNUM, "OCCURRENCE_NO", "SEQ_NO", "CAUSE_FACTOR", "SUBJECT_CODE", "MODIFIER_CODE"]


def _legacy_year(year: int) -> int:
    """Any year folded into 1962-1981, the years the database holds."""
    return 1962 + (year - 1962) % 20


def write(release: Path, out: Path, seed: int = 0) -> dict:
    """PRE1982-shaped tables, as ``mdb-export`` writes them, from an avall-shaped release folder
    (for example one ``ntsb synth`` wrote): the first aircraft of each event, its date folded
    into 1962-1981, its pilots, injuries and narratives in the wide legacy columns, its codes
    through made-up legacy codes listed in ``ct_Pre1982``. Returns the rows written per table."""

    def table(name: str) -> Iterator[dict[str, str]]:
        p = Path(release) / f"{name}.csv"
        if not p.is_file():
            return
        with open(p, encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)

    from .parsing import parse_date

    rng = random.Random(seed)
    legacy = _legacy_codes()
    aircraft: dict[str, dict[str, str]] = {}
    for row_ in table("aircraft"):
        aircraft.setdefault(row_["ev_id"], row_)
    crew: dict[tuple[str, int], dict[str, str]] = {}
    for c in table("Flight_Crew"):
        if c["Aircraft_Key"].strip() == "1" and c["crew_no"].strip() in ("1", "2"):
            crew[(c["ev_id"], int(c["crew_no"]))] = {"age": c.get("crew_age", "").strip()}
    for f in table("flight_time"):
        key = (f["ev_id"], int(f["crew_no"]) if f["crew_no"].strip().isdigit() else 0)
        if key in crew and f["flight_type"].strip() == "TOTL" and f["Aircraft_Key"].strip() == "1":
            craft = {"ALL": "total", "MAKE": "make"}.get(f["flight_craft"].strip())
            if craft:
                crew[key][craft] = f["flight_hours"].strip()
    injuries: dict[tuple[str, str, str], str] = {}
    for i in table("injury"):
        if i["Aircraft_Key"].strip() == "1":
            injuries[(i["ev_id"], i["inj_person_category"].strip(), i["injury_level"].strip())] = i[
                "inj_person_count"
            ].strip()
    narratives = {n["ev_id"]: n for n in table("narratives") if n["Aircraft_Key"].strip() == "1"}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys([FIRST, SECOND, OCCURRENCES, SEQUENCE, CODES], 0)
    used: set[tuple[str, str]] = set()

    def coded(column: str, modern: str) -> str:
        code_ = legacy[column].get(modern.strip(), "")
        if code_:
            used.add((column, code_))
        return code_

    with ExitStack() as stack:
        files = {
            t: stack.enter_context(open(out / f"{t}.csv", "w", encoding="utf-8", newline=""))
            for t in (FIRST, SECOND, OCCURRENCES, SEQUENCE)
        }
        w = {t: csv.writer(fh, lineterminator="\n") for t, fh in files.items()}
        w[FIRST].writerow(FIRST_COLUMNS)
        w[SECOND].writerow(SECOND_COLUMNS)
        w[OCCURRENCES].writerow(OCCURRENCE_COLUMNS)
        w[SEQUENCE].writerow(SEQUENCE_COLUMNS)
        recnum = 39
        for e in table("events"):
            a = aircraft.get(e["ev_id"])
            try:
                date = parse_date(e["ev_date"])
            except ValueError:
                date = None
            if a is None or date is None:
                continue
            recnum += 1
            m, d = date.month, date.day
            year = _legacy_year(date.year)
            day = min(d, 28) if m == 2 else d
            ev_id_ = e["ev_id"]
            pilots = {n: crew.get((ev_id_, n), {}) for n in PILOTS}
            row = {
                RECNUM: str(recnum),
                "DOCKET_NO": f"{year % 10} {recnum:04d}",
                "DATE_OCCURRENCE": f"{m:02d}/{day:02d}/{year % 100:02d} 00:00:00",
                "TIME_OCCUR": e.get("ev_time", "").strip(),
                "LOCATION": ",".join(x for x in (e["ev_city"].strip(), e["ev_state"].strip()) if x),
                "LOCAT_STATE_TERR": coded("LOCAT_STATE_TERR", e["ev_state"]),
                "ACC_INC_CLASS": coded("ACC_INC_CLASS", e["ev_type"]),
                "LIGHT_COND": coded("LIGHT_COND", e.get("light_cond", "")),
                "REGIST_NO": a["regis_no"].strip(),
                "ACFT_MAKE": a["acft_make"].strip().upper(),
                "ACFT_MODEL": a["acft_model"].strip().upper(),
                "NO_ENGINES": a["num_eng"].strip(),
                "TYPE_CRAFT": coded("TYPE_CRAFT", a["acft_category"]),
                "ACFT_ADAMG": coded("ACFT_ADAMG", a["damage"]),
                "TRANS_DATE": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{min(year + 1, 81) % 100:02d}",
                "ACFT_MAKE_CODE": str(rng.randint(1, 999)),
                "TYPE_OPERATOR": rng.choice("ABCDEFMP"),
                "CAUSE_FACTOR_1P": f"{rng.randint(60, 79)}",
                "CAUSE_FACTOR_1M": rng.choice("ABC"),
                "CAUSE_FACTOR_1S": rng.choice(["KA", "CB", "AD"]),
            }
            for n, p in pilots.items():
                if p:
                    row[f"PILOT_INVOLED{n}"] = "A"
                    row[f"AGE_PILOT{n}"] = p.get("age", "")
                    row[f"HOURS_TOTAL_PILOT{n}"] = p.get("total", "")
                    row[f"HOURS_IN_TYPE_PILOT{n}"] = p.get("make", "")
            for person, category in PERSONS.items():
                for level, code_ in LEVELS.items():
                    row[f"{person}_{level}"] = injuries.get((ev_id_, category, code_), "")
            for level, column in zip(LEVELS, ("inj_tot_f", "inj_tot_s", "inj_tot_m", "inj_tot_n"), strict=True):
                row[f"GRAND_TOTAL_{level}"] = e.get(column, "").strip()
            w[FIRST].writerow([row.get(c, "") for c in FIRST_COLUMNS])
            narr = narratives.get(ev_id_, {})
            w[SECOND].writerow(
                [
                    recnum,
                    (narr.get("narr_accp") or "").strip(),
                    (narr.get("narr_cause") or "").strip(),
                    {"VMC": "V", "IMC": "I"}.get(e.get("wx_cond_basic", "").strip(), ""),
                ]
            )
            counts[FIRST] += 1
            counts[SECOND] += 1
            for occ in range(1, rng.randint(1, 2) + 1):
                w[OCCURRENCES].writerow([recnum, occ, f"{rng.randint(1, 40):02d}", rng.choice("ABCDEFG")])
                counts[OCCURRENCES] += 1
                for seq in range(1, rng.randint(1, 3) + 1):
                    w[SEQUENCE].writerow(
                        [recnum, occ, seq, rng.choice("CF"), f"{rng.randint(1, 99):02d}", rng.choice(["", "A", "B"])]
                    )
                    counts[SEQUENCE] += 1
    with open(out / f"{CODES}.csv", "w", encoding="utf-8", newline="") as fh:
        cw = csv.writer(fh, lineterminator="\n")
        cw.writerow(["Name", "Code", "Meaning"])
        for column, mapping in legacy.items():
            table_, modern = CODED[column]
            for modern_code, legacy_code in mapping.items():
                if (column, legacy_code) in used:
                    cw.writerow([column, legacy_code, _meaning(table_, modern, modern_code).upper()])
                    counts[CODES] += 1
    (out / SYNTHETIC_MARKER).write_text(
        json.dumps({"form": "PRE1982", "seed": seed, "rows": counts}, indent=1) + "\n", encoding="utf-8"
    )
    return counts
