"""Searching a Milvus collection: the same Reader as a local index, filtered to what the ledger published."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import IndexNotFoundError
from ...locations import StoreAddress
from ...manifest import Manifest
from ...paths import source_under
from ..records import FileState, IndexedFile, StoredChunk
from .client import connect, disconnect, milvus_calls
from .ledger import Ledger, published_state, read_state, scan_rows
from .schema import CHUNK_FIELDS, FILE_FIELDS, load_collections

if TYPE_CHECKING:
    import numpy as np


class MilvusReader:
    """The reader the searcher, ``status``, ``ls``, serve and MCP use, over a Milvus collection.

    Each ``snapshot()`` reads the published manifest and ledger once; every search inside it is
    filtered to the chunks that ledger publishes, so a push in progress is never half seen.
    """

    def __init__(self, address: StoreAddress) -> None:
        if address.lite and not Path(address.uri).exists():  # a reader never creates one (a typo would)
            raise IndexNotFoundError(f"no Milvus Lite database at {address.uri}",
                                     hint=f"fsearch export --to {address.spec}, or fsearch index PATH --store "
                                          f"{address.spec}")
        self.address = address
        self._client = connect(address)
        with milvus_calls(address):
            state = read_state(self._client, address)
            if state is None:
                disconnect(self._client, address)
                raise IndexNotFoundError(f"no fsearch index in {address}",
                                         hint=f"fsearch export --to {address.spec}, or fsearch index PATH --store "
                                              f"{address.spec}")
            load_collections(self._client, address)
        self._state = state
        self._lock = threading.RLock()

    @property
    def manifest(self) -> Manifest:
        return self._state.manifest

    @property
    def ledger(self) -> Ledger:
        return self._state.ledger

    @property
    def chunk_count(self) -> int:
        return self._state.manifest.counts.chunks

    @contextmanager
    def snapshot(self) -> Iterator[MilvusReader]:
        from pymilvus.exceptions import MilvusException

        with self._lock, milvus_calls(self.address):
            try:
                state = published_state(self._client, self.address)  # loaded when the reader opened
            except MilvusException:  # dropped, or dropped and made again (not loaded): look again, properly
                state = read_state(self._client, self.address)
            if state is None:
                raise IndexNotFoundError(f"the fsearch index in {self.address} was dropped")
            self._state = state
            yield self

    def dense_search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        rows = self._client.search(self.address.collection, data=[q.tolist() for q in queries], anns_field="vector",
                                   limit=k, filter=self.ledger.visible(), output_fields=["id"],
                                   search_params={"metric_type": "IP"})
        return [[(int(hit["id"]), float(hit["distance"])) for hit in row] for row in rows]

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """BM25 by Milvus over the chunks' words (segmented by fsearch, as the local keyword index), for the
        query's words.

        Milvus Lite reports BM25 as a negative distance, a server as a positive score: the magnitude is the score.
        Ties go to the lower chunk id, as in the local store.
        """
        if not terms:
            return []
        rows = self._client.search(self.address.collection, data=[" ".join(terms)], anns_field="sparse", limit=k,
                                   filter=self.ledger.visible(), output_fields=["id"],
                                   search_params={"metric_type": "BM25"})
        return sorted(((int(hit["id"]), abs(float(hit["distance"]))) for hit in rows[0]), key=lambda h: (-h[1], h[0]))

    def fetch(self, ids: Iterable[int]) -> dict[int, StoredChunk]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = self._client.get(self.address.collection, ids=wanted, output_fields=CHUNK_FIELDS)
        return {int(r["id"]): StoredChunk(int(r["id"]), r["text"], r["source"], int(r["start"]), int(r["end"]),
                                          int(r["line"]), int(r["page"]) or None, r["heading"]) for r in rows}

    def chunks_holding(self, phrases: list[str]) -> set[int]:
        """The published chunks whose text holds every phrase (Latin letters in any case, as the local index)."""
        wanted = [_ascii_lower(phrase) for phrase in phrases]
        return {int(row["id"]) for row in scan_rows(self._client, self.address.collection, ["text"],
                                                   self.ledger.visible())
                if all(phrase in _ascii_lower(row["text"]) for phrase in wanted)}

    def _files(self) -> list[dict]:
        return sorted(scan_rows(self._client, self.address.files, FILE_FIELDS), key=lambda row: row["path"])

    def file_states(self, under: str | None = None) -> dict[str, FileState]:
        return {r["path"]: FileState(int(r["size"]), float(r["mtime"]), r["sha256"]) for r in self._files()
                if _inside(r["path"], under)}

    def indexed_files(self, under: str | None = None) -> list[IndexedFile]:
        return [IndexedFile(r["path"], int(r["chunks"]), int(r["size"]), float(r["indexed_at"]) or None)
                for r in self._files() if _inside(r["path"], under)]

    def _has_unpublished(self) -> bool:
        """Whether a push inserted chunks it has not published (it was interrupted, or it runs now)."""
        return bool(self._client.query(self.address.collection, filter=f"id > {self.ledger.last_chunk_id}",
                                       output_fields=["id"], limit=1))

    def build_state(self) -> str:
        """"complete", or "push unfinished" while a push runs or after one was interrupted."""
        with self.snapshot():
            return "push unfinished" if self.ledger.retired or self._has_unpublished() else "complete"

    def size_on_disk(self) -> int | None:
        """Milvus Lite's database folder; a server's disk is its own business."""
        if not self.address.lite:
            return None
        return sum(p.stat().st_size for p in Path(self.address.uri).rglob("*") if p.is_file())

    def close(self) -> None:
        disconnect(self._client, self.address)


def _inside(path: str, under: str | None) -> bool:
    """``under`` itself or inside it (all when None): the local store's rule."""
    return under is None or source_under(path, [under])


def _ascii_lower(text: str) -> str:
    """Latin letters folded, nothing else: what SQLite's lower() does for the local index."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
