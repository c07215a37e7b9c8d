"""Reading a local index: snapshots that follow the writer's commits, each one generation whole."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import IndexCorruptError
from ...fileio import file_sha256
from ...manifest import FORMAT_VERSION, Manifest
from ..records import StoredChunk
from . import migrations
from . import vectors as vector_index
from .folder import REBUILD_HINT, REPAIR_HINT, SIDECAR, no_index, nothing_committed, vectors_file
from .locking import writer_active
from .migrations import has_column
from .sidecar import committed_manifest, connect_reader, manifest_text, read_meta
from .view import IndexView

#: readers verify the vectors file's checksum when they load one no larger than this (sha256 runs at
#: about 1.5 GB/s here, so at most ~0.2 s); larger files are checked for size, count and dimension
VERIFY_MAX_BYTES = 256 * 1024 * 1024


class _StaleSnapshot(Exception):
    """Internal: the generation a read transaction sees was replaced before its vectors could be loaded."""


class IndexReader(IndexView):
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
            manifest = read_meta(self._conn)
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
            text = manifest_text(self._conn)
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

    def chunks_holding(self, phrases: list[str]) -> set[int]:
        """The chunks whose text holds every phrase: SQLite's lower() folds Latin letters only, as asked."""
        where = " AND ".join("instr(lower(text), lower(?)) > 0" for _ in phrases)
        return {row[0] for row in self._conn.execute(f"SELECT id FROM chunks WHERE {where}", phrases)}

    @property
    def chunk_count(self) -> int:
        """Chunks in the generation loaded (inside ``snapshot()``: the newest committed)."""
        return self.index.ntotal

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def close(self) -> None:
        self._conn.close()


def open_index(folder: Path) -> IndexReader:
    return IndexReader(folder)

