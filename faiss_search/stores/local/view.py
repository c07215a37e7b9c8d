"""Lookups that a reader and a writer share: dense search, the files indexed, a sample of chunks."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..records import FileState, IndexedFile
from .keyword import KeywordLookups
from .migrations import has_column
from .sidecar import under_clause

if TYPE_CHECKING:
    import numpy as np


class IndexView(KeywordLookups):
    """Lookups shared by readers and by a writer (which calibrates fusion on its uncommitted state)."""

    index: Any

    def dense_search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, cosine score) per query row."""
        import faiss

        # One thread is faster for a single query (memory-bound); batches go through BLAS.
        faiss.omp_set_num_threads(1 if len(queries) == 1 else os.cpu_count() or 1)
        faiss.cvar.distance_compute_blas_threshold = 1000
        scores, ids = self.index.search(queries, min(k, max(self.index.ntotal, 1)))
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
                for row_ids, row_scores in zip(ids, scores, strict=True)]

    def file_states(self, under: str | None = None) -> dict[str, FileState]:
        """Indexed files whose path is ``under`` or inside it (all files when None)."""
        where, args = under_clause(under, "path")
        reader = "reader" if has_column(self._conn, "files", "reader") else "NULL"
        return {path: FileState(size, mtime, sha, version or 1) for path, size, mtime, sha, version
                in self._conn.execute(f"SELECT path, size, mtime, sha256, {reader} FROM files {where}", args)}

    def indexed_files(self, under: str | None = None) -> list[IndexedFile]:
        """Indexed files (under a folder, or exactly a file), by path, with their chunk counts."""
        where, args = under_clause(under)
        indexed_at = "f.indexed_at" if has_column(self._conn, "files", "indexed_at") else "NULL"
        rows = self._conn.execute(
            f"SELECT f.path, COUNT(c.id), f.size, {indexed_at} FROM files f LEFT JOIN chunks c ON c.file_id = f.id "
            f"{where} GROUP BY f.id ORDER BY f.path", args).fetchall()
        return [IndexedFile(*row) for row in rows]

    def sample_chunks(self, n: int) -> list[tuple[int, str]]:
        """About ``n`` chunks spread evenly over the index (deterministic)."""
        total = self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        step = max(1, total // max(1, n))
        return self._conn.execute(
            "SELECT id, text FROM (SELECT id, text, ROW_NUMBER() OVER (ORDER BY id) - 1 AS n FROM chunks) "
            "WHERE n % ? = 0 LIMIT ?", (step, n)).fetchall()
