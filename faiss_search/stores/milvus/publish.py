"""Pushing a local index to Milvus: only the difference, published in one step, finished by the next push."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import IndexNotFoundError, ModelMismatchError, StoreError
from ...locations import StoreAddress
from ...manifest import Manifest
from .. import faults
from ..local.reader import IndexReader, open_index
from ..records import PushReport, StoredChunk
from .client import connect, disconnect, milvus_calls, ping
from .ledger import Ledger, PublishedState, all_ids, ranges, read_state, scan_rows, write_state, writer_lease
from .schema import FILE_FIELDS, MAX_PATH_BYTES, MAX_TEXT_BYTES, PLACEHOLDER, create_collections, load_collections

if TYPE_CHECKING:
    import numpy as np

#: rows per insert or delete request
PUSH_BATCH = 512


def _origin(folder: Path) -> str:
    return f"{socket.gethostname()}:{folder.resolve()}"


def source_index(address: StoreAddress) -> Path:
    """The local index a collection mirrors, which must be on this machine (its ledger's origin)."""
    client = connect(address)
    try:
        with milvus_calls(address):
            state = read_state(client, address)
    finally:
        disconnect(client, address)
    if state is None:
        raise IndexNotFoundError(f"no fsearch index in {address}")
    host, _, folder = state.ledger.origin.partition(":")
    if host != socket.gethostname():
        raise StoreError(f"{address} was written from {host} ({folder})",
                         hint="run `fsearch doctor --repair --store …` there, where its local index is")
    return Path(folder)


def push(folder: Path, address: StoreAddress, replace_other: bool = False,
         on_progress: Callable[[int, int], None] | None = None) -> PushReport:
    """Make the collection hold what the local index at ``folder`` holds, sending only the difference.

    A collection that mirrors another index (or another model's) is refused, or with ``replace_other``
    dropped first; one that mirrors this index is updated in place (it stays searchable throughout).
    """
    started = time.perf_counter()
    reader = open_index(folder)
    client = connect(address)
    try:
        with milvus_calls(address), reader.snapshot():
            report = _push(reader, client, address, replace_other, on_progress or (lambda done, total: None))
    finally:
        reader.close()
        disconnect(client, address)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _push(reader: IndexReader, client: Any, address: StoreAddress, replace_other: bool,
          on_progress: Callable[[int, int], None]) -> PushReport:
    import numpy as np

    from ..local import vectors as vector_index

    manifest, origin = reader.manifest, _origin(reader.folder)
    state = read_state(client, address)
    if state is not None or client.has_collection(address.collection):
        try:
            _check_same_index(client, state, manifest, origin, address)
        except (ModelMismatchError, StoreError):
            if not replace_other:
                raise
            drop(client, address)
            state = None
    create_collections(client, address, manifest.model["dim"])
    load_collections(client, address)
    report = PushReport(str(address), files=manifest.counts.files, chunks=manifest.counts.chunks)
    with writer_lease(client, address) as renew:
        remote = set(all_ids(client, address.collection))
        local = {int(i) for i in vector_index.stored_ids(reader.index, manifest.vectors)}
        new, gone = sorted(local - remote), sorted(remote - local)
        if state is not None and state.manifest.keyword != manifest.keyword:
            report.chunks_resent = len(local & remote)
            new = sorted(local)
        if new:
            vector_index.allow_reconstruct(reader.index, manifest.vectors)
        report.finished_earlier = state is not None and (bool(state.ledger.retired) or any(
            i > state.ledger.last_chunk_id for i in remote))
        for start in range(0, len(new), PUSH_BATCH):
            batch = new[start:start + PUSH_BATCH]
            chunks, terms = reader.fetch(batch), reader.chunk_terms(batch)
            vectors = np.stack([reader.index.reconstruct(i) for i in batch])
            client.upsert(address.collection, [_chunk_row(chunks[i], terms.get(i, ""), vector)
                                               for i, vector in zip(batch, vectors, strict=True)])
            renew()
            on_progress(start + len(batch), len(new))
        faults.point("push-before-publish")
        ledger = Ledger(manifest.generation, manifest.last_chunk_id, ranges(gone), origin, time.time())
        write_state(client, address, manifest, ledger)  # published: new chunks visible, gone ones hidden
        _push_files(client, address, reader)
        faults.point("push-after-publish")
        for start in range(0, len(gone), PUSH_BATCH):
            client.delete(address.collection, ids=gone[start:start + PUSH_BATCH])
            renew()
        ledger.retired = []
        write_state(client, address, manifest, ledger)
        client.flush(address.collection)
    report.chunks_added, report.chunks_removed = len(new) - report.chunks_resent, len(gone)
    return report


def _check_same_index(client: Any, state: PublishedState | None, manifest: Manifest, origin: str,
                      address: StoreAddress) -> None:
    """Chunk ids name the same texts only within one local index, and vectors compare only within one model;
    a collection of that name that fsearch did not make (or whose first push never published) is checked too."""
    if state is None:
        fields = {f["name"]: f for f in client.describe_collection(address.collection)["fields"]}
        dim = (fields.get("vector", {}).get("params") or {}).get("dim")
        if not {"vector", "terms", "text", "source"} <= set(fields):
            raise StoreError(f"{address} holds a collection fsearch did not make",
                             hint="use another --collection, or --replace to drop it")
        if dim is not None and int(dim) != manifest.model["dim"]:
            raise ModelMismatchError(f"{address} holds {dim}-dimensional vectors; this index's are "
                                     f"{manifest.model['dim']}-dimensional",
                                     hint="use another --collection, or --replace to drop it")
        return
    theirs, ours = state.manifest.model, manifest.model
    if (theirs.get("name"), theirs.get("dim")) != (ours.get("name"), ours.get("dim")):
        raise ModelMismatchError(
            f"{address} was built with {theirs.get('name')} ({theirs.get('dim')} dimensions); "
            f"this index uses {ours.get('name')} ({ours.get('dim')})",
            hint="use another --collection, or --replace to drop the collection and push this index")
    if state.ledger.origin != origin:
        raise StoreError(f"{address} mirrors another index ({state.ledger.origin})",
                         hint="use another --collection, or --replace to drop it and push this index instead")


def _chunk_row(chunk: StoredChunk, terms: str, vector: np.ndarray) -> dict:
    longest = max(len(chunk.text.encode()), len(terms.encode()))
    if longest > MAX_TEXT_BYTES:
        raise StoreError(f"a chunk of {chunk.source} is {longest} bytes, more than a Milvus text field holds "
                         f"({MAX_TEXT_BYTES})", hint="re-index with a smaller --chunk-size")
    return {"id": chunk.id, "vector": vector.tolist(), "text": chunk.text, "terms": terms,
            "source": _fits(chunk.source),
            "start": chunk.start, "end": chunk.end, "line": chunk.line, "page": chunk.page or 0,
            "heading": _fits(chunk.heading)}


def _fits(text: str) -> str:
    """Paths and headings longer than a Milvus field are refused, not cut (a cut path names nothing)."""
    if len(text.encode()) > MAX_PATH_BYTES:
        raise StoreError(f"'{text[:60]}…' is longer than a Milvus field holds ({MAX_PATH_BYTES} bytes)")
    return text


def _push_files(client: Any, address: StoreAddress, reader: IndexReader) -> None:
    """The files collection made equal to the local files table: changed rows written, gone ones deleted."""
    states = reader.file_states()
    remote = {row["path"]: row for row in scan_rows(client, address.files, FILE_FIELDS)}
    rows = [row for row in ({"path": _fits(f.path), "sha256": states[f.path].sha256, "size": f.size,
                             "mtime": states[f.path].mtime, "chunks": f.chunks, "indexed_at": f.indexed_at or 0.0}
                            for f in reader.indexed_files())
            if {name: remote.get(row["path"], {}).get(name) for name in FILE_FIELDS} != row]
    for start in range(0, len(rows), PUSH_BATCH):
        client.upsert(address.files, [{**row, "placeholder": PLACEHOLDER} for row in rows[start:start + PUSH_BATCH]])
    gone = set(remote) - set(states)
    if gone:
        client.delete(address.files, ids=sorted(gone))


def drop(client: Any, address: StoreAddress) -> None:
    for name in (address.collection, address.files, address.meta):
        if client.has_collection(name):
            client.drop_collection(name)


class MilvusPublisher:
    """A collection as the stores' Publisher: ``ping`` and ``push`` for its address."""

    def __init__(self, address: StoreAddress) -> None:
        self.address = address

    def ping(self) -> None:
        ping(self.address)

    def push(self, index_dir: Path, replace_other: bool = False,
             on_progress: Callable[[int, int], None] | None = None) -> PushReport:
        return push(index_dir, self.address, replace_other=replace_other, on_progress=on_progress)
