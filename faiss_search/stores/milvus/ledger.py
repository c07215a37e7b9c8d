"""What a push has published (the manifest and the ledger in the meta collection), and the writer's lease."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ...errors import StoreError
from ...locations import StoreAddress
from ...manifest import Manifest
from ..local.locking import pid_alive
from .schema import MAX_TEXT_BYTES, PLACEHOLDER

#: a writer's lease on a collection is renewed with every batch; one older than this is abandoned
LEASE_SECONDS = 300


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
class PublishedState:
    manifest: Manifest
    ledger: Ledger


def read_state(client: Any, address: StoreAddress) -> PublishedState | None:
    """The published manifest and ledger, None where there are none (no collection, or never published)."""
    if not client.has_collection(address.meta):
        return None
    client.load_collection(address.meta)
    return published_state(client, address)


def published_state(client: Any, address: StoreAddress) -> PublishedState | None:
    """The manifest and ledger from a loaded meta collection: one request (what each search's snapshot costs)."""
    rows = {row["key"]: row["value"] for row in client.get(address.meta, ids=["manifest", "ledger"],
                                                           output_fields=["value"])}
    if "manifest" not in rows or "ledger" not in rows:
        return None
    return PublishedState(Manifest.from_json(rows["manifest"]), Ledger(**json.loads(rows["ledger"])))


def _meta_row(key: str, value: str) -> dict:
    return {"key": key, "value": value, "placeholder": PLACEHOLDER}


def write_state(client: Any, address: StoreAddress, manifest: Manifest, ledger: Ledger) -> None:
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


def scan_rows(client: Any, collection: str, fields: list[str], where: str = "") -> Iterator[dict]:
    """Every row of a collection (matching ``where``), read with an iterator: no limit on how many."""
    iterator = client.query_iterator(collection, filter=where, output_fields=fields, batch_size=4096)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


def all_ids(client: Any, collection: str, field_name: str = "id") -> list:
    return [row[field_name] for row in scan_rows(client, collection, [field_name])]


@contextmanager
def writer_lease(client: Any, address: StoreAddress) -> Iterator[Callable[[], None]]:
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
