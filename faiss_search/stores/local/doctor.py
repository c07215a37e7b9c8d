"""The local index's own checks and repair: the sidecar is the source of truth.

Vectors and keyword rows can be rebuilt from its chunk texts (vectors by re-embedding them
with the index's own model); a damaged sidecar cannot, and needs `fsearch index PATH --rebuild`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import IndexCorruptError
from ...fileio import file_sha256
from ...manifest import Manifest
from ...paths import source_under
from ..records import DoctorReport, text_hash
from . import vectors as vector_index
from .failures import write_errors
from .folder import MANIFEST, SIDECAR, no_index, nothing_committed, own_leftovers, vectors_file
from .locking import writer_active
from .sidecar import committed_manifest, connect_reader, manifest_text
from .writer import IndexWriter

if TYPE_CHECKING:
    import numpy as np

    from ...manifest import ModelInfo


class _Moved(Exception):
    """Internal: a writer committed (and removed the checked generation's vectors) during the check."""


def _sidecar(folder: Path) -> tuple[sqlite3.Connection, Manifest]:
    """A read transaction on the sidecar, and the manifest it holds."""
    path = folder / SIDECAR
    if not path.is_file():
        raise no_index(folder)
    conn = None
    try:
        conn = connect_reader(path)[0]
        conn.execute("BEGIN")
        status = conn.execute("PRAGMA quick_check").fetchone()[0]
        if status != "ok":
            raise sqlite3.DatabaseError(status)
        text = manifest_text(conn)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise IndexCorruptError(f"the sidecar {path} is damaged ({exc}); it cannot be repaired",
                                hint="rebuild the index with `fsearch index PATH --rebuild`") from None
    if text is None:
        conn.close()
        raise nothing_committed(folder)
    return conn, Manifest.from_json(text)


def check(folder: Path) -> DoctorReport:
    """Every inconsistency found, in words; an empty list means healthy. Safe while a writer works."""
    for _ in range(5):
        try:
            return _check(folder, writer_active(folder))
        except _Moved:
            continue
    return _check(folder, True)


def _check(folder: Path, writer_active: bool) -> DoctorReport:
    conn, manifest = _sidecar(folder)
    with closing(conn):
        report = DoctorReport(str(folder), generation=manifest.generation, chunks=manifest.counts.chunks,
                              writer_active=writer_active)
        problems = report.problems
        ids = _check_rows(conn, manifest, problems)
        _check_roots(conn, manifest, problems)
        _check_vectors(folder, manifest, ids, problems)
    _check_files(folder, manifest, writer_active, problems)
    return report


def _check_rows(conn: sqlite3.Connection, manifest: Manifest, problems: list[str]) -> set[int]:
    rows = conn.execute("SELECT id, text, text_hash FROM chunks").fetchall()
    ids = {r[0] for r in rows}
    if len(ids) != manifest.counts.chunks:
        problems.append(f"the manifest counts {manifest.counts.chunks} chunks, the sidecar has {len(ids)}")
    altered = sum(1 for _, text, stored in rows if text_hash(text) != stored)
    if altered:
        problems.append(f"{altered} chunk text(s) do not match their stored hash (altered inside the sidecar)")
    orphans = conn.execute("SELECT COUNT(*) FROM chunks WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} chunk(s) belong to no file")
    terms = {r[0] for r in conn.execute("SELECT rowid FROM chunk_terms")}
    if terms != ids:
        problems.append(f"the keyword index has {len(terms - ids)} row(s) without a chunk and misses "
                        f"{len(ids - terms)} chunk(s)")
    return ids


def _check_roots(conn: sqlite3.Connection, manifest: Manifest, problems: list[str]) -> None:
    """Files outside every folder the index was built from were never indexed here: rows planted in it."""
    if not manifest.roots:
        return  # built before roots were recorded, or from documents in memory (eval)
    outside = [path for (path,) in conn.execute("SELECT path FROM files") if not source_under(path, manifest.roots)]
    if outside:
        problems.append(f"{len(outside)} indexed file(s) lie outside the folders this index was built from "
                        f"(e.g. {outside[0]}): not indexed by fsearch; rebuild it with `fsearch index PATH --rebuild`")


def _check_vectors(folder: Path, manifest: Manifest, ids: set[int], problems: list[str]) -> None:
    import faiss

    path = vectors_file(folder, manifest.generation)
    try:
        damaged = manifest.vectors_sha256 and file_sha256(path) != manifest.vectors_sha256
        index = None if damaged else faiss.read_index(str(path))
    except (OSError, RuntimeError):
        latest = committed_manifest(folder)
        if not path.exists() and latest is not None and latest.generation > manifest.generation:
            raise _Moved() from None  # a writer committed and removed this generation while we looked
        problems.append(f"the vectors file {path.name} is {'unreadable' if path.exists() else 'missing'}")
        return
    if damaged:
        problems.append(f"the vectors file {path.name} does not match its checksum (damaged)")
    else:
        stored = set(vector_index.stored_ids(index, manifest.vectors).tolist())
        if stored != ids:
            problems.append(f"the vectors hold {len(stored - ids)} id(s) without a chunk and miss "
                            f"{len(ids - stored)} chunk(s)")


def _check_files(folder: Path, manifest: Manifest, writer_active: bool, problems: list[str]) -> None:
    generation = manifest.generation
    try:
        copy = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if copy.get("generation") != generation and not writer_active:
            problems.append(f"manifest.json is stale (generation {copy.get('generation')}, committed {generation})")
    except (OSError, ValueError):
        problems.append("manifest.json is missing or unreadable")
    if writer_active:
        return  # temp files and the next generation's vectors are the writer's work in progress
    stray = [p.name for p in own_leftovers(folder, keep=vectors_file(folder, generation))]
    if stray:
        problems.append(f"{len(stray)} leftover file(s) from an interrupted update: {', '.join(sorted(stray))}")


def repair(folder: Path, model: ModelInfo, encode: Callable[[list[str]], np.ndarray]) -> list[str]:
    """Make vectors, keyword rows, manifest.json and leftovers agree with the sidecar; returns what was done."""
    manifest = committed_manifest(folder)
    assert manifest is not None  # the caller's check found one, or it raised
    with write_errors(folder), IndexWriter(folder, model, manifest.chunking, repair=True) as writer:
        actions = writer.repair(encode)
        writer.commit()  # also rewrites manifest.json and removes leftover vectors files
    for leftover in own_leftovers(folder, keep=vectors_file(folder, writer.manifest.generation)):
        leftover.unlink(missing_ok=True)  # only names fsearch writes: a user's own *.tmp is never ours
        actions.append(f"removed {leftover.name}")
    return actions
