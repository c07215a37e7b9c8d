"""What a client that cannot send `input_type` loses: queries embedded as passages vs as queries.

    python bench/query_side.py                                  # cmrc2018-dev, the bundled model
    python bench/query_side.py --dataset ../shared/data/lcqmc-dev

LangChain's `embed_query` and RAGFlow send no `input_type` to `fsearch serve`, so their queries
are embedded as passages (for e5: "passage: " instead of "query: ") unless they use the
query-side model name (`<model>:query`). This prints dense recall@1/5/10 and MRR@10 both ways.
Indexes are reused from $FSEARCH_HOME/eval.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from faiss_search.backends import choose_embedder
from faiss_search.config import DEFAULT_MODEL, load_settings
from faiss_search.evaluation import eval_index_dir, load_beir, rank_documents, score
from faiss_search.indexing.pipeline import index_documents
from faiss_search.models.registry import resolve_model
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import open_reader as open_index

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmrc2018-dev"


class PassageSideQueries:
    """The model, but every query is embedded as a passage (what a client without input_type gets)."""

    def __init__(self, inner) -> None:
        self.inner, self.info, self.long_input_policy = inner, inner.info, inner.long_input_policy

    def encode_queries(self, texts):
        return self.inner.encode_passages(texts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    settings = load_settings()
    dataset = load_beir(args.dataset, None)
    run_settings = replace(settings, index_dir=eval_index_dir(settings, dataset.name,
                                                              resolve_model(args.model, settings.models_dir)))
    embedder = choose_embedder(None, settings.models_dir, args.model)
    index_documents(dataset.documents, run_settings, embedder)
    print(f"{dataset.name}, {args.model}, dense, {len(dataset.qrels)} queries")
    print("| queries embedded as | recall@1 | recall@5 | recall@10 | MRR@10 |\n|---|---|---|---|---|")
    for label, side in (("query (input_type=query or <model>:query)", embedder),
                        ("passage (no input_type)", PassageSideQueries(embedder))):
        ranked = rank_documents(Searcher(open_index(run_settings.index_folder), side), dataset, "dense").documents
        metrics = score(ranked, dataset.qrels)
        print(f"| {label} | " + " | ".join(f"{metrics[k]:.2f}" for k in ("recall@1", "recall@5", "recall@10",
                                                                          "MRR@10")) + " |")


if __name__ == "__main__":
    main()
