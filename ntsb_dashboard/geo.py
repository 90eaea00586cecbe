"""The state shapes the map draws offline (``assets/us_states.geojson``, see make_states.py)."""

import json
from functools import lru_cache
from pathlib import Path

STATES = Path(__file__).with_name("assets") / "us_states.geojson"


@lru_cache(maxsize=1)
def states() -> dict:
    return json.loads(STATES.read_text(encoding="utf-8"))
