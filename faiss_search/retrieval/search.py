"""Dense, keyword and hybrid search over an index: the ``Searcher``, its hits and results.

Hybrid search fuses the two legs as ``fusion.py`` describes. Scores shown to people are relevances
between 0 and 1 (``relevance.py``); each hit also names its best-matching line (``snippets.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import lexical
from ..config import Settings
from ..embedding import Embedder, checked_vectors
from ..errors import IndexCorruptError, InputError
from ..manifest import check_model
from ..stores import REPAIR_HINT, Reader, open_reader
from .fusion import CANDIDATES, Ranked, fuse, leg_weights
from .relevance import has_curves, hit_relevance, passes_cut
from .snippets import locate

if TYPE_CHECKING:
    from ..locations import StoreAddress
    from ..reranking import Reranker

MODES = ("hybrid", "dense", "keyword")


def check_mode(mode: str) -> str:
    """``mode``, if it is one of MODES."""
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'", hint=f"use one of {', '.join(MODES)}")
    return mode


MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Hit:
    """One result: a chunk, its score and where it came from, with each leg's rank and score."""

    rank: int
    score: float
    text: str
    source: str
    line: int
    start: int
    end: int
    chunk_id: int
    dense_rank: int | None = None
    dense_score: float | None = None
    keyword_rank: int | None = None
    keyword_score: float | None = None
    #: ``line`` is where the chunk best answers the query (for ``vim +N``); the chunk itself starts here
    chunk_line: int = 0
    #: the best-matching sentence with some context, on one line
    snippet: str = ""
    #: the mode's own score (``score`` is the 0-1 relevance when the index has its curve; see relevance.py)
    raw_score: float = 0.0
    #: the PDF page the chunk is on (1-based), and its heading path (``安装 › 离线安装``) in a structured document
    page: int | None = None
    heading: str = ""
    #: with reranking: the reranker's score (then also ``score``), and the hit's rank and relevance before it
    rerank_score: float | None = None
    rank_before_rerank: int | None = None
    score_before_rerank: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str
    hits: list[Hit]
    seconds: float
    weights: dict = field(default_factory=dict)
    #: hits scored below this relevance were left out (0: none were)
    min_score: float = 0.0
    #: whether ``score`` is the 0-1 relevance (False for an index under 20 chunks, or one not re-indexed
    #: since relevance existed: then it is the mode's raw score and nothing is cut)
    calibrated: bool = True
    #: how many hits the cut left out
    below_min_score: int = 0
    #: the reranker that re-scored the hits ("" when none did), and the seconds it took
    reranker: str = ""
    rerank_seconds: float = 0.0

    def files(self) -> list[str]:
        """Each source once, in the order of its best hit."""
        return list(dict.fromkeys(hit.source for hit in self.hits))

    def to_dict(self) -> dict:
        return {"query": self.query, "mode": self.mode, "results": [h.to_dict() for h in self.hits],
                "weights": self.weights, "took_ms": round(self.seconds * 1000, 2), "min_score": self.min_score,
                "below_min_score": self.below_min_score, "calibrated": self.calibrated,
                **({"reranker": self.reranker, "rerank_ms": round(self.rerank_seconds * 1000, 2)}
                   if self.reranker else {})}


#: a "quoted phrase" (or a “Chinese-quoted” one) that every hit must hold
_PHRASE = re.compile(r'"([^"]+)"|“([^”]+)”')


def quoted_phrases(query: str) -> list[str]:
    """The phrases a query quotes: each must occur in every hit (case-insensitive for Latin letters)."""
    return [phrase.strip() for pair in _PHRASE.findall(query) for phrase in pair if phrase.strip()]


def clean_query(query: str) -> str:
    """Strip control characters and refuse empty queries; very long ones are cut (the model would truncate)."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in query).split())
    if not cleaned:
        raise InputError("empty query", hint="type a question or some keywords")
    return cleaned[:MAX_QUERY_CHARS]


class Searcher:
    """Keeps the index and the model loaded between queries. The model loads on the first dense query.

    Each query is answered inside one reader snapshot, so a commit made since the last query
    (an update or a rebuild) is followed, and vectors and texts always come from the same one.
    """

    def __init__(self, reader: Reader, embedder: Embedder, query_instruction: bool = True,
                 reranker: Reranker | None = None, rerank_candidates: int = Settings.rerank_candidates) -> None:
        self.reader = reader
        self._embedder = embedder
        self._checked_model: dict | None = None
        self.query_instruction = query_instruction
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates

    @property
    def embedder(self) -> Embedder:
        """The model, checked against the index's (again after a rebuild with another model)."""
        if self._checked_model != self.reader.manifest.model:
            check_model(self.reader.manifest, self._embedder.info)
            self._embedder.use_query_prefix(self.query_instruction)
            self._checked_model = self.reader.manifest.model
        return self._embedder

    @property
    def model_name(self) -> str:
        return self.reader.manifest.model["name"]

    @property
    def size(self) -> int:
        """Chunks in the newest committed generation."""
        with self.reader.snapshot():
            return self.reader.chunk_count

    @property
    def default_mode(self) -> str:
        return "hybrid" if self.reader.manifest.keyword else "dense"

    def _leg_weights(self) -> tuple[float, float]:
        """From the probe's MRRs (an index calibrated by an older fsearch gets today's weights at once)."""
        fusion = self.reader.manifest.fusion
        if "dense_probe_mrr" in fusion and "keyword_probe_mrr" in fusion:
            return leg_weights(fusion["dense_probe_mrr"], fusion["keyword_probe_mrr"])
        return 1.0, 1.0

    def search_many(self, queries: list[str], k: int, mode: str | None = None, min_score: float = 0.0,
                    snippets: bool = True, rerank: bool = False) -> list[SearchResult]:
        """Answer several queries from one generation of the index; their dense vectors are encoded in one batch.

        Hits whose relevance is not above ``min_score`` are left out (0 keeps all; on an index without
        relevance curves none are: their scores cannot be judged). Scores never rise down the list: each
        is held to the one above it. ``snippets=False`` skips finding each hit's best line
        (evaluation ranks documents and needs neither). ``rerank``: the reranker re-scores the first
        ``rerank_candidates`` hits that pass the cut, and its scores order and replace theirs; a longer
        list goes on in the first stage's order.
        """
        if k < 1:
            raise InputError(f"top-k must be at least 1, got {k}")
        if rerank and self.reranker is None:
            raise InputError("no reranker was given", hint="name one with --reranker MODEL or --rerank-url URL")
        reranker = self.reranker if rerank else None
        cleaned = [clean_query(q) for q in queries]
        phrases = [quoted_phrases(query) for query in cleaned]
        depth = max(k, self.rerank_candidates) if rerank else k
        with self.reader.snapshot():
            mode = check_mode(mode or self.default_mode)
            ranked, seconds = self._rank(cleaned, phrases, depth, mode)
            curves = self.reader.manifest.fusion.get("relevance") or {}
            started = time.perf_counter()
            chunks = self.reader.fetch({cid for row, _, _, _ in ranked for cid, _ in row})
            fetched = time.perf_counter() - started
        hit_count = sum(len(row) for row, _, _, _ in ranked) or 1
        results = []
        for query, quoted, (row, dense, keyword, weights), spent in zip(cleaned, phrases, ranked, seconds,
                                                                         strict=True):
            started = time.perf_counter()
            calibrated = has_curves(mode, curves)
            cut = 0.0 if quoted else min_score  # every hit holds the phrase: that is the test
            hits, below = self._judged(mode, row, dense, keyword, curves if calibrated else None, cut, chunks)
            reranked_in = 0.0
            if reranker is not None:
                hits, reranked_in = _reranked(reranker, query, hits, self.rerank_candidates)
            hits = [replace(hit, rank=rank) for rank, hit in enumerate(hits[:k], 1)]
            if snippets:
                terms = lexical.segment(query)
                hits = [replace(hit, line=match.line, snippet=match.snippet) for hit in hits
                        for match in [locate(terms, query, hit.text, hit.chunk_line)]]
            spent += fetched * len(row) / hit_count + time.perf_counter() - started
            results.append(SearchResult(query, mode, hits, spent, weights, cut if calibrated else 0.0,
                                        calibrated, below, reranker.name if reranker else "", reranked_in))
        return results

    def _judged(self, mode: str, row: Ranked, dense: Ranked, keyword: Ranked, curves: dict | None, cut: float,
                chunks: dict) -> tuple[list[Hit], int]:
        """The ranking's hits, each scored as a relevance (``curves`` None: the mode's raw score) held to the
        one above it, without those the cut leaves out (``relevance.passes_cut``); and how many it left out."""
        legs = {"dense": _positions(dense), "keyword": _positions(keyword)}
        hits: list[Hit] = []
        below = 0
        ceiling = float("inf")
        both_answered = bool(dense) and bool(keyword)
        for chunk_id, raw in row:
            d, kw = legs["dense"].get(chunk_id, (None, None)), legs["keyword"].get(chunk_id, (None, None))
            score = hit_relevance(mode, raw, {"dense": d[1], "keyword": kw[1]}, curves) if curves is not None else raw
            if curves is not None and not passes_cut(mode, score, cut, d[0], kw[0], both_answered):
                below += 1
                continue
            # in rank order: a hit is shown as at most as relevant as the one above it (hybrid ranks by
            # fused ranks, and a lower hit's stronger leg may score higher than a higher hit's)
            score = ceiling = min(score, ceiling)
            c = chunks.get(chunk_id)  # the same snapshot: every id found has its row, unless damaged
            if c is None:
                raise IndexCorruptError(f"the vectors name chunk {chunk_id}, which the sidecar lacks",
                                        hint=REPAIR_HINT)
            hits.append(Hit(len(hits) + 1, score, c.text, c.source, c.line, c.start, c.end, c.id,
                            d[0], d[1], kw[0], kw[1], c.line, "", raw, c.page, c.heading))
        return hits, below

    def _rank(self, cleaned: list[str], phrases: list[list[str]], k: int, mode: str
              ) -> tuple[list[tuple[Ranked, Ranked, Ranked, dict]], list[float]]:
        """Per query: the top-k (chunk id, score) of the chunks that hold its quoted ``phrases``, each leg's
        ranking and the fusion weights used; and the seconds each query took.

        In hybrid mode the keyword leg runs on a second thread while the queries are encoded and the
        vectors scanned (FTS5 and FAISS both release the GIL): a query waits for the slower leg, not
        for both (at 1M chunks each leg alone takes 100-150 ms). The legs' wall time is shared among
        the queries by the time each spent in them.
        """
        depth = max(CANDIDATES, k) if mode == "hybrid" or any(phrases) else k
        started = time.perf_counter()
        if mode == "hybrid":
            with ThreadPoolExecutor(max_workers=1) as pool:
                keyword_job = pool.submit(self._keyword_rows, cleaned, depth)
                dense_rows, dense_seconds = self._dense_rows(cleaned, depth)
                keyword_rows, keyword_seconds = keyword_job.result()
        else:  # one leg: no thread
            unused: tuple[list[Ranked], list[float]] = ([[] for _ in cleaned], [0.0] * len(cleaned))
            dense_rows, dense_seconds = self._dense_rows(cleaned, depth) if mode == "dense" else unused
            keyword_rows, keyword_seconds = self._keyword_rows(cleaned, depth) if mode == "keyword" else unused
        legs = time.perf_counter() - started
        spent = [d + kw for d, kw in zip(dense_seconds, keyword_seconds, strict=True)]
        seconds = [legs * s / (sum(spent) or 1) for s in spent]
        ranked = []
        index_weights = self._leg_weights()  # one snapshot: the same for every query of the batch
        for i, (dense, keyword) in enumerate(zip(dense_rows, keyword_rows, strict=True)):
            started = time.perf_counter()
            if mode == "hybrid":
                fused, weights = fuse(dense, keyword, index_weights)
                ranked.append((self._holding(fused, phrases[i], k), dense, keyword,
                               {"dense": round(weights[0], 4), "keyword": round(weights[1], 4)}))
            else:
                ranked.append((self._holding(dense or keyword, phrases[i], k), dense, keyword, {}))
            seconds[i] += time.perf_counter() - started
        return ranked, seconds

    def _holding(self, ranking: Ranked, phrases: list[str], k: int) -> Ranked:
        """The top ``k`` of ``ranking`` that hold every phrase; then, where it ranked fewer, the other chunks
        that hold them (in index order, scored 0): a quoted phrase finds every chunk it occurs in, as grep would."""
        if not phrases:
            return ranking[:k]
        holders = self.reader.chunks_holding(phrases)
        kept = [(chunk_id, score) for chunk_id, score in ranking if chunk_id in holders][:k]
        ranked = {chunk_id for chunk_id, _ in kept}
        return kept + [(chunk_id, 0.0) for chunk_id in sorted(holders - ranked)][:k - len(kept)]

    def _dense_rows(self, cleaned: list[str], depth: int) -> tuple[list[Ranked], list[float]]:
        """Each query's dense ranking, and its share (by length) of the batch's encoding and scan time."""
        started = time.perf_counter()
        vectors = checked_vectors(self.embedder.encode_queries(cleaned), len(cleaned), self.embedder.info.dim,
                                  "query")
        rows = self.reader.dense_search(vectors, depth)
        shared, total_chars = time.perf_counter() - started, sum(len(q) for q in cleaned) or 1
        return rows, [shared * len(q) / total_chars for q in cleaned]

    def _keyword_rows(self, cleaned: list[str], depth: int) -> tuple[list[Ranked], list[float]]:
        """Each query's keyword ranking and the seconds it took."""
        rows, seconds = [], []
        for query in cleaned:
            started = time.perf_counter()
            rows.append(self.reader.keyword_search(lexical.query_terms(query), depth))
            seconds.append(time.perf_counter() - started)
        return rows, seconds

    def search(self, query: str, k: int, mode: str | None = None, min_score: float = 0.0,
               rerank: bool = False) -> SearchResult:
        return self.search_many([query], k, mode, min_score, rerank=rerank)[0]


def _reranked(reranker: Reranker, query: str, hits: list[Hit], candidates: int) -> tuple[list[Hit], float]:
    """The first ``candidates`` hits in the reranker's order, scored by it, then the rest in their order (held
    below the last reranked score, so scores never rise down the list); and the seconds it took."""
    started = time.perf_counter()
    head, tail = hits[:candidates], hits[candidates:]
    scores = reranker.score(query, [hit.text for hit in head])
    order = sorted(range(len(head)), key=lambda i: -scores[i])  # stable: ties keep the first stage's order
    reranked = [replace(head[i], score=scores[i], rerank_score=scores[i], rank_before_rerank=head[i].rank,
                        score_before_rerank=head[i].score) for i in order]
    floor = reranked[-1].score if reranked else 1.0
    rest = [replace(hit, score=min(hit.score, floor), rank_before_rerank=hit.rank, score_before_rerank=hit.score)
            for hit in tail]
    return reranked + rest, time.perf_counter() - started


def _positions(ranked: Ranked) -> dict[int, tuple[int, float]]:
    return {chunk_id: (rank, score) for rank, (chunk_id, score) in enumerate(ranked, 1)}


def open_searcher(index_dir: Path, models_dir: Path, model: str | None = None,
                  query_instruction: bool = True, base_urls: Sequence[str] = (),
                  api_key: str | None = None, engine: str = "auto", store: StoreAddress | None = None,
                  threads: int = 0, reranker: Reranker | None = None,
                  rerank_candidates: int = Settings.rerank_candidates) -> Searcher:
    """Open an index with the model it was built with; an explicitly different ``model`` is refused."""
    from ..backends import choose_embedder
    from ..trust import index_trusted

    reader = open_reader(index_dir, store)
    try:
        untrusted = None if store is not None or index_trusted(index_dir) else index_dir
        embedder = choose_embedder(reader.manifest.model, models_dir, model, base_urls=base_urls, api_key=api_key,
                                   engine=engine, untrusted=untrusted, threads=threads)
    except Exception:
        reader.close()
        raise
    searcher = Searcher(reader, embedder, query_instruction, reranker, rerank_candidates)
    if searcher.default_mode != "dense":
        lexical.load()
    return searcher
