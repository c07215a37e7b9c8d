"""How hybrid search weighs its legs, measured once per index.

Hybrid search fuses the two ranked lists with weighted reciprocal-rank fusion. Each leg's
weight is the product of

* an index-level **guard** (``calibrate``, ``leg_weights``): at index time, sentences taken
  from ~200 chunks are searched with each leg alone. A leg that finds under 30 % as many of
  them (by MRR) as the other is a model that cannot read the corpus (an English-only model on
  Chinese text finds ~20 %, keyword search ~99 %) and weighs nothing; from 60 % on the legs
  weigh the same, with a ramp between. The probes are exact substrings of their chunks,
  which flatters keyword search, so they only tell a broken leg from a working one: the
  bundled model, the better leg on real SciFact claims, reaches 75 % of keyword search's
  probe MRR there, MiniLM, the weaker one, 71 %. As weights (relative MRR to the 4th power)
  they gave keyword search too much say (below the dense leg alone on lcqmc-dev);
* a per-query **confidence**: how far the leg's best hit stands above its second, in units
  of the spread of its top-100 scores (at least 1, squared). A leg with one clear winner
  outvotes a leg whose top is a tie. The gap to the mean (a z-score) rewarded BM25 whenever
  a rare word matched many chunks, right or wrong.

Measured on cmrc2018-dev, lcqmc-dev and SciFact (see README): better than either leg alone
and than plain RRF, and equal to keyword search with a useless dense model.
"""

from __future__ import annotations

import random
import re
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import lexical
from ..embedding import Embedder
from .relevance import fit, junk_queries

if TYPE_CHECKING:
    from ..stores import Lookups


CANDIDATES = 100  # per leg, for fusion and for the confidence statistics
RRF_K = 10
PROBE_QUERIES = 200
#: a small index is probed with a tenth of its chunks, down to this many: a first build of 1,000 notes would
#: otherwise spend a fifth of its embedding again on probes (the curve needs MIN_CHUNKS_FOR_CURVE of them)
MIN_PROBE_QUERIES = 64
#: a leg whose probe MRR is at most FLOOR times the other's weighs nothing, from FULL times on the same
PROBE_FLOOR, PROBE_FULL = 0.3, 0.6
PROBE_WINDOW = 300  # probe sentences come from a chunk's start, which every model reads (no truncation)
CALIBRATION_VERSION = 4  # 4: with the relevance curves
_SENTENCE = re.compile(r"(?<=[。！？；.!?;\n])")


def confidence(scores: list[float]) -> float:
    """How clearly the best hit beats the second: their gap over the spread of the top scores (at least 1)."""
    if len(scores) < 3:
        return 1.0
    spread = statistics.pstdev(scores)
    return max(1.0, (scores[0] - scores[1]) / spread) if spread > 0 else 1.0


def leg_weights(dense_probe_mrr: float, keyword_probe_mrr: float) -> tuple[float, float]:
    """Each leg's weight from the probe: 0 up to PROBE_FLOOR of the other's MRR, 1 from PROBE_FULL, a ramp between."""
    best = max(dense_probe_mrr, keyword_probe_mrr)
    if best <= 0:
        return 1.0, 1.0
    ramp = PROBE_FULL - PROBE_FLOOR
    dense, keyword = (min(1.0, max(0.0, (mrr / best - PROBE_FLOOR) / ramp))
                      for mrr in (dense_probe_mrr, keyword_probe_mrr))
    return dense, keyword


Ranked = list[tuple[int, float]]


def reciprocal_rank_fusion(dense: Ranked, keyword: Ranked, weights: tuple[float, float],
                           k: int = RRF_K) -> list[tuple[int, float]]:
    """Each chunk's sum of weight / (k + rank) over the legs that found it, best first."""
    fused: dict[int, float] = {}
    for ranked, weight in zip((dense, keyword), weights, strict=True):
        for rank, (chunk_id, _) in enumerate(ranked, 1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def fuse(dense: Ranked, keyword: Ranked, index_weights: tuple[float, float],
         k: int = RRF_K) -> tuple[list[tuple[int, float]], tuple[float, float]]:
    """Hybrid fusion: the index's leg weights times each leg's confidence for this query, squared.

    Returns (chunk id, fused score) best first, and the weights used.
    """
    weights = (index_weights[0] * confidence([s for _, s in dense]) ** 2,
               index_weights[1] * confidence([s for _, s in keyword]) ** 2)
    return reciprocal_rank_fusion(dense, keyword, weights, k), weights


def _probe_sentence(text: str, rng: random.Random) -> str:
    sentences = [s.strip() for s in _SENTENCE.split(text[:PROBE_WINDOW]) if len(s.strip()) >= 8]
    return (rng.choice(sentences) if sentences else text.strip())[:64]


def _mrr(targets: list[int], ranked: list[Ranked]) -> float:
    total = 0.0
    for target, row in zip(targets, ranked, strict=True):
        ids = [chunk_id for chunk_id, _ in row[:10]]
        total += 1 / (ids.index(target) + 1) if target in ids else 0.0
    return total / max(1, len(targets))


def _tops(rows: list[Ranked]) -> list[float]:
    """Each query's top score (0 where nothing matched at all)."""
    return [row[0][1] if row else 0.0 for row in rows]


def probe_count(chunks: int) -> int:
    """How many of an index's chunks the calibration probes: PROBE_QUERIES, a tenth of a small index."""
    return min(PROBE_QUERIES, max(MIN_PROBE_QUERIES, chunks // 10))


def calibrate(view: Lookups, embedder: Embedder, after_dense: Callable[[], None] = lambda: None) -> dict:
    """Measure each leg on sentences drawn from the index itself; the weights hybrid search uses.

    The same run asks questions the index cannot answer, to fit each mode's relevance curve.
    ``after_dense`` runs once the queries are embedded, before the keyword leg (which loads jieba).
    """
    sample = view.sample_chunks(probe_count(view.chunk_count))
    if not sample:
        return {}
    rng = random.Random(0)
    targets = [chunk_id for chunk_id, _ in sample]
    probes = [_probe_sentence(text, rng) for _, text in sample]
    queries = probes + junk_queries()
    dense = view.dense_search(embedder.encode_queries(queries), CANDIDATES)
    after_dense()
    keyword = [view.keyword_search(lexical.query_terms(q), CANDIDATES) for q in queries]
    n = len(probes)
    mrr = {"dense": _mrr(targets, dense[:n]), "keyword": _mrr(targets, keyword[:n])}
    dense_weight, keyword_weight = leg_weights(mrr["dense"], mrr["keyword"])
    curves = {leg: fit(_tops(rows[n:]), _tops(rows[:n])) for leg, rows in (("dense", dense), ("keyword", keyword))}
    return {"version": CALIBRATION_VERSION, "probes": len(sample), "dense_probe_mrr": round(mrr["dense"], 4),
            "keyword_probe_mrr": round(mrr["keyword"], 4), "dense_weight": round(dense_weight, 4),
            "keyword_weight": round(keyword_weight, 4), "relevance": curves}
