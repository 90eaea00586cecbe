"""Data quality gates on the warehouse's raw tables, as Great Expectations 1.x suites.

Rules are generated, not typed per table: from the catalog (keys, parents, column types)
and, at run time, from NTSB's code sets in the warehouse (the code list of every coded
column, from every code table loaded and the bundled baseline: ``codes``), so a new NTSB code
list needs no code change here.

Gates:

- ``schema``: key and required columns present with their types, keys not null and unique,
  every child row's event (and aircraft) present.
- ``business``: coordinates on the globe, event dates in [1948-01-01, today], injury counts
  non-negative and equal to the injury table's, coded columns in the code sets (the policy:
  ``UNKNOWN_CODE_*`` below), finding and occurrence codes in their documented shapes, outliers.

Each table is validated through one *validation frame*: ``SELECT`` of the raw table with
coded columns normalised (trimmed, upper case, blank, UNK and UNKN to NULL) and a few derived columns
(``_event_exists``, ``_aircraft_exists``, the injury table's totals per event). The same SQL
runs in DuckDB (the frame is then a pandas DataFrame) or fills a table in PostgreSQL's
``quality`` schema that GE's PostgreSQL data source validates, so one set of expectations
serves both deployments. The raw gates' frames hold only the rows loaded since the gate's
last run without errors (``changed_rows``); on PostgreSQL such a frame, when it is small
(``IN_MEMORY_ROWS``: a monthly release), is read into pandas like DuckDB's: one query instead
of a table and about ten queries of Great Expectations.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import catalog, typemap
from .dbt_vars import VARS
from .warehouse import Warehouse, q, sql_name

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

GATES = ("schema", "business")  # on the raw rows loaded since their last run, in the transform job
RELEASE_GATE = "statistical"  # on one release against the previous one of its source
SEVERITIES = ("error", "warn")
RAW = "raw"
FRAMES = "quality"  # PostgreSQL: the validation frames, as tables; both: the gates' watermarks
WATERMARKS = "raw_gate_watermarks"
# PostgreSQL: a raw gate's frame of changed rows up to this many rows is validated in memory
# (pandas), the way DuckDB's are; a whole table, or more changed rows, in the database
IN_MEMORY_ROWS = 100_000
SAMPLE_SIZE = 5

# Statistical gate: a release against the previous release of the same source.
VOLUME_TOLERANCE = 0.4  # rows within +-40 % (half the previous volume fails)
NULL_RATE_TOLERANCE = 0.25  # share of non-null values of each column within +-0.25

# Gate policy (docs/data-quality.md): structure blocks, content blocks only above a share.
# A code no NTSB source knows is the dictionary lagging the data: the row loads, its label is
# "unknown code" and it is counted in raw._code_lag. A coded column's rule fails when such
# values are more than UNKNOWN_CODE_SHARE of its values in the rows checked and more than
# UNKNOWN_CODE_MIN_ROWS rows (a small monthly update using one new code does not fail), and
# it blocks only when they are also more than UNKNOWN_CODE_MAX_NEW distinct values: NTSB adds
# codes a few at a time (real releases: the 2025 updates write every injury row with four new
# person categories and 98% of wind indicators as F, the Part 121 export 85% as SPEC),
# while a shifted or corrupted column brings many different values. With fewer, a failing
# rule is a warning: lag, reported.
UNKNOWN_CODE_SHARE = 0.01
UNKNOWN_CODE_MIN_ROWS = 20
UNKNOWN_CODE_MAX_NEW = 10

# Outliers: reported, never blocking.
MAX_ALTITUDE_FT = 50_000
MAX_FATALITIES: int = VARS["ntsb_max_fatalities"]

# Documented shapes of NTSB's cause codes.
CODE_SHAPES = {
    ("Findings", "finding_code"): (r"^0[1-5][0-9]{8}$", "category 01-05, then 8 digits (NTSB findings since 2008)"),
    ("Events_Sequence", "Occurrence_Code"): (r"^[56][0-9]{5}$", "phase of flight 500-699, then a 3-digit occurrence"),
    ("Occurrences", "Occurrence_Code"): (r"^[1-4][0-9]{2}$", "100-499 (NTSB occurrences before 2008)"),
}


@dataclass(frozen=True)
class Rule:
    """One expectation of one gate on one raw table."""

    gate: str
    table: str  # catalog table name
    name: str  # stable and unique: "<table>.<column or scope>.<what>"
    severity: str  # "error" blocks what is downstream; "warn" reports
    description: str
    kind: str  # the Great Expectations class
    kwargs: dict = field(default_factory=dict, hash=False, compare=False)

    def expectation(self):
        import great_expectations as gx

        return getattr(gx.expectations, self.kind)(
            **self.kwargs, meta={"rule": self.name, "gate": self.gate, "severity": self.severity}
        )


@dataclass
class RuleResult:
    rule: Rule
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    samples: list = field(default_factory=list)
    observed: object = None


@dataclass
class TableValidation:
    """What one table's gate found."""

    table: str
    gate: str
    rows: int
    results: list[RuleResult]
    quarantined: dict[str, int] = field(default_factory=dict)  # release -> rows quarantined at load
    suite: str | None = None  # its Great Expectations suite (and Data Docs page)
    compared_with: str | None = None  # statistical gate: the previous release of the source
    since: dt.datetime | None = None  # raw gates: only rows loaded after this (None: the whole table)
    through: dt.datetime | None = None  # raw gates: the latest load the table holds
    fingerprint: str | None = None  # raw gates: the rules validated (see rules_fingerprint)
    code_lag: list[dict] = field(default_factory=list)  # business gate: unknown codes of the releases checked

    def messages(self) -> list[str]:
        """One line per failed error rule, naming the table, the rule and what it found."""
        out = []
        for r in self.errors:
            col = r.rule.kwargs.get("column")
            if r.rule.name.endswith(".code"):
                codes = [f"{x['code']} ({x['row_count']})" for x in self.code_lag if x["column_name"] == col][:5]
                share = f"{r.unexpected_percent:.1f}%" if r.unexpected_percent is not None else "?"
                out.append(
                    f"table {self.table}, column {col}: {share} of {r.element_count} values checked "
                    f"({r.unexpected_count} rows) are not codes any NTSB code source knows, first "
                    f"{', '.join(codes) or r.samples}; rule {r.rule.name} blocks above "
                    f"{UNKNOWN_CODE_SHARE:.0%}, {UNKNOWN_CODE_MIN_ROWS} rows and "
                    f"{UNKNOWN_CODE_MAX_NEW} distinct values"
                )
            else:
                out.append(
                    f"table {self.table}: rule {r.rule.name} ({r.rule.description}) failed for "
                    f"{r.unexpected_count if r.unexpected_count is not None else '?'} rows, e.g. {r.samples[:3]}"
                )
        return out

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if not r.success]

    @property
    def errors(self) -> list[RuleResult]:
        return [r for r in self.failed if r.rule.severity == "error"]

    @property
    def passed(self) -> bool:
        return not self.failed


# ---------------------------------------------------------------------------- rules
def code_lists(wh: Warehouse) -> dict[tuple[str, str], list[str]]:
    """(table, column) in lower case -> the codes the warehouse's code sets know (every NTSB
    code source merged with the bundled baseline: ``codes``)."""
    from . import codes

    with wh.session(read_only=True) as s:
        return {k: sorted(v) for k, v in codes.known_sets(s).items()}


def _coded(table: str, columns: list[str], codes: dict) -> dict[str, list[str]]:
    """Raw column (sql name) -> its code list, for the columns the dictionary codes."""
    t = catalog.table(table)
    out = {}
    for col in t.columns:
        name = sql_name(col)
        if name in columns and col not in t.key:
            found = codes.get((table.lower(), col.lower()))
            if found:
                out[name] = found
    return out


def rules_for(table: str, columns: list[str], codes: dict, today: dt.date | None = None) -> list[Rule]:
    """Every rule of both gates for one raw table whose columns (sql names) are ``columns``."""
    t = catalog.table(table)
    today = today or dt.date.today()
    rules: list[Rule] = []

    def add(gate, name, severity, description, kind, **kwargs):
        rules.append(Rule(gate, table, f"{table}.{name}", severity, description, kind, kwargs))

    # --- schema gate
    key = [sql_name(c) for c in t.key]
    for c in [*t.key, *catalog.REQUIRED.get(table, ())]:
        col, typ = sql_name(c), t.columns.get(c, "string")
        typ = "date" if (table, c) in catalog.DATE_ONLY else typ
        add("schema", f"{col}.exists", "error", f"column {c} is present", "ExpectColumnToExist", column=col)
        if col in columns:
            add(
                "schema",
                f"{col}.type",
                "error",
                f"column {c} has type {typ}",
                "ExpectColumnValuesToBeInTypeList",
                column=col,
                type_list=typemap.GE_NAMES[typ],
            )
    if key and not t.key_nullable:
        for col in key:
            add(
                "schema",
                f"{col}.not_null",
                "error",
                f"key column {col} is never NULL",
                "ExpectColumnValuesToNotBeNull",
                column=col,
            )
    if len(key) == 1:
        add(
            "schema",
            f"{key[0]}.unique",
            "error",
            f"natural key ({key[0]}) is unique",
            "ExpectColumnValuesToBeUnique",
            column=key[0],
        )
    elif key:
        add(
            "schema",
            "key.unique",
            "error",
            f"natural key ({', '.join(key)}) is unique",
            "ExpectCompoundColumnsToBeUnique",
            column_list=key,
        )
    if t.parent:
        add(
            "schema",
            "ev_id.in_events",
            "error",
            "every row's event is in events",
            "ExpectColumnValuesToBeInSet",
            column="_event_exists",
            value_set=[True],
        )
    if t.parent == "aircraft":
        add(
            "schema",
            "aircraft_key.in_aircraft",
            "error",
            "every row's aircraft is in aircraft",
            "ExpectColumnValuesToBeInSet",
            column="_aircraft_exists",
            value_set=[True],
        )

    # --- business gate
    if table == "events":
        for col, (lo, hi) in (("latitude_decimal", (-90, 90)), ("longitude_decimal", (-180, 180))):
            if col in columns:
                add(
                    "business",
                    f"{col}.range",
                    "error",
                    f"{col} in [{lo}, {hi}]",
                    "ExpectColumnValuesToBeBetween",
                    column=col,
                    min_value=lo,
                    max_value=hi,
                )
        add(
            "business",
            "ev_date.range",
            "error",
            f"ev_date in [{catalog.EARLIEST_EVENT_DATE}, today]",
            "ExpectColumnValuesToBeBetween",
            column="ev_date",
            min_value=catalog.EARLIEST_EVENT_DATE,
            max_value=today.isoformat(),
        )
        for col, level in (
            ("inj_tot_f", "_injury_fatal"),
            ("inj_tot_s", "_injury_serious"),
            ("inj_tot_m", "_injury_minor"),
        ):
            if col in columns:
                add(
                    "business",
                    f"{col}.non_negative",
                    "error",
                    f"{col} >= 0",
                    "ExpectColumnValuesToBeBetween",
                    column=col,
                    min_value=0,
                )
                add(
                    "business",
                    f"{col}.matches_injury",
                    "warn",
                    f"{col} equals the people listed aboard at that level in the injury table (where listed)",
                    "ExpectColumnPairValuesToBeEqual",
                    column_A=col,
                    column_B=level,
                    ignore_row_if="either_value_is_missing",
                )
        if "inj_tot_f" in columns:
            add(
                "business",
                "inj_tot_f.outlier",
                "warn",
                f"at most {MAX_FATALITIES} fatalities in one event",
                "ExpectColumnValuesToBeBetween",
                column="inj_tot_f",
                max_value=MAX_FATALITIES,
            )
    if table == "injury" and "inj_person_count" in columns:
        add(
            "business",
            "inj_person_count.non_negative",
            "error",
            "inj_person_count >= 0",
            "ExpectColumnValuesToBeBetween",
            column="inj_person_count",
            min_value=0,
        )
    if table == "Occurrences" and "altitude" in columns:
        add(
            "business",
            "altitude.outlier",
            "warn",
            f"altitude at most {MAX_ALTITUDE_FT:,} ft",
            "ExpectColumnValuesToBeBetween",
            column="altitude",
            max_value=MAX_ALTITUDE_FT,
        )
    if table == "aircraft" and "acft_year" in columns:
        add(
            "business",
            "acft_year.outlier",
            "warn",
            "year built in [1900, next year]",
            "ExpectColumnValuesToBeBetween",
            column="acft_year",
            min_value=1900,
            max_value=today.year + 1,
        )
    for (tab, col), (pattern, meaning) in CODE_SHAPES.items():
        if tab == table and sql_name(col) in columns:
            add(
                "business",
                f"{sql_name(col)}.shape",
                "error",
                f"{col}: {meaning}",
                "ExpectColumnValuesToMatchRegex",
                column=sql_name(col),
                regex=pattern,
            )
    for col, values in _coded(table, columns, codes).items():
        add(
            "business",
            f"{col}.code",
            "error",
            f"{col} takes the {len(values)} codes NTSB's code sets know",
            "ExpectColumnValuesToBeInSet",
            column=col,
            value_set=values,
            mostly=1 - UNKNOWN_CODE_SHARE,
        )
    return rules


def code_rule_bounds(rules: list[Rule], counts: dict[str, dict]) -> list[Rule]:
    """The code rules as the policy applies them to the rows checked (``counts``: column ->
    {value: rows}): ``mostly`` lowered so that they fail only above UNKNOWN_CODE_MIN_ROWS
    unknown values, and a warning (lag) when the unknown values are at most
    UNKNOWN_CODE_MAX_NEW distinct codes."""
    import dataclasses

    out = []
    for r in rules:
        col = r.kwargs.get("column")
        if r.name.endswith(".code") and "mostly" in r.kwargs and col is not None and counts.get(col):
            values = counts[col]
            n = sum(values.values())
            known = set(r.kwargs["value_set"])
            new = sum(1 for v in values if v not in known)
            mostly = max(0.0, min(r.kwargs["mostly"], 1 - UNKNOWN_CODE_MIN_ROWS / n))
            r = dataclasses.replace(
                r, kwargs={**r.kwargs, "mostly": mostly}, severity=r.severity if new > UNKNOWN_CODE_MAX_NEW else "warn"
            )
        out.append(r)
    return out


# Upper bounds that follow today's date only ever widen: a row they passed passes again, so
# the bound's value does not make a table's rules new (see rules_fingerprint).
MOVING_BOUNDS = {"events.ev_date.range", "aircraft.acft_year.outlier"}


def rules_fingerprint(rules: list[Rule]) -> str:
    """What a table's rules check, as a hash: a new rule, severity, code list or bound (other
    than the moving ones) changes it, and the next gate validates the whole table again."""
    import hashlib
    import json

    spec = [
        (
            r.name,
            r.kind,
            r.severity,
            {k: v for k, v in r.kwargs.items() if not (r.name in MOVING_BOUNDS and k == "max_value")},
        )
        for r in sorted(rules, key=lambda r: r.name)
    ]
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def statistical_rules(
    table: str, previous_rows: int, previous_non_null: dict[str, float], columns: list[str]
) -> list[Rule]:
    """Warnings on one release of a table, against the previous release of the same source
    (its row count and each column's share of non-null values)."""
    lo = int(previous_rows * (1 - VOLUME_TOLERANCE) + 0.999999)
    hi = int(previous_rows * (1 + VOLUME_TOLERANCE))
    rules = [
        Rule(
            RELEASE_GATE,
            table,
            f"{table}.release.volume",
            "warn",
            f"rows within {VOLUME_TOLERANCE:.0%} of the previous release of the same source",
            "ExpectTableRowCountToBeBetween",
            {"min_value": lo, "max_value": hi},
        )
    ]
    for col in columns:
        if col in previous_non_null and not col.startswith("_"):
            rate = previous_non_null[col]
            rules.append(
                Rule(
                    RELEASE_GATE,
                    table,
                    f"{table}.{col}.null_rate",
                    "warn",
                    f"share of non-null {col} within {NULL_RATE_TOLERANCE} of the previous release's",
                    "ExpectColumnProportionOfNonNullValuesToBeBetween",
                    {
                        "column": col,
                        "min_value": round(max(0.0, rate - NULL_RATE_TOLERANCE), 6),
                        "max_value": round(min(1.0, rate + NULL_RATE_TOLERANCE), 6),
                    },
                )
            )
    return rules


# ---------------------------------------------------------------------------- frames
def _raw_tables(wh: Warehouse) -> set[str]:
    with wh.session(read_only=True) as s:
        return {
            r["table_name"]
            for r in s.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").to_pylist()
        }


def raw_columns(s, table: str) -> list[str]:
    return [
        r["column_name"]
        for r in s.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
            f"AND table_name = '{sql_name(table)}' ORDER BY ordinal_position"
        ).to_pylist()
    ]


def changed_rows(table: str, columns: list[str], present: set[str], since: dt.datetime) -> str:
    """A subquery of the rows a gate has not validated yet: rows loaded after ``since``, the
    rows sharing a key with one of them (a duplicate key involves a new row), and for events
    the events whose injury rows changed (their totals are compared). Every rule of the raw
    gates is about one row or one key, so these rows are all a later load can break: a load
    inserts and replaces rows, it never deletes one. Written as a semi-join on the keys loaded
    since (plus the new rows with a NULL key part), not as an OR of conditions: the database
    then finds the rows through the key and ``_loaded_at`` indexes instead of reading the
    whole table."""
    t, ts = catalog.table(table), f"TIMESTAMP '{since.isoformat(sep=' ')}'"
    name = f"{RAW}.{sql_name(table)}"
    key = [q(sql_name(c)) for c in t.key if sql_name(c) in columns]
    if not key:
        return f"(SELECT * FROM {name} WHERE _loaded_at > {ts})"
    touched = f"SELECT {', '.join(key)} FROM {name} WHERE _loaded_at > {ts}"
    if table == "events" and sql_name("injury") in present:
        touched += f" UNION ALL SELECT ev_id FROM {RAW}.injury WHERE _loaded_at > {ts}"
    same = " AND ".join(f"c.{k} = r.{k}" for k in key)
    null_key = " OR ".join(f"{k} IS NULL" for k in key)
    return (
        f"(SELECT * FROM {name} r WHERE EXISTS (SELECT 1 FROM ({touched}) c WHERE {same}) "
        f"UNION ALL SELECT * FROM {name} WHERE _loaded_at > {ts} AND ({null_key}))"
    )


def _watermark(s, table: str, gate: str, fingerprint: str) -> dt.datetime | None:
    """The latest load of ``table`` that ``gate`` validated without errors by these rules."""
    if s.columns(WATERMARKS, FRAMES) is None:
        return None
    rows = s.query(
        f"SELECT loaded_through FROM {FRAMES}.{WATERMARKS} WHERE table_name = {s.ph} "
        f"AND gate = {s.ph} AND fingerprint = {s.ph}",
        (table, gate, fingerprint),
    ).to_pylist()
    return rows[0]["loaded_through"] if rows else None


def rule_columns(rules: list[Rule]) -> set[str]:
    """The columns a list of rules reads."""
    return {
        c
        for r in rules
        for c in (
            r.kwargs.get("column"),
            r.kwargs.get("column_A"),
            r.kwargs.get("column_B"),
            *r.kwargs.get("column_list", ()),
        )
        if c
    }


def _code_expr(col: str) -> str:
    """A coded column as the staging views read it: trimmed, upper case, no code (blank,
    UNK, UNKN: ``codes.NO_CODE``) as NULL."""
    from .codes import NO_CODE

    v = f"upper(trim(CAST({col} AS VARCHAR)))"
    return f"CASE WHEN {v} IN ({', '.join(repr(x) for x in NO_CODE)}) THEN NULL ELSE {v} END"


def frame_sql(
    table: str,
    columns: list[str],
    coded: list[str],
    present: set[str],
    since: dt.datetime | None = None,
    needed: set[str] | None = None,
    row_lookups: bool = False,
) -> str:
    """The validation frame of one raw table (see the module docstring); with ``since``, of
    the rows changed after it only (:func:`changed_rows`); with ``needed``, of those columns
    only (the ones the rules read and the key: a frame of every column holds the narratives'
    text for nothing). ``row_lookups``: the parent of each row is looked up through the
    parent's key index, not found in a hash of every parent key (PostgreSQL's plan for
    ``EXISTS``, which reads the whole parent table): for a frame of a few changed rows."""
    t = catalog.table(table)
    cols = [
        f"{_code_expr(f't.{q(c)}')} AS {q(c)}" if c in coded else f"t.{q(c)}"
        for c in columns
        if not c.startswith("_") and (needed is None or c in needed)
    ] or ["true AS _row"]
    joins = []

    def exists(parent: str, match: str, alias: str) -> str:
        if row_lookups:
            return f"(SELECT true FROM {RAW}.{parent} {alias} WHERE {match} LIMIT 1) IS NOT NULL"
        return f"EXISTS (SELECT 1 FROM {RAW}.{parent} {alias} WHERE {match})"

    def derived(column: str) -> bool:
        return needed is None or column in needed

    if t.parent and derived("_event_exists"):
        events = sql_name("events")
        cols.append(
            f"{exists(events, 'e.ev_id = t.ev_id', 'e')} AS _event_exists"
            if events in present
            else "false AS _event_exists"
        )
    if t.parent == "aircraft" and derived("_aircraft_exists"):
        ac = sql_name("aircraft")
        cols.append(
            f"{exists(ac, 'a.ev_id = t.ev_id AND a.aircraft_key = t.aircraft_key', 'a')} AS _aircraft_exists"
            if ac in present
            else "false AS _aircraft_exists"
        )
    if table == "events" and derived("_injury_fatal"):
        if sql_name("injury") in present:
            totals = (
                "CAST(sum(CASE WHEN injury_level = 'FATL' THEN inj_person_count ELSE 0 END) AS BIGINT) "
                "AS _injury_fatal, "
                "CAST(sum(CASE WHEN injury_level = 'SERS' THEN inj_person_count ELSE 0 END) AS BIGINT) "
                "AS _injury_serious, "
                "CAST(sum(CASE WHEN injury_level = 'MINR' THEN inj_person_count ELSE 0 END) AS BIGINT) "
                "AS _injury_minor "
                f"FROM {RAW}.injury j WHERE trim(j.inj_person_category) = 'ABRD'"
            )
            joins.append(
                f"LEFT JOIN LATERAL (SELECT {totals} AND j.ev_id = t.ev_id) i ON true"
                if row_lookups
                else f"LEFT JOIN (SELECT j.ev_id, {totals} GROUP BY j.ev_id) i ON i.ev_id = t.ev_id"
            )
            cols += ["i._injury_fatal", "i._injury_serious", "i._injury_minor"]
        else:
            cols += [
                "CAST(NULL AS BIGINT) AS _injury_fatal",
                "CAST(NULL AS BIGINT) AS _injury_serious",
                "CAST(NULL AS BIGINT) AS _injury_minor",
            ]
    source = changed_rows(table, columns, present, since) if since is not None else f"{RAW}.{sql_name(table)}"
    return f"SELECT {', '.join(cols)} FROM {source} t " + " ".join(joins)


# ---------------------------------------------------------------------------- validation
class Validator:
    """One GE ephemeral context for one gate run over many tables; Data Docs built into a
    local directory (``docs_dir``) that the caller publishes."""

    def __init__(self, wh: Warehouse, docs_dir: Path | None = None):
        import great_expectations as gx

        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        self.gx, self.wh = gx, wh
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = {"globally": False, "metric_calculations": False}  # type: ignore[assignment]
        self.docs_dir = Path(docs_dir or tempfile.mkdtemp(prefix="ntsb-data-docs-"))
        for site in list(self.context.list_data_docs_sites()):
            self.context.delete_data_docs_site(site)
        self.context.add_data_docs_site(
            site_name="lake",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(self.docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        self.source: Any
        if wh.dialect == "postgres":
            self.source = self.context.data_sources.add_postgres("warehouse", connection_string=wh.session_url)
        else:
            self.source = self.context.data_sources.add_pandas("warehouse")
        self._pandas = None  # PostgreSQL deployments: frames read from the lake
        self.present = _raw_tables(wh)
        self.codes = code_lists(wh)

    def validate(
        self, table: str, gate: str, today: dt.date | None = None, incremental: bool = True
    ) -> TableValidation:
        """One raw gate on one table: the rows changed since the table's last validation
        without errors by the same rules (its watermark), or the whole table (the first time,
        after new rules, or with ``incremental=False``)."""
        name = sql_name(table)
        if name not in self.present:
            return TableValidation(table, gate, 0, [])
        with self.wh.session(read_only=True) as s:
            columns = raw_columns(s, table)
            rules = [r for r in rules_for(table, columns, self.codes, today) if r.gate == gate]
            fingerprint = rules_fingerprint(rules)
            through = (
                s.query(f"SELECT max(_loaded_at) AS t FROM {RAW}.{q(name)}").column(0)[0].as_py()
                if "_loaded_at" in columns
                else None
            )
            since = _watermark(s, name, gate, fingerprint) if incremental and through is not None else None
            quarantined = quarantine_counts(s, name)
            scope: dict[str, Any] = dict(since=since, through=through, fingerprint=fingerprint)
            if since is not None and through is not None and since >= through:  # nothing new to validate
                return TableValidation(table, gate, 0, [], quarantined, **scope)
            coded = list(_coded(table, columns, self.codes)) if gate == "business" else []
            key = [sql_name(c) for c in catalog.table(table).key if sql_name(c) in columns]
            few = self.wh.dialect == "postgres" and since is not None  # the rows changed since the last run
            sql = frame_sql(
                table, columns, coded, self.present, since, needed=rule_columns(rules) | set(key), row_lookups=few
            )
            df = None
            if self.wh.dialect == "duckdb":
                df = s.query(sql).to_pandas()
            elif few:  # in memory when they are few
                df = s.query(f"{sql} LIMIT {IN_MEMORY_ROWS + 1}").to_pandas()
                df = df if len(df) <= IN_MEMORY_ROWS else None
            lag = code_lag(s, name, since) if gate == "business" else []
        if df is None:
            # a table, not a query asset: GE reads column types from a relation's catalog only;
            # not a view: each expectation's queries would compute the frame again
            view = f"{name}__{gate}"
            with self.wh.session() as s:
                s.execute(f"CREATE SCHEMA IF NOT EXISTS {FRAMES}")
                kind = s.query(
                    f"SELECT table_type FROM information_schema.tables WHERE table_schema = {s.ph} "
                    f"AND table_name = {s.ph}",
                    (FRAMES, view),
                ).to_pylist()
                if kind:  # the previous frame: a table, or a view (an earlier version kept views)
                    s.execute(f"DROP {'VIEW' if kind[0]['table_type'] == 'VIEW' else 'TABLE'} {FRAMES}.{q(view)}")
                s.execute(f"CREATE TABLE {FRAMES}.{q(view)} AS {sql}")
                rules = code_rule_bounds(
                    rules,
                    {
                        c: {
                            r["v"]: r["n"]
                            for r in s.query(
                                f"SELECT {q(c)} AS v, count(*) AS n FROM {FRAMES}.{q(view)} WHERE {q(c)} IS NOT NULL "
                                f"GROUP BY 1"
                            ).to_pylist()
                        }
                        for c in coded
                    },
                )
            results = self._run(
                f"{name}.{gate}", rules, {}, key, table_asset={"table_name": view, "schema_name": FRAMES}
            )
            rows = next((r.element_count for r in results if r.element_count is not None), 0)
        else:
            rules = code_rule_bounds(
                rules, {c: df[c].dropna().value_counts().to_dict() for c in coded if c in df.columns}
            )
            results, rows = self._run(f"{name}.{gate}", rules, {"dataframe": df}, key), len(df)
        return TableValidation(table, gate, rows, results, quarantined, suite=f"{name}.{gate}", code_lag=lag, **scope)

    def record(self, validations: list[TableValidation], run_id: str) -> None:
        """Move the watermark of every raw-gate validation without errors to its table's
        latest load; one with errors leaves it, so its rows are validated (and block) again."""
        done = [v for v in validations if v.through is not None and v.fingerprint and not v.errors]
        if not done:
            return
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self.wh.session() as s:
            s.ensure_schema(FRAMES)
            s.ensure_table(
                WATERMARKS,
                {
                    "table_name": "string",
                    "gate": "string",
                    "fingerprint": "string",
                    "loaded_through": "timestamp",
                    "run_id": "string",
                    "validated_at": "timestamp",
                },
                schema=FRAMES,
            )
            for v in done:
                s.execute(
                    f"DELETE FROM {FRAMES}.{WATERMARKS} WHERE table_name = {s.ph} AND gate = {s.ph}",
                    (sql_name(v.table), v.gate),
                )
                s.execute(
                    f"INSERT INTO {FRAMES}.{WATERMARKS} VALUES ({', '.join([s.ph] * 6)})",
                    (sql_name(v.table), v.gate, v.fingerprint, v.through, run_id, now),
                )

    def _run(
        self,
        suite_name: str,
        rules: list[Rule],
        params: dict,
        key: list[str],
        table_asset: dict | None = None,
        asset_name: str | None = None,
    ) -> list[RuleResult]:
        """Validate one batch (a DataFrame in ``params``, or a PostgreSQL relation) against the
        rules, through a checkpoint. The Data Docs are built once for all of them
        (:meth:`build_docs`): a checkpoint's docs action rebuilds the whole site each time."""
        gx = self.gx
        # with its expectations: one by one, each would store the whole suite again
        suite = self.context.suites.add(
            gx.ExpectationSuite(name=suite_name, expectations=[r.expectation() for r in rules])
        )
        asset_name = asset_name or suite_name
        source = self.source if table_asset is not None or self.wh.dialect != "postgres" else self._frames_source()
        if table_asset is not None:
            batch = source.add_table_asset(name=asset_name, **table_asset).add_batch_definition_whole_table("all")
        else:
            batch = source.add_dataframe_asset(name=asset_name).add_batch_definition_whole_dataframe("all")
        vd = self.context.validation_definitions.add(gx.ValidationDefinition(name=asset_name, data=batch, suite=suite))
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=asset_name,
                validation_definitions=[vd],
                actions=[],
                # SUMMARY: a few unexpected values with their keys; COMPLETE would serialise every one
                result_format={
                    "result_format": "SUMMARY",
                    "unexpected_index_column_names": key or None,
                    "partial_unexpected_count": SAMPLE_SIZE,
                    "return_unexpected_index_query": False,
                },
            )
        )
        run = checkpoint.run(batch_parameters=params)
        _forget_batches(source)
        by_name = {r.name: r for r in rules}
        results = []
        for vr in run.run_results.values():
            for er in vr.results:
                res = er.result or {}
                samples = (res.get("partial_unexpected_index_list") or res.get("partial_unexpected_list") or [])[
                    :SAMPLE_SIZE
                ]
                results.append(
                    RuleResult(
                        by_name[er.expectation_config.meta["rule"]],  # type: ignore[union-attr]
                        bool(er.success),
                        res.get("element_count"),
                        res.get("unexpected_count"),
                        res.get("unexpected_percent"),
                        [_plain(x) for x in samples],
                        _plain(res.get("observed_value")),
                    )
                )
        return results

    def _frames_source(self):
        """A pandas data source beside the PostgreSQL one, for the frames read into memory: the
        lake's release tables, a few changed raw rows, the marts' rule columns."""
        if self._pandas is None:
            self._pandas = self.context.data_sources.add_pandas("lake")
        return self._pandas

    def validate_release(self, table: str, release_id: str, previous_id: str | None, lake) -> TableValidation:
        """The statistical gate: one release's extracted table (the lake's Parquet) against the
        previous release of the same source."""
        from .extract import release_prefix

        key = f"{release_prefix(release_id)}/{table}.parquet"
        prev_key = f"{release_prefix(previous_id)}/{table}.parquet" if previous_id else None
        if not lake.exists(key) or prev_key is None or not lake.exists(prev_key):
            return TableValidation(table, RELEASE_GATE, 0, [])
        current, previous = lake.read_parquet(key), lake.read_parquet(prev_key)
        non_null = {
            c: (1 - previous.column(c).null_count / previous.num_rows) if previous.num_rows else 0.0
            for c in previous.column_names
        }
        rules = statistical_rules(table, previous.num_rows, non_null, current.column_names)
        name = f"{sql_name(table)}.{RELEASE_GATE}"
        df = current.to_pandas()
        results = self._run(name, rules, {"dataframe": df}, [c for c in catalog.table(table).key if c in df.columns])
        return TableValidation(
            table, RELEASE_GATE, current.num_rows, results, self._quarantined(sql_name(table)), name, previous_id
        )

    def _quarantined(self, table: str) -> dict[str, int]:
        with self.wh.session(read_only=True) as s:
            return quarantine_counts(s, table)

    def build_docs(self) -> None:
        """The Data Docs site of every validation this validator ran, into ``docs_dir``."""
        self.context.build_data_docs(site_names=["lake"])

    def page(self, suite: str) -> str | None:
        """The Data Docs page (relative to docs_dir) of the latest validation of a suite."""
        folder = self.docs_dir / "validations" / Path(*suite.split("."))  # GE nests dotted names
        pages = sorted(folder.glob("**/*.html"), key=lambda p: p.stat().st_mtime)
        return pages[-1].relative_to(self.docs_dir).as_posix() if pages else None


def _forget_batches(source) -> None:
    """Drop the batches a checkpoint loaded into the data source's execution engine. The
    engine keeps every batch it has seen, and Great Expectations keeps the last context (and
    with it this engine) for the life of the process: without this, each DataFrame a gate
    validated stayed in memory after its validation, through the rest of ``ntsb build``
    (some 220 MB at 100,000 events). The results and the Data Docs do not need them."""
    manager = source.get_execution_engine().batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


def code_lag(s, table: str, since: dt.datetime | None) -> list[dict]:
    """The dictionary-lag rows (raw._code_lag) of a table, summed over the releases loaded
    after ``since`` (every release when None), most rows first."""
    if s.columns("_code_lag", RAW) is None:
        return []
    after = (
        ""
        if since is None
        else f" AND release_id IN (SELECT release_id FROM {RAW}._releases WHERE last_loaded_at > {s.ph})"
    )
    return s.query(
        f"SELECT column_name, code, CAST(sum(row_count) AS BIGINT) AS row_count FROM {RAW}._code_lag "
        f"WHERE table_name = {s.ph}{after} GROUP BY column_name, code ORDER BY 3 DESC, 1, 2 LIMIT 50",
        (table,) if since is None else (table, since),
    ).to_pylist()


def quarantine_counts(s, table: str) -> dict[str, int]:
    """Rows of a table quarantined at load time, per release."""
    rows = s.query(
        f"SELECT release_id, count(*) AS n FROM {RAW}._quarantine WHERE table_name = {s.ph} "
        "GROUP BY release_id ORDER BY release_id",
        (table,),
    ).to_pylist()
    return {r["release_id"]: int(r["n"]) for r in rows}


def _plain(value):
    """JSON-friendly values (numpy scalars, dates) for metadata."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


# ---------------------------------------------------------------------------- the rule book
def catalog_columns(table: str) -> list[str]:
    """Every raw column (sql names) a table can have: the catalog's, the extra ones, and the
    decimal coordinates extraction derives from DMS strings."""
    cols = [*catalog.table(table).columns, *catalog.EXTRA_COLUMNS.get(table, {})]
    cols += [d for c, d in catalog.DMS_COLUMNS.items() if c in cols]
    return list(dict.fromkeys(sql_name(c) for c in cols))


def threshold(rule: Rule) -> str:
    """When a rule fails, in words."""
    if rule.name.endswith(".code"):
        return (
            f"> {UNKNOWN_CODE_SHARE:.0%} of the values and > {UNKNOWN_CODE_MIN_ROWS} rows; blocks with > "
            f"{UNKNOWN_CODE_MAX_NEW} distinct unknown values, else warns"
        )
    if "mostly" in rule.kwargs:
        return f"> {1 - rule.kwargs['mostly']:.0%} of the rows"
    if rule.gate == RELEASE_GATE:
        return "outside the bounds"
    return "any row"


def why(rule: Rule) -> str:
    """Why a rule has its severity (the gate policy: structure fails, lag is a finding)."""
    name = rule.name
    if rule.gate == "schema":
        return "structure: the models join on keys and types"
    if name.endswith(".code"):
        return (
            "content: NTSB's code tables lag its data (a few new codes); "
            "many different unknown values are a broken column"
        )
    if name.endswith(".shape"):
        return "structure: the cause models parse the code's parts"
    if name.endswith((".outlier", ".matches_injury")):
        return "content: real records (NTSB's own totals differ for about 1 event in 25)"
    if rule.gate == RELEASE_GATE:
        return "content: releases differ in size"
    return "parse or range: a value no real event can have"


def dbt_tests(project_dir: Path) -> list[tuple[str, str, str, str]]:
    """(model, column, test, severity) of every data test declared in the dbt project's yml."""
    import yaml

    out = []
    for path in sorted((project_dir / "models").rglob("*.yml")):
        for m in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            entries = [("", t) for t in m.get("data_tests", [])] + [
                (c["name"], t) for c in m.get("columns", []) for t in c.get("data_tests", [])
            ]
            for col, t in entries:
                name, spec = (t, {}) if isinstance(t, str) else next(iter(t.items()))
                sev = ((spec or {}).get("config") or {}).get("severity", "error")
                out.append((m["name"], col, name, sev))
    return out


def rule_book() -> str:
    """docs/data-quality.md: every rule of every gate for every catalog table, with all its
    columns present and the code lists of the bundled baseline, and every dbt test."""
    from . import codes

    rules = [
        r
        for table in catalog.TABLE_ORDER
        for r in rules_for(table, catalog_columns(table), codes.baseline_sets(), today=dt.date(2000, 1, 1))
    ]
    # the statistical gate's rules, for a previous release that had every column
    stats = [
        r
        for table in catalog.TABLE_ORDER
        for r in statistical_rules(table, 100, dict.fromkeys(catalog_columns(table), 1.0), catalog_columns(table))
    ]
    tests = dbt_tests(Path(__file__).resolve().parents[2] / "dbt_project")
    lines = [
        "# Data quality rules",
        "",
        "Generated from the code by `python -m ntsb_assets.lib.quality docs/data-quality.md`",
        "(a unit test fails when this file and the code disagree). The rules of a table are",
        "generated from the catalog and, at run time, from NTSB's code sets in the warehouse",
        "(`raw._code_sets`: every code table a release shipped, merged with the bundled baseline;",
        "docs/ingestion.md): this book lists them for every column the catalog knows, with the",
        "code lists of the bundled baseline. `today` is the day of the run.",
        "",
        "**The policy: structure is a failure, lag is a finding.** Blocking rules are about",
        "structure (columns, types, keys, references, the shapes the models parse) and values no",
        "real event can have. A content rule blocks only above a share of the rows checked: a",
        "coded column's rule fails when values no NTSB code source knows are more than",
        f"{UNKNOWN_CODE_SHARE:.0%} of its values and more than {UNKNOWN_CODE_MIN_ROWS} rows, and it blocks only",
        f"when they are also more than {UNKNOWN_CODE_MAX_NEW} distinct values; with fewer it is a warning",
        "(`UNKNOWN_CODE_SHARE`, `UNKNOWN_CODE_MIN_ROWS`, `UNKNOWN_CODE_MAX_NEW` in",
        "`ntsb_assets/lib/quality.py`, the one place of this policy). Why the distinct values: on",
        "real releases a share alone cannot tell lag from breakage. NTSB adds codes a few at a",
        "time, and a monthly update can use them in most rows: the 2025 updates write every",
        "injury row with four person categories the 2008 code tables lack (`FLIG`, `PASS`,",
        "`CABI`, `LAPC`) and 98% of wind indicators as `F` (the Part 121 export: 85% as `SPEC`).",
        "A shifted or corrupted column brings many different values. An unknown code is NTSB's",
        "data dictionary lagging its data: the row is loaded with the code as delivered, its label",
        "is `unknown code`, and it is counted in the dictionary-lag report `raw._code_lag`",
        "(release, table, column, code, rows), shown in the business gate's metadata",
        "(`dictionary_lag`).",
        "",
        "The schema and business gates are blocking Dagster asset checks on every",
        "`warehouse/raw/<table>` asset (`schema_gate`, `business_gate`), run by the `transform`",
        "job before the dbt models: a failing **error** rule stops the models downstream in the",
        "same run; a failing **warn** rule is reported (check severity WARN) and does not block.",
        "Each gate validates the rows of its table loaded since its last run without errors, with",
        "the rows sharing their keys and, for events, the events whose injury rows changed: every",
        "rule is about one row or one key, and a load inserts or replaces rows, never deletes",
        f"one. The watermark is kept in `{FRAMES}.{WATERMARKS}` with a fingerprint of the rules.",
        "A run with errors leaves it where it was, so the same rows fail again until fixed. The",
        "whole table is validated the first time, when the rules change (a new code list, say),",
        "and on request (`whole_tables: true` in the check's run config).",
        "The statistical gate (`statistical_gate`) runs in each `ingest_release`",
        "run: the release's extracted tables against the previous release of the same source",
        f"(rows within {VOLUME_TOLERANCE:.0%}, each column's share of non-null values within",
        f"{NULL_RATE_TOLERANCE}); its rules are warnings. Rows that broke a hard rule at load time",
        "are already in `raw._quarantine`; each check reports their count per release. Every run",
        "publishes its Great Expectations Data Docs to the lake (`quality/data_docs/<run id>/`);",
        "each check's metadata links its page.",
        "",
        "Why some rules are warnings: NTSB's code tables lag its data. On real releases, coded",
        "columns hold codes no code table of 2008 lists (wind and gust indicators written `SPEC`,",
        "`T` or `F`; the 2025 injury person categories; phase of flight `0` in the Part 121",
        "export), and the events' injury totals differ from the injury table's aboard counts for",
        "about 1 event in 25. These rows are valid NTSB records, so they are reported, not",
        "quarantined. (Codes the dictionary lacks but another NTSB table lists, such as the",
        "aircraft categories `WSFT`, `PPAR` and `RCKT` of `ct_iaids`, are known codes.)",
        "",
        "The marts are checked by dbt's own tests (below), not by Great Expectations: what dbt",
        "declares is not restated here. Great Expectations keeps what dbt does not express: the",
        "raw tables' quarantine-aware gates with their watermarks, code-lag thresholds and",
        "statistical comparison with the previous release, with Data Docs per run.",
        "",
        f"{len(rules)} schema and business rules ({len({r.kind for r in rules})} kinds of expectation) over "
        f"{len(catalog.TABLE_ORDER)} tables, and {len(stats)} statistical rules.",
        "",
        "| gate | severity | rule | expectation | what it checks | fails when | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for gate in (*GATES, RELEASE_GATE):
        for r in rules + stats:
            if r.gate == gate:
                lines.append(
                    f"| {gate} | {r.severity} | `{r.name}` | {r.kind} | {r.description} | {threshold(r)} | {why(r)} |"
                )
    lines += [
        "",
        "## dbt tests",
        "",
        "The dbt project's data tests run in `dbt build` as checks of the dbt assets; an **error**",
        "test stops the models after it. They test what the staging views and marts compute: the",
        "marts' keys and references, the views' cleaned values, severities, counts, coordinate, date",
        "and hour ranges. The raw rows' keys, parents and injury totals are the gates' rules above",
        "and are not restated here. No dbt test checks codes against a code list: that is the",
        "business gate's rule above, with its threshold, and the labels say `unknown code` where no",
        f"source knows one. Warning: an event's fatalities above {MAX_FATALITIES} (an outlier to look at).",
        "",
        f"{len(tests)} tests, {sum(t[3] == 'error' for t in tests)} of them errors.",
        "",
        "| model | column | test | severity |",
        "|---|---|---|---|",
        *[f"| {m} | {c or '(model)'} | {t} | {sev} |" for m, c, t, sev in tests],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    text = rule_book()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


CHECKS_PREFIX = "quality/checks"  # the latest result of each check, one JSON document each


CHECK_COUNTS = (
    "rows",
    "expectations_evaluated",
    "expectations_failed",
    "errors",
    "warnings",
    "unexpected_rows",
    "quarantined_rows",
)


def check_record(asset: str, check: str, passed: bool, severity: str, description, run_id: str, **found) -> dict:
    """One check's outcome as :func:`record_check` keeps it: ``found`` gives the counts it
    has (CHECK_COUNTS; the others are None) and its ``data_docs`` page."""
    return {
        "asset": asset,
        "check": check,
        "passed": passed,
        "severity": severity,
        "description": description,
        **{k: found.get(k) for k in CHECK_COUNTS},
        "data_docs": found.get("data_docs"),
        "run_id": run_id,
    }


def record_check(lake, result: dict) -> None:
    """Keep ``result`` (asset, check, passed, severity, counts, Data Docs page) as the
    latest of its check in the lake, for readers that are not Dagster (the dashboard)."""
    name = f"{result['asset'].replace('/', '__')}__{result['check']}"
    lake.put_json(
        f"{CHECKS_PREFIX}/{name}.json", {**result, "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    )


def read_checks(lake) -> list[dict]:
    """Every check's latest recorded result (:func:`record_check`), by asset and check."""
    out = [lake.get_json(key) for key in lake.list(CHECKS_PREFIX + "/") if key.endswith(".json")]
    return sorted(out, key=lambda r: (r["asset"], r["check"]))
