"""Search quality on paraphrase queries over real narratives: keyword (BM25), semantic
(the narratives' vectors) and hybrid (reciprocal rank fusion of the two).

    python benchmarks/narrative_search.py [--narratives ../shared/data/ntsb/real_1948_2002/narratives.csv]
        [--vectors PATH.parquet] [--write docs/benchmarks.md]

The queries and their relevance rules are ``benchmarks/paraphrase_queries.json``: each query
avoids the words the narratives use for its subject; an event is relevant when its account
or probable cause matches all of the query's patterns. Keyword search is the snapshot's BM25
(the same tokens, weights and parameters as ``lib/serving.py``: the probable cause counts
twice); semantic search is ``lib/narratives.VectorIndex`` over ``lib/embeddings.py``'s vectors
(embedded here, about 5 minutes for the real file, or read from --vectors, written there when
the file does not exist); hybrid fuses the two top-100 lists (``lib/narratives.fuse``).
Reports P@10 and nDCG@10 (binary relevance) per mode, and per query; and one variant the
API does not serve: keyword search expanded with the words of the semantic ranking's first
ten events (pseudo-relevance feedback), a candidate for the hybrid.
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
from collections import Counter
from pathlib import Path

from common import REPO, emit, machine

QUERIES = Path(__file__).with_name("paraphrase_queries.json")
# A variant measured, not served: keyword search on the query plus the FEEDBACK words that weigh
# most (idf) in the first FEEDBACK events of the semantic ranking
EXPANDED = "keyword expanded by semantic feedback (not served)"
FEEDBACK = 10
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


class BM25:
    """The snapshot's BM25 (lib/serving.py) in memory: tokens, stop words, K1, B, and the
    probable cause weighted 2."""

    def __init__(self, rows: list[tuple[str, int, str, str]]):
        from ntsb_assets.lib import serving

        self.k1, self.b = serving.K1, serving.B
        self.tokens = serving.tokens
        tf: dict[str, Counter] = {}
        for ev_id, _key, field, text in rows:
            weight = 2 if field == "probable_cause" else 1
            c = tf.setdefault(ev_id, Counter())
            for t in self.tokens(text):
                c[t] += weight
        self.tf = tf
        self.length = {e: sum(c.values()) for e, c in tf.items()}
        self.avg = sum(self.length.values()) / max(len(self.length), 1)
        self.postings: dict[str, list[str]] = {}
        for e, c in tf.items():
            for t in c:
                self.postings.setdefault(t, []).append(e)

    def expand(self, q: str, feedback: list[str], terms: int = FEEDBACK) -> str:
        """``q`` and the ``terms`` words of the ``feedback`` events that weigh most by their
        inverse document frequency (pseudo-relevance feedback from the semantic ranking)."""
        n = len(self.tf)
        weight: Counter = Counter()
        for e in feedback:
            for t in self.tf.get(e, {}):
                df = len(self.postings[t])
                weight[t] += math.log(1 + (n - df + 0.5) / (df + 0.5))
        return " ".join([q, *(t for t, _ in weight.most_common(terms))])

    def search(self, q: str, limit: int) -> list[str]:
        n = len(self.tf)
        scores: Counter = Counter()
        for t in set(self.tokens(q)):
            docs = self.postings.get(t, [])
            idf = math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            for e in docs:
                f = self.tf[e][t]
                scores[e] += idf * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.length[e] / self.avg))
        return [e for e, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def ndcg(relevant: list[bool], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, r in enumerate(relevant[:k]) if r)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant)) if relevant else 0))
    return dcg / ideal if ideal else 0.0


def evaluate(narratives: Path, vectors: Path | None) -> dict:
    """Every mode's P@10 and nDCG@10 over the queries (and per query)."""
    import pyarrow.parquet as pq

    from ntsb_assets.lib import embeddings as E
    from ntsb_assets.lib import narratives as N

    texts, rows = load(narratives)
    queries = json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]
    keyword = BM25(rows)
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
        latency = []
        for q in queries:
            patterns = [re.compile(p, re.IGNORECASE) for p in q["all"]]

            def relevant(ev_id: str, patterns=patterns) -> bool:
                return all(p.search(texts.get(ev_id, "")) for p in patterns)

            t = time.perf_counter()
            kw = keyword.search(q["q"], N.FUSE_DEPTH)
            sem = [h.ev_id for h in index.search(enc.embed_query(q["q"]), N.FUSE_DEPTH)]
            latency.append(time.perf_counter() - t)
            hybrid = [e for e, _ in N.fuse(kw, sem)]
            expanded = keyword.search(keyword.expand(q["q"], sem[:FEEDBACK]), N.FUSE_DEPTH)
            row = {"q": q["q"]}
            for mode, ranking in (("keyword", kw), ("semantic", sem), ("hybrid", hybrid), (EXPANDED, expanded)):
                rel = [relevant(e) for e in ranking[:10]]
                row[mode] = {"p10": sum(rel) / 10, "ndcg10": ndcg(rel)}
            per_query.append(row)
    summary = {
        mode: {
            "p10": sum(r[mode]["p10"] for r in per_query) / len(per_query),
            "ndcg10": sum(r[mode]["ndcg10"] for r in per_query) / len(per_query),
        }
        for mode in ("keyword", "semantic", "hybrid", EXPANDED)
    }
    return {
        "summary": summary,
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
    s = out["summary"]
    shown = " ".join("PATH" if a.startswith("/") else a for a in sys.argv[1:])
    lines = [
        f"### Search quality: {len(out['queries'])} paraphrase queries over {out['events']:,} events' real narratives",
        "",
        f"`python benchmarks/narrative_search.py {shown}` on {machine()}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| mode | P@10 | nDCG@10 |",
        "|---|---:|---:|",
        *(f"| {m} | {s[m]['p10']:.3f} | {s[m]['ndcg10']:.3f} |" for m in ("keyword", "semantic", "hybrid", EXPANDED)),
        "",
        "<details><summary>Per query (P@10: keyword / semantic / hybrid)</summary>",
        "",
        "| query | keyword | semantic | hybrid |",
        "|---|---:|---:|---:|",
        *(
            f"| {r['q']} | {r['keyword']['p10']:.1f} | {r['semantic']['p10']:.1f} | {r['hybrid']['p10']:.1f} |"
            for r in out["queries"]
        ),
        "",
        "</details>",
    ]
    emit("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
