"""Hybrid fusion against its legs and plain RRF, and what each of its terms contributes.

For each BEIR folder: the corpus is indexed as `fsearch eval` does (reusing its index under
$FSEARCH_HOME/eval), every query is run once through the dense and the keyword leg (top 100
chunks each), and the fusions are scored on those same runs (documents count at their best
chunk). Rows: each leg alone, plain reciprocal-rank fusion (equal weights, k = 10), fsearch's
hybrid, and variants that swap one of its terms for the previous release's (index weights =
probe MRR relative to the better leg to the 4th power; per-query confidence = the top score's
z-score against the top 100), so each term's contribution shows.

    python bench/fusion.py ../shared/data/cmrc2018-dev ../shared/data/lcqmc-dev
    python bench/fusion.py ../shared/data/scifact --model <MiniLM folder> --chunk-size 100000
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faiss_search import lexical  # noqa: E402
from faiss_search.backends import choose_embedder  # noqa: E402
from faiss_search.config import DEFAULT_MODEL, load_settings  # noqa: E402
from faiss_search.evaluation import eval_index_dir, load_beir, score  # noqa: E402
from faiss_search.indexing.pipeline import index_documents  # noqa: E402
from faiss_search.models.registry import resolve_model  # noqa: E402
from faiss_search.retrieval.fusion import (  # noqa: E402
    CANDIDATES,
    Ranked,
    confidence,
    fuse,
    leg_weights,
    reciprocal_rank_fusion,
)
from faiss_search.retrieval.search import clean_query  # noqa: E402
from faiss_search.stores import open_reader as open_index  # noqa: E402

Fusion = Callable[[Ranked, Ranked], list[int]]


def weighted_rrf(dense: Ranked, keyword: Ranked, weights: tuple[float, float]) -> list[int]:
    return [chunk_id for chunk_id, _ in reciprocal_rank_fusion(dense, keyword, weights)]


def z_score(scores: list[float]) -> float:
    """The previous release's confidence: the top score against the mean of the top 100."""
    if len(scores) < 3 or statistics.pstdev(scores) == 0:
        return 1.0
    return max(1.0, (scores[0] - statistics.fmean(scores)) / statistics.pstdev(scores))


def fusions(fusion: dict) -> dict[str, Fusion]:
    probe = (fusion["dense_probe_mrr"], fusion["keyword_probe_mrr"])
    guard = leg_weights(*probe)
    power4 = tuple((mrr / (max(probe) or 1)) ** 4 for mrr in probe)

    def with_confidence(weights: tuple[float, float], measure: Callable[[list[float]], float]) -> Fusion:
        def fuse(dense: Ranked, keyword: Ranked) -> list[int]:
            per_query = [measure([s for _, s in leg]) ** 2 for leg in (dense, keyword)]
            return weighted_rrf(dense, keyword, (weights[0] * per_query[0], weights[1] * per_query[1]))
        return fuse

    return {
        "dense": lambda dense, keyword: [c for c, _ in dense],
        "keyword": lambda dense, keyword: [c for c, _ in keyword] or [c for c, _ in dense],
        "plain RRF (k = 10)": lambda dense, keyword: weighted_rrf(dense, keyword, (1.0, 1.0)),
        "**fsearch hybrid** (guard × lead²)": lambda dense, keyword: [c for c, _ in fuse(dense, keyword, guard)[0]],
        "guard, no per-query term": lambda dense, keyword: weighted_rrf(dense, keyword, guard),
        "guard × z-score²": with_confidence(guard, z_score),
        "MRR⁴ weights × lead²": with_confidence(power4, confidence),
        "previous release (MRR⁴ × z-score²)": with_confidence(power4, z_score),
    }


def run(folder: Path, model: str, chunk_size: int | None, index_dir: Path | None = None) -> None:
    settings = load_settings()
    if chunk_size:
        settings = replace(settings, chunk_size=chunk_size, chunk_overlap=0)
    dataset = load_beir(folder)
    resolved = resolve_model(model, settings.models_dir)
    index_dir = index_dir or eval_index_dir(settings, dataset.name, resolved)
    embedder = choose_embedder(None, settings.models_dir, model, engine=settings.engine)
    index_documents(dataset.documents, replace(settings, index_dir=index_dir), embedder)
    reader = open_index(index_dir)
    lexical.load()
    ids = list(dataset.queries)
    texts = [clean_query(dataset.queries[q]) for q in ids]
    with reader.snapshot():
        dense = reader.dense_search(embedder.encode_queries(texts), CANDIDATES)
        keyword = [reader.keyword_search(lexical.query_terms(t), CANDIDATES) for t in texts]
        source = {c: chunk.source for c, chunk in reader.fetch({c for row in dense + keyword for c, _ in row}).items()}
        fusion = reader.manifest.fusion
    print(f"\n{dataset.name}, {resolved.name}: {len(ids)} queries; probe MRR dense {fusion['dense_probe_mrr']:.3f}, "
          f"keyword {fusion['keyword_probe_mrr']:.3f}\n")
    print("| fusion | recall@1 | MRR@10 |\n|---|---|---|")
    for name, fused in fusions(fusion).items():
        ranked = {q: list(dict.fromkeys(source[c] for c in fused(d, k)))[:10]
                  for q, d, k in zip(ids, dense, keyword, strict=True)}
        metrics = score(ranked, dataset.qrels)
        print(f"| {name} | {metrics['recall@1']:.2f} | {metrics['MRR@10']:.2f} |", flush=True)
    reader.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--chunk-size", type=int, help="e.g. 100000 for whole documents (overlap 0)")
    parser.add_argument("--index-dir", type=Path, help="an index of the (one) data set made by `fsearch eval -i`")
    args = parser.parse_args()
    for folder in args.datasets:
        run(folder, args.model, args.chunk_size, args.index_dir)


if __name__ == "__main__":
    main()
