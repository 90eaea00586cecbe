"""The map's drawing: the state shapes it draws offline (``assets/us_states.geojson``, see
make_states.py) and the events as points over them, with deck.gl (WebGL: 100,000 points
draw in a fraction of the time an SVG or canvas chart takes)."""

import json
from functools import lru_cache
from pathlib import Path

import pydeck as pdk
import streamlit as st
from pydeck.bindings.json_tools import default_serialize

STATES = Path(__file__).with_name("assets") / "us_states.geojson"


@lru_cache(maxsize=1)
def states() -> dict:
    return json.loads(STATES.read_text(encoding="utf-8"))


TOOLTIP = {"text": "{i}  {d}\n{s}"}


@st.cache_data(show_spinner=False, max_entries=16)
def points_spec(version: str, filters: tuple, rgb: dict, us: bool, map_style: str | None, _points) -> str:
    """The deck's JSON for the points of one data version and filters (cached: the same
    view is not serialized twice)."""
    return points_deck(_points, rgb, us, map_style).to_json()


class Prebuilt(pdk.Deck):
    """A deck whose JSON is already written (:func:`points_spec`)."""

    def __init__(self, spec: str):
        super().__init__(layers=[], tooltip=TOOLTIP, map_provider=None)
        self._spec = spec

    def to_json(self):
        return self._spec


def points_deck(points, rgb: dict[str, list[int]], us: bool, map_style: str | None):
    """A pydeck chart of ``points`` (longitude, latitude, highest_injury, ev_id, date): one
    layer per highest injury in its ``rgb`` colour, over the state outlines. No basemap
    unless ``map_style`` names one (fetched from its provider: the only part that needs the
    internet)."""
    layers = [
        pdk.Layer(
            "GeoJsonLayer",
            data=states(),
            stroked=True,
            filled=not map_style,
            get_fill_color=[242, 242, 242],
            get_line_color=[150, 150, 150],
            line_width_min_pixels=0.6,
        )
    ]
    for label, color in reversed(rgb.items()):  # the gravest drawn last, on top
        part = points[points.highest_injury == label]
        if len(part):
            # compact records: the points travel to the browser as JSON, ~45 bytes each
            data = [
                {"p": [round(lon, 4), round(lat, 4)], "i": ev, "d": day, "s": label}
                for lon, lat, ev, day in zip(
                    part.longitude.tolist(),
                    part.latitude.tolist(),
                    part.ev_id.tolist(),
                    part.date.tolist(),
                    strict=True,
                )
            ]
            layers.append(
                pdk.Layer(
                    "ScatterplotLayer",
                    data=data,
                    id=f"events-{label}",
                    get_position="p",
                    get_fill_color=color,
                    get_radius=1500,
                    radius_min_pixels=1.2,
                    radius_max_pixels=8,
                    opacity=0.55,
                    pickable=True,
                )
            )
    view = (
        pdk.ViewState(latitude=38.5, longitude=-96.5, zoom=3.1)
        if us
        else pdk.ViewState(latitude=20, longitude=-40, zoom=1)
    )
    return _CompactDeck(
        layers=layers,
        initial_view_state=view,
        map_provider="carto" if map_style else None,
        map_style=map_style or None,
        tooltip=TOOLTIP,
    )


class _CompactDeck(pdk.Deck):
    """pydeck writes its JSON indented, which makes 100,000 points 16 MB; this writes the
    same document without the whitespace."""

    def to_json(self):
        return json.dumps(self, sort_keys=True, default=default_serialize, separators=(",", ":"))
