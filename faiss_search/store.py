"""The index folder: FAISS vectors, a SQLite sidecar and a manifest. The only module that writes it.

Layout::

    manifest.json              human-readable copy of the manifest, rewritten after each commit
    chunks.sqlite              files, chunks (id = FAISS id), chunk_terms (FTS5 keyword index
                               over segmented text, rowid = chunk id) and meta (manifest)
    vectors-<generation>.faiss IndexIDMap2 over a flat, IVF or HNSW inner-product index

The commit point is the SQLite transaction. A writer first writes the new vectors to a
*new* file named for the next generation (temp file, fsync, rename), then commits the
rows together with the new generation, then rewrites manifest.json and deletes the old
vectors file. A crash at any moment leaves SQLite naming a complete vectors file that
matches its rows; files of an unfinished generation are orphans cleaned up next time.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from . import vectors as vector_index
from .embedding import ModelInfo
from .errors import (
    ConfigError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexWriteError,
    ModelMismatchError,
)
from .fileio import atomic_write, atomic_write_bytes, file_sha256
from .locking import WriterLock

if TYPE_CHECKING:
    import numpy as np

FORMAT_VERSION = 2
SIDECAR = "chunks.sqlite"
MANIFEST = "manifest.json"
REPAIR_HINT = "`fsearch doctor --repair` rebuilds it from the sidecar (or re-index with --rebuild)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    encoding TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    line INTEGER NOT NULL,
    text_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks(text_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(terms);
"""
#: how chunk_terms was filled; an index with another segmenter is rebuilt, not mixed
KEYWORD_FORMAT = {"segmenter": "jieba-search", "version": 1}


@dataclass(frozen=True)
class FileState:
    """What the index knows about a file, to tell whether it changed."""

    size: int
    mtime: float
    sha256: str


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the sidecar returns it for a search hit."""

    id: int
    text: str
    source: str
    start: int
    end: int
    line: int


#: Fault injection for the crash-safety tests: FSEARCH_CRASH_AT=<step> kills the process there.
CRASH_STEPS = ("after-first-file", "before-vectors", "after-vectors", "after-commit", "after-manifest")


def _crash_point(step: str) -> None:
    if os.environ.get("FSEARCH_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def vectors_file(folder: Path, generation: int) -> Path:
    return folder / f"vectors-{generation}.faiss"


def _write_faiss(index: Any, path: Path) -> None:
    import faiss

    atomic_write(path, lambda tmp: faiss.write_index(index, str(tmp)))


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _read_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    return json.loads(rows["manifest"]) if "manifest" in rows else {}


def check_model(manifest: dict, info: ModelInfo) -> None:
    """Refuse to mix vectors of two models in one index, naming what differs."""
    recorded = manifest.get("model", {})
    wanted = info.identity()
    diffs = [f"{k}: index {recorded.get(k)!r}, asked {v!r}" for k, v in wanted.items() if recorded.get(k) != v]
    if diffs:
        raise ModelMismatchError(
            f"the index was built with model {recorded.get('name')!r} (dim {recorded.get('dim')}), "
            f"not {info.name!r} (dim {info.dim}): " + "; ".join(diffs),
            hint="drop --model to use the index's own model, or start afresh with `fsearch index PATH --rebuild`",
        )


class _IndexView:
    """Lookups shared by readers and by a writer (which calibrates fusion on its uncommitted state)."""

    index: Any
    _conn: sqlite3.Connection

    def dense_search(self, queries: "np.ndarray", k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, cosine score) per query row."""
        import faiss

        # One thread is faster for a single query (memory-bound); batches go through BLAS.
        faiss.omp_set_num_threads(1 if len(queries) == 1 else os.cpu_count() or 1)
        faiss.cvar.distance_compute_blas_threshold = 1000
        scores, ids = self.index.search(queries, min(k, max(self.index.ntotal, 1)))
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
                for row_ids, row_scores in zip(ids, scores)]

    def keyword_search(self, expression: str | None, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score, higher is better) for an FTS5 match expression."""
        if not expression:
            return []
        rows = self._conn.execute(
            "SELECT rowid, -bm25(chunk_terms) FROM chunk_terms WHERE chunk_terms MATCH ? "
            "ORDER BY bm25(chunk_terms) LIMIT ?", (expression, k)).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def sample_chunks(self, n: int) -> list[tuple[int, str]]:
        """About ``n`` chunks spread evenly over the index (deterministic)."""
        total = self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        step = max(1, total // max(1, n))
        return self._conn.execute(
            "SELECT id, text FROM (SELECT id, text, ROW_NUMBER() OVER (ORDER BY id) - 1 AS n FROM chunks) "
            "WHERE n % ? = 0 LIMIT ?", (step, n)).fetchall()


class IndexReader(_IndexView):
    """A read-only view: vectors memory-mapped, chunk texts fetched k at a time from SQLite."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        sidecar = folder / SIDECAR
        if not sidecar.is_file():
            raise IndexNotFoundError(
                f"no index at {folder}",
                hint="run `fsearch index PATH` first, or point --index-dir at an index folder",
            )
        try:
            self._conn = _connect(sidecar, readonly=True)
            self.manifest = _read_meta(self._conn)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"index sidecar {sidecar} is unreadable ({exc})",
                                    hint="rebuild it with `fsearch index PATH --rebuild`") from None
        if not self.manifest:
            raise IndexCorruptError(f"index at {folder} has no manifest (an interrupted first build?)",
                                    hint="rebuild it with `fsearch index PATH --rebuild`")
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise IndexCorruptError(
                f"index at {folder} has format {self.manifest.get('format_version')}, "
                f"this fsearch reads format {FORMAT_VERSION}",
                hint="rebuild it with `fsearch index PATH --rebuild`",
            )
        for attempt in range(3):
            try:
                self.index = self._load_vectors()
                break
            except IndexCorruptError:
                # a writer may have committed (and deleted our generation's file) in between
                latest = _read_meta(self._conn)
                if attempt == 2 or latest.get("generation") == self.manifest["generation"]:
                    raise
                self.manifest = latest

    def _load_vectors(self) -> Any:
        import faiss

        path = vectors_file(self.folder, self.manifest["generation"])
        params = self.manifest.get("vectors", {})
        try:
            index = faiss.read_index(str(path), vector_index.mmap_flags(params))
            vector_index.prepare_for_search(index, params)
        except RuntimeError:
            raise IndexCorruptError(f"index vectors {path} are missing or truncated",
                                    hint=REPAIR_HINT) from None
        counts, dim = self.manifest["counts"], self.manifest["model"]["dim"]
        if index.ntotal != counts["chunks"] or index.d != dim:
            raise IndexCorruptError(
                f"index at {self.folder} is inconsistent: {index.ntotal} vectors of dim {index.d}, "
                f"manifest says {counts['chunks']} chunks of dim {dim}",
                hint=REPAIR_HINT,
            )
        return index

    def fetch(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._conn.execute(
            f"SELECT c.id, c.text, f.path, c.start, c.end, c.line FROM chunks c "
            f"JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})",
            wanted,
        ).fetchall()
        return {row[0]: StoredChunk(*row) for row in rows}

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def close(self) -> None:
        self._conn.close()


class IndexWriter(_IndexView):
    """Adds, replaces and removes files; nothing is visible to readers before ``commit()``.

    New vectors are buffered and added to FAISS in blocks; a new index is created at the
    first flush, when the number of chunks (which picks the index type) is known.
    """

    FLUSH_ROWS = 16384

    def __init__(self, folder: Path, model: ModelInfo, chunking: dict[str, int], rebuild: bool = False,
                 index_type: str = "auto", wait: bool = True, on_wait: Callable[[str], None] | None = None,
                 repair: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._lock = WriterLock(folder, wait=wait, on_wait=on_wait).acquire()
        try:
            self._conn = _connect(folder / SIDECAR, readonly=False)
        except BaseException:
            self._lock.release()
            raise
        self._buffer: list[tuple[int, "np.ndarray"]] = []
        self._dim = model.dim
        self._index_type = index_type
        self._rebuild_graph = False
        self._repair = repair
        self.vectors_lost = False
        self.index: Any = None
        try:
            self._open(model, chunking, rebuild)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise IndexCorruptError(f"cannot update the index at {folder}: {exc}",
                                    hint="rebuild it with `fsearch index PATH --rebuild`") from None
        except BaseException:
            self.close()
            raise

    def _open(self, model: ModelInfo, chunking: dict[str, int], rebuild: bool) -> None:
        import faiss

        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("BEGIN IMMEDIATE")
        old = _read_meta(self._conn) if self._has_meta() else {}
        self._old_generation = old.get("generation", 0)
        keep = bool(old) and not rebuild
        if keep:
            self._check_compatible(old, model, chunking)
            path = vectors_file(self.folder, self._old_generation)
            try:
                if self._repair and old.get("vectors_sha256") and file_sha256(path) != old["vectors_sha256"]:
                    raise RuntimeError("checksum mismatch")  # readable but damaged: rebuild from the sidecar
                self.index = faiss.read_index(str(path))
            except (RuntimeError, OSError):
                if not self._repair:
                    raise IndexCorruptError(f"index vectors {path} are missing or truncated",
                                            hint=REPAIR_HINT) from None
                self.vectors_lost = True
                self._index_type = old.get("vectors", {}).get("type", "auto")
        else:
            for table in ("chunk_terms", "chunks", "files", "meta"):
                self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _SCHEMA.split(";"):  # not executescript: it would commit the open transaction
            if statement.strip():
                self._conn.execute(statement)
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.manifest = {
            "format_version": FORMAT_VERSION,
            "generation": self._old_generation,
            "model": {**model.identity(), "source": model.source, "revision": model.revision,
                      "max_tokens": model.max_tokens},
            "chunking": chunking,
            "keyword": KEYWORD_FORMAT,
            "vectors": old.get("vectors", {}) if keep else {},
            "fusion": old.get("fusion", {}) if keep else {},
            "created_at": old["created_at"] if keep else now,
        }

    def _has_meta(self) -> bool:
        return bool(self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone())

    def _check_compatible(self, old: dict, model: ModelInfo, chunking: dict[str, int]) -> None:
        if old.get("format_version") != FORMAT_VERSION:
            raise ModelMismatchError(f"the index has format {old.get('format_version')}, this fsearch writes "
                                     f"format {FORMAT_VERSION}", hint="re-index with --rebuild")
        check_model(old, model)
        if old.get("keyword") != KEYWORD_FORMAT:
            raise ModelMismatchError("the index was built with another keyword segmenter",
                                     hint="re-index with --rebuild")
        if old.get("chunking") != chunking:
            raise ModelMismatchError(
                f"the index was built with chunk size {old['chunking']['chunk_size']} and overlap "
                f"{old['chunking']['chunk_overlap']}, not {chunking['chunk_size']} and {chunking['chunk_overlap']}",
                hint="use the same --chunk-size/--chunk-overlap, or re-index with --rebuild",
            )
        recorded_type = old.get("vectors", {}).get("type")
        if self._index_type not in ("auto", recorded_type):
            raise ConfigError(f"the index is a {recorded_type} index, not {self._index_type}",
                              hint="re-index with --rebuild to change --index-type")

    # -- what is there ----------------------------------------------------------------------
    def file_states(self, under: str | None = None) -> dict[str, FileState]:
        """Indexed files whose path is ``under`` or inside it (all files when None)."""
        query, args = "SELECT path, size, mtime, sha256 FROM files", ()
        if under is not None:
            query += " WHERE path = ? OR substr(path, 1, ?) = ?"
            prefix = under.rstrip(os.sep) + os.sep
            args = (under, len(prefix), prefix)
        return {path: FileState(size, mtime, sha) for path, size, mtime, sha in self._conn.execute(query, args)}

    def touch_file(self, path: str, size: int, mtime: float) -> None:
        """Same content, new size/mtime: remember them so the next run needs only a stat."""
        self._conn.execute("UPDATE files SET size = ?, mtime = ? WHERE path = ?", (size, mtime, path))

    def stored_vectors(self, text_hashes: Iterable[str]) -> dict[str, "np.ndarray"]:
        """Vectors of chunks already in the index with the same text (same model, by construction)."""
        import numpy as np

        if self.index is None:
            return {}
        wanted, found = list(set(text_hashes)), {}
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            rows = self._conn.execute(
                f"SELECT text_hash, MIN(id) FROM chunks WHERE text_hash IN ({','.join('?' * len(part))}) "
                "GROUP BY text_hash", part).fetchall()
            for text_hash, chunk_id in rows:
                found[text_hash] = np.asarray(self.index.reconstruct(int(chunk_id)), dtype=np.float32)
        return found

    # -- changes ----------------------------------------------------------------------------
    def remove_files(self, paths: Iterable[str]) -> int:
        """Drop files with their chunks, keyword rows and vectors; returns how many chunks went."""
        import numpy as np

        ids: list[int] = []
        for path in paths:
            ids += [r[0] for r in self._conn.execute(
                "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?", (path,))]
            self._conn.execute("DELETE FROM files WHERE path = ?", (path,))
        if not ids:
            return 0
        self._conn.executemany("DELETE FROM chunk_terms WHERE rowid = ?", [(i,) for i in ids])
        self._flush()
        if self.index is not None:
            if vector_index.supports_removal(self.manifest["vectors"]):
                vector_index.remove_ids(self.index, self.manifest["vectors"], np.asarray(ids, dtype=np.int64))
            else:
                self._rebuild_graph = True
        return len(ids)

    def add_file(self, path: str, sha256: str, size: int, mtime: float, encoding: str,
                 chunks: list, vectors: "np.ndarray", terms: list[str], text_hashes: list[str]) -> None:
        """Store one file's chunks (``chunking.Chunk``) with their vectors, keyword terms and text hashes."""
        file_id = self._conn.execute(
            "INSERT INTO files (path, sha256, size, mtime, encoding) VALUES (?, ?, ?, ?, ?)",
            (path, sha256, size, mtime, encoding),
        ).lastrowid
        for order, (chunk, words, text_hash, vector) in enumerate(zip(chunks, terms, text_hashes, vectors,
                                                                      strict=True)):
            chunk_id = self._conn.execute(
                "INSERT INTO chunks (file_id, ord, text, start, end, line, text_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (file_id, order, chunk.text, chunk.start, chunk.end, chunk.line, text_hash),
            ).lastrowid
            self._conn.execute("INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)", (chunk_id, words))
            self._buffer.append((chunk_id, vector))
        _crash_point("after-first-file")
        if self.index is not None and len(self._buffer) >= self.FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Add buffered vectors to FAISS in one block, creating (and training) the index if it is new."""
        import numpy as np

        if not self._buffer:
            return
        ids = np.asarray([i for i, _ in self._buffer], dtype=np.int64)
        block = np.ascontiguousarray(np.stack([v for _, v in self._buffer]), dtype=np.float32)
        self._buffer = []
        if self.index is None:
            kind = vector_index.choose_type(self._index_type, len(block))
            self.index, self.manifest["vectors"] = vector_index.build(kind, self._dim, block)
        self.index.add_with_ids(block, ids)

    def _rebuild_hnsw(self) -> None:
        import numpy as np

        ids = [r[0] for r in self._conn.execute("SELECT id FROM chunks ORDER BY id")]
        kept = np.stack([self.index.reconstruct(i) for i in ids]) if ids else np.zeros((0, self._dim), np.float32)
        self.index, self.manifest["vectors"] = vector_index.build("hnsw", self._dim, kept)
        if ids:
            self.index.add_with_ids(kept, np.asarray(ids, dtype=np.int64))

    def repair(self, encode: Callable[[list[str]], "np.ndarray"], segment: Callable[[str], str]) -> list[str]:
        """Make vectors and keyword rows agree with the chunk rows (the sidecar is the source of truth)."""
        import numpy as np

        actions = []
        rows = dict(self._conn.execute("SELECT id, text FROM chunks").fetchall())
        ids = set(rows)
        if self.index is None:
            missing = sorted(ids)
            if self.vectors_lost:
                actions.append(f"rebuilt the damaged vectors file from {len(missing)} chunk texts")
        else:
            have = set(vector_index.stored_ids(self.index, self.manifest["vectors"]).tolist())
            extra = np.asarray(sorted(have - ids), dtype=np.int64)
            if len(extra):
                vector_index.remove_ids(self.index, self.manifest["vectors"], extra)
                actions.append(f"dropped {len(extra)} orphan vector(s) with no chunk row")
            missing = sorted(ids - have)
            if missing:
                actions.append(f"re-embedded {len(missing)} chunk(s) that had no vector")
        for start in range(0, len(missing), 64):
            part = missing[start:start + 64]
            self._buffer += list(zip(part, encode([rows[i] for i in part])))
        terms = {r[0] for r in self._conn.execute("SELECT rowid FROM chunk_terms")}
        if terms != ids:
            self._conn.execute("DELETE FROM chunk_terms")
            self._conn.executemany("INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)",
                                   [(i, segment(text)) for i, text in rows.items()])
            actions.append(f"rebuilt the keyword index ({len(terms)} rows for {len(ids)} chunks)")
        return actions

    def set_fusion(self, fusion: dict) -> None:
        """Record the leg calibration that hybrid search weights by (see search.calibrate)."""
        self.manifest["fusion"] = fusion

    def prepare(self) -> None:
        """Make every change searchable through this writer (calibration runs before the commit)."""
        self._flush()
        if self._rebuild_graph:
            self._rebuild_hnsw()
            self._rebuild_graph = False
        if self.index is None:
            self.index, self.manifest["vectors"] = vector_index.build("flat", self._dim, None)

    def commit(self) -> dict:
        """Publish everything since opening; returns the new manifest. On failure nothing changes."""
        try:
            return self._commit()
        except (OSError, sqlite3.OperationalError) as exc:
            if getattr(exc, "errno", None) == errno.ENOSPC or "full" in str(exc):
                raise IndexWriteError(f"no space left on the device while writing the index at {self.folder}; "
                                      "the previous index is unchanged", hint="free some space and run it again"
                                      ) from None
            if isinstance(exc, PermissionError):
                raise IndexWriteError(f"permission denied writing the index at {self.folder}; "
                                      "the previous index is unchanged") from None
            raise

    def _commit(self) -> dict:
        self.prepare()
        generation = self._old_generation + 1
        files, chunks = self._conn.execute(
            "SELECT (SELECT COUNT(*) FROM files), (SELECT COUNT(*) FROM chunks)").fetchone()
        if chunks != self.index.ntotal:
            raise IndexCorruptError(f"internal error: {chunks} chunk rows but {self.index.ntotal} vectors")
        self.manifest.update(generation=generation, counts={"files": files, "chunks": chunks},
                             updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        _crash_point("before-vectors")
        path = vectors_file(self.folder, generation)
        _write_faiss(self.index, path)
        self.manifest["vectors_sha256"] = file_sha256(path)
        _crash_point("after-vectors")
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('manifest', ?)",
                           (json.dumps(self.manifest, ensure_ascii=False),))
        self._conn.execute("COMMIT")
        _crash_point("after-commit")
        atomic_write_bytes(self.folder / MANIFEST,
                           json.dumps(self.manifest, ensure_ascii=False, indent=2).encode("utf-8"))
        _crash_point("after-manifest")
        self._remove_stale_vectors(keep=generation)
        return self.manifest

    def _remove_stale_vectors(self, keep: int) -> None:
        for path in self.folder.glob("vectors-*.faiss*"):
            if path != vectors_file(self.folder, keep):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._conn.close()
        finally:
            self._lock.release()

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_index(folder: Path) -> IndexReader:
    return IndexReader(folder)


def committed_manifest(folder: Path) -> dict | None:
    """The committed manifest straight from the sidecar (manifest.json may lag a crash behind); None if none."""
    if not (folder / SIDECAR).is_file():
        return None
    try:
        with closing(_connect(folder / SIDECAR, readonly=True)) as conn:
            return _read_meta(conn) or None
    except sqlite3.DatabaseError:
        return None
