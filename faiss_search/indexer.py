"""The indexing pipeline: files -> documents -> chunks -> vectors -> store."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .chunking import Chunk, chunk_text
from .config import Settings
from .documents import TEXT_SUFFIXES, Document, discover, read_documents
from .embedding import Embedder
from .errors import InputError
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


def index_path(path: Path, settings: Settings, embedder: Embedder, rebuild: bool = False,
               progress: ProgressCallback | None = None) -> IndexReport:
    """Index a file or folder into ``settings.index_path``; unchanged files (same hash) are kept as they are."""
    started = time.perf_counter()
    found = discover(path)
    report = IndexReport(index_dir=str(settings.index_path), model=embedder.info.name,
                         max_tokens=embedder.info.max_tokens, long_input_policy=embedder.long_input_policy)
    chunking = {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap}
    with IndexWriter(settings.index_path, embedder.info, chunking, rebuild=rebuild) as writer:
        pending: list[_Pending] = []
        for doc in read_documents(found.files, found.skipped):
            if writer.file_hash(str(doc.path.resolve())) == doc.sha256:
                report.files_unchanged += 1
                continue
            chunks = chunk_text(doc.text, settings.chunk_size, settings.chunk_overlap)
            pending.append(_Pending(doc, chunks))
        report.skipped = found.skipped
        if not pending and not report.files_unchanged:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items())) or "no files"
            raise InputError(f"nothing indexable in {path} ({reasons})",
                             hint=f"fsearch reads text files ({', '.join(sorted(TEXT_SUFFIXES))})")
        texts = [c.text for p in pending for c in p.chunks]
        limit = embedder.info.max_tokens
        report.chunks_over_token_limit = sum(n > limit for n in embedder.count_tokens(texts))
        embed_started = time.perf_counter()
        vectors = _embed(embedder, texts, settings.batch_size, progress)
        report.embed_seconds = time.perf_counter() - embed_started
        offset = 0
        for item in pending:
            doc, n = item.doc, len(item.chunks)
            report.chunks_removed += writer.remove_file(str(doc.path.resolve()))
            writer.add_file(str(doc.path.resolve()), doc.sha256, doc.size, doc.mtime, doc.encoding,
                            item.chunks, vectors[offset:offset + n])
            offset += n
        report.files_indexed = len(pending)
        report.chunks_added = len(texts)
        manifest = writer.commit()
    report.total_files = manifest["counts"]["files"]
    report.total_chunks = manifest["counts"]["chunks"]
    report.seconds = time.perf_counter() - started
    return report

