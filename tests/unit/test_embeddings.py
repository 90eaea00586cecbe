"""The narrative encoder against vectors sentence-transformers computed for the same texts
(tests/fixtures/minilm_reference.json, made with sentence-transformers on PyTorch's CPU
build), and the incremental store: blank texts, long texts, repeated texts, reuse by content,
a model change."""

import json
from pathlib import Path

import numpy as np
import pytest

from ntsb_assets.lib import embeddings as E

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "minilm_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def encoder(model_cache):
    return E.Encoder(cache_dir=model_cache)


def _vectors(enc: E.Encoder, texts: list[str]) -> np.ndarray:
    return enc.encode([enc.chunks([t])[0][0] for t in texts])


def test_float32_graph_gives_sentence_transformers_vectors(tmp_path):
    enc = E.Encoder(cache_dir=tmp_path, quantized=False)
    ref = np.array(REFERENCE["vectors"], dtype=np.float32)
    got = _vectors(enc, REFERENCE["texts"])
    assert np.allclose((got * ref).sum(axis=1), 1.0, atol=1e-5), (got * ref).sum(axis=1)
    assert enc.version.endswith("-g1") and "int8" not in enc.version


def test_int8_graph_stays_close_and_keeps_the_neighbours(encoder):
    ref = np.array(REFERENCE["vectors"], dtype=np.float32)
    got = _vectors(encoder, REFERENCE["texts"])
    assert ((got * ref).sum(axis=1) > 0.97).all(), (got * ref).sum(axis=1)
    # the paraphrase pairs rank the same way: the landing roll's nearest is the other landing roll
    sims = got @ got.T
    assert int(np.argsort(-sims[0])[1]) == 2
    assert encoder.version.endswith("-int8")


def test_a_cached_graph_loads_without_the_quantizer(encoder, model_cache):
    """The int8 graph is made once per cache directory; a process that finds it there (every
    build after the first, the API's query encoder) does not import the quantizer and the
    onnx package behind it, about a second."""
    import subprocess
    import sys

    assert [f.name for f in model_cache.glob("*.onnx")] == [f"all-minilm-l6-v2-{encoder.version}.onnx"]
    probe = (
        "import sys; from pathlib import Path; from ntsb_assets.lib import embeddings as E; "
        f"e = E.Encoder(cache_dir=Path({str(model_cache)!r})); "
        "print(e.version, 'onnxruntime.quantization' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [encoder.version, "False"], out.stdout + out.stderr


def test_long_text_is_cut_into_overlapping_windows_covering_it_all(encoder):
    text = " ".join(f"word{i}" for i in range(3000))  # about 100 KB's worth of tokens in kind
    [windows] = encoder.chunks([text])
    assert len(windows) > 10
    assert all(len(w.ids) <= E.WINDOW for w in windows)
    assert windows[0].start == 0 and windows[-1].end == len(text)
    assert all(b.start < a.end for a, b in zip(windows, windows[1:], strict=False))  # they overlap


def test_the_investigation_statement_is_not_embedded(encoder):
    statement = (
        "NTSB investigators may not have traveled in support of this investigation and used data provided "
        "by various sources to prepare this aircraft accident report."
    )
    [windows] = encoder.chunks([statement + "The airplane nosed over."])
    assert len(windows) == 1 and windows[0].start == len(statement)
    assert encoder.chunks([statement, "", "   \n"]) == [[], [], []]


def test_store_counts_blank_embeds_repeats_once_and_reuses_by_content(encoder):
    cause = "The pilot's failure to maintain directional control."
    rows = [
        ("e1", 1, "narrative", "The pilot lost control on landing."),
        ("e1", 1, "probable_cause", cause),
        ("e2", 1, "probable_cause", cause),
        ("e3", 1, "narrative", "  "),
        ("e4", 1, "narrative", None),
        ("e5", 1, "narrative", "Ç'était garbled \x00\ufffd 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ####"),
    ]
    first = E.embed_narratives(rows, None, encoder)
    assert (first.texts, first.blank, first.embedded, first.reused) == (4, 2, 4, 0)
    assert first.chunks_embedded == 3  # the repeated probable cause once
    assert first.table.num_rows == 4
    meta = first.table.schema.metadata
    assert meta[b"model"] == E.MODEL_NAME.encode() and meta[b"model_version"] == encoder.version.encode()
    second = E.embed_narratives([*rows, ("e6", 1, "narrative", "A deer ran across the runway.")], first.table, encoder)
    assert (second.embedded, second.reused, second.chunks_embedded) == (1, 4, 1)
    assert np.array_equal(E.vectors_of(second.table)[:4], E.vectors_of(first.table))
    # a text that changed is embedded again; one that is gone is dropped
    third = E.embed_narratives([("e1", 1, "narrative", "The pilot lost control on takeoff.")], second.table, encoder)
    assert (third.embedded, third.reused, third.table.num_rows) == (1, 0, 1)


def test_a_cap_embeds_the_latest_events_first_and_the_rest_in_later_runs(encoder):
    statement = (
        "NTSB investigators may not have traveled in support of this investigation and used data provided "
        "by various sources to prepare this aircraft accident report."
    )
    shared = "The pilot's failure to maintain airspeed."
    rows = [
        ("20010101X00001", 1, "narrative", "The engine lost power on climb."),
        ("20010101X00001", 1, "probable_cause", shared),
        ("20020101X00002", 1, "narrative", "A deer crossed the runway."),
        ("20020101X00002", 1, "probable_cause", shared),
        ("20030101X00003", 1, "narrative", "The canopy opened after takeoff."),
        ("20030101X00003", 1, "probable_cause", statement),  # only the statement: blank, never waiting
    ]
    first = E.embed_narratives(rows, None, encoder, max_texts=3)
    # the latest events' first three distinct texts: the shared cause is one text, for both its events
    assert {(r["ev_id"], r["field"]) for r in first.table.select(["ev_id", "field"]).to_pylist()} == {
        ("20030101X00003", "narrative"),
        ("20020101X00002", "narrative"),
        ("20020101X00002", "probable_cause"),
        ("20010101X00001", "probable_cause"),
    }
    assert (first.texts, first.embedded, first.waiting, first.blank) == (4, 4, 1, 1)
    second = E.embed_narratives(rows, first.table, encoder, max_texts=3)
    assert (second.texts, second.embedded, second.reused, second.waiting) == (5, 1, 4, 0)
    assert second.table.num_rows == 5
    assert E.embed_narratives(rows, second.table, encoder, max_texts=3).embedded == 0


def test_a_new_model_version_embeds_everything_again(encoder):
    rows = [("e1", 1, "narrative", "The engine quit over the lake.")]
    first = E.embed_narratives(rows, None, encoder)
    old = first.table.replace_schema_metadata({**first.table.schema.metadata, b"model_version": b"older"})
    again = E.embed_narratives(rows, old, encoder)
    assert (again.embedded, again.reused, again.model_changed) == (1, 0, True)


def test_vector_index_scores_an_event_by_its_best_window_and_honours_the_filter(encoder):
    from ntsb_assets.lib import narratives as N

    rows = [
        ("e1", 1, "narrative", "A deer ran onto the runway as the airplane touched down."),
        ("e2", 1, "narrative", "The engine lost power due to carburetor icing over the lake."),
        ("e3", 1, "narrative", "The pilot ran out of fuel short of the airport."),
        ("e3", 1, "probable_cause", "Fuel exhaustion due to the pilot's inadequate preflight planning."),
    ]
    index = N.VectorIndex(E.embed_narratives(rows, None, encoder).table)
    hits = index.search(encoder.embed_query("the tanks ran dry before the destination"), 3)
    assert [h.ev_id for h in hits][0] == "e3" and len({h.ev_id for h in hits}) == 3
    assert hits[0].row in index.windows("e3") and index.passage(hits[0].row).field == "probable_cause"
    assert hits[0].score == pytest.approx(
        max(index.vectors[list(index.windows("e3"))] @ encoder.embed_query("the tanks ran dry before the destination"))
    )
    assert [h.ev_id for h in index.search(encoder.embed_query("an animal on the strip"), 1)] == ["e1"]
    mask = index.mask(["e2", "e3"])
    assert "e1" not in [h.ev_id for h in index.search(encoder.embed_query("an animal on the strip"), 5, mask)]
    assert index.search(encoder.embed_query("anything"), 0) == []
    # similar: the nearest other events, never the event itself; None without a vector
    near = index.similar("e3", 5)
    assert "e3" not in [h.ev_id for h in near] and len(near) == 2
    assert index.similar("e9", 5) is None
    assert [h.ev_id for h in index.similar("e3", 5, index.mask(["e1"]))] == ["e1"]


def test_reciprocal_rank_fusion():
    from ntsb_assets.lib import narratives as N

    fused = N.fuse(["a", "b", "c"], ["c", "a", "d"])
    assert [e for e, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_topics_find_the_themes_label_them_and_show_the_one_that_grew(encoder):
    """Three themes written in varied words: k-means on the narratives' vectors puts each in
    its own topic, class-based TF-IDF names it by its own words, and the theme whose events
    are all recent has the highest lift."""
    import duckdb
    import pandas as pd

    from ntsb_assets.lib import topics as T

    themes = {
        "bird": [
            f"During the {w} the airplane struck a flock of {b}; the windshield was cracked by the bird strike."
            for w in ("takeoff roll", "initial climb", "approach", "landing flare")
            for b in ("geese", "gulls", "ducks")
        ],
        "fuel": [
            f"The engine lost power during {w} because the fuel tanks were empty; fuel exhaustion, {c}."
            for w in ("cruise", "descent", "the approach", "climb")
            for c in ("poor planning", "no preflight check", "a miscalculated fuel burn")
        ],
        "icing": [
            f"The pilot flew into {w} and ice accumulated on the wings; the airframe icing made the airplane {c}."
            for w in ("freezing rain", "clouds below freezing", "freezing drizzle", "wet snow")
            for c in ("stall", "lose altitude", "unable to climb")
        ],
    }
    rows, facts, narr = [], [], []
    for theme, texts in themes.items():
        for i, text in enumerate(texts):
            ev = f"{theme}{i:02d}"
            rows.append((ev, 1, "narrative", text))
            year = 2020 + i % 3 if theme == "icing" else 1990 + i * 2
            facts.append({"ev_id": ev, "event_date": pd.Timestamp(year, 6, 1)})
            narr.append({"ev_id": ev, "narrative": text, "probable_cause": None})
    vectors = E.embed_narratives(rows, None, encoder).table
    con = duckdb.connect()
    con.register("fact_accidents", pd.DataFrame(facts))
    con.register("narratives", pd.DataFrame(narr))
    fit = T.topics(con, vectors, k=3)
    out = fit.tables
    assign = out["assignments"].set_index("ev_id").topic
    topic_of = {theme: {assign[f"{theme}{i:02d}"] for i in range(12)} for theme in themes}
    assert all(len(t) == 1 for t in topic_of.values()) and len(set.union(*topic_of.values())) == 3, topic_of
    table = out["topics"].set_index("topic")
    for theme, words in (
        ("bird", {"bird", "strike", "flock"}),
        ("fuel", {"fuel", "exhaustion", "tanks"}),
        ("icing", {"icing", "ice", "freezing"}),
    ):
        label = table.label[next(iter(topic_of[theme]))]
        assert words & set(label.split(" / ")), (theme, label)
    assert table.lift.idxmax() == next(iter(topic_of["icing"]))
    assert out["by_year"].events.sum() == 36 and table.events.sum() == 36
    shares = out["by_year"].groupby("year").share.sum()
    assert np.allclose(shares, 1.0)
    few = T.topics(con, vectors.slice(0, 3), k=2).tables  # too few to cluster: empty tables, not an error
    assert all(len(df) == 0 for df in few.values()) and list(few["topics"].columns) == list(out["topics"].columns)


def test_a_kept_topic_fit_is_used_again_until_the_events_change_by_a_tenth(encoder):
    """A monthly update keeps the topics' numbers and labels: with the fit of an earlier run
    each event goes to its nearest topic and no words are counted; a fit made for other
    events (more than REFIT_CHANGE apart), another k or another embedding model is made again."""
    import duckdb
    import pandas as pd

    from ntsb_assets.lib import topics as T

    themes = {
        "bird": "During the {} the airplane struck a flock of geese; the windshield was cracked by the bird strike.",
        "fuel": "The engine lost power during {} because the fuel tanks were empty; fuel exhaustion.",
    }
    phases = ("takeoff", "climb", "cruise", "descent", "approach", "landing", "taxi", "go-around", "flare", "hover")
    rows, facts, narr = [], [], []
    for theme, text in themes.items():
        for i, phase in enumerate(phases):
            ev = f"{theme}{i:02d}"
            rows.append((ev, 1, "narrative", text.format(phase)))
            facts.append({"ev_id": ev, "event_date": pd.Timestamp(2000 + i, 1, 1)})
            narr.append({"ev_id": ev, "narrative": text.format(phase), "probable_cause": None})
    vectors = E.embed_narratives(rows, None, encoder).table
    con = duckdb.connect()
    con.register("fact_accidents", pd.DataFrame(facts))
    con.register("narratives", pd.DataFrame(narr))
    first = T.topics(con, vectors.slice(0, 19), k=2)  # 19 events: bird00-09, fuel00-08
    assert first.refit == "no fit kept" and first.model is not None
    assert dict(first.model.schema.metadata)[b"events"] == b"19"
    # 20 events, within a tenth of 19: the fit is used; the new event joins its theme's topic
    again = T.topics(con, vectors, k=2, model=first.model)
    assert again.refit is None and again.model is first.model
    topic = again.tables["assignments"].set_index("ev_id").topic
    assert topic["fuel09"] == topic["fuel00"] != topic["bird00"]
    assert list(again.tables["topics"].label) == list(first.tables["topics"].label)
    assert again.tables["topics"].events.sum() == 20
    # more than a tenth apart, another k asked, or vectors of another model: fitted again
    assert T.topics(con, vectors.slice(0, 16), k=2, model=first.model).refit.startswith("16 events")
    assert T.topics(con, vectors, k=3, model=first.model).refit.startswith("k asked 3")
    other = vectors.replace_schema_metadata({**vectors.schema.metadata, b"model_version": b"another"})
    assert "is not the fit's" in T.topics(con, other, k=2, model=first.model).refit


def test_the_int8_scan_finds_the_events_exact_search_finds(monkeypatch):
    """From INT8_SCAN_FROM windows the candidates come from the int8 scan and are scored again
    in float32: the same events, in the same order, with the same scores as the exhaustive
    float32 product, for search, a filter and similar events."""
    import pyarrow as pa

    from ntsb_assets.lib import narratives as N

    rng = np.random.default_rng(7)
    n_events, per_event = 1_500, 3
    centres = rng.normal(size=(60, E.DIM))
    vectors = centres[rng.integers(0, 60, n_events * per_event)] + rng.normal(0, 0.6, (n_events * per_event, E.DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = [f"E{i:05d}" for i in range(n_events) for _ in range(per_event)]
    table = pa.table(
        {
            "ev_id": ids,
            "aircraft_key": [1] * len(ids),
            "field": ["narrative"] * len(ids),
            "char_start": [0] * len(ids),
            "char_end": [10] * len(ids),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), E.DIM),
        }
    )
    exact = N.VectorIndex(table)
    assert exact._scan is None  # below INT8_SCAN_FROM
    monkeypatch.setattr(N, "INT8_SCAN_FROM", 1)
    scanned = N.VectorIndex(table)
    assert scanned._scan is not None
    queries = vectors[rng.integers(0, len(vectors), 25)] + rng.normal(0, 0.3, (25, E.DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    allowed = exact.mask(ids[::7])
    for q in queries:
        for mask in (None, allowed):
            a, b = exact.search(q, 20, mask), scanned.search(q, 20, mask)
            assert [h.ev_id for h in a] == [h.ev_id for h in b]
            assert [h.row for h in a] == [h.row for h in b]
            assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
    for ev in ("E00003", "E01234"):
        assert [h.ev_id for h in exact.similar(ev, 10)] == [h.ev_id for h in scanned.similar(ev, 10)]
    # the windows scored again are those within twice the scan's error bound of their event's
    # best: the bound holds for every window, for one query and for an event's windows at once
    for q in (queries[:1], queries[:5], vectors[3:6]):
        error = np.abs(scanned._scan(q) - vectors @ q.T).max()
        bound = scanned._scan.error_bound(q)
        assert error <= bound < 0.1, (error, bound)
