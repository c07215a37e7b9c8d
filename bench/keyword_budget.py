"""Does the bounded keyword query (stores/local/keyword.py KEYWORD_POSTINGS_BUDGET) change answers on the eval sets?

Each BEIR set is indexed with the tests' fake embedder (keyword search does not use the
vectors), then every query runs twice in keyword mode: with the budget, and with no budget
(FTS5 ranking every match). Prints how many queries went over the budget, recall@1 and
MRR@10 both ways, and the share of queries whose top 10 is the same.

    python bench/keyword_budget.py ../shared/data/cmrc2018-dev ../shared/data/lcqmc-dev ../shared/data/scifact
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faiss_search import lexical  # noqa: E402
from faiss_search.config import load_settings  # noqa: E402
from faiss_search.evaluation import load_beir, rank_documents, score  # noqa: E402
from faiss_search.indexing.pipeline import index_documents  # noqa: E402
from faiss_search.retrieval.search import Searcher  # noqa: E402
from faiss_search.stores.local import keyword as store  # noqa: E402
from faiss_search.stores.local.reader import IndexReader  # noqa: E402
from tests.conftest import FakeEmbedder  # noqa: E402


def over_budget(reader: IndexReader, queries: list[str]) -> int:
    with reader.snapshot():
        return sum(sum(reader._document_frequencies(terms).values()) > store.KEYWORD_POSTINGS_BUDGET
                   for terms in (lexical.query_terms(q) for q in queries) if terms)


def main() -> None:
    print("| set | chunks | queries over the budget | R@1 / MRR@10 bounded | R@1 / MRR@10 exact | same top 10 |")
    print("|---|---|---|---|---|---|")
    budget = store.KEYWORD_POSTINGS_BUDGET
    for folder in map(Path, sys.argv[1:]):
        dataset = load_beir(folder)
        with tempfile.TemporaryDirectory() as tmp:
            settings = replace(load_settings(index_dir=Path(tmp) / "index"), home=Path(tmp))
            index_documents(dataset.documents, settings, FakeEmbedder())
            reader = IndexReader(settings.index_folder)
            searcher = Searcher(reader, FakeEmbedder())
            store.KEYWORD_POSTINGS_BUDGET = budget
            over = over_budget(reader, list(dataset.queries.values()))
            bounded = rank_documents(searcher, dataset, "keyword").documents
            store.KEYWORD_POSTINGS_BUDGET = 10 ** 12
            exact = rank_documents(searcher, dataset, "keyword").documents
            store.KEYWORD_POSTINGS_BUDGET = budget
            a, b = score(bounded, dataset.qrels), score(exact, dataset.qrels)
            same = sum(bounded[q][:10] == exact[q][:10] for q in exact) / len(exact)
            print(f"| {dataset.name} | {reader.index.ntotal:,} | {over} of {len(dataset.queries)} | "
                  f"{a['recall@1']:.2f} / {a['MRR@10']:.2f} | {b['recall@1']:.2f} / {b['MRR@10']:.2f} | "
                  f"{100 * same:.1f} % |", flush=True)


if __name__ == "__main__":
    main()
