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

Readers answer every query from one generation: a read transaction pins the rows of one
commit, and the vectors of that same generation are loaded (again) when it differs from
the ones in memory. Chunk ids are never reused, not even by ``--rebuild``, so an id can
never name another text.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import bm25, faults, lexical, migrations
from . import vectors as vector_index
from .errors import (
    ConfigError,
    FsearchError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexWriteError,
    ModelMismatchError,
)
from .fileio import atomic_write_bytes, atomic_write_stream, file_sha256, fsync_dir
from .flatfile import FlatFile
from .locking import WriterLock, writer_active
from .manifest import FORMAT_VERSION, Counts, Manifest, ModelInfo
from .migrations import has_column
from .paths import source_under

if TYPE_CHECKING:
    import numpy as np

SIDECAR = "chunks.sqlite"
MANIFEST = "manifest.json"
REPAIR_HINT = "`fsearch doctor --repair` rebuilds it from the sidecar (or re-index with --rebuild)"
REBUILD_HINT = "rebuild it with `fsearch index PATH --rebuild`"
#: readers verify the vectors file's checksum when they load one no larger than this (sha256 runs at
#: about 1.5 GB/s here, so at most ~0.2 s); larger files are checked for size, count and dimension
VERIFY_MAX_BYTES = 256 * 1024 * 1024
SIDECAR_FILES = (SIDECAR, SIDECAR + "-wal", SIDECAR + "-shm", SIDECAR + "-journal")
#: the file that says a folder is an fsearch index, with a random id that the trust list records (trust.py)
MARKER = "fsearch-index.json"
#: what fsearch itself writes into an index folder: nothing else there is ever deleted
_OWN_NAMES = re.compile(r"(vectors-\d+\.faiss|manifest\.json|fsearch-index\.json(\.[0-9a-f]{32})?"
                        r"|chunks\.sqlite(-wal|-shm|-journal)?"
                        r"|writer\.lock|\.gitignore)(\.tmp)?")
#: what a folder holds that a writer locked (or `fsearch init` made) before anything was committed
_EMPTY_INDEX_NAMES = {"writer.lock", ".gitignore"}
_MARKER_STAGED = re.compile(r"fsearch-index\.json\.[0-9a-f]{32}\.tmp")  # ensure_marker's file before it is linked
_STALE_VECTORS = re.compile(r"vectors-(\d+)\.faiss(\.tmp)?")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    encoding TEXT NOT NULL,
    indexed_at REAL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    line INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    page INTEGER,
    heading TEXT
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks(text_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(terms);
CREATE TABLE IF NOT EXISTS term_frequencies (term TEXT PRIMARY KEY, chunks INTEGER NOT NULL);
"""
#: how chunk_terms was filled; an index with another segmenter is rebuilt, not mixed
KEYWORD_FORMAT = {"segmenter": "jieba-search", "version": 1}
#: a keyword query whose words' posting lists hold more rows than this is answered from its rarest
#: words' matches (see keyword_search); measured at 1M chunks in bench/perf.py
KEYWORD_POSTINGS_BUDGET = 50_000
KEYWORD_CANDIDATES = 500
#: indexes of more chunks than this keep the words found in COMMON_TERM_CHUNKS chunks or more in
#: term_frequencies (refreshed with the fusion calibration), so a query learns at once which of its
#: words are common; FTS5's own vocabulary counts a word by reading its whole posting list
TERM_FREQUENCIES_ABOVE = 100_000
COMMON_TERM_CHUNKS = 2_000


@dataclass(frozen=True)
class FileState:
    """What the index knows about a file, to tell whether it changed."""

    size: int
    mtime: float
    sha256: str


@dataclass(frozen=True)
class IndexedFile:
    """A file as ``fsearch ls`` shows it; ``indexed_at`` is None for files indexed before it was recorded."""

    path: str
    chunks: int
    size: int
    indexed_at: float | None


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the sidecar returns it for a search hit."""

    id: int
    text: str
    source: str
    start: int
    end: int
    line: int
    page: int | None = None
    heading: str = ""


def own_file(name: str) -> bool:
    """Whether fsearch writes files of this name into an index folder (and so may delete or replace them)."""
    return _OWN_NAMES.fullmatch(name) is not None


def own_leftovers(folder: Path, keep: Path | None = None) -> list[Path]:
    """Files an interrupted update left: temp files and older generations' vectors, by names fsearch writes."""
    return sorted(p for p in folder.iterdir() if p != keep and (
        (p.name.endswith(".tmp") and own_file(p.name)) or _STALE_VECTORS.fullmatch(p.name)))


def marker_id(folder: Path) -> str | None:
    """The id in an index folder's marker, or None where there is none (not fsearch's, or made before markers)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def ensure_marker(folder: Path) -> str:
    """The folder's marker id, written (with a new random id) where there is none.

    Linked into place, never renamed over: of two runs that claim a new folder at once, one
    writes the marker and both take its id (a damaged marker is replaced)."""
    current = marker_id(folder)
    if current is not None:
        return current
    new = secrets.token_hex(16)
    staged = folder / f"{MARKER}.{new}.tmp"  # this run's alone
    try:
        with open(staged, "xb") as fh:
            fh.write(json.dumps({"fsearch_index": 1, "id": new}).encode())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(staged, folder / MARKER)
        except FileExistsError:
            if marker_id(folder) is None:
                os.replace(staged, folder / MARKER)
        fsync_dir(folder)
    finally:
        staged.unlink(missing_ok=True)
    return marker_id(folder) or new


def claim_index_folder(folder: Path) -> None:
    """Make ``folder`` an index folder, or refuse: fsearch writes only into a folder that is new, empty, or its own.

    Its own: one with fsearch's marker, or (made before markers) a sidecar beside nothing but fsearch's files.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"the index folder {folder} is a file", hint="point --index-dir at a folder")
    if folder.is_dir():
        # not counting a marker being written: another run may be claiming the folder this moment
        names = sorted(p.name for p in folder.iterdir() if not _MARKER_STAGED.fullmatch(p.name))
        if names and marker_id(folder) is None:
            foreign = [n for n in names if not own_file(n)]
            if foreign or (SIDECAR not in names and not set(names) <= _EMPTY_INDEX_NAMES):
                shown = ", ".join((foreign or names)[:3]) + (", ..." if len(foreign or names) > 3 else "")
                raise ConfigError(f"{folder} is not an fsearch index and not empty (it holds {shown}); "
                                  "fsearch writes an index only into a new or empty folder, or one it made",
                                  hint="choose another folder with --index-dir (a new one is made for you)")
    folder.mkdir(parents=True, exist_ok=True)
    ensure_marker(folder)


def vectors_file(folder: Path, generation: int) -> Path:
    return folder / f"vectors-{generation}.faiss"


def _write_vectors(index: Any, path: Path) -> str:
    """Write ``index`` to ``path``; returns the file's sha256.

    Through Python's file objects, so that a full disk is an OSError with its errno, not a faiss message.
    """
    import faiss

    if isinstance(index, FlatFile):
        digest: list[str] = []
        atomic_write_stream(path, lambda fh: digest.append(index.write(fh)))
        index.rebase(path)
        return digest[0]
    atomic_write_stream(path, lambda fh: faiss.write_index(index, faiss.PyCallbackIOWriter(fh.write)))
    return file_sha256(path)


def sqlite_uri(path: Path, **params: str) -> str:
    """A SQLite URI for ``path``: '#', '?', '%', spaces and non-ASCII are percent-encoded, as URIs need."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"file:{quote(str(path.absolute()))}" + (f"?{query}" if query else "")


def connect_sidecar(path: Path, readonly: bool, immutable: bool = False) -> sqlite3.Connection:
    """The one way fsearch opens a sidecar; ``immutable`` reads media nobody can write (no -shm needed)."""
    params = {"mode": "ro", **({"immutable": "1"} if immutable else {})} if readonly else {}
    conn = sqlite3.connect(sqlite_uri(path, **params), uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def connect_reader(path: Path, fallback: bool = True) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection; falls back to immutable mode where the -shm file cannot be made.

    A WAL database needs its -shm file, which SQLite cannot create on a read-only mount or a
    full disk. The fallback is safe only when no -wal file holds commits that the main file
    lacks, which is the state a writer leaves when it closes (and no writer can work there).
    Returns the connection and whether it is immutable.
    """
    conn = connect_sidecar(path, readonly=True)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn, False
    except sqlite3.OperationalError as exc:
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if not fallback or exc.sqlite_errorcode & 0xFF not in _NO_SHM or (wal.exists() and wal.stat().st_size > 0):
            raise
    return connect_sidecar(path, readonly=True, immutable=True), True


_NO_SHM = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL)


def _manifest_text(conn: sqlite3.Connection) -> str | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
    return row[0] if row else None


def _read_meta(conn: sqlite3.Connection) -> Manifest | None:
    text = _manifest_text(conn)
    return Manifest.from_json(text) if text else None


def check_model(manifest: Manifest, info: ModelInfo) -> None:
    """Refuse to mix vectors of two models in one index, naming what differs."""
    recorded = manifest.model
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

    def dense_search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, cosine score) per query row."""
        import faiss

        # One thread is faster for a single query (memory-bound); batches go through BLAS.
        faiss.omp_set_num_threads(1 if len(queries) == 1 else os.cpu_count() or 1)
        faiss.cvar.distance_compute_blas_threshold = 1000
        scores, ids = self.index.search(queries, min(k, max(self.index.ntotal, 1)))
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
                for row_ids, row_scores in zip(ids, scores, strict=True)]

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score, higher is better) of the chunks holding any of ``terms``.

        FTS5 ranks every chunk that matches, so a query with a word found in a large share of
        a big index ranks hundreds of thousands of rows. When the query's posting lists hold
        more than KEYWORD_POSTINGS_BUDGET rows, candidates come from its rarest words alone
        (as many as fit the budget, at least one), and the best KEYWORD_CANDIDATES of them are
        scored with every word, as FTS5 would score them (bm25.py). Below the budget (every
        index of a few thousand documents) the answer is FTS5's own.
        """
        expression = lexical.any_of(terms)
        if not expression:
            return []
        frequency = self._document_frequencies(terms)
        if sum(frequency.values()) <= KEYWORD_POSTINGS_BUDGET:
            rows = self._conn.execute(
                "SELECT rowid, -bm25(chunk_terms) FROM chunk_terms WHERE chunk_terms MATCH ? "
                "ORDER BY bm25(chunk_terms) LIMIT ?", (expression, k)).fetchall()
            return [(int(i), float(s)) for i, s in rows]
        candidates = [row[0] for row in self._conn.execute(
            "SELECT rowid FROM chunk_terms WHERE chunk_terms MATCH ? ORDER BY bm25(chunk_terms) LIMIT ?",
            (lexical.any_of(_rarest(terms, frequency)), max(k, KEYWORD_CANDIDATES)))]
        return self._scored(candidates, terms, frequency)[:k]

    def _scored(self, ids: list[int], terms: list[str], frequency: dict[str, int]) -> list[tuple[int, float]]:
        """``ids`` ranked by the bm25() FTS5 would give them for ``terms``."""
        if not ids:
            return []
        marks = ",".join(str(int(i)) for i in ids)
        texts = self.chunk_terms(ids).items()
        sizes = dict(self._conn.execute(f"SELECT id, sz FROM chunk_terms_docsize WHERE id IN ({marks})"))
        total_rows, total_tokens = bm25.varints(
            self._conn.execute("SELECT block FROM chunk_terms_data WHERE id = 1").fetchone()[0])[:2]
        phrases = [(bm25.tokens(t), bm25.idf(total_rows, frequency.get(t, 0))) for t in terms]
        average = total_tokens / max(total_rows, 1)
        scored = [(int(i), bm25.score(bm25.tokens(text), bm25.varints(sizes[i])[0], phrases, average))
                  for i, text in texts]
        return sorted(scored, key=lambda hit: (-hit[1], hit[0]))

    def chunk_terms(self, ids: Iterable[int]) -> dict[int, str]:
        """The segmented words the keyword index holds for each chunk, as FTS5 matches them."""
        marks = ",".join(str(int(i)) for i in ids)
        return dict(self._conn.execute(f"SELECT rowid, terms FROM chunk_terms WHERE rowid IN ({marks})")) \
            if marks else {}

    def _document_frequencies(self, terms: list[str]) -> dict[str, int]:
        """Chunks holding each term: the common ones from term_frequencies, the rest from FTS5's vocabulary
        (quick for a rare word; a word FTS5 splits in several tokens is counted as a phrase)."""
        marks = ",".join("?" * len(terms))
        known = dict(self._conn.execute(f"SELECT term, chunks FROM term_frequencies WHERE term IN ({marks})",
                                        terms)) if self._has_term_frequencies() else {}
        rest = [t for t in terms if t not in known]
        if rest:
            self._open_vocabulary()
            single = {t: bm25.tokens(t) for t in rest}
            words = [t for t in rest if single[t] == [t]]
            known.update(self._conn.execute(
                f"SELECT term, doc FROM temp.fsearch_vocabulary WHERE term IN ({','.join('?' * len(words))})", words))
            for term in rest:
                if single[term] != [term] and single[term]:
                    known[term] = self._conn.execute("SELECT COUNT(*) FROM chunk_terms WHERE chunk_terms MATCH ?",
                                                     (lexical.any_of([term]),)).fetchone()[0]
        return known

    def _open_vocabulary(self) -> None:
        """FTS5's vocabulary as ``temp.fsearch_vocabulary``: a temp table, so a read-only reader can make it."""
        self._conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fsearch_vocabulary "
                           "USING fts5vocab(main, chunk_terms, row)")

    def _has_term_frequencies(self) -> bool:
        return bool(self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'term_frequencies'").fetchone())

    def file_states(self, under: str | None = None) -> dict[str, FileState]:
        """Indexed files whose path is ``under`` or inside it (all files when None)."""
        where, args = _under_clause(under, "path")
        return {path: FileState(size, mtime, sha) for path, size, mtime, sha
                in self._conn.execute(f"SELECT path, size, mtime, sha256 FROM files {where}", args)}

    def indexed_files(self, under: str | None = None) -> list[IndexedFile]:
        """Indexed files (under a folder, or exactly a file), by path, with their chunk counts."""
        where, args = _under_clause(under)
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


def _rowid(cursor: sqlite3.Cursor) -> int:
    """The row an INSERT made (typed optional by sqlite3, it is always set after one)."""
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _rarest(terms: list[str], frequency: dict[str, int]) -> list[str]:
    """The rarest terms whose postings fit KEYWORD_POSTINGS_BUDGET together (at least one)."""
    chosen: list[str] = []
    postings = 0
    for term in sorted(terms, key=lambda t: frequency.get(t, 0)):
        postings += frequency.get(term, 0)
        if chosen and postings > KEYWORD_POSTINGS_BUDGET:
            break
        chosen.append(term)
    return chosen


def _under_clause(under: str | None, column: str = "f.path") -> tuple[str, tuple]:
    """SQL selecting the path ``under`` itself and everything inside it (everything when None)."""
    if under is None:
        return "", ()
    prefix = under.rstrip(os.sep) + os.sep
    return f"WHERE {column} = ? OR substr({column}, 1, ?) = ?", (under, len(prefix), prefix)


class _StaleSnapshot(Exception):
    """Internal: the generation a read transaction sees was replaced before its vectors could be loaded."""


class IndexReader(_IndexView):
    """A read-only view that follows commits: each ``snapshot()`` sees the newest generation, whole.

    Vectors are memory-mapped, chunk texts fetched k at a time from SQLite. Long-running
    readers (the prompt, ``fsearch serve``) pick up every commit before their next query.
    """

    def build_state(self) -> str:
        """"complete", or "in progress" while a build runs, "interrupted" after one was cut off."""
        if self.manifest.build is None:
            return "complete"
        return "in progress" if writer_active(self.folder) else "interrupted"

    SNAPSHOT_ATTEMPTS = 20

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        sidecar = folder / SIDECAR
        if not sidecar.is_file():
            raise no_index(folder)
        try:
            self._conn, self._immutable = connect_reader(sidecar)
            migrations.check_readable(self._conn, folder)
            manifest = _read_meta(self._conn)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"index sidecar {sidecar} is unreadable ({exc})", hint=REBUILD_HINT) from None
        if not manifest:
            raise nothing_committed(folder)
        self.manifest: Manifest = manifest
        self._manifest_text: str | None = None
        self.index: Any = None
        self._lock = threading.RLock()
        with self.snapshot():
            pass

    @contextmanager
    def snapshot(self) -> Iterator[IndexReader]:
        """Hold one commit's rows (a read transaction) with the same generation's vectors loaded."""
        with self._lock:
            if self._immutable:
                self._leave_immutable_mode()
            if self._conn.in_transaction:  # a query cancelled (Ctrl-C) between BEGIN and its clean-up
                self._rollback()
            for attempt in range(self.SNAPSHOT_ATTEMPTS):
                try:
                    self._conn.execute("BEGIN")
                    self._follow(self._manifest_text_now())
                    break
                except _StaleSnapshot:
                    self._rollback()
                    if attempt == self.SNAPSHOT_ATTEMPTS - 1:
                        raise IndexCorruptError(f"index vectors in {self.folder} are missing", hint=REPAIR_HINT
                                                ) from None
                    time.sleep(0.01 * (attempt + 1))  # a writer is between its commit and its clean-up
                except BaseException:
                    self._rollback()
                    raise
            try:
                yield self
            finally:
                self._rollback()  # a read transaction: nothing to keep

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _leave_immutable_mode(self) -> None:
        """Space freed, or the medium made writable: use a locking connection again, so commits are seen."""
        try:
            conn, _ = connect_reader(self.folder / SIDECAR, fallback=False)
        except sqlite3.DatabaseError:
            return
        self._conn.close()
        self._conn, self._immutable = conn, False

    def _manifest_text_now(self) -> str:
        try:
            text = _manifest_text(self._conn)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"index sidecar in {self.folder} is unreadable ({exc})",
                                    hint=REBUILD_HINT) from None
        if not text:
            raise IndexCorruptError(f"index at {self.folder} has no manifest", hint=REBUILD_HINT)
        return text

    def _follow(self, text: str) -> None:
        """Load the vectors of the generation this transaction sees, if they are not the ones in memory."""
        if text == self._manifest_text:
            return
        manifest = Manifest.from_json(text)
        if manifest.format_version != FORMAT_VERSION:
            raise IndexCorruptError(
                f"index at {self.folder} has format {manifest.format_version}, "
                f"this fsearch reads format {FORMAT_VERSION}", hint=REBUILD_HINT)
        if manifest.generation != self.manifest.generation or self.index is None:
            self.index = self._load_vectors(manifest)
        self.manifest, self._manifest_text = manifest, text

    def _load_vectors(self, manifest: Manifest) -> Any:
        import faiss

        path = vectors_file(self.folder, manifest.generation)
        params = manifest.vectors
        try:
            damaged = manifest.vectors_sha256 and path.stat().st_size <= VERIFY_MAX_BYTES and \
                file_sha256(path) != manifest.vectors_sha256
            index = None if damaged else faiss.read_index(str(path), vector_index.mmap_flags(params))
        except (OSError, RuntimeError):
            # files are never changed in place, only replaced and deleted: one that vanished was superseded
            if not path.exists() and self._newer_generation_committed(manifest.generation):
                raise _StaleSnapshot() from None
            what = "truncated or unreadable" if path.exists() else "missing"
            raise IndexCorruptError(f"index vectors {path} are {what}", hint=REPAIR_HINT) from None
        if damaged or index is None:
            raise IndexCorruptError(f"index vectors {path} are damaged (checksum mismatch)", hint=REPAIR_HINT)
        vector_index.prepare_for_search(index, params)
        chunks, dim = manifest.counts.chunks, manifest.model["dim"]
        if index.ntotal != chunks or index.d != dim:
            raise IndexCorruptError(
                f"index at {self.folder} is inconsistent: {index.ntotal} vectors of dim {index.d}, "
                f"manifest says {chunks} chunks of dim {dim}",
                hint=REPAIR_HINT,
            )
        return index

    def _newer_generation_committed(self, generation: int) -> bool:
        """Asked outside our transaction: has a writer committed past ``generation``?"""
        latest = committed_manifest(self.folder)
        return latest is not None and latest.generation > generation

    def fetch(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        """Chunk rows by id; call inside ``snapshot()`` so they belong to the vectors searched."""
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        place = "c.page, COALESCE(c.heading, '')" if has_column(self._conn, "chunks", "page") else "NULL, ''"
        rows = self._conn.execute(
            f"SELECT c.id, c.text, f.path, c.start, c.end, c.line, {place} FROM chunks c "
            f"JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})",
            wanted,
        ).fetchall()
        return {row[0]: StoredChunk(*row) for row in rows}

    @property
    def chunk_count(self) -> int:
        """Chunks in the generation loaded (inside ``snapshot()``: the newest committed)."""
        return self.index.ntotal

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def close(self) -> None:
        self._conn.close()


class IndexWriter(_IndexView):
    """Adds, replaces and removes files; nothing is visible to readers before ``commit()``.

    New vectors are buffered and added to FAISS in blocks; a new index is created at the
    first flush, when the number of chunks (which picks the index type) is known.
    """

    #: buffered vectors are added to the index in blocks of about this many bytes (a flat index's go to disk)
    FLUSH_BYTES = 8 << 20

    def __init__(self, folder: Path, model: ModelInfo, chunking: dict[str, int], rebuild: bool = False,
                 index_type: str = "auto", wait: bool = True, on_wait: Callable[[str], None] | None = None,
                 repair: bool = False, resume: bool = True) -> None:
        claim_index_folder(folder)
        self.folder = folder
        self._lock = WriterLock(folder, wait=wait, on_wait=on_wait).acquire()
        self._buffer: dict[int, np.ndarray] = {}  # chunk id -> vector, not yet added to FAISS
        self._dim = model.dim
        self._index_type = index_type
        self._rebuild_graph = False
        self._repair = repair
        self.vectors_lost = False
        self.warnings: list[str] = []
        self.index: Any = None
        try:
            try:
                self._conn = connect_sidecar(folder / SIDECAR, readonly=False)
                self._open(model, chunking, rebuild, resume)
            except sqlite3.DatabaseError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                    raise  # full, read-only, I/O: write_errors says which
                if not rebuild:
                    raise IndexCorruptError(f"cannot update the index at {folder}: {exc}", hint=REBUILD_HINT
                                            ) from None
                self._start_afresh(model, chunking)  # --rebuild always works: the damaged sidecar goes
        except BaseException:
            self.close()
            raise

    def _start_afresh(self, model: ModelInfo, chunking: dict[str, int]) -> None:
        if hasattr(self, "_conn"):  # not when the sidecar could not even be opened
            self._conn.close()
        for name in SIDECAR_FILES:
            (self.folder / name).unlink(missing_ok=True)
        self._conn = connect_sidecar(self.folder / SIDECAR, readonly=False)
        self._open(model, chunking, rebuild=True)

    def _open(self, model: ModelInfo, chunking: dict[str, int], rebuild: bool, resume: bool = True) -> None:
        import faiss

        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("BEGIN IMMEDIATE")
        old = _read_meta(self._conn)
        self._old_generation = (old.generation if old else 0) or _last_known(self.folder, "generation")
        #: an interrupted build (first build or --rebuild) is resumed, not restarted, by the same command
        self.resumed = old is not None and old.build is not None and (
            not rebuild or (resume and self._compatible(old, model, chunking)))
        #: the committed index this writer carries forward (None: it starts empty)
        kept = old if old is not None and (not rebuild or self.resumed) else None
        if kept is not None:
            self._check_compatible(kept, model, chunking)
            path = vectors_file(self.folder, self._old_generation)
            try:
                if kept.vectors_sha256 and file_sha256(path) != kept.vectors_sha256:
                    raise RuntimeError("checksum mismatch")  # readable but damaged: never carried forward
                self.index = FlatFile(self._dim, self.folder, path) if kept.vectors.get("type", "flat") == "flat" \
                    else faiss.read_index(str(path))
            except (RuntimeError, OSError, IndexCorruptError):
                if not self._repair:
                    raise IndexCorruptError(f"index vectors {path} are missing, truncated or damaged; "
                                            "nothing was changed", hint=REPAIR_HINT) from None
                self.vectors_lost = True
                self._index_type = kept.vectors.get("type", "auto")
        else:
            last_id = self._last_chunk_id() or _last_known(self.folder, "last_chunk_id")
            for table in ("chunk_terms", "chunks", "files", "meta"):
                self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _SCHEMA.split(";"):  # not executescript: it would commit the open transaction
            if statement.strip():
                self._conn.execute(statement)
        #: the schema migrations this writer ran on an older sidecar (committed with its first commit)
        self.migrated: list[str] = []
        if kept is not None:
            self.migrated = migrations.migrate(self._conn, self.folder)
        else:
            migrations.mark_current(self._conn)
        if kept is None and last_id:
            # ids are never reused: a reader holding old vectors must not find new text under an old id
            self._conn.execute("DELETE FROM sqlite_sequence WHERE name = 'chunks'")
            self._conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('chunks', ?)", (last_id,))
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        #: while a build is unfinished, the index type asked for (it may still become IVF when complete)
        self._building: str | None = self._index_type  # a new build
        if self.resumed and kept is not None and kept.build is not None:
            self._building = kept.build["index_type"]
        elif kept is not None:
            self._building = None  # an update of a finished index
        if self._building is not None and self._index_type == "auto":
            self._index_type = self._building
        self.manifest = Manifest(
            format_version=FORMAT_VERSION, generation=self._old_generation,
            model={**model.identity(), "source": model.source, "revision": model.revision,
                   "max_tokens": model.max_tokens},
            chunking=chunking, keyword=KEYWORD_FORMAT,
            vectors=kept.vectors if kept else {}, fusion=kept.fusion if kept else {},
            created_at=kept.created_at if kept else now, roots=list(kept.roots) if kept else [])
        #: an index that held files before roots were recorded cannot name its roots: it records none
        self._roots_unknown = kept is not None and not kept.roots and kept.counts.files > 0

    def _last_chunk_id(self) -> int:
        if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            return 0
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        return int(row[0]) if row else 0

    def _compatible(self, old: Manifest, model: ModelInfo, chunking: dict[str, int]) -> bool:
        try:
            self._check_compatible(old, model, chunking)
        except (ModelMismatchError, ConfigError):
            return False
        return True

    def _check_compatible(self, old: Manifest, model: ModelInfo, chunking: dict[str, int]) -> None:
        if old.format_version != FORMAT_VERSION:
            raise ModelMismatchError(f"the index has format {old.format_version}, this fsearch writes "
                                     f"format {FORMAT_VERSION}", hint="re-index with --rebuild")
        check_model(old, model)
        if old.keyword != KEYWORD_FORMAT:
            raise ModelMismatchError("the index was built with another keyword segmenter",
                                     hint="re-index with --rebuild")
        if old.chunking != chunking:
            raise ModelMismatchError(
                f"the index was built with chunk size {old.chunking['chunk_size']} and overlap "
                f"{old.chunking['chunk_overlap']}, not {chunking['chunk_size']} and {chunking['chunk_overlap']}",
                hint="use the same --chunk-size/--chunk-overlap, or re-index with --rebuild",
            )
        recorded_type = old.build["index_type"] if old.build else old.vectors.get("type")
        if self._index_type not in ("auto", recorded_type):
            raise ConfigError(f"the index is a {recorded_type} index, not {self._index_type}",
                              hint="re-index with --rebuild to change --index-type")

    # -- what is there ----------------------------------------------------------------------
    def stored_vectors(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors of chunks already in the index with the same text (same model, by construction)."""
        import numpy as np

        if self.index is None and not self._buffer:
            return {}
        wanted, found = list(set(text_hashes)), {}
        if self.index is not None:
            vector_index.allow_reconstruct(self.index, self.manifest.vectors)
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            rows = self._conn.execute(
                f"SELECT text_hash, MIN(id) FROM chunks WHERE text_hash IN ({','.join('?' * len(part))}) "
                "GROUP BY text_hash", part).fetchall()
            for text_hash, chunk_id in rows:
                buffered = self._buffer.get(chunk_id)
                found[text_hash] = buffered if buffered is not None else \
                    np.asarray(self.index.reconstruct(int(chunk_id)), dtype=np.float32)
        return found

    # -- changes ----------------------------------------------------------------------------
    def add_root(self, source: str) -> None:
        """Record a file or folder given to `fsearch index` (one already inside a recorded root adds nothing)."""

        roots = self.manifest.roots
        if not self._roots_unknown and not source_under(source, roots):
            roots[:] = [r for r in roots if not source_under(r, [source])] + [source]

    def touch_file(self, path: str, size: int, mtime: float) -> None:
        """Same content, new size/mtime: remember them so the next run needs only a stat."""
        self._conn.execute("UPDATE files SET size = ?, mtime = ? WHERE path = ?", (size, mtime, path))

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
            if vector_index.supports_removal(self.manifest.vectors):
                vector_index.remove_ids(self.index, self.manifest.vectors, np.asarray(ids, dtype=np.int64))
            else:
                self._rebuild_graph = True
        return len(ids)

    def add_file(self, path: str, sha256: str, size: int, mtime: float, encoding: str,
                 chunks: list, vectors: Sequence[np.ndarray], terms: list[str], text_hashes: list[str]) -> None:
        """Store one file's chunks (``chunking.Chunk``) with their vectors, keyword terms and text hashes."""
        file_id = _rowid(self._conn.execute(
            "INSERT INTO files (path, sha256, size, mtime, encoding, indexed_at) VALUES (?, ?, ?, ?, ?, ?)",
            (path, sha256, size, mtime, encoding, time.time()),
        ))
        for order, (chunk, words, text_hash, vector) in enumerate(zip(chunks, terms, text_hashes, vectors,
                                                                      strict=True)):
            chunk_id = _rowid(self._conn.execute(
                "INSERT INTO chunks (file_id, ord, text, start, end, line, text_hash, page, heading) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (file_id, order, chunk.text, chunk.start, chunk.end, chunk.line, text_hash, chunk.page,
                 chunk.heading or None),
            ))
            self._conn.execute("INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)", (chunk_id, words))
            self._buffer[chunk_id] = vector
        faults.point("after-first-file")
        if len(self._buffer) * self._dim * 4 >= self.FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Add buffered vectors to FAISS in one block, creating the index if it is new.

        A new index starts flat when it may become IVF: IVF is trained once the build is
        complete, on a sample of all its vectors (``prepare(final=True)``).
        """
        import numpy as np

        if not self._buffer:
            return
        ids = np.fromiter(self._buffer.keys(), dtype=np.int64, count=len(self._buffer))
        block = np.ascontiguousarray(np.stack(list(self._buffer.values())), dtype=np.float32)
        self._buffer = {}
        self._ensure_index()
        self.index.add_with_ids(block, ids)

    def _ensure_index(self) -> None:
        """Create the empty index this writer grows, if there is none yet (flat where it may become IVF)."""
        if self.index is None:
            self.index, self.manifest.vectors = vector_index.build(vector_index.staging_type(self._index_type),
                                                                      self._dim, self.folder)

    def _rebuild_hnsw(self) -> None:
        import numpy as np

        ids = [r[0] for r in self._conn.execute("SELECT id FROM chunks ORDER BY id")]
        kept = np.stack([self.index.reconstruct(i) for i in ids]) if ids else np.zeros((0, self._dim), np.float32)
        self.index, self.manifest.vectors = vector_index.build("hnsw", self._dim, self.folder)
        if ids:
            self.index.add_with_ids(kept, np.asarray(ids, dtype=np.int64))

    def repair(self, encode: Callable[[list[str]], np.ndarray], segment: Callable[[str], str],
               text_hash: Callable[[str], str]) -> list[str]:
        """Make vectors and keyword rows agree with the chunk rows (the sidecar is the source of truth).

        Files whose chunk texts no longer match their stored hashes were altered inside the
        sidecar: nothing in the index can say what they held, so they leave it (re-index to add them).
        """
        import numpy as np

        actions = []
        altered = [path for path, text, stored in self._conn.execute(
            "SELECT f.path, c.text, c.text_hash FROM chunks c JOIN files f ON f.id = c.file_id")
            if text_hash(text) != stored]
        if altered:
            files = sorted(set(altered))
            for path in files:
                self._conn.execute("DELETE FROM chunks WHERE file_id = (SELECT id FROM files WHERE path = ?)", (path,))
                self._conn.execute("DELETE FROM files WHERE path = ?", (path,))
            actions.append(f"removed {len(files)} file(s) whose stored text was altered; run `fsearch index` on "
                           f"them to add them back: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}")
        rows = dict(self._conn.execute("SELECT id, text FROM chunks").fetchall())
        ids = set(rows)
        if self.index is None:
            missing = sorted(ids)
            if self.vectors_lost:
                actions.append(f"rebuilt the damaged vectors file from {len(missing)} chunk texts")
        else:
            have = set(vector_index.stored_ids(self.index, self.manifest.vectors).tolist())
            extra = np.asarray(sorted(have - ids), dtype=np.int64)
            if len(extra):
                vector_index.remove_ids(self.index, self.manifest.vectors, extra)
                actions.append(f"dropped {len(extra)} orphan vector(s) with no chunk row")
            missing = sorted(ids - have)
            if missing:
                actions.append(f"re-embedded {len(missing)} chunk(s) that had no vector")
        for start in range(0, len(missing), 64):
            part = missing[start:start + 64]
            self._buffer.update(zip(part, encode([rows[i] for i in part]), strict=True))
        terms = {r[0] for r in self._conn.execute("SELECT rowid FROM chunk_terms")}
        if terms != ids:
            self._conn.execute("DELETE FROM chunk_terms")
            self._conn.executemany("INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)",
                                   [(i, segment(text)) for i, text in rows.items()])
            actions.append(f"rebuilt the keyword index ({len(terms)} rows for {len(ids)} chunks)")
        return actions

    def refresh_term_frequencies(self) -> None:
        """Record the common words of a big index (see TERM_FREQUENCIES_ABOVE); a small one keeps none."""
        self._conn.execute("DELETE FROM term_frequencies")
        if self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] <= TERM_FREQUENCIES_ABOVE:
            return
        self._open_vocabulary()
        self._conn.execute("INSERT INTO term_frequencies (term, chunks) SELECT term, doc FROM temp.fsearch_vocabulary "
                           "WHERE doc >= ?", (COMMON_TERM_CHUNKS,))

    def set_fusion(self, fusion: dict) -> None:
        """Record the leg calibration that hybrid search weights by (see search.calibrate)."""
        self.manifest.fusion = fusion

    def prepare(self, final: bool = True) -> None:
        """Make every change searchable through this writer (calibration runs before the commit).

        ``final``: the build is complete, so an index meant to be IVF is trained and filled now.
        """
        self._flush()
        if self._rebuild_graph:
            self._rebuild_hnsw()
            self._rebuild_graph = False
        self._ensure_index()
        if final and self._building is not None and self.manifest.vectors["type"] == "flat" and \
                vector_index.choose_type(self._index_type, self.index.ntotal) == "ivf":
            self.index, self.manifest.vectors = vector_index.flat_to_ivf(self.index)

    def commit(self) -> Manifest:
        """Publish everything since opening; returns the new manifest. On failure nothing changes."""
        with write_errors(self.folder):
            return self._commit(final=True)

    def checkpoint(self) -> Manifest:
        """Publish what is written so far and go on writing: a long build keeps its work if killed.

        Until the final ``commit()``, the manifest marks the build unfinished, and the next
        writer of the same model and chunking resumes it (even with --rebuild).
        """
        with write_errors(self.folder):
            manifest = self._commit(final=False)
            self._conn.execute("BEGIN IMMEDIATE")
            return manifest

    def _commit(self, final: bool) -> Manifest:
        self.prepare(final)
        if final:
            self._building = None
        self.manifest.build = None if self._building is None else {"index_type": self._building}
        generation = self._old_generation + 1
        files, chunks = self._conn.execute(
            "SELECT (SELECT COUNT(*) FROM files), (SELECT COUNT(*) FROM chunks)").fetchone()
        if chunks != self.index.ntotal:
            raise IndexCorruptError(f"internal error: {chunks} chunk rows but {self.index.ntotal} vectors")
        self.manifest.generation, self.manifest.counts = generation, Counts(files, chunks)
        self.manifest.last_chunk_id = self._last_chunk_id()
        self.manifest.updated_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        faults.point("before-vectors")
        vector_index.drop_reconstruct(self.index, self.manifest.vectors)
        self.manifest.vectors_sha256 = _write_vectors(self.index, vectors_file(self.folder, generation))
        faults.point("after-vectors")
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('manifest', ?)",
                           (self.manifest.to_json(),))
        self._conn.execute("COMMIT")
        self._old_generation = generation
        faults.point("after-commit")
        try:  # the commit is done: what follows is tidying up, and a failure there is a warning, not a lie
            atomic_write_bytes(self.folder / MANIFEST,
                               self.manifest.to_json(indent=2).encode("utf-8"))
            faults.point("after-manifest")
            self._remove_stale_vectors(keep=generation)
        except OSError as exc:
            self.warnings.append(f"generation {generation} is committed, but tidying up failed "
                                 f"({describe(exc, self.folder)}); "
                                 "`fsearch doctor --repair` finishes it")
        return self.manifest

    def _remove_stale_vectors(self, keep: int) -> None:
        current = vectors_file(self.folder, keep)
        for path in self.folder.iterdir():
            if path != current and _STALE_VECTORS.fullmatch(path.name):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            if isinstance(self.index, FlatFile):
                self.index.close()
            if hasattr(self, "_conn"):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._conn.close()
        finally:
            self._lock.release()

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_index(folder: Path) -> IndexReader:
    return IndexReader(folder)


def committed_manifest(folder: Path) -> Manifest | None:
    """The committed manifest straight from the sidecar (manifest.json may lag a crash behind); None if none."""
    if not (folder / SIDECAR).is_file():
        return None
    try:
        with closing(connect_reader(folder / SIDECAR)[0]) as conn:
            return _read_meta(conn)
    except sqlite3.DatabaseError:
        return None


def no_index(folder: Path) -> IndexNotFoundError:
    """No sidecar at all: the one message for every command that needs an index."""
    return IndexNotFoundError(f"no index at {folder}",
                              hint="run `fsearch index PATH` first, or point --index-dir at an index folder")


def nothing_committed(folder: Path) -> IndexNotFoundError:
    """A sidecar no build has committed to: one stopped before its first commit, or that found nothing to index."""
    return IndexNotFoundError(f"nothing is indexed at {folder} yet: no build there has committed anything",
                              hint="run `fsearch index PATH`")


def _last_known(folder: Path, key: str) -> int:
    """A number from manifest.json, for a rebuild whose sidecar is gone: generations and ids keep rising."""
    try:
        return int(json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get(key, 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


#: SQLite reports some writes that failed for want of space as plain I/O errors; the free space tells
LOW_SPACE_BYTES = 1024 * 1024


def describe(exc: BaseException, folder: Path | None = None) -> str:
    """What went wrong, by error number (the words of a message vary with the byte it struck at)."""
    code = getattr(exc, "errno", None)
    sqlite_code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in _NO_SPACE or sqlite_code == sqlite3.SQLITE_FULL or (
            sqlite_code == sqlite3.SQLITE_IOERR and folder is not None and _free_bytes(folder) < LOW_SPACE_BYTES):
        return "no space left on the device"
    if code == errno.EROFS or sqlite_code == sqlite3.SQLITE_READONLY:
        return "the file system is read-only"
    if code in _NO_PERMISSION or sqlite_code in (sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        return "permission denied"
    if code == errno.EIO or sqlite_code == sqlite3.SQLITE_IOERR:
        return "an I/O error (a full or failing disk?)"
    return f"{type(exc).__name__}: {exc}"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return LOW_SPACE_BYTES


@contextmanager
def write_errors(folder: Path) -> Iterator[None]:
    """Turn OS and SQLite failures while updating ``folder`` into one line that says what is live."""
    try:
        yield
    except FsearchError:
        raise  # already says what happened (some of ours are OSErrors too)
    except (OSError, sqlite3.OperationalError) as exc:
        committed = committed_manifest(folder)
        live = committed.generation if committed else None
        state = f"the previous index is unchanged (generation {live})" if live else "no index was written"
        reason = describe(exc, folder)
        hint = "free some space and run it again" if "space" in reason else None
        raise IndexWriteError(f"cannot write the index at {folder}: {reason}; {state}", hint=hint) from None
