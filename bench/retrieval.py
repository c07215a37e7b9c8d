"""Retrieval quality of `fsearch` on a BEIR-layout data set, measured the way a user runs it.

Each document is exported to its own file, the folder is indexed with `fsearch index`,
and all questions go through one `fsearch search --queries FILE --json -k K`. Hits are
mapped back to documents (first hit of each document counts) and scored.

    python bench/retrieval.py ../shared/data/cmrc2018-dev            # defaults
    python bench/retrieval.py ../shared/data/scifact --split test --model all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path


def load_beir(folder: Path, split: str) -> tuple[dict, dict, dict]:
    corpus = {}
    for line in (folder / "corpus.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        corpus[row["_id"]] = (row.get("title", "") + " " + row["text"]).strip()
    queries = {}
    for line in (folder / "queries.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    qrels: dict[str, set] = {}
    for n, line in enumerate((folder / "qrels" / f"{split}.tsv").open(encoding="utf-8")):
        qid, did, score = line.rstrip("\n").split("\t")[:3]
        if n == 0 and not score.isdigit():
            continue
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(did)
    return corpus, {q: queries[q] for q in qrels}, qrels


def score(ranked: dict[str, list[str]], qrels: dict[str, set]) -> dict[str, float]:
    totals = {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "MRR@10": 0.0, "nDCG@10": 0.0}
    for qid, relevant in qrels.items():
        docs = ranked.get(qid, [])[:10]
        for k in (1, 5, 10):
            totals[f"recall@{k}"] += len(relevant & set(docs[:k])) / len(relevant)
        first = next((i for i, d in enumerate(docs) if d in relevant), None)
        totals["MRR@10"] += 1 / (first + 1) if first is not None else 0
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(docs) if d in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
        totals["nDCG@10"] += dcg / ideal
    return {k: 100 * v / len(qrels) for k, v in totals.items()}


def fsearch(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("fsearch")
    return subprocess.run([str(exe), *args], check=True, capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--model", default=None)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out"))
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if not (args.dataset / "qrels" / f"{args.split}.tsv").exists():
        args.split = "test"
    corpus, queries, qrels = load_beir(args.dataset, args.split)
    work = args.workdir / args.dataset.name
    docs_dir, index_dir = work / "docs", work / "index"
    docs_dir.mkdir(parents=True, exist_ok=True)
    for doc_id, text in corpus.items():
        (docs_dir / f"{doc_id}.txt").write_text(text + "\n", encoding="utf-8")
    query_ids = list(queries)
    query_file = work / "queries.txt"
    query_file.write_text("\n".join(" ".join(queries[q].split()) for q in query_ids) + "\n", encoding="utf-8")

    model_args = ["--model", args.model] if args.model else []
    started = time.perf_counter()
    fsearch("index", str(docs_dir), "--index-dir", str(index_dir), "--rebuild", *model_args)
    index_seconds = time.perf_counter() - started
    status = json.loads(fsearch("status", "--index-dir", str(index_dir), "--json").stdout)
    started = time.perf_counter()
    out = fsearch("search", "--queries", str(query_file), "--json", "-k", str(args.k), "--index-dir", str(index_dir))
    search_seconds = time.perf_counter() - started

    ranked = {}
    for qid, line in zip(query_ids, out.stdout.splitlines()):
        seen: list[str] = []
        for hit in json.loads(line)["results"]:
            doc_id = Path(hit["source"]).stem
            if doc_id not in seen:
                seen.append(doc_id)
        ranked[qid] = seen
    metrics = score(ranked, qrels)
    report = {
        "dataset": args.dataset.name, "model": status["model"], "documents": len(corpus), "chunks": status["chunks"],
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
