"""Extraction: every table of a release to typed, immutable ZSTD Parquet in the lake.

Layout under the lake root (one prefix per release, never rewritten)::

    raw/<release_id>/<Table>.parquet            typed rows + _source_row + _row_hash
    raw/<release_id>/_rejects/<Table>.parquet   rows that could not be parsed, with rule and reason
    raw/<release_id>/_manifest.json             written last: the extraction is complete

Rows stream through in batches; a release of any size needs memory for one batch.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from . import catalog, faults, parsing, registry, typemap
from .lake import Lake
from .sources import ReleaseInfo, RowReject, SourceError, TableSource, identify, table_sources

META_COLUMNS = ("_source_row", "_row_hash")
REJECT_SCHEMA = pa.schema(
    [
        ("_source_row", pa.int64()),
        ("rule", pa.string()),
        ("reason", pa.string()),
        ("column", pa.string()),
        ("original", pa.string()),
    ]
)
MANIFEST = "_manifest.json"
PARALLEL_FROM_BYTES = 32 << 20  # smaller releases are extracted in-process
BATCH_BYTES = 16 << 20  # a batch also ends at this much source text (narratives are long)


def release_prefix(release_id: str) -> str:
    return f"raw/{release_id}"


@dataclass
class TableExtract:
    table: str
    source_name: str
    file: str
    known: bool
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    encoding: str = ""
    bytes: int = 0
    schema_hash: str = ""
    parquet_key: str = ""
    rejects_key: str | None = None
    seconds: float = 0.0


def schema_hash(columns: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(columns.items())).encode()).hexdigest()[:16]


def _column_types(
    src: TableSource, tbl: catalog.Table, header: list[str]
) -> tuple[list[str], dict[str, str], list[str]]:
    """Canonical names, their types and the columns the catalog does not know."""
    names = [catalog.canonical_column_name(tbl, h) for h in header]
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n.lower() in seen:
            raise SourceError(
                src.file, tbl.name, 1, "duplicate_column", f"column {header[i]!r} appears twice in the header"
            )
        seen.add(n.lower())
    if any(not n for n in names):
        raise SourceError(src.file, tbl.name, 1, "empty_column_name", "the header has an empty column name")
    types: dict[str, str] = {}
    unknown = []
    for n in names:
        if n in tbl.columns:
            types[n] = tbl.columns[n]
        elif src.mdb_types is not None and n in src.mdb_types:
            types[n] = src.mdb_types[n]
        else:
            unknown.append(n)
    return names, types, unknown


def _check_header(src: TableSource, tbl: catalog.Table, names: list[str]) -> None:
    need = list(tbl.key) + list(catalog.REQUIRED.get(tbl.name, ()))
    missing = [k for k in need if k not in names]
    if missing:
        raise SourceError(
            src.file,
            tbl.name,
            1,
            "missing_required_column",
            f"required column(s) {', '.join(missing)} not in the header (header starts {', '.join(names[:5])})",
        )


def _infer_unknown(src: TableSource, names: list[str], unknown: list[str]) -> dict[str, str]:
    idx = {n: names.index(n) for n in unknown}
    samples: dict[str, list[str]] = {n: [] for n in unknown}
    types: dict[str, str | None] = {n: None for n in unknown}
    with src.rows() as (_header, rows, _enc):
        for _rowno, fields in rows:
            if isinstance(fields, RowReject) or len(fields) != len(names):
                continue
            for n, i in idx.items():
                samples[n].append(fields[i])
            if len(samples[unknown[0]]) >= 10_000:
                _widen_all(types, samples)
    _widen_all(types, samples)
    return {n: t or "string" for n, t in types.items()}


def _widen_all(types: dict, samples: dict[str, list[str]]) -> None:
    for n, values in samples.items():
        if any(v.strip() for v in values):
            types[n] = _widen(types[n], parsing.infer_type(values))
        values.clear()


def _widen(a: str | None, b: str) -> str:
    """The type two chunks of one column share."""
    if a is None or a == b:
        return b
    return "float" if {a, b} == {"int", "float"} else "string"


def extract_table(
    src: TableSource,
    lake: Lake,
    release_id: str,
    *,
    today: dt.date,
    batch_rows: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> TableExtract:
    started = time.perf_counter()
    tbl = catalog.table(src.name)
    out = TableExtract(table=tbl.name, source_name=src.name, file=src.file, known=tbl.known)
    with src.rows() as (header, _rows, _enc):
        names, types, unknown = _column_types(src, tbl, header)
    if tbl.known:
        _check_header(src, tbl, names)
    if unknown:
        types.update(_infer_unknown(src, names, unknown) if src.mdb_types is None else {n: "string" for n in unknown})
    out.extra_columns = [n for n in names if tbl.known and n not in tbl.columns]
    out.missing_columns = [c for c in tbl.columns if c not in names] if tbl.known else []
    out.columns = {n: types[n] for n in names}
    # (raw DMS column, derived decimal column, lat/lon, NTSB's own decimal column if delivered)
    dms = [
        (
            names.index(c),
            d,
            "lat" if c == "latitude" else "lon",
            names.index(f"dec_{c}") if f"dec_{c}" in names else None,
        )
        for c, d in catalog.DMS_COLUMNS.items()
        if c in names
    ]

    fields_schema = [pa.field(n, typemap.ARROW[types[n]]) for n in names]
    fields_schema += [pa.field(d, pa.float64()) for _i, d, _k, _dec in dms]
    fields_schema += [pa.field("_source_row", pa.int64()), pa.field("_row_hash", pa.string())]
    schema = pa.schema(fields_schema)
    out.schema_hash = schema_hash(out.columns)
    prefix = release_prefix(release_id)
    out.parquet_key = f"{prefix}/{tbl.name}.parquet"
    sink = lake.parquet_writer(out.parquet_key, schema)
    rejects: list[dict] = []
    parsers = [_parser(types[n], today) for n in names]
    hasher = parsing.RowHasher(names)
    ncols = len(names)
    buffer: list[list] = []  # parsed rows (values + decimals + source row + hash) of one batch
    buffered_bytes = 0

    def flush():
        if buffer:
            columns = zip(*buffer, strict=False)
            sink.write(
                pa.record_batch(
                    [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=False)], schema=schema
                )
            )
            buffer.clear()

    try:
        with src.rows() as (_header, rows, encoding):
            out.encoding = encoding
            for rowno, fields in rows:
                out.rows_in += 1
                if isinstance(fields, RowReject):  # a row the source could not split (flat exports)
                    rejects.append(_reject(rowno, fields.rule, fields.reason, None, fields.original))
                    continue
                if len(fields) != ncols:
                    rejects.append(
                        _reject(
                            rowno,
                            "field_count",
                            f"{len(fields)} fields where the header has {ncols}",
                            None,
                            dict(zip(names, fields, strict=False))
                            | ({"_extra": fields[ncols:]} if len(fields) > ncols else {}),
                        )
                    )
                    continue
                values = []
                bad = None
                for i, (parse, text) in enumerate(zip(parsers, fields, strict=False)):
                    try:
                        values.append(parse(text))
                    except ValueError as exc:
                        bad = (names[i], str(exc))
                        break
                if bad:
                    rejects.append(
                        _reject(
                            rowno,
                            "type",
                            f"column {bad[0]} ({types[bad[0]]}): {bad[1]}",
                            bad[0],
                            dict(zip(names, fields, strict=False)),
                        )
                    )
                    continue
                h = hasher(values)
                for i, _d, kind, dec in dms:
                    values.append(_decimal_coordinate(fields[i], kind, values[dec] if dec is not None else None))
                values.append(rowno)
                values.append(h)
                buffer.append(values)
                buffered_bytes += sum(map(len, fields))
                out.rows_out += 1
                if len(buffer) >= batch_rows or buffered_bytes >= BATCH_BYTES:
                    buffered_bytes = 0
                    flush()
                    if progress:
                        progress(out.rows_in)
            flush()
        out.bytes = sink.close()
    except BaseException:
        sink.abort()
        raise
    out.rejected = len(rejects)
    if rejects:
        out.rejects_key = f"{prefix}/_rejects/{tbl.name}.parquet"
        rsink = lake.parquet_writer(out.rejects_key, REJECT_SCHEMA)
        rsink.write(pa.RecordBatch.from_pylist(rejects, schema=REJECT_SCHEMA))
        rsink.close()
    out.seconds = round(time.perf_counter() - started, 3)
    if progress:
        progress(out.rows_in)
    return out


def _decimal_coordinate(dms: str, kind: str, decimal: float | None) -> float | None:
    """NTSB's decimal column where delivered (recent DMS strings are written without zero
    padding and cannot be read unambiguously), else the fixed-width DMS reading; never a
    value off the globe."""
    if decimal is not None:
        return decimal if abs(decimal) <= (90 if kind == "lat" else 180) else None
    return parsing.parse_dms(dms, kind)


def _reject(rowno: int, rule: str, reason: str, column: str | None, original: dict) -> dict:
    return {
        "_source_row": rowno,
        "rule": rule,
        "reason": reason,
        "column": column,
        "original": json.dumps(original, ensure_ascii=False, default=str),
    }


def _parser(typ: str, today: dt.date):
    """The parser of one column, bound to today's date where dates need it."""
    if typ in ("date", "timestamp"):
        return functools.partial(parsing.parse_date if typ == "date" else parsing.parse_timestamp, today=today)
    return {
        "string": parsing.parse_string,
        "int": parsing.parse_int,
        "float": parsing.parse_float,
        "bool": parsing.parse_bool,
    }[typ]


def extract_release(
    path: Path,
    lake: Lake,
    *,
    release_id: str | None = None,
    today: dt.date | None = None,
    batch_rows: int = 50_000,
    on_table: Callable[[str], None] | None = None,
    progress: Callable[[str, int], None] | None = None,
    workers: int | None = None,
    info: ReleaseInfo | None = None,
) -> dict:
    """Extract a release unless the lake already holds it (the prefix is immutable).
    Returns the manifest: release identity and one TableExtract per table. ``info``: the
    release's identity when the caller has verified it already (its content hash is not
    computed again)."""
    info = info or identify(path)
    release_id = release_id or info.release_id
    prefix = release_prefix(release_id)
    if lake.exists(f"{prefix}/{MANIFEST}"):
        manifest = lake.get_json(f"{prefix}/{MANIFEST}")
        manifest["reused"] = True
        return manifest
    lake.delete_prefix(prefix)  # leftovers of an extraction that did not finish
    today = today or dt.date.today()
    try:
        tables = _extract_tables(
            Path(path),
            lake,
            release_id,
            today,
            batch_rows,
            on_table,
            progress,
            default_workers() if workers is None else workers,
        )
    except BaseException as exc:
        try:
            lake.delete_prefix(prefix)  # no half-extracted release stays behind
        except Exception as cleanup:  # the first error is the one to show
            exc.add_note(f"(and the half-extracted {lake.uri(prefix)} could not be removed: {cleanup})")
        raise
    faults.point("extract")
    manifest = {
        "release_id": release_id,
        "name": info.name,
        "sha256": info.sha256,
        "size": info.size,
        "kind": info.kind,
        "extracted_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": tables,
        "unknown_tables": sorted(t for t, v in tables.items() if not v["known"]),
    }
    lake.put_json(f"{prefix}/{MANIFEST}", manifest)
    manifest["reused"] = False
    return manifest


def _extract_tables(path, lake, release_id, today, batch_rows, on_table, progress, workers) -> dict[str, dict]:
    sources = table_sources(path)
    seen: dict[str, str] = {}
    for src in sources:
        canon = catalog.canonical_table_name(src.name)
        if canon in seen:
            raise SourceError(
                src.file,
                canon,
                None,
                "duplicate_table",
                f"table {canon} is delivered twice ({seen[canon]} and {src.file})",
            )
        seen[canon] = src.file
    results: list[TableExtract] = []
    sizes = [_size(path, src) for src in sources]
    if workers <= 1 or len(sources) <= 1 or sum(sizes) < PARALLEL_FROM_BYTES:
        for src in sources:
            if on_table:
                on_table(catalog.canonical_table_name(src.name))
            results.append(
                extract_table(
                    src,
                    lake,
                    release_id,
                    today=today,
                    batch_rows=batch_rows,
                    progress=functools.partial(progress, src.name) if progress else None,
                )
            )
        return {r.table: asdict(r) for r in results}
    # Tables are independent: parse them in worker processes, one per core, each taking a
    # share of the tables balanced by lines x columns. Workers are fresh interpreters (`python -m`),
    # so callers need no __main__ guard and none of their threads are forked.
    costs = [_cost(path, src) for src in sources]
    bins: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in sorted(range(len(sources)), key=lambda i: -costs[i]):
        w = load.index(min(load))
        bins[w].append(i)
        load[w] += costs[i]
    job = {
        "path": str(path),
        "lake": lake.init_args,
        "release_id": release_id,
        "today": today.isoformat(),
        "batch_rows": batch_rows,
    }

    def run(indices: list[int]) -> list[TableExtract]:
        if on_table:
            for i in indices:
                on_table(catalog.canonical_table_name(sources[i].name))
        proc = subprocess.run(
            [sys.executable, "-m", "ntsb_assets.lib.extract", json.dumps(job | {"indices": indices})],
            capture_output=True,
            text=True,
        )
        lines = proc.stdout.strip().splitlines()
        answer = json.loads(lines[-1]) if lines else {}
        if "error" in answer:
            raise SourceError(*answer["error"])
        if proc.returncode != 0 or "tables" not in answer:
            raise RuntimeError(f"extraction worker failed: {proc.stderr.strip()[-2000:]}")
        return [TableExtract(**t) for t in answer["tables"]]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = {r.source_name: r for rs in pool.map(run, [b for b in bins if b]) for r in rs}
    return {done[src.name].table: asdict(done[src.name]) for src in sources}


def _size(path: Path, src: TableSource) -> int:
    f = Path(path) / src.file
    return f.stat().st_size if f.is_file() else 0


def _cost(path: Path, src: TableSource) -> int:
    """Parsing work of a table, roughly: lines x columns (a folder's files only)."""
    f = Path(path) / src.file
    if not f.is_file():
        return 0
    lines, columns = 0, 1
    with open(f, "rb") as fh:
        head = fh.readline()
        columns = head.count(b",") + 1
        while chunk := fh.read(1 << 22):
            lines += chunk.count(b"\n")
    return lines * columns


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _worker(job: dict) -> dict:
    """Some tables of a release, in a worker process (see _extract_tables)."""
    sources = table_sources(Path(job["path"]))
    lake = Lake(**job["lake"])
    out = []
    try:
        for i in job["indices"]:
            out.append(
                asdict(
                    extract_table(
                        sources[i],
                        lake,
                        job["release_id"],
                        today=dt.date.fromisoformat(job["today"]),
                        batch_rows=job["batch_rows"],
                    )
                )
            )
    except SourceError as exc:
        return {"error": [exc.file, exc.table, exc.row, exc.rule, exc.message]}
    return {"tables": out}


if __name__ == "__main__":
    from ..lifeline import die_with_parent

    die_with_parent()  # a killed ingest leaves no worker writing Parquet
    print(json.dumps(_worker(json.loads(sys.argv[1]))))


def previous_manifest(lake: Lake, release_id: str) -> dict | None:
    """The manifest of the previous release of the same source that was extracted (the
    schema-drift check compares against it)."""
    prev = registry.previous_of(lake, release_id, having=lambda r: lake.exists(_manifest_key(r.release_id)))
    return lake.get_json(_manifest_key(prev.release_id)) if prev else None


def _manifest_key(release_id: str) -> str:
    return f"{release_prefix(release_id)}/{MANIFEST}"


def schema_diff(prev: dict[str, str], cur: dict[str, str]) -> dict[str, list]:
    """Columns added, removed and retyped between two releases' ``{column: type}``."""
    return {
        "added": sorted(c for c in cur if c not in prev),
        "removed": sorted(c for c in prev if c not in cur),
        "retyped": sorted(f"{c}: {prev[c]} -> {cur[c]}" for c in cur if c in prev and prev[c] != cur[c]),
    }
