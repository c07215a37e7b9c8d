"""`fsearch doctor`: check that an index is whole and consistent, and repair what can be repaired.

The checks belong to each store (``stores.check``). Repair needs more than the store: a local
index's lost vectors are embedded again with the index's own model, once the index is trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import stores
from .stores import DoctorReport

if TYPE_CHECKING:
    from .locations import StoreAddress


def check(index_dir: Path, store: StoreAddress | None = None) -> DoctorReport:
    """Every inconsistency found, in words; an empty list means healthy. Safe while a writer works."""
    return stores.check(index_dir, store)


def repair(index_dir: Path, store: StoreAddress | None, models_dir: Path,
           base_urls: Sequence[str] = (), api_key: str | None = None) -> DoctorReport:
    """Fix what ``check`` found; the result's ``problems`` are what a fresh check still finds."""
    before = check(index_dir, store)
    if before.healthy:
        return before
    if store is not None:
        actions = stores.repair_store(store)
    else:
        actions = _repair_local(index_dir, models_dir, base_urls, api_key)
    after = check(index_dir, store)
    after.repaired = actions or ["rewrote the manifest and removed leftover files"]
    return after


def _repair_local(folder: Path, models_dir: Path, base_urls: Sequence[str],
                  api_key: str | None) -> list[str]:
    from .backends import choose_embedder
    from .embedding import checked_vectors
    from .trust import check_update

    check_update(folder, rebuild=False)  # an index made elsewhere is not re-embedded through its own servers
    manifest = stores.committed_manifest(folder)
    assert manifest is not None  # check() found one, or it raised
    embedder = choose_embedder(manifest.model, models_dir, base_urls=base_urls, api_key=api_key)

    def encode(texts: list[str]):
        return checked_vectors(embedder.encode_passages(texts), len(texts), embedder.info.dim, "chunk")

    return stores.repair_local(folder, embedder.info, encode)
