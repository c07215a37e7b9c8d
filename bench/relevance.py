"""How well the default cut (relevance 0.5) separates answers from noise, per data set and mode.

For each BEIR set: of the queries whose correct document is ranked first, how many the cut
would hide (lower is better); of questions the corpus cannot answer, how many are dropped
entirely (higher is better). Unanswerable questions: the other data sets' queries (another
domain or language) and letter gibberish, none of which the index's calibration saw.

    python bench/relevance.py [--sets cmrc2018-dev lcqmc-dev] [--model multilingual-e5-small-q4]

Indexes are built once under $FSEARCH_HOME/eval (as `fsearch eval` does) and reused.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import replace
from pathlib import Path

from faiss_search.backends import choose_embedder
from faiss_search.config import load_settings
from faiss_search.evaluation import eval_index_dir, load_beir
from faiss_search.indexer import index_documents
from faiss_search.models.registry import resolve_model
from faiss_search.relevance import MIN_RELEVANCE
from faiss_search.search import MODES, Searcher
from faiss_search.store import open_index

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def gibberish(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                     for _ in range(rng.randint(1, 4))) for _ in range(n)]


def top_scores(searcher: Searcher, queries: list[str], mode: str) -> list[tuple[float, str | None]]:
    """(relevance of the first hit, its document id) per query; (0, None) when nothing matched."""
    rows = []
    for start in range(0, len(queries), 256):
        for result in searcher.search_many(queries[start:start + 256], 1, mode, snippets=False):
            rows.append((result.hits[0].score, result.hits[0].source) if result.hits else (0.0, None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["cmrc2018-dev", "lcqmc-dev"])
    parser.add_argument("--others", nargs="+", default=["cmrc2018-dev", "lcqmc-dev", "scifact"],
                        help="sets whose queries serve as unanswerable questions for the others")
    parser.add_argument("--model", default="multilingual-e5-small-q4")
    parser.add_argument("--cut", type=float, default=MIN_RELEVANCE)
    args = parser.parse_args()
    settings = load_settings()
    foreign = {name: list(load_beir(SHARED / name).queries.values()) for name in args.others
               if (SHARED / name).is_dir()}
    print(f"cut: relevance {args.cut}; model {args.model}")
    print("| set | mode | correct first | hidden by the cut | unanswerable set | dropped |")
    print("|---|---|---|---|---|---|")
    for name in args.sets:
        if not (SHARED / name).is_dir():
            print(f"skipped {name}: not in {SHARED}", file=sys.stderr)
            continue
        dataset = load_beir(SHARED / name)
        resolved = resolve_model(args.model, settings.models_dir)
        run_settings = replace(settings, index_dir=eval_index_dir(settings, dataset.name, resolved))
        embedder = choose_embedder(None, settings.models_dir, args.model)
        index_documents(dataset.documents, run_settings, embedder)
        searcher = Searcher(open_index(run_settings.index_path), embedder)
        junk_sets = {other: queries for other, queries in foreign.items() if other != name}
        junk_sets["gibberish"] = gibberish(300)
        ids = list(dataset.queries)
        for mode in MODES:
            answers = top_scores(searcher, [dataset.queries[q] for q in ids], mode)
            correct = [score for q, (score, doc) in zip(ids, answers) if doc in dataset.qrels[q]]
            hidden = sum(score < args.cut for score in correct)
            for junk_name, queries in junk_sets.items():
                dropped = sum(score < args.cut for score, _ in top_scores(searcher, queries, mode))
                print(f"| {name} | {mode} | {len(correct)}/{len(ids)} | {100 * hidden / max(1, len(correct)):.1f} % "
                      f"| {junk_name} ({len(queries)}) | {100 * dropped / len(queries):.1f} % |", flush=True)
        searcher.reader.close()


if __name__ == "__main__":
    main()
