"""Reaching Milvus: one client per address, failures explained in a line, pymilvus kept quiet."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import InputError, StoreError
from ...locations import StoreAddress

#: seconds to wait for a Milvus server before saying it is unreachable
CONNECT_SECONDS = 10.0


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
def milvus_calls(address: StoreAddress) -> Iterator[None]:
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
    with milvus_calls(address):
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
        with milvus_calls(address):
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
