"""Write ``assets/us_states.geojson``, the state shapes the dashboard's map draws offline.

Source: the U.S. Census Bureau's cartographic boundary file ``cb_2016_us_state_500k``
(public domain; the copy in the ``plotly-geo`` wheel was used). The polygons are simplified
(Douglas-Peucker, ``--tolerance`` degrees) and rounded to 3 decimals, which keeps the file
small enough to send to every browser and is far finer than the map draws.

    python -m ntsb_dashboard.make_states --shapefile cb_2016_us_state_500k.shp

Only the two parts of a shapefile it needs are read here (polygon records, and the dBase
attribute table for the state codes and names): no GIS library is a dependency.
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

OUT = Path(__file__).with_name("assets") / "us_states.geojson"


def read_polygons(shp: Path) -> list[list[list[tuple[float, float]]]]:
    """Each record's rings (shape type 5, Polygon)."""
    data = shp.read_bytes()
    out, pos = [], 100
    while pos < len(data):
        _, length = struct.unpack(">ii", data[pos : pos + 8])
        rec = data[pos + 8 : pos + 8 + 2 * length]
        pos += 8 + 2 * length
        kind = struct.unpack("<i", rec[:4])[0]
        if kind == 0:
            out.append([])
            continue
        if kind != 5:
            raise ValueError(f"{shp}: shape type {kind}, expected 5 (Polygon)")
        parts, points = struct.unpack("<ii", rec[36:44])
        starts = list(struct.unpack(f"<{parts}i", rec[44 : 44 + 4 * parts])) + [points]
        xy = struct.unpack(f"<{2 * points}d", rec[44 + 4 * parts : 44 + 4 * parts + 16 * points])
        pts = list(zip(xy[0::2], xy[1::2], strict=False))
        out.append([pts[starts[i] : starts[i + 1]] for i in range(parts)])
    return out


def read_dbf(dbf: Path) -> list[dict]:
    data = dbf.read_bytes()
    count, header, size = struct.unpack("<IHH", data[4:12])
    fields, pos = [], 32
    while data[pos] != 0x0D:
        name = data[pos : pos + 11].split(b"\0")[0].decode()
        fields.append((name, data[pos + 16]))
        pos += 32
    rows = []
    for i in range(count):
        rec, at = data[header + i * size : header + (i + 1) * size], 1
        row = {}
        for name, width in fields:
            row[name] = rec[at : at + width].decode("latin-1").strip()
            at += width
        rows.append(row)
    return rows


def simplify(ring: list[tuple[float, float]], tolerance: float) -> list[tuple[float, float]]:
    """Douglas-Peucker, iterative."""
    if len(ring) < 4:
        return ring
    keep = [False] * len(ring)
    keep[0] = keep[-1] = True
    stack = [(0, len(ring) - 1)]
    while stack:
        a, b = stack.pop()
        (x1, y1), (x2, y2) = ring[a], ring[b]
        dx, dy = x2 - x1, y2 - y1
        norm = (dx * dx + dy * dy) ** 0.5
        best, index = 0.0, None
        for i in range(a + 1, b):
            x, y = ring[i]  # distance to the chord, or to the point where the ring closes
            d = abs(dy * x - dx * y + x2 * y1 - y2 * x1) / norm if norm else ((x - x1) ** 2 + (y - y1) ** 2) ** 0.5
            if d > best:
                best, index = d, i
        if index is not None and best > tolerance:
            keep[index] = True
            stack += [(a, index), (index, b)]
    return [p for p, k in zip(ring, keep, strict=False) if k]


def build(shp: Path, tolerance: float) -> dict:
    features = []
    for attrs, rings in zip(read_dbf(shp.with_suffix(".dbf")), read_polygons(shp), strict=False):
        polygons = []
        for ring in rings:
            small = [(round(x, 3), round(y, 3)) for x, y in simplify(ring, tolerance)]
            if len(small) >= 4:
                polygons.append([small])
        if polygons:
            features.append(
                {
                    "type": "Feature",
                    "id": attrs["STUSPS"],
                    "properties": {"state": attrs["STUSPS"], "name": attrs["NAME"]},
                    "geometry": {"type": "MultiPolygon", "coordinates": polygons},
                }
            )
    features.sort(key=lambda f: f["id"])
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "source": f"U.S. Census Bureau, cb_2016_us_state_500k (public domain), simplified at {tolerance} degrees"
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapefile", type=Path, required=True)
    parser.add_argument("--tolerance", type=float, default=0.02)
    args = parser.parse_args()
    geo = build(args.shapefile, args.tolerance)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(geo, separators=(",", ":")), encoding="utf-8")
    print(f"{OUT.name}: {len(geo['features'])} states, {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
