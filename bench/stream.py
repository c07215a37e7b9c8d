"""Big first builds: memory as the corpus grows, and how busy the embedder is kept.

    python bench/stream.py memory --mb 400 --step 50   # generated mixed Chinese/English text, fake embedder
    python bench/stream.py busy [--set ../shared/data/scifact] [--limit 800]   # the bundled model
    python bench/stream.py end --chunks 4040000   # memory of a big build's last steps (IVF, fusion probe)

``memory`` indexes a generated corpus in a process of its own with the tests' fast
deterministic embedder (8-d, or ``--dim``) and prints resident memory (current and peak) each time
another ``--step`` MB has been read, and the pipeline's chunks/s without a model.
``busy`` indexes real documents with the default model and prints the share of the wall
time the embedder was computing (reading, chunking and segmenting run beside it).
``end`` writes generated chunks straight into a writer (no reading, no model: minutes, not
the hour ``memory`` takes to reach millions of chunks) and prints the resident memory of each
of a build's last steps: IVF conversion, term frequencies, the fusion probe, the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def memory(megabytes: float, step: float, dim: int, work: Path) -> None:
    corpus = work / "corpus"
    started = time.perf_counter()
    files = subprocess.run([sys.executable, "-m", "tests.stream_driver", str(corpus), str(megabytes), "--generate"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    print(f"generated {files} files, {megabytes} MB, in {time.perf_counter() - started:.0f} s", flush=True)
    env = {**os.environ, "FSEARCH_HOME": str(work / "home")}
    run = subprocess.run([sys.executable, "-m", "tests.stream_driver", str(corpus), str(work / "index"),
                          "--sample-mb", str(step), "--dim", str(dim)],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    report = json.loads(run.stdout)
    print("| read (MB) | chunks | RSS now (MB) | peak RSS (MB) | seconds |")
    print("|---|---|---|---|---|")
    for sample in report["samples"]:
        print(f"| {sample['mb_read']:,.0f} | {sample['chunks_done']:,} | {sample['rss_mb']:,.0f} | "
              f"{sample['peak_rss_mb']:,.0f} | {sample['seconds']:,.0f} |")
    last = report["samples"][-1]
    print(f"until the last file was read: {last['mb_read'] / last['seconds']:.2f} MB/s, "
          f"{last['chunks_done'] / last['seconds']:,.0f} chunks/s")
    print(f"total: {report['total_chunks']:,} chunks in {report['seconds']:.0f} s "
          f"({report['total_chunks'] / report['seconds']:,.0f} chunks/s, "
          f"{megabytes / report['seconds']:.2f} MB/s without a model), {report['commits']} commits, "
          f"peak RSS {report['peak_rss_mb']:.0f} MB (each reading process at most "
          f"{report['readers_peak_rss_mb']:.0f} MB)")


def end(chunks: int, work: Path) -> None:
    import numpy as np

    from faiss_search.chunking import Chunk
    from faiss_search.retrieval.fusion import calibrate
    from faiss_search.stores.local.writer import IndexWriter
    from tests.conftest import FakeEmbedder
    from tests.stream_driver import EN, ZH, rss_mb

    embedder, rng, per_file = FakeEmbedder(dim=8), random.Random(0), 500
    writer = IndexWriter(work / "index", embedder.info, {"chunk_size": 500, "overlap": 50})

    def step(name: str, run) -> object:
        Path("/proc/self/clear_refs").write_text("5")  # restarts the peak (VmHWM) from the current RSS
        started, before = time.perf_counter(), rss_mb("VmRSS")
        result = run()
        print(f"| {name} | {time.perf_counter() - started:,.1f} s | {before:,.0f} MB | {rss_mb('VmHWM'):,.0f} MB | "
              f"{rss_mb('VmRSS'):,.0f} MB |", flush=True)
        return result

    def fill() -> None:
        for number in range(-(-chunks // per_file)):
            words = [[rng.choice(ZH) if rng.random() < 0.6 else rng.choice(EN) for _ in range(60)]
                     for _ in range(per_file)]
            vectors = np.random.default_rng(number).standard_normal((per_file, 8)).astype(np.float32)
            writer.add_file(f"part{number}.txt", str(number), 1, 0.0, "utf-8",
                            [Chunk(f"第{number}-{i}句" + "".join(w), 0, 1, 1) for i, w in enumerate(words)],
                            vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
                            [" ".join(["第", str(number), str(i), "句", *w]) for i, w in enumerate(words)],
                            [f"{number}-{i}" for i in range(per_file)])
            if number % 200 == 199:
                writer.checkpoint()

    print("| step | seconds | RSS before | peak RSS | RSS after |")
    print("|---|---|---|---|---|")
    step(f"write {chunks:,} chunks", fill)
    step("checkpoint", writer.checkpoint)
    step("IVF conversion", writer.prepare)
    step("term frequencies", writer.refresh_term_frequencies)
    writer.set_fusion({**step("fusion probe", lambda: calibrate(writer, embedder)), "changed_chunks": 0})
    step("commit", writer.commit)
    writer.close()


def busy(dataset: Path, limit: int, work: Path) -> None:
    from faiss_search.backends import choose_embedder
    from faiss_search.config import load_settings
    from faiss_search.evaluation import load_beir
    from faiss_search.indexing.pipeline import index_path

    docs = work / "docs"
    docs.mkdir(parents=True)
    chosen = load_beir(dataset).documents[:limit]
    for doc in chosen:
        (docs / f"{doc.source}.txt").write_text(doc.text, encoding="utf-8")
    settings = load_settings(index_dir=work / "index")
    embedder = choose_embedder(None, settings.models_dir, engine=settings.engine)
    report = index_path(docs, settings, embedder, processes=True)
    print(f"{dataset.name}: {len(chosen)} documents, {report.total_chunks} chunks, "
          f"{sum(len(d.text) for d in chosen):,} characters, {report.seconds:.0f} s wall, "
          f"embedding {report.embed_seconds:.0f} s = {100 * report.embed_seconds / report.seconds:.1f} % busy; "
          f"waited for reading {report.read_wait_seconds:.2f} s; {report.commits} commits; "
          f"{report.to_dict()['chunks_per_second']} chunks/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    mem = sub.add_parser("memory")
    mem.add_argument("--mb", type=float, default=400)
    mem.add_argument("--step", type=float, default=50)
    mem.add_argument("--dim", type=int, default=8, help="the fake embedder's dimension")
    last = sub.add_parser("end")
    last.add_argument("--chunks", type=int, default=1_200_000)
    real = sub.add_parser("busy")
    real.add_argument("--set", type=Path, default=SHARED / "scifact")
    real.add_argument("--limit", type=int, default=800)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsearch-stream-") as tmp:
        if args.what == "memory":
            memory(args.mb, args.step, args.dim, Path(tmp))
        elif args.what == "end":
            end(args.chunks, Path(tmp))
        else:
            if not args.set.is_dir():
                sys.exit(f"no data set at {args.set}")
            busy(args.set, args.limit, Path(tmp))


if __name__ == "__main__":
    main()
