"""Dense search over an index: the query is encoded with the index's own model."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .embedding import Embedder, load_embedder
from .errors import InputError, ModelMismatchError
from .models.registry import resolve_model
from .store import IndexReader, check_model, open_index

MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Hit:
    """One result: a chunk, its score (cosine similarity) and where it came from."""

    rank: int
    score: float
    text: str
    source: str
    line: int
    start: int
    end: int
    chunk_id: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    seconds: float

    def to_dict(self) -> dict:
        return {"query": self.query, "results": [h.to_dict() for h in self.hits],
                "took_ms": round(self.seconds * 1000, 2)}


def clean_query(query: str) -> str:
    """Strip control characters and refuse empty queries; very long ones are cut (the model would truncate)."""
    cleaned = "".join(c if c.isprintable() else " " for c in query).strip()
    if not cleaned:
        raise InputError("empty query", hint="type a question or some keywords")
    return cleaned[:MAX_QUERY_CHARS]


class Searcher:
    """Keeps the index and the model loaded between queries."""

    def __init__(self, reader: IndexReader, embedder: Embedder) -> None:
        self.reader = reader
        self.embedder = embedder

    @property
    def size(self) -> int:
        return self.reader.index.ntotal

    def search_many(self, queries: list[str], k: int) -> list[SearchResult]:
        """Encode all queries in one batch, then look them up."""
        if k < 1:
            raise InputError(f"top-k must be at least 1, got {k}")
        started = time.perf_counter()
        cleaned = [clean_query(q) for q in queries]
        vectors = self.embedder.encode_queries(cleaned)
        ranked = self.reader.search(vectors.reshape(len(cleaned), -1), k)
        chunks = self.reader.fetch({cid for row in ranked for cid, _ in row})
        seconds = (time.perf_counter() - started) / max(1, len(queries))
        results = []
        for query, row in zip(cleaned, ranked):
            hits = [Hit(rank, score, c.text, c.source, c.line, c.start, c.end, c.id)
                    for rank, (c, score) in enumerate(((chunks[cid], s) for cid, s in row if cid in chunks), 1)]
            results.append(SearchResult(query, hits, seconds))
        return results

    def search(self, query: str, k: int) -> SearchResult:
        return self.search_many([query], k)[0]


def open_searcher(index_dir: Path, models_dir: Path, model: str | None = None) -> Searcher:
    """Open an index with the model it was built with; an explicitly different ``model`` is refused."""
    reader = open_index(index_dir)
    recorded = reader.manifest["model"]["name"]
    resolved = resolve_model(model or recorded, models_dir)
    if model is not None and resolved.name != recorded:
        raise ModelMismatchError(
            f"the index at {index_dir} was built with model {recorded!r}, not {resolved.name!r}",
            hint="search without --model to use the index's own model, or re-index with --rebuild",
        )
    embedder = load_embedder(resolved)
    check_model(reader.manifest, embedder.info)
    return Searcher(reader, embedder)
