"""Performance of fsearch on this machine: indexing, incremental updates, query latency, memory, start-up.

    python bench/perf.py                          # everything (about 15 minutes on 2 cores)
    python bench/perf.py --sizes 10000 100000     # skip the 1M-chunk index
    python bench/perf.py --skip-indexing          # only the synthetic-scale part

Indexing is measured through the CLI on 120 real cmrc2018-dev documents with the default
model. Query latency at 10k/100k/1M chunks uses SYNTHETIC vectors (random, clustered,
normalized, 384-d) and synthetic texts made of real Chinese words, because embedding 1M
real chunks would take days on 2 cores; queries are the real cmrc2018 questions, encoded by
the real default model (its encoding time is part of each dense/hybrid query).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CMRC = ROOT.parent / "shared" / "data" / "cmrc2018-dev"
FSEARCH = str(Path(sys.executable).with_name("fsearch"))


def timed(*args: str, env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run([FSEARCH, *args], check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- indexing through the CLI -------------------------------------------------------------------

def bench_indexing(work: Path) -> list[tuple[str, str]]:
    from faiss_search.evaluation import load_beir

    dataset = load_beir(CMRC)
    docs = work / "docs"
    shutil.rmtree(work, ignore_errors=True)
    docs.mkdir(parents=True)
    chosen = dataset.documents[:121]
    for doc in chosen[:120]:
        (docs / f"{doc.source}.txt").write_text(doc.text + "\n", encoding="utf-8")
    env = {**os.environ, "FSEARCH_HOME": str(work / "home")}
    index = ["--index-dir", str(work / "index")]
    first = timed("index", str(docs), *index, env=env)
    report = json.loads(subprocess.run([FSEARCH, "index", str(docs), *index, "--json"], check=True,
                                       capture_output=True, text=True, env=env).stdout)
    unchanged = timed("index", str(docs), *index, env=env)
    edited = docs / f"{chosen[0].source}.txt"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n新增的一段文字，用来测试增量索引。\n", encoding="utf-8")
    one = timed("index", str(docs), *index, env=env)
    edited = docs / f"{chosen[2].source}.txt"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n又一段新增的文字。\n", encoding="utf-8")
    (docs / f"{chosen[1].source}.txt").unlink()
    (docs / f"{chosen[120].source}.txt").write_text(chosen[120].text + "\n", encoding="utf-8")
    changed = timed("index", str(docs), *index, env=env)
    status = json.loads(subprocess.run([FSEARCH, "status", "--json", *index], check=True, capture_output=True,
                                       text=True, env=env).stdout)
    chars = sum(len(d.text) for d in chosen[:120])
    return [
        ("index 120 cmrc2018 documents (CLI, default model)",
         f"{first:.1f} s; {status['chunks']} chunks, {status['chunks'] / first:.1f} chunks/s, "
         f"{chars / first:.0f} characters/s"),
        ("re-index, nothing changed", f"{unchanged:.2f} s ({100 * unchanged / first:.1f} % of the first run; "
                                      f"reported {report['files_unchanged']} unchanged)"),
        ("re-index, 1 file edited", f"{one:.2f} s ({100 * one / first:.1f} % of the first run)"),
        ("re-index, 1 edited + 1 deleted + 1 added",
         f"{changed:.2f} s ({100 * changed / first:.1f} % of the first run)"),
    ]


def bench_batch_sizes() -> list[tuple[str, str]]:
    """Chunks/s of the default model by batch size, on 128 real 500-character cmrc2018 chunks."""
    from faiss_search.chunking import chunk_text
    from faiss_search.embedding import load_embedder
    from faiss_search.evaluation import load_beir
    from faiss_search.models.registry import resolve_model

    texts = [c.text for d in load_beir(CMRC).documents[:80] for c in chunk_text(d.text, 500, 50)][:128]
    embedder = load_embedder(resolve_model("multilingual-e5-small-q4", ROOT))
    embedder.encode_passages(texts[:4])
    results = []
    for size in (1, 4, 16, 64):
        started = time.perf_counter()
        for i in range(0, len(texts), size):
            embedder.encode_passages(texts[i:i + size])
        results.append(f"{size}: {len(texts) / (time.perf_counter() - started):.2f}")
    return [("default model, chunks/s by batch size (128 chunks of ~500 characters)", "; ".join(results))]


# -- synthetic indexes at scale -------------------------------------------------------------------

def vocabulary() -> list[str]:
    from faiss_search.evaluation import load_beir
    from faiss_search.lexical import segment

    words: dict[str, int] = {}
    for doc in load_beir(CMRC).documents:
        for word in segment(doc.text):
            words[word] = words.get(word, 0) + 1
    return [w for w, _ in sorted(words.items(), key=lambda x: -x[1])]


def synthetic_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = np.random.default_rng(0).standard_normal((256, dim)).astype(np.float32)  # the same clusters always
    vectors = centres[rng.integers(0, 256, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def build_synthetic(folder: Path, n: int, words: list[str], index_type: str = "auto") -> float:
    from faiss_search.chunking import Chunk
    from faiss_search.embedding import load_embedder
    from faiss_search.models.registry import resolve_model
    from faiss_search.stores.local.writer import IndexWriter

    info = load_embedder(resolve_model("multilingual-e5-small-q4", folder)).info
    rng, pyrng = np.random.default_rng(0), random.Random(0)
    cumulative = list(itertools.accumulate(1 / (i + 1) for i in range(len(words))))  # Zipf-like word frequencies
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    vectors = synthetic_vectors(n, info.dim, rng)
    with IndexWriter(folder, info, {"chunk_size": 500, "chunk_overlap": 50}, index_type=index_type) as writer:
        per_file = 100
        for f in range(0, n, per_file):
            texts = [" ".join(pyrng.choices(words, cum_weights=cumulative, k=24)) for _ in range(min(per_file, n - f))]
            chunks = [Chunk(t, 0, len(t), i + 1) for i, t in enumerate(texts)]
            writer.add_file(f"/synthetic/{f // per_file}.txt", f"sha{f}", 0, 0.0, "utf-8", chunks,
                            vectors[f:f + len(texts)], texts, [f"h{f}-{i}" for i in range(len(texts))])
        writer.refresh_term_frequencies()  # as the indexer does when it calibrates
        writer.commit()
    return time.perf_counter() - started


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_queries(folder: Path, questions: list[str], runs: int) -> dict:
    """In a fresh process: open time, RSS after opening, latency per mode (model loaded beforehand)."""
    Path(str(folder) + ".questions.json").write_text(json.dumps(questions[:runs + 1], ensure_ascii=False))
    code = f"""
import json, time, sys
sys.path.insert(0, {str(ROOT / 'bench')!r})
from perf import rss_mb, percentile
from pathlib import Path
from faiss_search.embedding import load_embedder
from faiss_search.models.registry import resolve_model
from faiss_search.retrieval.search import Searcher
from faiss_search.stores.local.reader import IndexReader
from faiss_search import lexical
embedder = load_embedder(resolve_model("multilingual-e5-small-q4", Path("/tmp")))
embedder.encode_queries(["warm up"]); lexical.segment("预热")
before = rss_mb()
started = time.perf_counter(); reader = IndexReader(Path({str(folder)!r})); opened = time.perf_counter() - started
after = rss_mb()
searcher = Searcher(reader, embedder)
questions = json.loads(Path({str(folder) + ".questions.json"!r}).read_text())
out = {{"open_s": opened, "rss_open_mb": after - before, "rss_total_mb": after, "chunks": reader.index.ntotal}}
for mode in ("dense", "keyword", "hybrid"):
    searcher.search(questions[0], 10, mode)
    times = []
    for q in questions[:{runs}]:
        t = time.perf_counter(); searcher.search(q, 10, mode); times.append(1000 * (time.perf_counter() - t))
    out[mode] = (percentile(times, 0.5), percentile(times, 0.95), percentile(times, 0.99))
print(json.dumps(out))
"""
    return json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                     text=True).stdout)


def approximate_recall(flat: Path, other: Path, n: int) -> float:
    """recall@10 of an approximate index against the flat one, for queries drawn like the data."""
    from faiss_search.stores.local.reader import IndexReader

    queries = synthetic_vectors(200, 384, np.random.default_rng(1))  # same clusters, new points
    exact, approx = IndexReader(flat), IndexReader(other)
    hits = 0
    for a, b in zip(exact.dense_search(queries, 10), approx.dense_search(queries, 10), strict=True):
        hits += len({i for i, _ in a} & {i for i, _ in b})
    return hits / (10 * len(queries))


def startup(work: Path) -> list[tuple[str, str]]:
    docs = ROOT / "data" / "docs.txt"
    env = {**os.environ, "FSEARCH_HOME": str(work / "home-startup")}
    subprocess.run([FSEARCH, "index", str(docs)], check=True, capture_output=True, env=env)
    helps = [timed("--help") for _ in range(5)]
    searches = [timed("search", "坐火车去别的城市", env=env) for _ in range(5)]
    return [("`fsearch --help`", f"{statistics.median(helps):.2f} s (median of 5)"),
            ("cold one-shot `fsearch search` (hybrid, sample index)",
             f"{statistics.median(searches):.2f} s (median of 5)")]


class Rows(list):
    """Table rows, printed as soon as they are measured (a long run shows its progress)."""

    def __iadd__(self, rows):
        for name, value in rows:
            print(f"| {name} | {value} |", flush=True)
        return super().__iadd__(rows)

    def append(self, row):
        self.__iadd__([row])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "fsearch-perf")
    parser.add_argument("--skip-indexing", action="store_true", help="skip the real-model indexing measurements")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--flat-only", action="store_true", help="skip the HNSW and IVF builds")
    args = parser.parse_args()
    if not CMRC.exists():
        sys.exit(f"needs {CMRC}")
    print(f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}\n")
    print("| measurement | result |\n|---|---|", flush=True)
    rows = Rows()
    if not args.skip_indexing:
        rows += bench_batch_sizes()
        rows += bench_indexing(args.work / "indexing")
    rows += startup(args.work)
    from faiss_search.evaluation import load_beir

    questions = list(load_beir(CMRC).queries.values())
    words = vocabulary()
    for n in args.sizes:
        folder = args.work / f"synthetic-{n}"
        build = build_synthetic(folder, n, words)
        m = measure_queries(folder, questions, args.queries)
        label = f"{n:,} chunks (synthetic), flat"
        rows.append((f"{label}: build / open",
                     f"{build:.0f} s / {m['open_s'] * 1000:.0f} ms; RSS +{m['rss_open_mb']:.0f} MB "
                     f"after opening ({m['rss_total_mb']:.0f} MB with model)"))
        for mode in ("dense", "keyword", "hybrid"):
            p50, p95, p99 = m[mode]
            rows.append((f"{label}: {mode} query p50 / p95 / p99", f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms"))
        if n >= 100_000 and not args.flat_only:
            kind = "ivf" if n >= 1_000_000 else "hnsw"
            other = args.work / f"synthetic-{n}-{kind}"
            build = build_synthetic(other, n, words, index_type=kind)
            recall = approximate_recall(folder, other, n)
            m = measure_queries(other, questions, args.queries)
            rows.append((f"{n:,} chunks, {kind}: build, recall@10 vs flat", f"{build:.0f} s, {recall:.3f}"))
            for mode in ("dense", "keyword", "hybrid"):
                p50, p95, p99 = m[mode]
                rows.append((f"{n:,} chunks, {kind}: {mode} query p50 / p95 / p99",
                             f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms"))
            shutil.rmtree(other, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
