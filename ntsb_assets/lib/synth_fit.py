"""Fit the synthetic-data profile on real NTSB files.

Reads real exports (folders of CSV files as mdb-export writes them, in any casing) and the
data dictionary, and writes ``synth_profile.json`` beside this module: per table the column
order, per column its null rate and value distribution (codes restricted to the
dictionary's code set), joint distributions where columns belong together (location,
injury totals, aircraft type, engine type, findings), rows per parent in each child
table, narrative lengths and sentences. The generator (``synth.py``) reads only that file.

    python -m ntsb_assets.lib.synth_fit data/sample/landing/* [more folders...]

docs/synth.md lists what was fitted and what is assumed.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from . import catalog, parsing

PROFILE_FILE = Path(__file__).with_name("synth_profile.json")
TOP_VALUES = 200
GENERATED = (
    "events",
    "aircraft",
    "engines",
    "Flight_Crew",
    "flight_time",
    "injury",
    "Findings",
    "Occurrences",
    "seq_of_events",
    "narratives",
    "NTSB_Admin",
)
NOT_SAMPLED = {"lchg_date", "lchg_userid"}
# Column order of real files the fit folders may not include (NTSB_Admin as avall.mdb's
# mdb-export writes it).
REAL_HEADERS = {
    "NTSB_Admin": ["ev_id", "rec_stat", "approval_date", "lchg_userid", "lchg_date"]
}  # written by the generator from the event's dates


def _read(folder: Path) -> dict[str, list]:
    """Rows per table as dicts, and each table's header under ``__header__<table>``."""
    out: dict[str, list] = {}
    for f in sorted(folder.glob("*.csv")):
        table = catalog.canonical_table_name(f.stem)
        tbl = catalog.table(table)
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [catalog.canonical_column_name(tbl, h) for h in next(reader)]
            rows = [dict(zip(header, r, strict=True)) for r in reader if len(r) == len(header)]
        out.setdefault(table, []).extend(rows)
        out.setdefault(f"__header__{table}", [header])  # first header seen wins
    return out


def code_sets(dictionary: list[dict]) -> dict[str, dict[str, list[str]]]:
    """{table: {column: codes}} for every coded column (codes as the dictionary spells them;
    pattern codes like ``xxxxxxxx01`` reduced to their fixed part)."""
    sets: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for r in dictionary:
        code = r["code_iaids"].strip()
        if not code:
            continue
        table = catalog.canonical_table_name(r["Table"])
        col = catalog.canonical_column_name(catalog.table(table), r["Column"])
        sets[table][col].add(code.lstrip("x"))
    return {t: {c: sorted(v) for c, v in cols.items()} for t, cols in sets.items()}


def in_code_set(value: str, codes: list[str]) -> bool:
    v = value.strip().upper()
    return v in {c.upper() for c in codes}


def _weights(counter: Counter, top: int = TOP_VALUES) -> list[list]:
    return [[v, n] for v, n in counter.most_common(top)]


def _column_profile(table: str, col: str, values: list[str], codes: list[str] | None) -> dict:
    typ = catalog.table(table).columns.get(col, "string")
    present = [v for v in values if v.strip() != ""]
    null = round(1 - len(present) / len(values), 4) if values else 0.5
    if codes is not None:
        kept = Counter(v for v in present if in_code_set(v, codes))
        if not kept:  # the real rows use none of the dictionary's codes: draw from the code set
            return {"null": null, "values": [[c, 1] for c in codes], "fitted": False}
        return {"null": null, "values": _weights(kept), "fitted": True}
    if typ in ("int", "float"):
        nums = []
        for v in present:
            with contextlib.suppress(ValueError):
                nums.append(parsing.parse_float(v))
        if not nums:
            return {"null": 1.0, "values": [], "fitted": False}
        distinct = Counter(nums)
        if len(distinct) <= TOP_VALUES:
            return {"null": null, "numbers": _weights(distinct), "integer": typ == "int", "fitted": True}
        nums.sort()
        q = [nums[min(len(nums) - 1, round(i * (len(nums) - 1) / 100))] for i in range(101)]
        return {"null": null, "quantiles": q, "integer": typ == "int", "fitted": True}
    if typ == "bool":
        flags = Counter(
            parsing.parse_bool(v)
            for v in present
            if v.strip().lower() in {"true", "false", "y", "n", "1", "0", "-1", "t", "f"}
        )
        return {"null": null, "bools": [[bool(k), n] for k, n in flags.items()] or [[False, 1]], "fitted": bool(flags)}
    return {"null": null, "values": _weights(Counter(present)), "fitted": bool(present)}


def _per_parent(children: list[dict], parents: list[dict], key: tuple[str, ...]) -> list[list]:
    """Distribution of the number of child rows per parent row (zero included)."""
    counts = Counter(tuple(r.get(k, "").strip() for k in key) for r in children)
    dist = Counter(counts.get(tuple(p.get(k, "").strip() for k in key), 0) for p in parents)
    return [[n, w] for n, w in sorted(dist.items())]


def _sentences(texts: list[str], limit: int = 1500) -> list[str]:
    out = []
    for t in texts:
        for s in re.split(r"(?<=[.!?])\s+", t.replace("\r", " ").replace("\n", " ")):
            s = s.strip()
            if 20 <= len(s) <= 400:
                out.append(s)
    return out[:limit]


def fit(folders: list[Path]) -> dict:
    data: dict[str, list[dict]] = defaultdict(list)
    headers: dict[str, list[str]] = {}
    per_folder: list[dict[str, list]] = []
    for folder in folders:
        got = _read(folder)
        per_folder.append(got)
        for k, v in got.items():
            if k.startswith("__header__"):
                headers.setdefault(k[len("__header__") :], v[0])
            else:
                data[k].extend(v)
    dictionary = data.get("eADMSPUB_DataDictionary")
    if not dictionary:
        raise SystemExit("the data dictionary (eADMSPUB_DataDictionary.csv) must be among the folders")
    codes = code_sets(dictionary)

    profile: dict = {"sources": [str(f.name) for f in folders], "headers": {}, "columns": {}, "codes": {}}
    for table in GENERATED:
        tbl = catalog.table(table)
        # the real files' column order; a table with no real file: key first, then the catalog
        default = list(tbl.key) + [c for c in tbl.columns if c not in tbl.key]
        header = [h for h in headers.get(table, REAL_HEADERS.get(table, default)) if h in tbl.columns]
        if table == "events":
            header += [c for c in ("dec_latitude", "dec_longitude") if c not in header]
        profile["headers"][table] = header
        profile["codes"][table] = {c: codes.get(table, {}).get(c) for c in header if codes.get(table, {}).get(c)}
        rows = data.get(table, [])
        profile["columns"][table] = {
            c: _column_profile(table, c, [r.get(c, "") for r in rows], codes.get(table, {}).get(c))
            for c in header
            if c not in NOT_SAMPLED and c not in tbl.key
        }
        profile["columns"][table]["lchg_userid"] = _column_profile(
            table, "lchg_userid", [r.get("lchg_userid", "") for r in rows], None
        )

    ev = data["events"]
    loc: Counter[tuple] = Counter()
    for r in ev:
        lat = (
            parsing.parse_float(r["dec_latitude"])
            if r.get("dec_latitude", "").strip()
            else parsing.parse_dms(r["latitude"], "lat")
        )
        lon = (
            parsing.parse_float(r["dec_longitude"])
            if r.get("dec_longitude", "").strip()
            else parsing.parse_dms(r["longitude"], "lon")
        )
        if lat is not None and lon is not None and (lat, lon) != (0, 0):
            loc[(r["ev_country"], r["ev_state"], r["ev_city"], round(lat, 4), round(lon, 4))] += 1
    injuries: Counter[tuple] = Counter()
    for r in ev:
        try:
            t = tuple(parsing.parse_int(r[c]) or 0 for c in ("inj_tot_f", "inj_tot_s", "inj_tot_m", "inj_tot_n"))
        except ValueError:
            continue
        injuries[t] += 1
    ac = data["aircraft"]
    types = Counter(
        (
            r["acft_make"],
            r["acft_model"],
            r["acft_series"],
            r["acft_category"],
            r["num_eng"].split(".")[0],
            r["homebuilt"],
        )
        for r in ac
        if r["acft_make"].strip()
    )
    eng = data["engines"]
    eng_types = Counter(
        (r["eng_type"], r["eng_mfgr"], r["eng_model"], r["power_units"].split(".")[0], r["hp_or_lbs"])
        for r in eng
        if r["eng_type"].strip() and in_code_set(r["eng_type"], codes["engines"]["eng_type"])
    )
    fnd = Counter((r["finding_code"], r["finding_description"]) for r in data["Findings"])
    for r in dictionary:  # every documented finding code, real ones weighted by how often they occur
        if r["Table"] == "Findings" and r["Column"] == "findings_code" and r["code_iaids"].strip():
            fnd.setdefault((r["code_iaids"].strip(), r["meaning"].strip()), 0)
    ntsb_no = Counter(
        re.sub(r"\d+", "#", r["ntsb_no"]) for r in ev if re.fullmatch(r"[A-Z]{3}\d{2}[A-Z]{2}\d{3}", r["ntsb_no"])
    )
    narr = data["narratives"]
    years: Counter[int] = Counter()
    for r in ev:
        d = parsing.parse_date(r["ev_date"])
        if d:
            years[d.year] += 1
    profile["joint"] = {
        "location": [[*k, n] for k, n in loc.most_common()],
        "injuries": [[*k, n] for k, n in injuries.most_common()],
        "aircraft_type": [[*k, n] for k, n in types.most_common(2000)],
        "engine_type": [[*k, n] for k, n in eng_types.most_common(1000)],
        "findings": [[c, d, n] for (c, d), n in sorted(fnd.items())],
        "ntsb_no": [[k, n] for k, n in ntsb_no.most_common()],
        "hours": _weights(
            Counter(
                int(parsing.parse_int(r["ev_time"]) or 0) // 100
                for r in ev
                if r["ev_time"].strip() and (parsing.parse_float(r["ev_time"]) or 0) < 2400
            )
        ),
        "sample_years": [[y, n] for y, n in sorted(years.items())],
    }
    # rows per parent, counted only in releases that deliver both tables
    children = {
        "aircraft": ("events", ("ev_id",)),
        "engines": ("aircraft", ("ev_id", "Aircraft_Key")),
        "Flight_Crew": ("aircraft", ("ev_id", "Aircraft_Key")),
        "Findings": ("aircraft", ("ev_id", "Aircraft_Key")),
        "narratives": ("aircraft", ("ev_id", "Aircraft_Key")),
    }
    profile["children"] = {}
    for child, (parent, key) in children.items():
        dist: Counter = Counter()
        for got in per_folder:
            if got.get(child) and got.get(parent):
                if child == "Findings":  # findings exist for events from 2008 on
                    with_findings = {r["ev_id"] for r in got[child]}
                    parents = [p for p in got[parent] if p["ev_id"] in with_findings]
                else:
                    parents = got[parent]
                for n, w in _per_parent(got[child], parents, key):
                    dist[n] += w
        profile["children"][child] = [[n, w] for n, w in sorted(dist.items())]
    profile["narratives"] = {
        "lengths": sorted(len(r["narr_accp"]) for r in narr if r["narr_accp"].strip()),
        "cause_empty": round(sum(1 for r in narr if not r["narr_cause"].strip()) / max(1, len(narr)), 4),
        "sentences": _sentences([r["narr_accp"] for r in narr] + [r["narr_cause"] for r in narr]),
    }
    return profile


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    profile = fit([Path(a) for a in argv])
    PROFILE_FILE.write_text(json.dumps(profile, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(
        f"wrote {PROFILE_FILE.name}: {len(profile['headers'])} tables, "
        f"{len(profile['joint']['location'])} locations, {len(profile['narratives']['sentences'])} sentences"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
