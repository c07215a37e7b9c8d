"""The Milvus store against the local one: quality on cmrc2018-dev, and scale on synthetic indexes.

    python bench/milvus.py quality                   # fsearch eval on cmrc2018-dev, local store vs Milvus Lite
    python bench/milvus.py scale --sizes 10000 100000 --runs 100

``scale`` builds a synthetic local index (bench/perf.py: clustered 384-d vectors, texts of real
Chinese words with Zipf frequencies), pushes it to Milvus Lite (``fsearch export``'s code), and
measures each store in a fresh process: query p50/p95 per mode on real cmrc2018 questions encoded
by the default model, and the size on disk.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perf import CMRC, ROOT, build_synthetic, vocabulary  # noqa: E402

MODES = ("dense", "keyword", "hybrid")


def quality(work: Path) -> None:
    from faiss_search.config import load_settings
    from faiss_search.evaluation import evaluate
    from faiss_search.locations import parse_address

    settings = load_settings()
    address = parse_address(f"milvus://{work}/cmrc.db", "cmrc")
    rows = {"local": evaluate(CMRC, settings, [], list(MODES)),
            "milvus-lite": evaluate(CMRC, settings, [], list(MODES), store=address)}
    print(f"{'store':<12} {'mode':<8} {'R@1':>6} {'R@5':>6} {'MRR@10':>7} {'q/s':>6}")
    for store, results in rows.items():
        for row in results:
            m = row.metrics
            print(f"{store:<12} {row.mode:<8} {m['recall@1']:6.2f} {m['recall@5']:6.2f} {m['MRR@10']:7.2f} "
                  f"{row.queries_per_second:6.1f}")


LATENCY = """
import json, sys, time
sys.path.insert(0, {bench!r})
from pathlib import Path
from perf import percentile
from faiss_search import lexical
from faiss_search.embedding import load_embedder
from faiss_search.models.registry import resolve_model
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import open_reader
from faiss_search.locations import parse_address
embedder = load_embedder(resolve_model("multilingual-e5-small-q4", Path("/tmp")))
embedder.encode_queries(["warm up"]); lexical.segment("预热")
store = {store!r}
started = time.perf_counter()
reader = open_reader(Path({folder!r}), parse_address(store, "bench") if store else None)
opened = time.perf_counter() - started
searcher = Searcher(reader, embedder)
questions = json.loads(Path({questions!r}).read_text())
out = {{"open_s": opened, "chunks": searcher.size, "disk_bytes": reader.size_on_disk()}}
for mode in {modes!r}:
    searcher.search(questions[0], 10, mode)
    times = []
    for q in questions[:{runs}]:
        t = time.perf_counter(); searcher.search(q, 10, mode); times.append(1000 * (time.perf_counter() - t))
    out[mode] = (percentile(times, 0.5), percentile(times, 0.95))
print(json.dumps(out))
"""


def latency(folder: Path, store: str, questions: Path, runs: int) -> dict:
    code = LATENCY.format(bench=str(ROOT / "bench"), store=store, folder=str(folder), questions=str(questions),
                          modes=MODES, runs=runs)
    return json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                     text=True).stdout.strip().splitlines()[-1])


def scale(work: Path, sizes: list[int], runs: int) -> None:
    from faiss_search.evaluation import load_beir
    from faiss_search.locations import parse_address
    from faiss_search.stores.milvus.publish import push

    words = vocabulary()
    questions = work / "questions.json"
    questions.write_text(json.dumps([q for q in load_beir(CMRC).queries.values()][:runs + 1], ensure_ascii=False))
    print(f"{'chunks':>8} {'store':<12} {'build s':>8} {'disk MB':>8} " + " ".join(f"{m + ' p50/p95 ms':>20}"
                                                                           for m in MODES))
    for n in sizes:
        folder = work / f"local-{n}"
        built = build_synthetic(folder, n, words)
        store = f"milvus://{work}/milvus-{n}.db"
        started = time.perf_counter()
        push(folder, parse_address(store, "bench"))
        pushed = time.perf_counter() - started
        for name, address, seconds in (("local", "", built), ("milvus-lite", store, pushed)):
            out = latency(folder, address, questions, runs)
            size = out["disk_bytes"] / 1e6 if out["disk_bytes"] else float("nan")
            cells = " ".join(f"{out[m][0]:9.1f} / {out[m][1]:8.1f}" for m in MODES)
            label = f"{seconds:8.1f}" if name == "local" else f"+{seconds:7.1f}"
            print(f"{n:>8} {name:<12} {label} {size:8.1f} {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("quality", "scale"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    if not CMRC.is_dir():
        sys.exit(f"needs {CMRC}")
    work = Path(tempfile.mkdtemp(prefix="fsearch-milvus-"))
    try:
        quality(work) if args.what == "quality" else scale(work, args.sizes, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
