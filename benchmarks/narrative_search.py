"""Search quality on paraphrase queries over real narratives: keyword (BM25), semantic
(the narratives' vectors) and hybrid, as the API serves them.

    python benchmarks/narrative_search.py [--narratives ../shared/data/ntsb/real_1948_2002/narratives.csv]
        [--vectors PATH.parquet] [--write docs/benchmarks.md]

The queries and their relevance rules are ``benchmarks/paraphrase_queries.json``: each query
avoids the words the narratives use for its subject; the file's ``about`` says how an event
is judged relevant, by the strict rule (``all``) or the revised rules (``also`` added), and
both are reported. The rankings are the API's own code: keyword search is the snapshot's inverted index
(``serving._index_narratives``, held as a ``serving.TermIndex``) searched by
``Store.keyword``; semantic search is
``lib/narratives.VectorIndex`` over ``lib/embeddings.py``'s vectors (embedded here, about 5
minutes for the real file, or read from --vectors, written there when the file does not
exist); hybrid fuses the rankings of ``ntsb_api.search.hybrid_rankings`` (keyword, keyword
expanded by the semantic ranking's first events, semantic), each 100 deep. Reports P@10 and
nDCG@10 (binary relevance) per mode, and per query; and two parts of the hybrid alone:
the expanded keyword search, and the fusion of keyword and semantic search without it (the
hybrid served before the expansion).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, emit, machine

QUERIES = Path(__file__).with_name("paraphrase_queries.json")
EXPANDED = "keyword expanded by semantic feedback (part of the hybrid)"
TWO_WAY = "keyword and semantic fused, no expansion (the hybrid before)"
MODES = ("keyword", "semantic", "hybrid", EXPANDED, TWO_WAY)
DEFAULT = REPO.parent / "shared" / "data" / "ntsb" / "real_1948_2002" / "narratives.csv"


def load(path: Path) -> tuple[dict[str, str], list[tuple[str, int, str, str]]]:
    """(event -> its texts joined, for the relevance rules), (rows to embed)."""
    texts: dict[str, str] = {}
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            key = int(r["Aircraft_Key"] or 1)
            texts[r["ev_id"]] = f"{texts.get(r['ev_id'], '')} {r['narr_accp'] or ''} {r['narr_cause'] or ''}"
            rows.append((r["ev_id"], key, "narrative", r["narr_accp"]))
            rows.append((r["ev_id"], key, "probable_cause", r["narr_cause"]))
    return texts, rows


def keyword_store(rows: list[tuple[str, int, str, str]]):
    """The API's keyword search over ``rows``: the snapshot's index built from them in DuckDB,
    loaded as the API loads it, behind the API's ``Store.keyword``."""
    import duckdb

    from ntsb_api.store import Store
    from ntsb_assets.lib import serving

    texts: dict[tuple[str, int], dict[str, str]] = {}
    for ev_id, key, field, text in rows:
        texts.setdefault((ev_id, key), {})[field] = text
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.narratives (ev_id VARCHAR, aircraft_key BIGINT, probable_cause VARCHAR, narrative VARCHAR)"
    )
    con.executemany(
        "INSERT INTO marts.narratives VALUES (?, ?, ?, ?)",
        [(e, k, t.get("probable_cause"), t.get("narrative")) for (e, k), t in texts.items()],
    )
    serving._index_narratives(con, True, incremental=False)
    index = serving.TermIndex.load(con.cursor())
    con.close()

    class Index(Store):
        def term_index(self):
            return index

    return Index()


def judge(query: dict, texts: dict[str, str]) -> tuple[Callable[[str], bool], Callable[[str], bool]]:
    """The query's relevance tests of an event, (strict, revised), as QUERIES' ``about`` defines them."""

    def compiled(patterns: list[str]) -> list[re.Pattern]:
        return [re.compile(p, re.IGNORECASE) for p in patterns]

    first = compiled(query["all"])
    also = [(compiled(r["all"]), compiled(r.get("none", []))) for r in query.get("also", [])]

    def matches(text: str, every: list[re.Pattern], none: list[re.Pattern]) -> bool:
        return all(p.search(text) for p in every) and not any(p.search(text) for p in none)

    def strict(ev_id: str) -> bool:
        return matches(texts.get(ev_id, ""), first, [])

    def revised(ev_id: str) -> bool:
        text = texts.get(ev_id, "")
        return any(matches(text, every, none) for every, none in [(first, []), *also])

    return strict, revised


def ndcg(relevant: list[bool], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, r in enumerate(relevant[:k]) if r)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant)) if relevant else 0))
    return dcg / ideal if ideal else 0.0


def evaluate(narratives: Path, vectors: Path | None) -> dict:
    """Every mode's P@10 and nDCG@10 over the queries (and per query)."""
    import pyarrow.parquet as pq

    from ntsb_api.search import hybrid_rankings
    from ntsb_assets.lib import embeddings as E
    from ntsb_assets.lib import narratives as N

    texts, rows = load(narratives)
    queries = json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]
    store = keyword_store(rows)
    with tempfile.TemporaryDirectory(prefix="ntsb-search-") as tmp:
        enc = E.Encoder(cache_dir=Path(tmp))
        if vectors and vectors.exists():
            table = pq.read_table(vectors)
            if (table.schema.metadata or {}).get(b"model_version", b"").decode() != enc.version:
                table = None
        else:
            table = None
        embed_seconds = None
        if table is None:
            t = time.perf_counter()
            table = E.embed_narratives(rows, None, enc).table
            embed_seconds = time.perf_counter() - t
            if vectors:
                pq.write_table(table, vectors)
        index = N.VectorIndex(table)
        per_query = []
        for q in queries:
            strict, revised = judge(q, texts)

            keyword = store.keyword(q["q"], N.FUSE_DEPTH, {})[0]
            semantic = index.search(enc.embed_query(q["q"]), N.FUSE_DEPTH)
            kw, expanded, sem = hybrid_rankings(store, q["q"], {}, N.FUSE_DEPTH, keyword, semantic)
            rankings = {
                "keyword": kw,
                "semantic": sem,
                "hybrid": [e for e, _ in N.fuse(kw, expanded, sem)],
                EXPANDED: expanded,
                TWO_WAY: [e for e, _ in N.fuse(kw, sem)],
            }
            row = {"q": q["q"]}
            for mode, ranking in rankings.items():
                for suffix, relevant in (("", revised), (" strict", strict)):
                    rel = [relevant(e) for e in ranking[:10]]
                    row[mode + suffix] = {"p10": sum(rel) / 10, "ndcg10": ndcg(rel)}
            per_query.append(row)

    def mean(column: str) -> dict[str, float]:
        return {m: sum(r[column][m] for r in per_query) / len(per_query) for m in ("p10", "ndcg10")}

    return {
        "summary": {mode: mean(mode) for mode in MODES},
        "strict": {mode: mean(mode + " strict") for mode in MODES},
        "queries": per_query,
        "events": len(texts),
        "windows": table.num_rows,
        "embed_seconds": embed_seconds,
    }


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--narratives", type=Path, default=DEFAULT)
    ap.add_argument("--vectors", type=Path, help="reuse (or keep) the narratives' vectors in this Parquet file")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    out = evaluate(args.narratives, args.vectors)
    s, t = out["summary"], out["strict"]
    shown = " ".join("PATH" if a.startswith("/") else a for a in sys.argv[1:])
    lines = [
        f"### Search quality: {len(out['queries'])} paraphrase queries over {out['events']:,} events' real narratives",
        "",
        f"`python benchmarks/narrative_search.py {shown}` on {machine()}, {time.strftime('%Y-%m-%d')}.",
        "",
        "Relevance by the revised rules (each query's `all`, or one of its `also` rules), and by",
        "the strict rules alone (`all`), as measured before the revision:",
        "",
        "| mode | P@10 | nDCG@10 | P@10, strict rules | nDCG@10, strict rules |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {m} | {s[m]['p10']:.3f} | {s[m]['ndcg10']:.3f} | {t[m]['p10']:.3f} | {t[m]['ndcg10']:.3f} |"
            for m in MODES
        ),
        "",
        "<details><summary>Per query (P@10 by the revised rules; the hybrid's by the strict rules)</summary>",
        "",
        "| query | keyword | semantic | hybrid | hybrid, strict rules |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['q']} | {r['keyword']['p10']:.1f} | {r['semantic']['p10']:.1f} | {r['hybrid']['p10']:.1f}"
            f" | {r['hybrid strict']['p10']:.1f} |"
            for r in out["queries"]
        ),
        "",
        "</details>",
    ]
    emit("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
