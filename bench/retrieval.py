"""Retrieval quality of `fsearch` on a BEIR-layout data set, measured the way a user runs it (files + CLI).

Each document is exported to its own file, the folder is indexed with `fsearch index`,
and all questions go through one `fsearch search --queries FILE --json -k K`. Hits are
mapped back to documents (first hit of each document counts) and scored.

    python bench/retrieval.py ../shared/data/cmrc2018-dev            # defaults
    python bench/retrieval.py ../shared/data/scifact --split test --model all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from faiss_search.evaluation import load_beir, score


def fsearch(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("fsearch")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"fsearch {args[0]} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out"))
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--mode", default="dense", choices=["hybrid", "dense", "keyword"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    dataset = load_beir(args.dataset, args.split)
    queries, qrels = dataset.queries, dataset.qrels
    work = args.workdir / args.dataset.name
    docs_dir, index_dir = work / "docs", work / "index"
    docs_dir.mkdir(parents=True, exist_ok=True)
    for doc in dataset.documents:
        (docs_dir / f"{doc.source}.txt").write_text(doc.text + "\n", encoding="utf-8")
    query_ids = list(queries)
    query_file = work / "queries.txt"
    query_file.write_text("\n".join(" ".join(queries[q].split()) for q in query_ids) + "\n", encoding="utf-8")

    model_args = ["--model", args.model] if args.model else []
    started = time.perf_counter()
    fsearch("index", str(docs_dir), "--index-dir", str(index_dir), "--rebuild", *model_args)
    index_seconds = time.perf_counter() - started
    status = json.loads(fsearch("status", "--index-dir", str(index_dir), "--json").stdout)
    started = time.perf_counter()
    out = fsearch("search", "--queries", str(query_file), "--json", "-k", str(args.k), "--index-dir", str(index_dir),
                  "--mode", args.mode)
    search_seconds = time.perf_counter() - started

    ranked = {}
    for qid, line in zip(query_ids, out.stdout.splitlines(), strict=True):
        seen: list[str] = []
        for hit in json.loads(line)["results"]:
            doc_id = Path(hit["source"]).stem
            if doc_id not in seen:
                seen.append(doc_id)
        ranked[qid] = seen
    metrics = score(ranked, qrels)
    report = {
        "dataset": args.dataset.name, "model": status["model"], "documents": len(dataset.documents),
        "chunks": status["chunks"],
        "queries": len(qrels), **{k: round(v, 2) for k, v in metrics.items()},
        "index_seconds": round(index_seconds, 1), "search_seconds": round(search_seconds, 1),
        "queries_per_second": round(len(qrels) / search_seconds, 1),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print("| " + " | ".join(report) + " |")
    print("|" + "---|" * len(report))
    print("| " + " | ".join(str(v) for v in report.values()) + " |")


if __name__ == "__main__":
    main()
