"""How well the default cut (relevance 0.5) separates answers from noise, per data set and mode.

For each BEIR set: of the queries whose correct document is ranked first, how many the cut
hides (lower is better); of questions the corpus cannot answer, how many get no hit at all
among the first three (higher is better). Unanswerable questions: the other data sets'
queries (another domain or language) and gibberish other than the calibration's own. Each
figure is a real search with ``--min-score CUT``, so the whole cut is measured (in hybrid mode
also its agreement rule, ``relevance.passes_cut``).

    python bench/relevance.py [--sets cmrc2018-dev lcqmc-dev] [--model multilingual-e5-small-q4]

Indexes are built once under $FSEARCH_HOME/eval (as `fsearch eval` does) and reused.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from faiss_search.backends import choose_embedder
from faiss_search.config import load_settings
from faiss_search.evaluation import eval_index_dir, load_beir
from faiss_search.indexing.pipeline import index_documents
from faiss_search.models.registry import resolve_model
from faiss_search.retrieval.relevance import MIN_RELEVANCE, gibberish
from faiss_search.retrieval.search import MODES, Searcher
from faiss_search.stores import open_reader as open_index

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shown(searcher: Searcher, queries: list[str], mode: str, cut: float, k: int = 3) -> list[list[str]]:
    """The sources of the hits each query shows (the first ``k``, as a search with --min-score ``cut``)."""
    rows = []
    for start in range(0, len(queries), 256):
        for result in searcher.search_many(queries[start:start + 256], k, mode, min_score=cut, snippets=False):
            rows.append([hit.source for hit in result.hits])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["cmrc2018-dev", "lcqmc-dev"])
    parser.add_argument("--others", nargs="+", default=["cmrc2018-dev", "lcqmc-dev", "scifact"],
                        help="sets whose queries serve as unanswerable questions for the others")
    parser.add_argument("--model", default="multilingual-e5-small-q4")
    parser.add_argument("--cuts", type=float, nargs="+", default=[0.3, MIN_RELEVANCE, 0.7])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = parser.parse_args()
    settings = load_settings()
    foreign = {name: list(load_beir(SHARED / name).queries.values()) for name in args.others
               if (SHARED / name).is_dir()}
    print(f"model {args.model}; default cut {MIN_RELEVANCE}")
    print("| set | mode | correct first | cut | correct first hidden | " + " | ".join(
        f"{name} dropped" for name in [*foreign, "gibberish"]) + " |")
    print("|---|---|---|---|---|" + "---|" * (len(foreign) + 1))
    for name in args.sets:
        if not (SHARED / name).is_dir():
            print(f"skipped {name}: not in {SHARED}", file=sys.stderr)
            continue
        dataset = load_beir(SHARED / name)
        resolved = resolve_model(args.model, settings.models_dir)
        run_settings = replace(settings, index_dir=eval_index_dir(settings, dataset.name, resolved))
        embedder = choose_embedder(None, settings.models_dir, args.model)
        index_documents(dataset.documents, run_settings, embedder)
        searcher = Searcher(open_index(run_settings.index_folder), embedder)
        junk_sets = {other: queries for other, queries in foreign.items() if other != name}
        junk_sets["gibberish"] = gibberish(300, seed=7)  # not the calibration's own (seed 0)
        ids = list(dataset.queries)
        for mode in args.modes:
            firsts = shown(searcher, [dataset.queries[q] for q in ids], mode, 0.0, k=1)
            correct = [q for q, hits in zip(ids, firsts, strict=True) if hits and hits[0] in dataset.qrels[q]]
            for cut in args.cuts:
                kept = shown(searcher, [dataset.queries[q] for q in correct], mode, cut)
                hidden = sum(not hits or hits[0] not in dataset.qrels[q] for q, hits in zip(correct, kept, strict=True))
                dropped = {junk_name: f"{100 * sum(not hits for hits in rows) / len(rows):.1f} %"
                           for junk_name, queries in junk_sets.items()
                           for rows in [shown(searcher, queries, mode, cut)]}
                print(f"| {name} | {mode} | {len(correct)}/{len(ids)} | {cut} | "
                      f"{100 * hidden / max(1, len(correct)):.1f} % | "
                      + " | ".join(dropped.get(n, "-") for n in [*foreign, "gibberish"]) + " |", flush=True)
        searcher.reader.close()


if __name__ == "__main__":
    main()
