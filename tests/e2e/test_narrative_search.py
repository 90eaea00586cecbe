"""Search by meaning earns its place: on the paraphrase queries of
benchmarks/paraphrase_queries.json over real narratives, hybrid search (BM25 fused with the
narratives' vectors) ranks at least as well as keyword search alone. A slice of the real file
keeps the test to about a minute; benchmarks/narrative_search.py runs the whole file."""

import csv
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SHARED = Path(os.environ.get("NTSB_SHARED_DATA", REPO.parent / "shared" / "data")) / "ntsb"
NARRATIVES = SHARED / "real_1948_2002" / "narratives.csv"
EVENTS = 6_000  # the first events of the file


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    if not NARRATIVES.exists():
        if os.environ.get("CI"):  # CI has it: there, a missing file is a failure
            raise RuntimeError(f"the real NTSB narratives are missing: {NARRATIVES} (set NTSB_SHARED_DATA)")
        pytest.skip(f"real NTSB narratives not found at {NARRATIVES} (set NTSB_SHARED_DATA)")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import narrative_search

    part = tmp_path_factory.mktemp("narratives") / "narratives.csv"
    with open(NARRATIVES, encoding="utf-8", newline="") as src, open(part, "w", encoding="utf-8", newline="") as out:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(out, reader.fieldnames or [])
        writer.writeheader()
        seen: set[str] = set()
        for row in reader:
            seen.add(row["ev_id"])
            if len(seen) > EVENTS:
                break
            writer.writerow(row)
    return narrative_search.evaluate(part, None)


def test_hybrid_ranks_at_least_as_well_as_keyword_search(evaluation):
    for rules in ("summary", "strict"):  # the revised relevance rules, and the strict ones alone
        s = evaluation[rules]
        assert s["hybrid"]["p10"] >= s["keyword"]["p10"], (rules, s)
        assert s["hybrid"]["ndcg10"] >= s["keyword"]["ndcg10"], (rules, s)
        assert s["semantic"]["p10"] > s["keyword"]["p10"], (rules, s)  # the queries avoid the narratives' words
