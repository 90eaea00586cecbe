"""Value parsers for NTSB exports. Each one takes the text as delivered and returns a
typed Python value, ``None`` for an empty field, or raises ``ValueError`` saying why.

The quirks they survive are listed in docs/ingestion.md; every one has a unit test on
real rows (tests/unit/test_parsing.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable

_TRUE = {"true", "t", "y", "yes", "1", "-1"}
_FALSE = {"false", "f", "n", "no", "0"}

# mdbtools writes day 00 for dates it cannot represent (before 1900 or after 9999).
MDB_UNREPRESENTABLE = re.compile(r"^(1900-01-00|01/00/00)\b")

_DATE_PATTERNS = [
    # ISO and mdb-export -D/-T output: 2014-03-01, 2014-03-01 00:00:00(.fff), 2014-03-01T00:00:00
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$"), "ymd"),
    # mdb-export default and Access/Excel US forms: 02/11/08 00:00:00, 2/11/2008 13:05
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$"), "mdy"),
]


def empty(text: str | None) -> bool:
    return text is None or text.strip() == ""


def resolve_two_digit_year(yy: int, month: int, day: int, today: dt.date) -> int:
    """The most recent year ending in ``yy`` whose date is not in the future."""
    year = today.year - (today.year % 100) + yy
    try:
        in_future = dt.date(year, month, day) > today
    except ValueError:  # an impossible day: let the caller's date check name it
        in_future = year > today.year
    return year - 100 if in_future else year


def parse_timestamp(text: str | None, today: dt.date | None = None) -> dt.datetime | None:
    if text is None or empty(text):
        return None
    s = text.strip()
    if MDB_UNREPRESENTABLE.match(s):
        raise ValueError(f"{s!r} is mdbtools' marker for a date it cannot represent")
    today = today or dt.date.today()
    for pattern, order in _DATE_PATTERNS:
        m = pattern.match(s)
        if not m:
            continue
        a, b, c, hh, mi, ss, frac = m.groups()
        if order == "ymd":
            year, month, day = int(a), int(b), int(c)
        else:
            month, day, year = int(a), int(b), int(c)
            if len(c) == 2:
                year = resolve_two_digit_year(year, month, day, today)
        micro = int((frac or "0").ljust(6, "0"))
        try:
            return dt.datetime(year, month, day, int(hh or 0), int(mi or 0), int(ss or 0), micro)
        except ValueError as exc:
            raise ValueError(f"{s!r} is not a valid date: {exc}") from None
    raise ValueError(f"{s!r} is not a date in a known format (YYYY-MM-DD[ HH:MM:SS], MM/DD/YY[YY][ HH:MM:SS])")


def parse_date(text: str | None, today: dt.date | None = None) -> dt.date | None:
    value = parse_timestamp(text, today)
    return None if value is None else value.date()


def parse_int(text: str | None) -> int | None:
    """Integers, also as printed by tools that turned them into floats (``1545.0``)."""
    if text is None or empty(text):
        return None
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)
    except ValueError:
        raise ValueError(f"{s!r} is not a number") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"{s!r} is not a whole number")
    return int(f)


def parse_float(text: str | None) -> float | None:
    if text is None or empty(text):
        return None
    s = text.strip()
    try:
        f = float(s)
    except ValueError:
        raise ValueError(f"{s!r} is not a number") from None
    if not math.isfinite(f):
        raise ValueError(f"{s!r} is not a finite number")
    return f


def parse_bool(text: str | None) -> bool | None:
    """Y/N flags and Access bits, also as True/False, 1/0 or -1 (Access's true)."""
    if text is None or empty(text):
        return None
    s = text.strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"{text.strip()!r} is not a yes/no value")


def parse_string(text: str | None) -> str | None:
    """Codes and text exactly as delivered (padding kept); only an empty field is NULL."""
    if text is None or text == "":
        return None
    if "\x00" in text:
        raise ValueError("contains a NUL character, which no warehouse stores")
    return text


def parse_dms(text: str | None, kind: str) -> float | None:
    """A DMS coordinate string (``443345N``, ``0701128W``, blank-padded, lower-case
    hemisphere) to signed decimal degrees; ``None`` when empty or malformed (the raw
    string is always kept beside it). ``kind`` is ``lat`` or ``lon``."""
    if text is None or empty(text):
        return None
    s = text.strip().upper()
    limit = 90 if kind == "lat" else 180
    m = re.fullmatch(r"(\d{6,7})([NSEW])", s)
    if not m:
        return None
    digits, hemi = m.groups()
    if (kind == "lat" and hemi not in "NS") or (kind == "lon" and hemi not in "EW"):
        return None
    deg, minutes, seconds = int(digits[:-4]), int(digits[-4:-2]), int(digits[-2:])
    if minutes >= 60 or seconds >= 60:
        return None
    value = deg + minutes / 60 + seconds / 3600
    if value > limit:
        return None
    return round(-value if hemi in "SW" else value, 6)


def dms_readings(text: str | None, kind: str) -> list[float]:
    """Every reading of a DMS string whose parts were written without zero padding, as
    CAROL-era exports do (``004700N`` is 47 deg 0 min 0 sec there, 0 deg 47 min in the
    fixed-width form): degrees, minutes and seconds of 1-3, 1-2 and 1-2 digits. Used to
    show that NTSB's decimal columns, where delivered, are one of these readings."""
    if text is None or empty(text):
        return []
    m = re.fullmatch(r"(\d{6,7})([NSEW])", text.strip().upper())
    if not m:
        return []
    stripped, hemi = m.group(1).lstrip("0"), m.group(2)
    limit = 90 if kind == "lat" else 180
    out = set()
    for digits, i in [(pad + stripped, i) for pad in ("", "0", "00") for i in (1, 2, 3)]:
        for j in range(i + 1, min(i + 2, len(digits)) + 1):
            d, mi, se = digits[:i], digits[i:j], digits[j:]
            if not se or len(se) > 2 or int(mi) >= 60 or int(se) >= 60:
                continue
            v = int(d) + int(mi) / 60 + int(se) / 3600
            if v <= limit:
                out.add(round(-v if hemi in "SW" else v, 6))
    return sorted(out)


PARSERS: dict[str, Callable[[str | None, dt.date | None], object]] = {
    "string": lambda s, today: parse_string(s),
    "int": lambda s, today: parse_int(s),
    "float": lambda s, today: parse_float(s),
    "bool": lambda s, today: parse_bool(s),
    "date": parse_date,
    "timestamp": parse_timestamp,
}


def infer_type(values) -> str:
    """The narrowest type every non-empty value parses as (for columns the catalog does
    not know): int, float, bool, timestamp, else string."""
    candidates = ["int", "float", "timestamp", "string"]
    seen = False
    for v in values:
        if empty(v):
            continue
        seen = True
        while candidates[0] != "string":
            try:
                PARSERS[candidates[0]](v, None)
                break
            except ValueError:
                candidates.pop(0)
        if candidates[0] == "string":
            break
    return candidates[0] if seen else "string"


def _canonical(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


class RowHasher:
    """Content hash of parsed rows of one table: column names with their non-null values,
    in name order (so an absent column and a NULL one hash the same), each value
    length-prefixed (so no separator inside a text can fake another row)."""

    def __init__(self, columns: list[str]):
        self.order = sorted(range(len(columns)), key=lambda i: columns[i])
        self.prefix = [columns[i] + "\x1f" for i in self.order]

    def __call__(self, values: list) -> str:
        parts = []
        for prefix, i in zip(self.prefix, self.order, strict=False):
            v = values[i]
            if v is None:
                continue
            t = type(v)
            text = v if t is str else str(v) if t is int else _canonical(v)
            parts.append(f"{prefix}{len(text)}:{text}")
        return hashlib.blake2b("\x1e".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def row_hash(columns: list[str], values: list) -> str:
    return RowHasher(columns)(values)
