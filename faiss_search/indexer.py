"""The indexing pipeline: files -> documents -> chunks -> (vectors, terms) -> store."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import lexical
from .chunking import Chunk, chunk_text
from .config import Settings
from .documents import TEXT_SUFFIXES, Document, discover, read_documents
from .embedding import Embedder
from .errors import NothingToIndexError
from .search import calibrate
from .store import IndexWriter

ProgressCallback = Callable[[int, int], None]


@dataclass
class IndexReport:
    """What one ``fsearch index`` run did, for the summary line and ``--json``."""

    index_dir: str
    model: str
    files_indexed: int = 0
    files_unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_over_token_limit: int = 0
    max_tokens: int = 0
    long_input_policy: str = ""
    skipped: Counter = field(default_factory=Counter)
    total_files: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    fusion: dict = field(default_factory=dict)


@dataclass
class _Pending:
    doc: Document
    chunks: list[Chunk]


def _embed(embedder: Embedder, texts: list[str], batch_size: int, progress: ProgressCallback | None):
    import numpy as np

    parts = []
    for start in range(0, len(texts), batch_size):
        parts.append(embedder.encode_passages(texts[start:start + batch_size]))
        if progress:
            progress(min(start + batch_size, len(texts)), len(texts))
    if not parts:
        return np.zeros((0, embedder.info.dim), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def index_documents(documents: Iterable[Document], settings: Settings, embedder: Embedder, rebuild: bool = False,
                    progress: ProgressCallback | None = None) -> IndexReport:
    """Add new and changed documents to ``settings.index_path``; unchanged ones (same hash) are kept."""
    started = time.perf_counter()
    report = IndexReport(index_dir=str(settings.index_path), model=embedder.info.name,
                         max_tokens=embedder.info.max_tokens, long_input_policy=embedder.long_input_policy)
    chunking = {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap}
    lexical.configure(settings.home / "cache")
    with IndexWriter(settings.index_path, embedder.info, chunking, rebuild=rebuild) as writer:
        pending: list[_Pending] = []
        for doc in documents:
            if writer.file_hash(doc.source) == doc.sha256:
                report.files_unchanged += 1
                continue
            pending.append(_Pending(doc, chunk_text(doc.text, settings.chunk_size, settings.chunk_overlap)))
        if not pending and not report.files_unchanged:
            raise NothingToIndexError("nothing indexable")
        texts = [c.text for p in pending for c in p.chunks]
        limit = embedder.info.max_tokens
        report.chunks_over_token_limit = sum(n > limit for n in embedder.count_tokens(texts))
        embed_started = time.perf_counter()
        vectors = _embed(embedder, texts, settings.batch_size, progress)
        report.embed_seconds = time.perf_counter() - embed_started
        offset = 0
        for item in pending:
            doc, n = item.doc, len(item.chunks)
            report.chunks_removed += writer.remove_file(doc.source)
            terms = [" ".join(lexical.segment(c.text)) for c in item.chunks]
            writer.add_file(doc.source, doc.sha256, doc.size, doc.mtime, doc.encoding,
                            item.chunks, vectors[offset:offset + n], terms)
            offset += n
        report.files_indexed = len(pending)
        report.chunks_added = len(texts)
        if pending or not writer.manifest["fusion"]:
            writer.set_fusion(calibrate(writer, embedder))
        manifest = writer.commit()
    report.total_files = manifest["counts"]["files"]
    report.total_chunks = manifest["counts"]["chunks"]
    report.fusion = manifest["fusion"]
    report.seconds = time.perf_counter() - started
    return report


def index_path(path: Path, settings: Settings, embedder: Embedder, rebuild: bool = False,
               progress: ProgressCallback | None = None) -> IndexReport:
    """Index a file or a folder; what was passed over is counted in the report."""
    found = discover(path)
    try:
        report = index_documents(read_documents(found.files, found.skipped), settings, embedder, rebuild, progress)
    except NothingToIndexError:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items())) or "no files"
        raise NothingToIndexError(f"nothing indexable in {path} ({reasons})",
                         hint=f"fsearch reads text files ({', '.join(sorted(TEXT_SUFFIXES))})") from None
    report.skipped = found.skipped
    return report
