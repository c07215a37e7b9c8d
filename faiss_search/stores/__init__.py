"""Where an index is kept, behind one interface: a local folder (FAISS + SQLite, ``stores/local/``) or a
Milvus collection (``stores/milvus/``).

Search, the prompt, serve, MCP and eval see a ``Reader``, opened by ``open_reader`` from a location
(a folder, or a store address parsed by ``locations.py``); they never ask which kind they hold. The
indexer writes a local folder through a ``Writer`` (``open_writer``), which a ``Publisher``
(``open_publisher``) then sends to a store. ``check`` and ``repair`` are `fsearch doctor`'s.

Nothing outside this package imports ``stores.local``, ``stores.milvus`` or pymilvus (an import
contract in pyproject.toml holds it); the backends load only when a factory needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .local.folder import REPAIR_HINT, ensure_marker, marker_id, no_index
from .local.sidecar import committed_manifest
from .records import DoctorReport, FileState, IndexedFile, PushReport, StoredChunk, text_hash

if TYPE_CHECKING:
    import numpy as np

    from ..locations import StoreAddress
    from ..manifest import Manifest, ModelInfo

__all__ = [
    "REPAIR_HINT", "DoctorReport", "FileState", "IndexedFile", "Lookups", "Publisher", "PushReport", "Reader",
    "StoredChunk", "Writer", "check", "committed_manifest", "ensure_marker", "has_index", "marker_id", "no_index",
    "open_publisher", "open_reader", "open_writer", "repair_local", "repair_store", "text_hash",
]


class Lookups(Protocol):
    """What hybrid search's calibration probes: a reader's, or a writer's state before it commits."""

    def dense_search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, cosine score) per query row."""
        ...

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for chunks holding any of ``terms``."""
        ...

    def sample_chunks(self, n: int) -> list[tuple[int, str]]:
        """About ``n`` (chunk id, text) spread evenly over the index."""
        ...

    @property
    def chunk_count(self) -> int: ...


class Reader(Protocol):
    """A committed index, read. Each ``snapshot()`` sees the newest committed state, whole: what the
    calls inside it return belongs to one generation."""

    @property
    def manifest(self) -> Manifest: ...

    def snapshot(self) -> AbstractContextManager[Reader]: ...

    @property
    def chunk_count(self) -> int: ...

    def dense_search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]: ...

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]: ...

    def fetch(self, ids: Iterable[int]) -> dict[int, StoredChunk]: ...

    def chunks_holding(self, phrases: list[str]) -> set[int]:
        """The chunks whose text holds every phrase (Latin letters in any case)."""
        ...

    def file_states(self, under: str | None = None) -> dict[str, FileState]: ...

    def indexed_files(self, under: str | None = None) -> list[IndexedFile]: ...

    def build_state(self) -> str:
        """"complete", or what is unfinished (a build in progress or interrupted, a push unfinished)."""
        ...

    def size_on_disk(self) -> int | None: ...

    def close(self) -> None: ...


def has_index(index_dir: Path, store: StoreAddress | None = None) -> bool:
    """Whether a local index has committed anything; a store is asked only when it is opened."""
    return store is not None or committed_manifest(index_dir) is not None


def open_reader(index_dir: Path, store: StoreAddress | None = None) -> Reader:
    """The local index folder, or the Milvus collection ``store`` names."""
    if store is None:
        from .local.reader import IndexReader

        return IndexReader(index_dir)
    from .milvus.reader import MilvusReader

    return MilvusReader(store)


class Writer(Lookups, Protocol):
    """The one writer of a local index: nothing it does is visible before ``checkpoint()`` or ``commit()``."""

    manifest: Manifest
    #: an interrupted build this writer resumes, and the schema migrations it ran on opening
    resumed: bool
    migrated: list[str]
    #: what went wrong after a commit had succeeded (tidying up)
    warnings: list[str]

    @property
    def chunk_count(self) -> int: ...

    def file_states(self, under: str | None = None) -> dict[str, FileState]: ...

    def stored_vectors(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for these chunk texts (by ``text_hash``): unchanged text is not embedded again."""
        ...

    def add_root(self, source: str) -> None: ...

    def add_file(self, path: str, sha256: str, size: int, mtime: float, encoding: str,
                 chunks: list, vectors: Sequence[np.ndarray], terms: list[str], text_hashes: list[str]) -> None: ...

    def touch_file(self, path: str, size: int, mtime: float) -> None: ...

    def remove_files(self, paths: Iterable[str]) -> int: ...

    def refresh_term_frequencies(self) -> None: ...

    def set_fusion(self, fusion: dict) -> None: ...

    def prepare(self, final: bool = True) -> None: ...

    def checkpoint(self) -> Manifest: ...

    def commit(self) -> Manifest: ...


@contextmanager
def open_writer(folder: Path, model: ModelInfo, chunking: dict[str, int], rebuild: bool = False,
                index_type: str = "auto", wait: bool = True, on_wait: Callable[[str], None] | None = None,
                resume: bool = True) -> Iterator[Writer]:
    """The local index at ``folder``, locked for writing (claimed first if new); a failed write says in one
    line what went wrong and what is still live."""
    from .local.failures import write_errors
    from .local.writer import IndexWriter

    with write_errors(folder), IndexWriter(folder, model, chunking, rebuild=rebuild, index_type=index_type,
                                           wait=wait, on_wait=on_wait, resume=resume) as writer:
        yield writer


class Publisher(Protocol):
    """A store that a local index is published to, sent only what changed since the last time."""

    def ping(self) -> None:
        """Reach the store now, so an unreachable one fails before an hour of embedding, not after it."""
        ...

    def push(self, index_dir: Path, replace_other: bool = False,
             on_progress: Callable[[int, int], None] | None = None) -> PushReport: ...


def open_publisher(store: StoreAddress) -> Publisher:
    """The Milvus collection ``store`` names."""
    from .milvus.publish import MilvusPublisher

    return MilvusPublisher(store)


def check(index_dir: Path, store: StoreAddress | None = None) -> DoctorReport:
    """Every inconsistency in the local index or the collection, in words. Safe while a writer works."""
    if store is None:
        from .local import doctor as local_doctor

        return local_doctor.check(index_dir)
    from .milvus import doctor as milvus_doctor

    return milvus_doctor.check(store)


def repair_local(folder: Path, model: ModelInfo, encode: Callable[[list[str]], np.ndarray]) -> list[str]:
    """Rebuild the local index's vectors and keyword rows from its sidecar; returns what was done."""
    from .local import doctor as local_doctor

    return local_doctor.repair(folder, model, encode)


def repair_store(store: StoreAddress) -> list[str]:
    """Push the local index a collection mirrors again; returns what was done."""
    from .milvus import doctor as milvus_doctor

    return milvus_doctor.repair(store)
