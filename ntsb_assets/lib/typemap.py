"""The project's logical column types and what each becomes: the SQL type in DuckDB and
PostgreSQL, the Arrow type in the lake, the Python type of a value (the API's response
models), the names a warehouse or Great Expectations reports back. The map itself lives
once, in ``dbt_project.yml`` (``vars.ntsb_types``), where the ``ntsb_type`` macro reads it;
everything here is derived from it."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from .dbt_vars import VARS

DIALECTS = ("duckdb", "postgres")
_MAP: dict[str, dict] = VARS["ntsb_types"]

# The logical types, in declaration order.
LOGICAL: tuple[str, ...] = tuple(_MAP)

# logical -> the Arrow type the lake writes (the first listed)
ARROW: dict[str, pa.DataType] = {t: pa.type_for_alias(m["arrow"][0]) for t, m in _MAP.items()}


def _python(arrow_type: pa.DataType) -> type:
    for is_kind, kind in (
        (pa.types.is_boolean, bool),
        (pa.types.is_integer, int),
        (pa.types.is_floating, float),
        (pa.types.is_date, dt.date),
        (pa.types.is_timestamp, dt.datetime),
    ):
        if is_kind(arrow_type):
            return kind
    return str


# logical -> the Python type of its values (as pyarrow's as_py() gives them)
PYTHON: dict[str, type] = {t: _python(a) for t, a in ARROW.items()}

# dialect -> logical -> the SQL type of a column the project creates
SQL: dict[str, dict[str, str]] = {d: {t: m[d] for t, m in _MAP.items()} for d in DIALECTS}

# Arrow type -> logical (every Arrow type a logical type is read from)
ARROW_LOGICAL: dict[pa.DataType, str] = {pa.type_for_alias(a): t for t, m in _MAP.items() for a in m["arrow"]}

# a warehouse's type name (lower case, without its length or precision) -> logical
SQL_LOGICAL: dict[str, str] = {n.lower(): t for t, m in _MAP.items() for n in m["reads_as"]}

# logical -> the type names Great Expectations reports on pandas and on PostgreSQL
GE_NAMES: dict[str, list[str]] = {t: list(m["ge"]) for t, m in _MAP.items()}


def of_arrow(arrow_type: pa.DataType) -> str:
    """The logical type of an Arrow type (any timestamp unit is a timestamp; an unknown
    type reads as a string)."""
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return ARROW_LOGICAL.get(arrow_type, "string")


def of_sql(type_name: str) -> str:
    """The logical type of a type name a warehouse reports (``character varying(12)``,
    ``DOUBLE``); an unknown name reads as a string."""
    return SQL_LOGICAL.get(type_name.lower().split("(", 1)[0].strip(), "string")
