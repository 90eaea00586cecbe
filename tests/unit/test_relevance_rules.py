"""The relevance rules of the paraphrase queries (benchmarks/paraphrase_queries.json) that
benchmarks/narrative_search.py and tests/e2e/test_narrative_search.py judge search with."""

import json
import re
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import narrative_search  # noqa: E402

QUERY = {
    "q": "the tanks ran dry",
    "all": ["fuel exhaustion"],
    "also": [{"all": [r"out of (usable |useable )?fuel"], "none": [r"\bnot\b"]}, {"all": [r"tanks", r"\bdry\b"]}],
}
TEXTS = {
    "strict": "total loss of engine power due to fuel exhaustion",
    "also": "the airplane ran out of useable fuel 6 miles short",
    "excluded": "the airplane did not run out of useable fuel",
    "both patterns": "both tanks were dry",
    "one pattern": "the tanks were full",
}


def test_strict_rule_is_the_all_patterns_and_the_revised_adds_the_also_rules():
    strict, revised = narrative_search.judge(QUERY, TEXTS)
    assert [e for e in TEXTS if strict(e)] == ["strict"]
    assert [e for e in TEXTS if revised(e)] == ["strict", "also", "both patterns"]
    assert not revised("no such event")


def test_every_rule_in_the_query_file_compiles_and_says_what_it_found():
    queries = json.loads(narrative_search.QUERIES.read_text(encoding="utf-8"))["queries"]
    assert len(queries) >= 30
    for q in queries:
        assert q["all"], q["q"]
        for rule in [{"all": q["all"]}, *q.get("also", [])]:
            assert set(rule) <= {"all", "none"} and rule["all"], (q["q"], rule)
            for pattern in rule["all"] + rule.get("none", []):
                re.compile(pattern)
        assert bool(q.get("also")) == bool(q.get("found")), q["q"]  # a revision quotes what it was for
