"""Where an index is kept, behind one interface: the local folder (FAISS + SQLite, ``store.py``) or a
Milvus collection (``milvus_store.py``).

Search, the prompt, serve, MCP and eval see a ``Reader``, opened by ``open_reader`` from a location
(a folder, or a store address parsed by ``locations.py``); they never ask which kind they hold. A
local index is published to a store through a ``Publisher`` (``open_publisher``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ..locations import StoreAddress
    from ..manifest import Manifest
    from ..milvus_store import PushReport
    from ..store import FileState, IndexedFile, StoredChunk


class Reader(Protocol):
    """A committed index, read. Each ``snapshot()`` sees the newest committed state, whole: what the
    calls inside it return belongs to one generation."""

    @property
    def manifest(self) -> Manifest: ...

    def snapshot(self) -> AbstractContextManager[Reader]: ...

    @property
    def chunk_count(self) -> int: ...

    def dense_search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, cosine score) per query row."""
        ...

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for chunks holding any of ``terms``."""
        ...

    def fetch(self, ids: Iterable[int]) -> dict[int, StoredChunk]: ...

    def file_states(self, under: str | None = None) -> dict[str, FileState]: ...

    def indexed_files(self, under: str | None = None) -> list[IndexedFile]: ...

    def build_state(self) -> str:
        """"complete", or what is unfinished (a build in progress or interrupted, a push unfinished)."""
        ...

    def size_on_disk(self) -> int | None: ...

    def close(self) -> None: ...


def open_reader(index_dir: Path, store: StoreAddress | None = None) -> Reader:
    """The local index folder, or the Milvus collection ``store`` names."""
    if store is None:
        from ..store import open_index

        return open_index(index_dir)
    from ..milvus_store import MilvusReader

    return MilvusReader(store)


class Publisher(Protocol):
    """A store that a local index is published to, sent only what changed since the last time."""

    def ping(self) -> None:
        """Reach the store now, so an unreachable one fails before an hour of embedding, not after it."""
        ...

    def push(self, index_dir: Path, replace_other: bool = False,
             on_progress: Callable[[int, int], None] | None = None) -> PushReport: ...


def open_publisher(store: StoreAddress) -> Publisher:
    """The Milvus collection ``store`` names."""
    from ..milvus_store import MilvusPublisher

    return MilvusPublisher(store)
