"""Where an index lives: a store address, parsed once from what the user wrote (``--store``, ``--to``,
``store`` in fsearch.toml). A leaf: it imports nothing of fsearch's but its errors, so the settings can
parse an address without loading a store."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

SCHEMES = ("milvus://", "http://", "https://")
DEFAULT_COLLECTION = "fsearch"
COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


@dataclass(frozen=True)
class StoreAddress:
    """Where an index lives in Milvus. ``uri`` is what MilvusClient takes: a .db path or a server URL."""

    uri: str
    collection: str = DEFAULT_COLLECTION
    token: str = field(default="", repr=False)

    @property
    def lite(self) -> bool:
        return not self.uri.startswith(("http://", "https://"))

    @property
    def files(self) -> str:
        return self.collection + "_files"

    @property
    def meta(self) -> str:
        return self.collection + "_meta"

    @property
    def spec(self) -> str:
        """The address as a user writes it (for --store)."""
        return "milvus://" + self.uri if self.lite else self.uri

    def __str__(self) -> str:
        return f"{'Milvus Lite ' if self.lite else 'Milvus '}{self.uri} (collection {self.collection})"


def is_milvus(store: str | None) -> bool:
    return store is not None and store.startswith(SCHEMES)


def parse_address(store: str, collection: str = DEFAULT_COLLECTION, token: str = "") -> StoreAddress:
    """``milvus:///abs/kb.db``, ``milvus://rel/kb.db`` or ``http(s)://host:port``.

    A Lite path is taken as written after the scheme (no URL decoding), so ``#``, ``?``, ``%``,
    spaces and Chinese in it name the file they show.
    """
    if not is_milvus(store):
        raise InputError(f"unknown store '{store}'",
                         hint="use milvus:///path/kb.db (Milvus Lite) or http://host:19530 (a Milvus server)")
    if not COLLECTION_NAME.match(collection):
        raise InputError(f"'{collection}' cannot name a Milvus collection",
                         hint="use letters, digits and underscores, starting with a letter or underscore")
    if store.startswith("milvus://"):
        path = store[len("milvus://"):]
        if not path.endswith(".db"):
            raise InputError(f"a Milvus Lite store is a .db path, got '{path}'", hint="e.g. milvus:///home/me/kb.db")
        database = Path(os.path.expanduser(path))
        if not database.parent.is_dir():
            raise InputError(f"no folder {database.parent} for the Milvus Lite file {path}")
        return StoreAddress(str(database.resolve()), collection, token)
    return StoreAddress(store.rstrip("/"), collection, token)
