"""`fsearch eval`: retrieval quality of a model and search mode on a BEIR-layout data set.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (query id, document id, score). Each corpus
record becomes one document (``title + " " + text``, as MTEB does), indexed with the
current settings; hits are mapped back to documents (a document counts at its best chunk).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .backends import choose_embedder
from .config import DEFAULT_MODEL, Settings
from .documents import Document
from .errors import InputError, ModelMismatchError
from .indexing.pipeline import index_documents
from .indexing.reports import ProgressCallback
from .models.registry import ResolvedModel, local_folder_name, resolve_model
from .retrieval.search import Searcher, check_mode
from .stores import open_reader

if TYPE_CHECKING:
    from .locations import StoreAddress
    from .reranking import Reranker

CUTOFFS = (1, 5, 10)
QUERY_BATCH = 256
CHUNKS_PER_QUERY = 30  # enough chunks to fill 10 distinct documents


@dataclass
class Dataset:
    name: str
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, set[str]]


@dataclass
class EvalRow:
    """One (model, mode) line of the results table."""

    model: str
    mode: str
    metrics: dict[str, float]
    queries: int
    documents: int
    chunks: int
    index_seconds: float
    queries_per_second: float
    reused_index: bool
    fusion: dict = field(default_factory=dict)
    #: with a reranker: its name, and the milliseconds it added to a query (median and 95th percentile)
    reranker: str = ""
    rerank_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"model": self.model, "mode": self.mode, **{k: round(v, 2) for k, v in self.metrics.items()},
                "queries": self.queries, "documents": self.documents, "chunks": self.chunks,
                "index_seconds": round(self.index_seconds, 2), "queries_per_second": round(self.queries_per_second, 1),
                "reused_index": self.reused_index, "fusion": self.fusion,
                **({"reranker": self.reranker, "rerank_ms": self.rerank_ms} if self.reranker else {})}


def _jsonl(path: Path) -> list[dict]:
    try:
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except OSError:
        raise InputError(f"cannot read {path}", hint="a BEIR folder has corpus.jsonl, queries.jsonl, qrels/") from None
    except ValueError as exc:
        raise InputError(f"{path} is not JSON Lines: {exc}") from None


def load_beir(folder: Path, split: str | None = None) -> Dataset:
    """Read a BEIR folder; ``split`` defaults to dev, else test, else the only qrels file."""
    if not folder.is_dir():
        raise InputError(f"data set folder not found: {folder}")
    qrels_dir = folder / "qrels"
    available = sorted(p.stem for p in qrels_dir.glob("*.tsv"))
    if split is None:
        split = next((s for s in ("dev", "test") if s in available), available[0] if available else "test")
    if split not in available:
        raise InputError(f"no qrels/{split}.tsv in {folder}", hint=f"splits here: {', '.join(available) or 'none'}")
    qrels: dict[str, set[str]] = {}
    for n, line in enumerate((qrels_dir / f"{split}.tsv").read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (n == 0 and not parts[2].strip().lstrip("-").isdigit()):
            continue
        if int(parts[2]) > 0:
            qrels.setdefault(parts[0], set()).add(parts[1])
    queries = {row["_id"]: row["text"] for row in _jsonl(folder / "queries.jsonl")}
    documents = []
    for row in _jsonl(folder / "corpus.jsonl"):
        text = f"{row.get('title') or ''} {row.get('text') or ''}".strip()
        data = text.encode("utf-8")
        documents.append(Document(source=str(row["_id"]), text=text, encoding="utf-8",
                                  sha256=hashlib.sha256(data).hexdigest(), size=len(data), mtime=0.0))
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise InputError(f"{len(missing)} judged queries are missing from queries.jsonl (first: {missing[0]})")
    return Dataset(folder.name, documents, {q: queries[q] for q in qrels}, qrels)


def score(ranked: dict[str, list[str]], qrels: dict[str, set[str]]) -> dict[str, float]:
    """recall@1/5/10, MRR@10 and nDCG@10 (binary relevance), in percent, averaged over judged queries."""
    totals = {f"recall@{k}": 0.0 for k in CUTOFFS} | {"MRR@10": 0.0, "nDCG@10": 0.0}
    for query_id, relevant in qrels.items():
        docs = ranked.get(query_id, [])[:10]
        for k in CUTOFFS:
            totals[f"recall@{k}"] += len(relevant & set(docs[:k])) / len(relevant)
        first = next((i for i, d in enumerate(docs) if d in relevant), None)
        totals["MRR@10"] += 1 / (first + 1) if first is not None else 0.0
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(docs) if d in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
        totals["nDCG@10"] += dcg / ideal
    return {name: 100 * value / max(1, len(qrels)) for name, value in totals.items()}


@dataclass
class Ranking:
    """Each query's document ids, best first; queries per second; and each query's seconds of reranking."""

    documents: dict[str, list[str]]
    queries_per_second: float
    rerank_seconds: list[float]


def rank_documents(searcher: Searcher, dataset: Dataset, mode: str,
                   document_id: Callable[[str], str] = str, rerank: bool = False) -> Ranking:
    """Run every query (in batches).

    ``document_id`` maps a hit's source to its document's id (the source itself for indexed records).
    """
    ranked: dict[str, list[str]] = {}
    reranking: list[float] = []
    ids = list(dataset.queries)
    started = time.perf_counter()
    for start in range(0, len(ids), QUERY_BATCH):
        batch = ids[start:start + QUERY_BATCH]
        results = searcher.search_many([dataset.queries[q] for q in batch], CHUNKS_PER_QUERY, mode, snippets=False,
                                       rerank=rerank)
        for query_id, result in zip(batch, results, strict=True):
            ranked[query_id] = list(dict.fromkeys(document_id(hit.source) for hit in result.hits))
            reranking.append(result.rerank_seconds)
    seconds = time.perf_counter() - started
    return Ranking(ranked, len(ids) / seconds if seconds > 0 else 0.0, reranking)


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds (nearest rank)."""
    ordered = sorted(seconds)
    if not ordered:
        return {}
    at = {name: ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]
          for name, share in (("p50", 0.50), ("p95", 0.95))}
    return {name: round(1000 * value, 1) for name, value in at.items()}


def eval_index_dir(settings: Settings, dataset: str, resolved: ResolvedModel) -> Path:
    """One reusable index per data set, model and chunking, under ``<home>/eval``."""
    model = resolved.name
    if resolved.path is not None and resolved.spec is None:  # a model folder: its name and a short path hash
        model = f"{resolved.path.name}-{hashlib.sha1(str(resolved.path).encode()).hexdigest()[:8]}"
    return settings.home / "eval" / (f"{dataset}-{local_folder_name(model)}"
                                     f"-c{settings.chunk_size}-o{settings.chunk_overlap}")


def evaluate(folder: Path, settings: Settings, models: list[str], modes: list[str], split: str | None = None,
             rebuild: bool = False, query_instruction: bool = True,
             progress: ProgressCallback | None = None, store: StoreAddress | None = None,
             reranker: Reranker | None = None) -> list[EvalRow]:
    """Index the corpus once per model (reusing what is already indexed) and score every mode.

    With ``store`` each model's index is pushed to that Milvus collection (replacing what it held)
    and searched there. With ``reranker`` each mode is scored twice: as it is, and with the reranker
    re-scoring its first ``settings.rerank_candidates`` chunks (``mode+rerank``).
    """
    for mode in modes:
        check_mode(mode)
    dataset = load_beir(folder, split)
    rows = []
    for model in models or [DEFAULT_MODEL]:
        resolved = resolve_model(model, settings.models_dir)
        index_dir = settings.index_dir if settings.index_dir and len(models) <= 1 else \
            eval_index_dir(settings, dataset.name, resolved)
        run_settings = replace(settings, index_dir=index_dir)
        embedder = choose_embedder(None, settings.models_dir, model, engine=settings.engine,
                                   threads=settings.threads)
        try:
            report = index_documents(dataset.documents, run_settings, embedder, rebuild=rebuild, progress=progress)
        except ModelMismatchError:
            if index_dir == settings.index_dir:
                raise  # the user's own folder: never rebuilt behind their back
            # our cache of this data set was made by another fsearch version or settings: make it again
            report = index_documents(dataset.documents, run_settings, embedder, rebuild=True, progress=progress)
        if store is not None:
            from .stores import open_publisher

            open_publisher(store).push(index_dir, replace_other=True)
        searcher = Searcher(open_reader(index_dir, store), embedder, query_instruction, reranker,
                            settings.rerank_candidates)
        for mode in modes:
            for rerank in (False, True) if reranker is not None else (False,):
                ranking = rank_documents(searcher, dataset, mode, rerank=rerank)
                rows.append(EvalRow(resolved.name, f"{mode}+rerank" if rerank else mode,
                                    score(ranking.documents, dataset.qrels), len(dataset.qrels),
                                    len(dataset.documents), report.total_chunks, report.seconds,
                                    ranking.queries_per_second, report.files_indexed == 0, report.fusion,
                                    reranker.name if rerank and reranker else "",
                                    percentiles_ms(ranking.rerank_seconds) if rerank else {}))
        searcher.reader.close()
    return rows
