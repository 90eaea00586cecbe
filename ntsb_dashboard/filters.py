"""The filters of a view, and their place in the URL query: a view can be shared and cited.

``?years=1990-2002&state=CA,TX&far_part=091&data=3f2a9c01b7de`` : years as a range, the
others as comma-separated codes, and ``data`` the data version the link was made on. What
the query holds is never trusted: a value must be one the warehouse offers (or a year in
its span) and short; anything else is dropped, named to the reader, and never reaches a
query. Values that pass travel as SQL parameters (``ntsb_api.store.slice_where``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import streamlit as st

FIELDS = {  # query key (and store filter) -> label
    "state": "State",
    "far_part": "FAR part",
    "category": "Aircraft category",
    "phase": "Phase of flight",
    "weather": "Weather",
    "severity": "Highest injury",
}
MAX_VALUE = 200  # characters of one query value; longer is hostile or broken
_CODE = re.compile(r"^[A-Za-z0-9 _.&/()-]{1,40}$")
_YEARS = re.compile(r"^(\d{4})-(\d{4})$")


@dataclass
class Filters:
    years: tuple[int, int] | None = None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # what the URL held that was dropped

    def store(self, **extra) -> tuple:
        """The store's filter arguments as a hashable, ordered tuple (a cache key)."""
        out = dict(self.values)
        if self.years:
            out["year_from"], out["year_to"] = self.years
        out.update({k: v for k, v in extra.items() if v not in (None, "", ())})
        return tuple(sorted((k, v) for k, v in out.items() if v not in (None, (), "")))

    def query(self) -> dict[str, str]:
        out = {k: ",".join(v) for k, v in self.values.items() if v}
        if self.years:
            out["years"] = f"{self.years[0]}-{self.years[1]}"
        return out

    def describe(self) -> str:
        parts = [f"{self.years[0]}-{self.years[1]}"] if self.years else []
        parts += [f"{FIELDS[k].lower()} {', '.join(v)}" for k, v in self.values.items() if v]
        return "; ".join(parts) or "all events"


def parse(query: dict[str, str], options: dict) -> Filters:
    """Filters from a URL query, checked against the values the warehouse offers."""
    f = Filters()
    first, last = options["years"][0]["code"], options["years"][1]["code"]
    raw = query.get("years")
    if raw:
        m = _YEARS.match(raw) if len(raw) <= MAX_VALUE else None
        if m and first is not None and first <= int(m[1]) <= int(m[2]) <= last:
            f.years = (int(m[1]), int(m[2]))
        else:
            f.ignored.append("years")
    for key in FIELDS:
        raw = query.get(key)
        if not raw:
            continue
        if len(raw) > MAX_VALUE:
            f.ignored.append(key)
            continue
        known = {str(o["code"]) for o in options.get(key, ())}
        values = raw.split(",")
        kept = tuple(dict.fromkeys(v for v in values if _CODE.match(v) and v in known))
        if len(kept) != len(values):
            f.ignored.append(key)
        if kept:
            f.values[key] = kept
    return f


def sidebar(store, version, only: tuple[str, ...] = tuple(FIELDS)) -> Filters:
    """The filter widgets in the sidebar, started from the URL query, and the URL query
    kept in step with them (with the data version) so the address names the view."""
    from . import data
    from .ui import remember_query

    options = data.options(version.id, store)
    f = parse(st.query_params.to_dict(), options)
    first, last = options["years"][0]["code"], options["years"][1]["code"]
    bar = st.sidebar
    bar.header("Filters")
    if f.ignored:
        bar.caption("Ignored from the link (not values this data offers): " + ", ".join(sorted(set(f.ignored))))
    out = Filters(ignored=f.ignored)
    if first is not None and last is not None and first < last:
        chosen = bar.slider(
            "Years",
            min_value=int(first),
            max_value=int(last),
            value=f.years or (int(first), int(last)),
            key="filter_years",
        )
        out.years = None if tuple(chosen) == (first, last) else (int(chosen[0]), int(chosen[1]))
    for key in only:
        choices = options.get(key) or []
        labels = {
            str(o["code"]): (
                f"{o['code']} - {o['label']}" if o["label"] and o["label"] != o["code"] else str(o["code"])
            )
            + f" ({o['events']:,})"
            for o in choices
        }
        picked = bar.multiselect(
            FIELDS[key], list(labels), default=list(f.values.get(key, ())), format_func=labels.get, key=f"filter_{key}"
        )
        if picked:
            out.values[key] = tuple(picked)
    remember_query(out.query(), version)
    return out
