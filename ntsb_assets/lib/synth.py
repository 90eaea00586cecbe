"""NTSB-shaped synthetic releases, for benchmarks and load tests.

``generate`` writes a folder of per-table CSV files as ``mdb-export`` writes them (header,
commas, text and dates in double quotes, numbers bare, NULL as an empty field, dates as
``MM/DD/YY HH:MM:SS``), with the real tables' names and column order, for every core table,
plus the real reference tables copied through. ``generate_update`` writes a monthly update
of such a base: new events and changed ones. Both write ``synth_manifest.json`` with what
the ingestion must find: row counts per table, the expected change-data-capture counts of
an update, and every injected defect with the quarantine rule it must get.

Values come from ``synth_profile.json`` (fitted on real NTSB files by ``synth_fit.py``);
docs/synth.md says what is fitted and what is assumed. One ``random.Random(seed)`` drives
everything in a fixed order: the same arguments give the same bytes. Events are generated
and written one at a time, so memory does not grow with the number of events.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import json
import math
import random
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import catalog, parsing
from .sources import SYNTHETIC_MARKER
from .synth_fit import GENERATED, PROFILE_FILE, in_code_set

MANIFEST = SYNTHETIC_MARKER  # also what marks a release as generated (lib/sources.py)
DEFAULT_AS_OF = dt.date(2026, 2, 1)  # the newest real update the profile was fitted on
FIRST_YEAR = 1962
CAROL_FROM = dt.date(2021, 1, 1)  # events created from here on get numeric ev_ids
REFERENCE_TABLES = ("ct_iaids", "ct_seqevt", "Country", "states", "eADMSPUB_DataDictionary")
HHMM_COLUMNS = {"ev_time", "wx_obs_time", "dprt_time", "ntsb_notf_tm"}
# Annual event counts are not in the real files at hand (they cover one sector, 1982-2026):
# the year weights approximate the published totals of NTSB's database, about 4,800 events a
# year in the 1960s-70s falling to about 1,300 in the 2020s.
YEAR_WEIGHTS = [(1962, 4800), (1979, 4800), (1990, 2600), (2000, 2100), (2010, 1550), (2026, 1300)]
# NTSB_Admin.rec_stat shares in avall.mdb (29,773 rows, see data/sample/README.md's sources)
REC_STAT = [("B", 24362), ("F", 4170), ("P", 1111), ("", 130)]
DEFECT_KINDS = ("bad_date", "early_date", "bad_coordinate")  # plus orphan rows


# ----------------------------------------------------------------------------- sampling


class Weighted:
    """Weighted choice by bisection over cumulative weights (one rng.random() per draw)."""

    def __init__(self, pairs):
        pairs = [(v, w) for v, w in pairs if w > 0] or [(v, 1) for v, _w in pairs]
        self.values = [v for v, _ in pairs]
        self.cum, total = [], 0.0
        for _, w in pairs:
            total += w
            self.cum.append(total)
        self.total = total

    def __call__(self, rng: random.Random):
        return self.values[min(len(self.values) - 1, bisect.bisect_right(self.cum, rng.random() * self.total))]


@lru_cache(maxsize=1)
def profile() -> dict:
    return json.loads(PROFILE_FILE.read_text(encoding="utf-8"))


class Sampler:
    """Column and joint samplers built once from the profile."""

    def __init__(self, prof: dict):
        self.prof = prof
        self.headers: dict[str, list[str]] = prof["headers"]
        self.codes: dict[str, dict[str, list[str]]] = prof["codes"]
        self.types = {t: catalog.table(t).columns for t in GENERATED}
        self.columns: dict[str, dict[str, tuple[float, Callable]]] = {}
        for table, cols in prof["columns"].items():
            self.columns[table] = {c: (p["null"], self._column(p)) for c, p in cols.items()}
        j = prof["joint"]
        ev_codes = self.codes["events"]
        self.location = Weighted(
            [
                (tuple(r[:5]), r[5])
                for r in j["location"]
                if not r[1] or in_code_set(r[1], ev_codes.get("ev_state", [r[1]]))
            ]
        )
        self.injuries = Weighted([(tuple(r[:4]), r[4]) for r in j["injuries"]])
        ac_codes = self.codes["aircraft"]
        self.aircraft_type = Weighted(
            [
                (tuple(r[:6]), r[6])
                for r in j["aircraft_type"]
                if (not r[3] or in_code_set(r[3], ac_codes["acft_category"]))
                and (not r[5] or in_code_set(r[5], ac_codes["homebuilt"]))
            ]
        )
        self.engine_type = Weighted([(tuple(r[:5]), r[5]) for r in j["engine_type"]])
        modifiers = self.codes["Findings"].get("modifier_no")
        self.findings = Weighted(
            [
                ((c, d), n + 0.05)
                for c, d, n in j["findings"]
                if len(c) == 10 and c.isdigit() and (not modifiers or in_code_set(c[-2:], modifiers))
            ]
        )
        self.ntsb_no = Weighted([(p, n) for p, n in j["ntsb_no"]])
        self.hours = Weighted([(h, n) for h, n in j["hours"] if 0 <= h <= 23])
        self.children = {t: Weighted([(n, w) for n, w in d]) for t, d in prof["children"].items()}
        self.narr_len = prof["narratives"]["lengths"]
        self.sentences = prof["narratives"]["sentences"]
        self.cause_empty = prof["narratives"]["cause_empty"]
        years = list(range(FIRST_YEAR, DEFAULT_AS_OF.year + 1))
        self.years = Weighted([(y, _interp(YEAR_WEIGHTS, y)) for y in years])
        self.rec_stat = Weighted(REC_STAT)

    @staticmethod
    def _column(p: dict) -> Callable:
        if "values" in p:
            return Weighted([(v, n) for v, n in p["values"]]) if p["values"] else (lambda rng: None)
        if "numbers" in p:
            w = Weighted([(v, n) for v, n in p["numbers"]])
            integer = p["integer"]
            return lambda rng: int(w(rng)) if integer else w(rng)
        if "quantiles" in p:
            q, integer = p["quantiles"], p["integer"]

            def draw(rng):
                x = rng.random() * 100
                i = min(99, int(x))
                v = q[i] + (q[i + 1] - q[i]) * (x - i)
                return int(round(v)) if integer else round(v, 4)

            return draw
        if "bools" in p:
            w = Weighted([(v, n) for v, n in p["bools"]])
            return lambda rng: w(rng)
        return lambda rng: None

    def value(self, rng: random.Random, table: str, col: str):
        null, draw = self.columns[table].get(col, (1.0, None))
        if draw is None or rng.random() < null:
            return None
        return draw(rng)


def _interp(points, x):
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


# ----------------------------------------------------------------------------- writing


def _fmt_date(v) -> str:
    if isinstance(v, dt.datetime):
        return '"' + v.strftime("%m/%d/%y %H:%M:%S") + '"'
    return '"' + v.strftime("%m/%d/%y") + ' 00:00:00"'


def format_value(typ: str, v) -> str:
    """One field as mdb-export writes it."""
    if v is None:
        return ""
    if typ in ("date", "timestamp"):
        return _fmt_date(v) if not isinstance(v, str) else '"' + v.replace('"', '""') + '"'
    if typ == "int":
        return str(int(float(v)))
    if typ == "float":
        f = float(v)
        return str(int(f)) if f == int(f) and abs(f) < 1e15 else repr(round(f, 6))
    if typ == "bool":
        return "1" if v is True or v in ("1", "Y", "True", "-1") else "0"
    return '"' + str(v).replace('"', '""') + '"'


class TableWriter:
    """Per-table CSV files in one folder; counts rows (the header is row 1, as the
    ingestion numbers them)."""

    def __init__(self, out: Path, headers: dict[str, list[str]], types: dict[str, dict[str, str]]):
        self.out = out
        self.headers, self.types = headers, types
        self.files = {}
        self.rows = {}
        for table, header in headers.items():
            fh = open(out / f"{table}.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
            fh.write(",".join(header) + "\n")
            self.files[table] = fh
            self.rows[table] = 1

    def write(self, table: str, row: dict) -> int:
        types = self.types[table]
        line = ",".join(format_value(types.get(c, "string"), row.get(c)) for c in self.headers[table])
        self.files[table].write(line + "\n")
        self.rows[table] += 1
        return self.rows[table]

    def write_raw(self, table: str, header: list[str], fields: list[str]) -> int:
        """A row read back from an earlier output, written again in the same form."""
        types = self.types[table]
        row = dict(zip(header, fields, strict=False))
        line = ",".join(
            "" if row.get(c, "") == "" else format_value(types.get(c, "string"), row[c]) for c in self.headers[table]
        )
        self.files[table].write(line + "\n")
        self.rows[table] += 1
        return self.rows[table]

    def close(self) -> dict[str, int]:
        for fh in self.files.values():
            fh.close()
        return {t: n - 1 for t, n in self.rows.items()}


def _copy_reference(out: Path) -> list[str]:
    """The real code tables and data dictionary, copied through unchanged."""
    src = Path(__file__).resolve().parents[2] / "data" / "sample" / "landing" / "00_reference_avall"
    copied = []
    for t in REFERENCE_TABLES:
        f = src / f"{t}.csv"
        if f.exists():
            shutil.copyfile(f, out / f.name)
            copied.append(t)
    return copied


# ----------------------------------------------------------------------------- events


class EventFactory:
    """Makes one event with all its child rows, as {table: [row dicts]}."""

    def __init__(self, rng: random.Random, sampler: Sampler, as_of: dt.date, numeric_from: int = 190_000):
        self.rng, self.s, self.as_of = rng, sampler, as_of
        self.numeric_seq = numeric_from
        self.x_seq: dict[str, int] = {}

    # -- identities
    def _ev_id(self, created: dt.date) -> str:
        stamp = created.strftime("%Y%m%d")
        if created >= CAROL_FROM:
            self.numeric_seq += 1
            return f"{stamp}{self.numeric_seq:06d}"
        n = self.x_seq.get(stamp)
        if n is None:
            n = self.x_seq[stamp] = self.rng.randrange(100, 40_000)
        self.x_seq[stamp] = n + 1
        return f"{stamp}X{n:05d}"

    def _ntsb_no(self, d: dt.date) -> str:
        pattern = self.s.ntsb_no(self.rng)  # e.g. 'CHI#IA#'
        office, typ = pattern[:3], pattern[4:6]
        return f"{office}{d.year % 100:02d}{typ}{self.rng.randrange(1, 999):03d}"

    def _date(self, lo: dt.date | None = None) -> dt.date:
        rng = self.rng
        if lo is not None:
            return lo + dt.timedelta(days=rng.randrange(0, max(1, (self.as_of - lo).days + 1)))
        year = self.s.years(rng)
        start = dt.date(year, 1, 1)
        end = min(dt.date(year, 12, 31), self.as_of)
        return start + dt.timedelta(days=rng.randrange(0, (end - start).days + 1))

    def _after(self, d: dt.date, max_days: int) -> dt.datetime:
        t = dt.datetime.combine(d, dt.time()) + dt.timedelta(
            days=self.rng.randrange(0, max_days), seconds=self.rng.randrange(0, 86_400)
        )
        cap = dt.datetime.combine(self.as_of, dt.time(23, 59, 59))
        return min(t, cap)

    def _hhmm(self) -> int:
        return self.s.hours(self.rng) * 100 + self.rng.randrange(0, 60)

    # -- generic row filling
    def _fill(self, table: str, row: dict, ev_date: dt.date, created: dt.date) -> dict:
        rng, s = self.rng, self.s
        types = s.types[table]
        for col in s.headers[table]:
            if col in row:
                continue
            typ = types.get(col, "string")
            if col == "lchg_date":
                row[col] = self._after(created, 400)
            elif col == "lchg_userid":
                row[col] = s.value(rng, table, col)
            elif typ in ("date", "timestamp"):
                null = s.columns[table].get(col, (0.5, None))[0]
                row[col] = (
                    None
                    if rng.random() < null
                    else dt.datetime.combine(ev_date - dt.timedelta(days=rng.randrange(1, 720)), dt.time())
                )
            elif col in HHMM_COLUMNS:
                null = s.columns[table].get(col, (0.5, None))[0]
                row[col] = None if rng.random() < null else self._hhmm()
            else:
                row[col] = s.value(rng, table, col)
        return row

    # -- the event and its children
    def make(self, ev_date: dt.date | None = None) -> dict[str, list[dict]]:
        rng, s = self.rng, self.s
        ev_date = ev_date or self._date()
        created = min(ev_date + dt.timedelta(days=rng.randrange(0, 15)), self.as_of)
        ev_id = self._ev_id(created)
        country, state, city, lat, lon = s.location(rng)
        f, sev, m, n = s.injuries(rng)
        highest = "FATL" if f else "SERS" if sev else "MINR" if m else "NONE"
        ev = {
            "ev_id": ev_id,
            "ntsb_no": self._ntsb_no(ev_date),
            "ev_date": ev_date,
            "ev_dow": ev_date.strftime("%a")[:2],
            "ev_year": ev_date.year,
            "ev_month": ev_date.month,
            "ev_time": self._hhmm(),
            "ev_country": country,
            "ev_state": state,
            "ev_city": city,
            "inj_tot_f": f or None,
            "inj_tot_s": sev or None,
            "inj_tot_m": m or None,
            "inj_tot_n": n or None,
            "inj_tot_t": (f + sev + m) or None,
            "ev_highest_injury": highest,
            "ntsb_notf_date": dt.datetime.combine(created, dt.time()),
        }
        ev.update(self._coordinates(ev_date, created, lat, lon))
        out: dict[str, list[dict]] = {t: [] for t in GENERATED}
        out["events"].append(self._fill("events", ev, ev_date, created))
        out["NTSB_Admin"].append(
            {
                "ev_id": ev_id,
                "rec_stat": s.rec_stat(rng) or None,
                "approval_date": self._after(created, 200),
                "lchg_userid": s.value(rng, "NTSB_Admin", "lchg_userid"),
                "lchg_date": self._after(created, 400),
            }
        )
        n_aircraft = max(1, s.children["aircraft"](rng))
        for key in range(1, n_aircraft + 1):
            self._aircraft(out, ev, key, ev_date, created, injuries=(f, sev, m, n) if key == 1 else (0, 0, 0, 0))
        return out

    def _coordinates(self, ev_date, created, lat, lon) -> dict:
        rng = self.rng
        none: dict[str, Any] = dict.fromkeys(("latitude", "longitude", "dec_latitude", "dec_longitude"))
        if ev_date.year < 1990 and rng.random() < 0.7:
            return none
        lat = max(-89.99, min(89.99, lat + rng.uniform(-0.2, 0.2)))
        lon = max(-179.99, min(179.99, lon + rng.uniform(-0.2, 0.2)))
        if created >= CAROL_FROM:  # recent exports: unpadded DMS strings plus decimal columns
            return {
                "latitude": _dms(lat, "lat", padded=False),
                "longitude": _dms(lon, "lon", padded=False),
                "dec_latitude": round(lat, 6),
                "dec_longitude": round(lon, 6),
            }
        d = none | {"latitude": _dms(lat, "lat"), "longitude": _dms(lon, "lon")}
        if rng.random() < 0.01:  # a few blank-padded strings, as in the real files
            d["latitude"] = " " + d["latitude"]
        return d

    def _aircraft(self, out, ev, key, ev_date, created, injuries):
        rng, s = self.rng, self.s
        make, model, series, category, num_eng, homebuilt = s.aircraft_type(rng)
        damage = s.value(rng, "aircraft", "damage")
        if injuries[0] and rng.random() < 0.6:
            damage = "DEST"
        ac = {
            "ev_id": ev["ev_id"],
            "Aircraft_Key": key,
            "ntsb_no": ev["ntsb_no"],
            "acft_make": make,
            "acft_model": model,
            "acft_series": series or None,
            "acft_category": category or None,
            "num_eng": int(num_eng) if num_eng.isdigit() else None,
            "homebuilt": homebuilt or None,
            "damage": damage,
            "regis_no": f"N{rng.randrange(1, 99999)}{rng.choice(['', 'A', 'B', 'C', 'D'])}",
        }
        out["aircraft"].append(self._fill("aircraft", ac, ev_date, created))
        engines = ac["num_eng"] if ac["num_eng"] and ac["num_eng"] <= 4 else s.children["engines"](rng)
        for no in range(1, engines + 1):
            etype, mfgr, emodel, power, units = s.engine_type(rng)
            out["engines"].append(
                self._fill(
                    "engines",
                    {
                        "ev_id": ev["ev_id"],
                        "Aircraft_Key": key,
                        "eng_no": no,
                        "eng_type": etype,
                        "eng_mfgr": mfgr,
                        "eng_model": emodel,
                        "power_units": int(power) if power.isdigit() else None,
                        "hp_or_lbs": units or None,
                    },
                    ev_date,
                    created,
                )
            )
        self._injuries(out, ev["ev_id"], key, injuries, ev_date, created)
        for crew_no in range(1, s.children["Flight_Crew"](rng) + 1):
            out["Flight_Crew"].append(
                self._fill(
                    "Flight_Crew", {"ev_id": ev["ev_id"], "Aircraft_Key": key, "crew_no": crew_no}, ev_date, created
                )
            )
            self._flight_time(out, ev["ev_id"], key, crew_no, ev_date, created)
        if ev_date >= dt.date(2008, 1, 1):
            if key == 1 and (self.as_of - ev_date).days > 365:  # findings come with the final report
                for no in range(1, s.children["Findings"](rng) + 1):
                    out["Findings"].append(self._finding(ev["ev_id"], key, no, ev_date, created))
        elif key == 1:
            self._occurrences(out, ev["ev_id"], key, ev_date, created)
        for _ in range(s.children["narratives"](rng)):
            out["narratives"].append(self._narrative(ev["ev_id"], key, ev_date, created))

    def _injuries(self, out, ev_id, key, counts, ev_date, created):
        rng = self.rng
        for level, count in zip(("FATL", "SERS", "MINR", "NONE"), counts, strict=True):
            if not count:
                continue
            # pilot and passengers, or everyone aboard
            parts = [("PLT", 1), ("PAX", count - 1)] if count > 1 and rng.random() < 0.5 else [("ABRD", count)]
            for cat, c in parts:
                out["injury"].append(
                    self._fill(
                        "injury",
                        {
                            "ev_id": ev_id,
                            "Aircraft_Key": key,
                            "inj_person_category": cat,
                            "injury_level": level,
                            "inj_person_count": c,
                        },
                        ev_date,
                        created,
                    )
                )

    def _flight_time(self, out, ev_id, key, crew_no, ev_date, created):
        rng = self.rng
        total = round(math.exp(rng.gauss(math.log(1200), 1.2)), 1)  # assumed: median 1,200 h
        for ftype, craft, share in (
            ("TOTL", "ALL", 1.0),
            ("TOTL", "MAKE", 0.3),
            ("PIC", "ALL", 0.8),
            ("L90D", "ALL", 0.03),
            ("L30D", "ALL", 0.01),
            ("L24H", "ALL", 0.001),
        ):
            if ftype != "TOTL" and rng.random() < 0.2:
                continue
            out["flight_time"].append(
                self._fill(
                    "flight_time",
                    {
                        "ev_id": ev_id,
                        "Aircraft_Key": key,
                        "crew_no": crew_no,
                        "flight_type": ftype,
                        "flight_craft": craft,
                        "flight_hours": round(total * share * rng.uniform(0.5, 1.0), 1),
                    },
                    ev_date,
                    created,
                )
            )

    def _finding(self, ev_id, key, no, ev_date, created):
        code, desc = self.s.findings(self.rng)
        return self._fill(
            "Findings",
            {
                "ev_id": ev_id,
                "Aircraft_Key": key,
                "finding_no": no,
                "finding_code": code,
                "finding_description": desc,
                "category_no": code[0:2],
                "subcategory_no": code[2:4],
                "section_no": code[4:6],
                "subsection_no": code[6:8],
                "modifier_no": code[8:10],
            },
            ev_date,
            created,
        )

    def _occurrences(self, out, ev_id, key, ev_date, created):
        rng, codes = self.rng, self.s.codes
        for occ in range(1, rng.choice((1, 1, 1, 2, 2, 3)) + 1):
            out["Occurrences"].append(
                self._fill(
                    "Occurrences",
                    {
                        "ev_id": ev_id,
                        "Aircraft_Key": key,
                        "Occurrence_No": occ,
                        "Occurrence_Code": rng.choice(codes["Occurrences"]["Occurrence_Code"]),
                        "Phase_of_Flight": rng.choice(codes["Occurrences"]["Phase_of_Flight"]),
                        "Altitude": rng.choice((0, 0, 0, 50, 100, 500, 1000, 3000, 8500)),
                    },
                    ev_date,
                    created,
                )
            )
            sc = codes["seq_of_events"]
            for seq in range(1, rng.choice((1, 2, 2, 3)) + 1):
                out["seq_of_events"].append(
                    self._fill(
                        "seq_of_events",
                        {
                            "ev_id": ev_id,
                            "Aircraft_Key": key,
                            "Occurrence_No": occ,
                            "seq_event_no": seq,
                            "group_code": rng.choice(sc["group_code"]),
                            "Subj_Code": rng.choice(sc["Subj_Code"]),
                            "Cause_Factor": rng.choice(sc["Cause_Factor"]),
                            "Modifier_Code": rng.choice(sc["Modifier_Code"]),
                            "Person_Code": rng.choice(sc["Person_Code"]),
                        },
                        ev_date,
                        created,
                    )
                )

    def _text(self, length: int) -> str:
        rng, parts, size = self.rng, [], 0
        while size < length:
            s = self.s.sentences[rng.randrange(len(self.s.sentences))]
            parts.append(s)
            size += len(s) + 1
            if rng.random() < 0.15:
                parts.append("\r\n")
        return " ".join(parts).replace(" \r\n ", "\r\n").strip()

    def _narrative(self, ev_id, key, ev_date, created):
        rng = self.rng
        length = self.s.narr_len[rng.randrange(len(self.s.narr_len))]
        cause = None if rng.random() < self.s.cause_empty else self._text(rng.randrange(80, 400))
        return self._fill(
            "narratives",
            {"ev_id": ev_id, "Aircraft_Key": key, "narr_accp": self._text(length), "narr_cause": cause},
            ev_date,
            created,
        )


def _required_date(text: str) -> dt.date:
    """The date of a generated event (the generator always writes one)."""
    d = parsing.parse_date(text)
    if d is None:
        raise ValueError(f"a generated event without a date: {text!r}")
    return d


def _dms(value: float, kind: str, padded: bool = True) -> str:
    hemi = ("N" if value >= 0 else "S") if kind == "lat" else ("E" if value >= 0 else "W")
    v = abs(value)
    d = int(v)
    m = int((v - d) * 60)
    s = min(59, int(round(((v - d) * 60 - m) * 60)))
    width = 6 if kind == "lat" else 7
    if padded:
        return f"{d:0{width - 4}d}{m:02d}{s:02d}{hemi}"
    return f"{d}{m}{s}".rjust(width, "0") + hemi


# ----------------------------------------------------------------------------- defects


class Defects:
    """Injects the known real defects at a rate and remembers exactly which rows carry
    them and which quarantine rule each must get."""

    def __init__(self, rng: random.Random, rate: float):
        self.rng, self.rate = rng, rate
        self.rows: list[dict] = []
        self.orphans = 0

    def maybe_break(self, event: dict[str, list[dict]]) -> str | None:
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return None
        kind = DEFECT_KINDS[self.rng.randrange(len(DEFECT_KINDS))]
        ev = event["events"][0]
        if kind == "bad_date":  # 30 February: does not parse
            ev["ev_date"] = f"02/30/{ev['ev_date'].year % 100:02d} 00:00:00"
        elif kind == "early_date":  # before NTSB's records begin
            ev["ev_date"] = dt.date(1947, ev["ev_date"].month, min(ev["ev_date"].day, 28))
        elif kind == "bad_coordinate":
            ev["dec_latitude"] = round(90 + self.rng.uniform(0.5, 9), 4)
            ev["latitude"] = ev.get("latitude") or "443345N"
        return kind

    def orphan_table(self) -> str | None:
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return None
        return self.rng.choice(("aircraft", "engines", "injury", "narratives", "NTSB_Admin"))

    def record(self, table: str, source_row: int, rule: str, ev_id: str) -> None:
        self.rows.append({"table": table, "source_row": source_row, "rule": rule, "ev_id": ev_id})


_RULE = {"bad_date": "type", "early_date": "out_of_range", "bad_coordinate": "out_of_range"}


# ----------------------------------------------------------------------------- entry points


def generate(
    out_dir: Path,
    events: int,
    seed: int,
    *,
    defects: float = 0.0,
    as_of: dt.date = DEFAULT_AS_OF,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write a base release of ``events`` events to ``out_dir``; returns the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sampler = Sampler(profile())
    factory = EventFactory(rng, sampler, as_of)
    broken = Defects(random.Random(seed + 1), defects)
    writer = TableWriter(out, sampler.headers, sampler.types)
    try:
        for i in range(events):
            event = factory.make()
            kind = broken.maybe_break(event)
            ev_id = event["events"][0]["ev_id"]
            for table in GENERATED:
                for row in event[table]:
                    n = writer.write(table, row)
                    if kind is not None:  # the event breaks a rule; everything below it goes with it
                        broken.record(table, n, _RULE[kind] if table == "events" else "parent_quarantined", ev_id)
            orphan = broken.orphan_table()
            if orphan:
                broken.orphans += 1
                orphan_id = f"19000101X{broken.orphans:05d}"
                row = factory._fill(
                    orphan,
                    {
                        "ev_id": orphan_id,
                        "Aircraft_Key": 1,
                        "eng_no": 1,
                        "inj_person_category": "ABRD",
                        "injury_level": "NONE",
                        "inj_person_count": 1,
                    },
                    as_of,
                    as_of,
                )
                broken.record(orphan, writer.write(orphan, row), "orphan", orphan_id)
            if progress and (i + 1) % 10_000 == 0:
                progress(i + 1)
    finally:
        counts = writer.close()
    reference = _copy_reference(out)
    manifest = {
        "kind": "base",
        "events": events,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "defect_rate": defects,
        "rows": counts,
        "reference_tables": reference,
        "numeric_seq": factory.numeric_seq,
        "defects": broken.rows,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def _read_rows(path: Path):
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        for fields in reader:
            yield header, fields


# Real monthly updates re-deliver recent events: in the four of the bundled sample
# (data/sample/landing/0[2-5]_up01*, July 2025 to February 2026, 253 events) every event
# dates from at most 7 years before the update's year, and 78 % from that year or the one before.
CHANGED_WITHIN_YEARS = 7


def generate_update(base_dir: Path, out_dir: Path, new: int, changed: int, seed: int) -> dict:
    """A monthly update of a generated base: ``new`` new events with their child rows, and
    ``changed`` existing events (drawn from the last CHANGED_WITHIN_YEARS years, as in real
    updates) re-delivered whole with the fields a final report changes (event and admin
    records updated, the probable cause added to the narrative, a finding added where
    findings belong). Returns the manifest with the expected CDC counts."""
    base, out = Path(base_dir), Path(out_dir)
    bm = json.loads((base / MANIFEST).read_text(encoding="utf-8"))
    as_of = dt.date.fromisoformat(bm["as_of"]) + dt.timedelta(days=31)
    rng = random.Random(seed)
    sampler = Sampler(profile())
    skip = {r["ev_id"] for r in bm.get("defects", [])}
    events = [
        (_required_date(f[h.index("ev_date")]), f[0]) for h, f in _read_rows(base / "events.csv") if f[0] not in skip
    ]
    if changed > len(events):
        raise ValueError(f"--changed {changed}: the base has only {len(events)} events")
    recent = [e for d, e in events if d.year >= as_of.year - CHANGED_WITHIN_YEARS]
    if len(recent) < changed:  # a small base: its most recent events
        recent = [e for _d, e in sorted(events, reverse=True)[:changed]]
    chosen = set(rng.sample(recent, changed))
    del events, recent
    out.mkdir(parents=True, exist_ok=True)
    writer = TableWriter(out, sampler.headers, sampler.types)
    expected = {t: {"inserted": 0, "updated": 0, "unchanged": 0} for t in GENERATED}
    stamp = dt.datetime.combine(as_of, dt.time(12, 0))
    try:
        finding_max: dict[str, int] = {}
        narrated: set[tuple] = set()
        dates: dict[str, str] = {}
        for table in GENERATED:
            for header, fields in _read_rows(base / f"{table}.csv"):
                row = dict(zip(header, fields, strict=False))
                if row["ev_id"] not in chosen:
                    continue
                change = table in ("events", "NTSB_Admin")
                if table == "events":
                    dates[row["ev_id"]] = row["ev_date"]
                    row["lchg_date"] = stamp
                    row["lchg_userid"] = "final"
                if table == "NTSB_Admin":
                    row["rec_stat"], row["lchg_date"] = "F", stamp
                if table == "narratives":
                    narrated.add((row["ev_id"], row["Aircraft_Key"]))
                    if not row["narr_cause"]:
                        row["narr_cause"] = "The pilot's failure to maintain control of the airplane."
                        change = True
                if table == "Findings":
                    finding_max[row["ev_id"]] = max(finding_max.get(row["ev_id"], 0), int(row["finding_no"]))
                writer.write_raw(
                    table,
                    header,
                    [
                        row[h] if not isinstance(row[h], dt.datetime) else row[h].strftime("%m/%d/%y %H:%M:%S")
                        for h in header
                    ],
                )
                expected[table]["updated" if change else "unchanged"] += 1
        factory = EventFactory(rng, sampler, as_of, numeric_from=bm["numeric_seq"])
        for ev_id in sorted(chosen):
            ev_date = _required_date(dates[ev_id])
            created = ev_date
            if ev_date >= dt.date(2008, 1, 1):
                writer.write("Findings", factory._finding(ev_id, 1, finding_max.get(ev_id, 0) + 1, ev_date, created))
                expected["Findings"]["inserted"] += 1
            if (ev_id, "1") not in narrated:
                writer.write("narratives", factory._narrative(ev_id, 1, ev_date, created))
                expected["narratives"]["inserted"] += 1
        for _ in range(new):
            event = factory.make(ev_date=factory._date(lo=as_of - dt.timedelta(days=60)))
            for table in GENERATED:
                for row in event[table]:
                    writer.write(table, row)
                    expected[table]["inserted"] += 1
    finally:
        counts = writer.close()
    reference = _copy_reference(out)
    manifest = {
        "kind": "update",
        "base": bm.get("seed"),
        "new": new,
        "changed": changed,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "rows": counts,
        "reference_tables": reference,
        "numeric_seq": factory.numeric_seq,
        "expected": expected,
        "defects": [],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest
