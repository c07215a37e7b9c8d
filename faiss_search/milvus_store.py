"""An fsearch index in Milvus: the same chunks, vectors and manifest, searchable from any machine.

A store address is ``milvus:///path/kb.db`` (Milvus Lite: an embedded database in one file) or
``http(s)://host:19530`` (a Milvus standalone server or cluster), with a collection name. Three
collections hold an index: ``<name>`` the chunks (id = the local chunk id, vector, text, the words
fsearch's segmenter found in it, which Milvus turns into a BM25 sparse vector, source, offsets, line,
page, heading), ``<name>_files`` the files, ``<name>_meta`` the manifest (model, chunking, fusion) and the ledger.

The writer's local index (FAISS + SQLite) is its working copy: it knows what is embedded, so an
update embeds only changed files, and ``push`` sends the difference. Chunk ids only ever rise, so
the ledger's ``last_chunk_id`` hides chunks a push has inserted but not yet published, and its
``retired`` ranges hide the chunks it will delete next; readers filter on both. A push that is
interrupted leaves the published state searchable and whole; the next push finishes it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import faults
from .errors import IndexNotFoundError, InputError, ModelMismatchError, StoreError
from .locations import StoreAddress
from .locking import pid_alive
from .manifest import Manifest
from .paths import source_under
from .store import FileState, IndexedFile, IndexReader, StoredChunk, open_index

if TYPE_CHECKING:
    import numpy as np

#: rows per insert or delete request
PUSH_BATCH = 512
#: a writer's lease on a collection is renewed with every batch; one older than this is abandoned
LEASE_SECONDS = 300
#: seconds to wait for a Milvus server before saying it is unreachable
CONNECT_SECONDS = 10.0
#: VARCHAR fields' limit (bytes in Milvus's checks)
MAX_TEXT_BYTES = 65_535
MAX_PATH_BYTES = 4_096
CHUNK_FIELDS = ["text", "source", "start", "end", "line", "page", "heading"]
FILE_FIELDS = ["path", "sha256", "size", "mtime", "chunks", "indexed_at"]
#: how the space-separated ``terms`` field is split: a server's whitespace tokenizer; Milvus Lite has none, and
#: its standard one (``\w+``) splits fsearch's words the same way
KEYWORD_TOKENIZERS = ("whitespace", "standard")
#: FTS5's bm25() constants (Milvus Lite's default k1 is 1.5)
BM25_K1, BM25_B = 1.2, 0.75
#: the files and meta collections hold no vectors, but Milvus requires one field: this constant
PLACEHOLDER = [1.0, 0.0]


def _quiet_pymilvus() -> None:
    """pymilvus logs every failed call with its traceback, and iterators' fallbacks, on its own handlers:
    we report failures ourselves."""
    ours = [n for n in logging.root.manager.loggerDict if n.startswith(("pymilvus", "milvus_lite"))]
    for name in ["grpc._server", "milvus_lite", *ours]:  # grpc's: Milvus Lite's in-process server, on calls it lacks
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _explain(exc: Exception, address: StoreAddress) -> StoreError:
    """One line for a Milvus failure: unreachable, refused token, busy Lite file, missing feature."""
    text = str(getattr(exc, "message", "") or exc)
    lowered = text.lower()
    if address.lite and ("open local milvus failed" in lowered or "lock" in lowered):
        return _lite_failure(address)
    if any(word in lowered for word in ("unauthenticated", "auth", "token", "credential", "permission denied")):
        return StoreError(f"{address} refused the token ({text})",
                          hint="set the right one in FSEARCH_MILVUS_TOKEN (or milvus_token in fsearch.toml)")
    if "unimplemented" in lowered or "not support" in lowered or "unsupported" in lowered:
        return StoreError(f"{address} lacks a feature fsearch needs ({text})",
                          hint="fsearch needs Milvus 2.5 or newer (BM25 full-text search)")
    if any(word in lowered for word in ("fail connecting", "unavailable", "deadline", "connect", "timeout")):
        return StoreError(f"cannot reach {address}",
                          hint="is the server running, and is the address right? (default port 19530)")
    return StoreError(f"{address}: {text}")


def _lite_failure(address: StoreAddress) -> StoreError:
    """Why Milvus Lite could not open its database (pymilvus only says it failed): locked, a file, or other."""
    import fcntl

    path = Path(address.uri)
    if path.is_file():
        return StoreError(f"{path} is a file, not a Milvus Lite database (a folder Milvus Lite makes)",
                          hint="give a new .db path, or the one fsearch made")
    try:
        with open(path / "LOCK", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(lock, fcntl.LOCK_UN)
    except BlockingIOError:
        return StoreError(f"the Milvus Lite file {address.uri} is open in another process "
                          "(Milvus Lite allows one at a time)",
                          hint="close the other fsearch, or share it: milvus-lite server --data-dir DIR, "
                               "then --store http://127.0.0.1:19530")
    except OSError as exc:
        return StoreError(f"cannot open the Milvus Lite database {path}: {exc.strerror or exc}")
    return StoreError(f"Milvus Lite could not open {path}", hint="set FSEARCH_DEBUG=1 to see its log")


@contextmanager
def _calls(address: StoreAddress) -> Iterator[None]:
    """Milvus failures as StoreError: one line, no traceback."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        raise _explain(exc, address) from None


#: our open clients per Milvus Lite file: the file stays locked by this process until the last one closes
_lite_clients: dict[str, int] = {}


def connect(address: StoreAddress) -> Any:
    """A MilvusClient, or one line saying why not. Close it with ``disconnect``."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise InputError("a Milvus store needs pymilvus and milvus-lite",
                         hint="pip install 'fsearch[milvus]'") from None
    _quiet_pymilvus()  # after the import, which sets pymilvus's own log levels
    with _calls(address):
        kwargs = {"uri": address.uri, "timeout": CONNECT_SECONDS}
        if address.token:
            kwargs["token"] = address.token
        client = MilvusClient(**kwargs)
    if address.lite:
        _lite_clients[address.uri] = _lite_clients.get(address.uri, 0) + 1
    return client


def ping(address: StoreAddress) -> None:
    """Reach the store now, so an unreachable one fails before an hour of embedding, not after it."""
    client = connect(address)
    try:
        with _calls(address):
            client.list_collections()
    finally:
        disconnect(client, address)


def disconnect(client: Any, address: StoreAddress) -> None:
    """Close a client; the last one of a Milvus Lite file stops its in-process server, so the file is free
    for another process (pymilvus keeps it until exit otherwise)."""
    client.close()
    if not address.lite:
        return
    _lite_clients[address.uri] -= 1
    if not _lite_clients[address.uri]:
        del _lite_clients[address.uri]
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(address.uri)


# ----------------------------------------------------------------------------------------------- schema

def _create_collections(client: Any, address: StoreAddress, dim: int) -> None:
    """The three collections and their indexes."""
    from pymilvus import DataType
    from pymilvus.exceptions import MilvusException

    if not client.has_collection(address.collection):
        for tokenizer in KEYWORD_TOKENIZERS:
            try:
                client.create_collection(address.collection, schema=_chunk_schema(dim, tokenizer),
                                         index_params=_chunk_indexes(client))
                break
            except MilvusException as exc:
                if tokenizer == KEYWORD_TOKENIZERS[-1] or "tokenizer" not in str(exc).lower():
                    raise
    _create_table(client, address.files, [("path", MAX_PATH_BYTES, True), ("sha256", 64, False)],
                  [("size", DataType.INT64), ("mtime", DataType.DOUBLE), ("chunks", DataType.INT64),
                   ("indexed_at", DataType.DOUBLE)])
    _create_table(client, address.meta, [("key", 64, True), ("value", MAX_TEXT_BYTES, False)], [])


def _chunk_schema(dim: int, tokenizer: str) -> Any:
    """Chunks: the text as stored, and ``terms``, the words fsearch's own segmenter found (lexical.py),
    space-separated: Milvus's BM25 then sees exactly the words the local FTS5 index sees."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True,
                     analyzer_params={"tokenizer": tokenizer})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("source", DataType.VARCHAR, max_length=MAX_PATH_BYTES)
    for name in ("start", "end", "line", "page"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("heading", DataType.VARCHAR, max_length=MAX_PATH_BYTES)
    schema.add_function(Function(name="terms_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["terms"], output_field_names=["sparse"]))
    return schema


def _chunk_indexes(client: Any) -> Any:
    """Exact inner product, as the local flat index; BM25 with FTS5's k1 and b."""
    indexes = client.prepare_index_params()
    indexes.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    indexes.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                      params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    return indexes


def _create_table(client: Any, name: str, strings: list[tuple[str, int, bool]], numbers: list[tuple[str, Any]]
                  ) -> None:
    """A collection of plain rows (Milvus insists on a vector field: a constant 2-d one)."""
    from pymilvus import DataType, MilvusClient

    if client.has_collection(name):
        return
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    for column, length, primary in strings:
        schema.add_field(column, DataType.VARCHAR, max_length=length, is_primary=primary)
    for column, kind in numbers:
        schema.add_field(column, kind)
    schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))
    indexes = client.prepare_index_params()
    indexes.add_index(field_name="placeholder", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=indexes)


def _load(client: Any, address: StoreAddress) -> None:
    for name in (address.collection, address.files, address.meta):
        client.load_collection(name)


# ----------------------------------------------------------------------------------------------- state

@dataclass
class Ledger:
    """What a push has published: readers see chunk ids up to ``last_chunk_id``, except ``retired``."""

    generation: int = 0
    last_chunk_id: int = 0
    #: [first, last] id ranges published as gone but perhaps not deleted yet
    retired: list[list[int]] = field(default_factory=list)
    #: the local index this collection mirrors (host:folder): chunk ids are only comparable within one
    origin: str = ""
    pushed_at: float = 0.0

    def visible(self) -> str:
        """The Milvus filter selecting the published chunks."""
        parts = [f"id <= {self.last_chunk_id}"]
        singles = [first for first, last in self.retired if first == last]
        parts += [f"not (id >= {first} and id <= {last})" for first, last in self.retired if first != last]
        if singles:
            parts.append(f"id not in [{', '.join(map(str, singles))}]")
        return " and ".join(parts)


@dataclass
class _State:
    manifest: Manifest
    ledger: Ledger


def _read_state(client: Any, address: StoreAddress) -> _State | None:
    """The published manifest and ledger, None where there are none (no collection, or never published)."""
    if not client.has_collection(address.meta):
        return None
    client.load_collection(address.meta)
    return _published(client, address)


def _published(client: Any, address: StoreAddress) -> _State | None:
    """The manifest and ledger from a loaded meta collection: one request (what each search's snapshot costs)."""
    rows = {row["key"]: row["value"] for row in client.get(address.meta, ids=["manifest", "ledger"],
                                                           output_fields=["value"])}
    if "manifest" not in rows or "ledger" not in rows:
        return None
    return _State(Manifest.from_json(rows["manifest"]), Ledger(**json.loads(rows["ledger"])))


def _meta_row(key: str, value: str) -> dict:
    return {"key": key, "value": value, "placeholder": PLACEHOLDER}


def _write_state(client: Any, address: StoreAddress, manifest: Manifest, ledger: Ledger) -> None:
    """Manifest and ledger in one request: the moment a push is published."""
    text = manifest.to_json()
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise StoreError(f"the index's manifest is {len(text.encode())} bytes, more than a Milvus field holds")
    client.upsert(address.meta, [_meta_row("manifest", text), _meta_row("ledger", json.dumps(vars(ledger)))])


def ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs of consecutive ids (a file's chunks have consecutive ids)."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def _rows(client: Any, collection: str, fields: list[str], where: str = "") -> Iterator[dict]:
    """Every row of a collection (matching ``where``), read with an iterator: no limit on how many."""
    iterator = client.query_iterator(collection, filter=where, output_fields=fields, batch_size=4096)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


def _all_ids(client: Any, collection: str, field_name: str = "id") -> list:
    return [row[field_name] for row in _rows(client, collection, [field_name])]


def _origin(folder: Path) -> str:
    return f"{socket.gethostname()}:{folder.resolve()}"


def source_index(address: StoreAddress) -> Path:
    """The local index a collection mirrors, which must be on this machine (its ledger's origin)."""
    client = connect(address)
    try:
        with _calls(address):
            state = _read_state(client, address)
    finally:
        disconnect(client, address)
    if state is None:
        raise IndexNotFoundError(f"no fsearch index in {address}")
    host, _, folder = state.ledger.origin.partition(":")
    if host != socket.gethostname():
        raise StoreError(f"{address} was written from {host} ({folder})",
                         hint="run `fsearch doctor --repair --store …` there, where its local index is")
    return Path(folder)


# ----------------------------------------------------------------------------------------------- lease

@contextmanager
def _writer_lease(client: Any, address: StoreAddress) -> Iterator[Callable[[], None]]:
    """One writer per collection: a lease row naming host and process, renewed by the yielded function.

    A lease younger than LEASE_SECONDS held by a live process (or by another host) refuses us; one of
    a dead process on this host, or an old one, is taken over.
    """
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    rows = client.get(address.meta, ids=["writer"], output_fields=["value"])  # the push made the collection
    if rows:
        holder = json.loads(rows[0]["value"])
        fresh = time.time() - holder.get("renewed", 0) < LEASE_SECONDS
        alive = holder.get("host") != me["host"] or pid_alive(holder.get("pid", 0))
        if fresh and alive and holder.get("pid") != me["pid"]:
            raise StoreError(f"{address} is being written by {holder['host']} (process {holder['pid']})",
                             hint="wait for it to finish: Milvus takes one fsearch writer per collection")

    def renew() -> None:
        client.upsert(address.meta, [_meta_row("writer", json.dumps({**me, "renewed": time.time()}))])

    renew()
    try:
        yield renew
    finally:
        client.delete(address.meta, ids=["writer"])


# ----------------------------------------------------------------------------------------------- push

@dataclass
class PushReport:
    store: str
    chunks_added: int = 0
    chunks_removed: int = 0
    files: int = 0
    chunks: int = 0
    seconds: float = 0.0
    #: the collection was left mid-push by an earlier run, and this one finished it
    finished_earlier: bool = False

    def to_dict(self) -> dict:
        return dict(vars(self))


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
        with _calls(address), reader.snapshot():
            report = _push(reader, client, address, replace_other, on_progress or (lambda done, total: None))
    finally:
        reader.close()
        disconnect(client, address)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _push(reader: IndexReader, client: Any, address: StoreAddress, replace_other: bool,
          on_progress: Callable[[int, int], None]) -> PushReport:
    import numpy as np

    from . import vectors as vector_index

    manifest, origin = reader.manifest, _origin(reader.folder)
    state = _read_state(client, address)
    if state is not None or client.has_collection(address.collection):
        try:
            _check_same_index(client, state, manifest, origin, address)
        except (ModelMismatchError, StoreError):
            if not replace_other:
                raise
            drop(client, address)
            state = None
    _create_collections(client, address, manifest.model["dim"])
    _load(client, address)
    report = PushReport(str(address), files=manifest.counts.files, chunks=manifest.counts.chunks)
    with _writer_lease(client, address) as renew:
        remote = set(_all_ids(client, address.collection))
        local = {int(i) for i in vector_index.stored_ids(reader.index, manifest.vectors)}
        new, gone = sorted(local - remote), sorted(remote - local)
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
        _write_state(client, address, manifest, ledger)  # published: new chunks visible, gone ones hidden
        _push_files(client, address, reader)
        faults.point("push-after-publish")
        for start in range(0, len(gone), PUSH_BATCH):
            client.delete(address.collection, ids=gone[start:start + PUSH_BATCH])
            renew()
        ledger.retired = []
        _write_state(client, address, manifest, ledger)
        client.flush(address.collection)
    report.chunks_added, report.chunks_removed = len(new), len(gone)
    return report


def _check_same_index(client: Any, state: _State | None, manifest: Manifest, origin: str,
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
    remote = {row["path"]: row for row in _rows(client, address.files, FILE_FIELDS)}
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


# ----------------------------------------------------------------------------------------------- reading

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
        with _calls(address):
            state = _read_state(self._client, address)
            if state is None:
                disconnect(self._client, address)
                raise IndexNotFoundError(f"no fsearch index in {address}",
                                         hint=f"fsearch export --to {address.spec}, or fsearch index PATH --store "
                                              f"{address.spec}")
            _load(self._client, address)
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

        with self._lock, _calls(self.address):
            try:
                state = _published(self._client, self.address)  # loaded when the reader opened
            except MilvusException:  # dropped, or dropped and made again (not loaded): look again, properly
                state = _read_state(self._client, self.address)
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

    def _files(self) -> list[dict]:
        return sorted(_rows(self._client, self.address.files, FILE_FIELDS), key=lambda row: row["path"])

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


# ----------------------------------------------------------------------------------------------- doctor

class MilvusPublisher:
    """A collection as the stores' Publisher: ``ping`` and ``push`` for its address."""

    def __init__(self, address: StoreAddress) -> None:
        self.address = address

    def ping(self) -> None:
        ping(self.address)

    def push(self, index_dir: Path, replace_other: bool = False,
             on_progress: Callable[[int, int], None] | None = None) -> PushReport:
        return push(index_dir, self.address, replace_other=replace_other, on_progress=on_progress)


def check(address: StoreAddress) -> tuple[list[str], Manifest]:
    """What is wrong with a collection, measured against its ledger and manifest (empty: healthy)."""
    reader = MilvusReader(address)
    try:
        with reader.snapshot():  # which turns Milvus failures into StoreError
            return _problems(reader), reader.manifest
    finally:
        reader.close()


def _problems(reader: MilvusReader) -> list[str]:
    manifest, ledger, client = reader.manifest, reader.ledger, reader._client
    problems = []
    hidden = [i for i in _all_ids(client, reader.address.collection)
              if i > ledger.last_chunk_id or any(a <= i <= b for a, b in ledger.retired)]
    if hidden:
        problems.append(f"a push was interrupted: {len(hidden)} chunk(s) are stored but not published "
                        "(searches do not see them; `fsearch export` or the same `fsearch index --store` finishes it)")
    sources: dict[str, int] = {}
    for row in _rows(client, reader.address.collection, ["source"], ledger.visible()):
        sources[row["source"]] = sources.get(row["source"], 0) + 1
    published = sum(sources.values())
    if published != manifest.counts.chunks:
        problems.append(f"{published} chunk(s) published, the manifest says {manifest.counts.chunks}")
    files = {f.path: f.chunks for f in reader.indexed_files()}
    if len(files) != manifest.counts.files:
        problems.append(f"{len(files)} file row(s), the manifest says {manifest.counts.files}")
    orphans = sorted(set(sources) - set(files))
    if orphans:
        problems.append(f"{len(orphans)} source(s) have chunks but no file row, e.g. {orphans[0]}")
    wrong = sorted(path for path, count in files.items() if sources.get(path, 0) != count)
    if wrong:
        problems.append(f"{len(wrong)} file(s) have another chunk count than their row says, e.g. {wrong[0]}")
    return problems
