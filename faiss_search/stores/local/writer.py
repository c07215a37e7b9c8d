"""Writing a local index: the one writer, under a lock, that commits a new generation whole."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, IndexCorruptError, ModelMismatchError
from ...fileio import atomic_write_bytes, atomic_write_stream, file_sha256
from ...formats import reader_version
from ...manifest import FORMAT_VERSION, Counts, Manifest, ModelInfo, check_model
from ...paths import source_under
from .. import faults, records
from . import migrations
from . import vectors as vector_index
from .failures import describe, write_errors
from .flatfile import FlatFile
from .folder import (
    MANIFEST,
    REBUILD_HINT,
    REPAIR_HINT,
    SIDECAR,
    SIDECAR_FILES,
    STALE_VECTORS,
    claim_index_folder,
    last_known,
    vectors_file,
)
from .keyword import KEYWORD_FORMAT
from .locking import WriterLock
from .sidecar import SCHEMA, connect_sidecar, read_meta, rowid
from .view import IndexView

if TYPE_CHECKING:
    import numpy as np


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


class IndexWriter(IndexView):
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
        old = read_meta(self._conn)
        self._old_generation = (old.generation if old else 0) or last_known(self.folder, "generation")
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
            last_id = self._last_chunk_id() or last_known(self.folder, "last_chunk_id")
            for table in ("chunk_terms", "chunks", "files", "meta"):
                self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in SCHEMA.split(";"):  # not executescript: it would commit the open transaction
            if statement.strip():
                self._conn.execute(statement)
        #: the schema migrations this writer ran on an older sidecar (committed with its first commit)
        self.migrated: list[str] = []
        if kept is not None:
            self.migrated = migrations.migrate(self._conn, self.folder)
            if kept.keyword != KEYWORD_FORMAT:  # an older version of the segmenter: its words made again
                self.migrated.append(f"made the keyword index's words again for {self.resegment()} chunk(s) "
                                     f"with this version's segmenter")
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
            vectors=kept.vectors if kept else {}, fusion=self._fusion_kept(kept),
            created_at=kept.created_at if kept else now, roots=list(kept.roots) if kept else [])
        #: an index that held files before roots were recorded cannot name its roots: it records none
        self._roots_unknown = kept is not None and not kept.roots and kept.counts.files > 0

    @staticmethod
    def _fusion_kept(kept: Manifest | None) -> dict:
        """The calibration carried forward; measured again at the next commit when the words changed."""
        if kept is None:
            return {}
        if kept.keyword != KEYWORD_FORMAT:
            return {**kept.fusion, "changed_chunks": kept.counts.chunks + 1}
        return kept.fusion

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
        if old.keyword.get("segmenter") != KEYWORD_FORMAT["segmenter"] or \
                old.keyword.get("version", 0) > KEYWORD_FORMAT["version"]:
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
    @property
    def chunk_count(self) -> int:
        """Vectors in the index as this writer holds it (after ``prepare()``: every change)."""
        return self.index.ntotal if self.index is not None else 0

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
        file_id = rowid(self._conn.execute(
            "INSERT INTO files (path, sha256, size, mtime, encoding, indexed_at, reader) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, sha256, size, mtime, encoding, time.time(), reader_version(path)),
        ))
        for order, (chunk, words, text_hash, vector) in enumerate(zip(chunks, terms, text_hashes, vectors,
                                                                      strict=True)):
            chunk_id = rowid(self._conn.execute(
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

    def repair(self, encode: Callable[[list[str]], np.ndarray]) -> list[str]:
        """Make vectors and keyword rows agree with the chunk rows (the sidecar is the source of truth).

        Files whose chunk texts no longer match their stored hashes were altered inside the
        sidecar: nothing in the index can say what they held, so they leave it (re-index to add them).
        """
        import numpy as np

        actions = []
        altered = [path for path, text, stored in self._conn.execute(
            "SELECT f.path, c.text, c.text_hash FROM chunks c JOIN files f ON f.id = c.file_id")
            if records.text_hash(text) != stored]
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
            self.resegment()
            actions.append(f"rebuilt the keyword index ({len(terms)} rows for {len(ids)} chunks)")
        return actions

    def set_fusion(self, fusion: dict) -> None:
        """Record the leg calibration that hybrid search weights by (see retrieval/fusion.calibrate)."""
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
            if path != current and STALE_VECTORS.fullmatch(path.name):
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
