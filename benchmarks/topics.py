"""Topics of the real narratives (``lib/topics.py``, the ``analytics/topics`` asset's work):
time, peak memory and the topics found.

    python benchmarks/topics.py [--data ../shared/data/ntsb/real_1948_2002] [--vectors PATH.parquet]
        [--k 0] [--write docs/benchmarks.md]

The narratives are embedded first (about 5 minutes) unless ``--vectors`` holds their vectors
(``benchmarks/narrative_search.py --vectors`` writes the same file). An event's year is its
``ev_year``; the events and narratives are read from the release's CSV files as they are.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from common import REPO, emit, machine

DEFAULT = REPO.parent / "shared" / "data" / "ntsb" / "real_1948_2002"


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--vectors", type=Path)
    ap.add_argument("--k", type=int, default=0)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()

    import tempfile

    import duckdb
    import narrative_search
    import pyarrow.parquet as pq

    from ntsb_assets.lib import embeddings as E
    from ntsb_assets.lib import topics as T

    if args.vectors and args.vectors.exists():
        vectors = pq.read_table(args.vectors)
    else:
        _, rows = narrative_search.load(args.data / "narratives.csv")
        with tempfile.TemporaryDirectory() as tmp:
            vectors = E.embed_narratives(rows, None, E.Encoder(cache_dir=Path(tmp))).table
        if args.vectors:
            pq.write_table(vectors, args.vectors)
    con = duckdb.connect()
    csv = "read_csv('{}', all_varchar = true)"
    con.execute(
        "CREATE VIEW fact_accidents AS SELECT ev_id, make_date(CAST(ev_year AS INTEGER), 1, 1) AS event_date "
        f"FROM {csv.format(args.data / 'events.csv')}"
    )
    con.execute(
        "CREATE VIEW narratives AS SELECT ev_id, narr_accp AS narrative, narr_cause AS probable_cause "
        f"FROM {csv.format(args.data / 'narratives.csv')}"
    )
    t = time.perf_counter()
    out = T.topics(con, vectors, k=args.k or None)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    again = T.topics(con, vectors, k=args.k or None, model=out.model)  # a monthly update's run: the fit kept
    kept = time.perf_counter() - t
    assert again.refit is None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    table = out.tables["topics"]
    shown = " ".join("PATH" if a.startswith("/") else a for a in sys.argv[1:])
    lines = [
        f"### Topics of {table.events.sum():,} events' real narratives",
        "",
        f"`python benchmarks/topics.py {shown}` on {machine()}, {time.strftime('%Y-%m-%d')}: "
        f"{len(table)} topics in {seconds:.1f} s (clustering, labels and yearly counts; the vectors "
        f"read, not made); {kept:.1f} s with that fit kept, as a run after a monthly update uses it "
        f"(each event assigned to its nearest topic, counted again); peak RSS {rss:.2f} GB for the "
        "whole process.",
        "",
        f"| topic | label | events | share | share, last {T.RECENT_YEARS} years | lift | peak year |",
        "|---:|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r.topic} | {r.label} | {r.events:,} | {r.share:.3f} | {r.recent_share:.3f} | "
            f"{r.lift:.2f} | {r.peak_year} |"
            for r in table.itertuples()
        ),
    ]
    emit("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
