"""`fsearch doctor`: check that an index folder is whole and consistent, and repair what can be repaired.

The SQLite sidecar is the source of truth: vectors and keyword rows can be rebuilt from its
chunk texts (vectors by re-embedding them with the index's own model); a damaged sidecar
cannot, and needs `fsearch index PATH --rebuild`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from . import lexical
from . import vectors as vector_index
from .embedding import load_embedder
from .errors import IndexCorruptError, IndexNotFoundError
from .fileio import file_sha256
from .models.registry import resolve_model
from .store import MANIFEST, SIDECAR, IndexWriter, vectors_file


@dataclass
class DoctorReport:
    index_dir: str
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    generation: int = 0
    chunks: int = 0

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"index_dir": self.index_dir, "healthy": self.healthy, "problems": self.problems,
                "repaired": self.repaired, "generation": self.generation, "chunks": self.chunks}


def _sidecar(folder: Path) -> tuple[sqlite3.Connection, dict]:
    path = folder / SIDECAR
    if not path.is_file():
        raise IndexNotFoundError(f"no index at {folder}", hint="run `fsearch index PATH` first")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        status = conn.execute("PRAGMA quick_check").fetchone()[0]
        if status != "ok":
            raise sqlite3.DatabaseError(status)
        row = conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"the sidecar {path} is damaged ({exc}); it cannot be repaired",
                                hint="rebuild the index with `fsearch index PATH --rebuild`") from None
    if row is None:
        raise IndexCorruptError(f"the index at {folder} was never committed",
                                hint="rebuild the index with `fsearch index PATH --rebuild`")
    return conn, json.loads(row[0])


def check(folder: Path) -> DoctorReport:
    """Every inconsistency found, in words; an empty list means healthy."""
    import faiss

    conn, manifest = _sidecar(folder)
    report = DoctorReport(str(folder), generation=manifest["generation"], chunks=manifest["counts"]["chunks"])
    problems = report.problems
    ids = {r[0] for r in conn.execute("SELECT id FROM chunks")}
    if len(ids) != manifest["counts"]["chunks"]:
        problems.append(f"the manifest counts {manifest['counts']['chunks']} chunks, the sidecar has {len(ids)}")
    orphans = conn.execute("SELECT COUNT(*) FROM chunks WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} chunk(s) belong to no file")
    terms = {r[0] for r in conn.execute("SELECT rowid FROM chunk_terms")}
    if terms != ids:
        problems.append(f"the keyword index has {len(terms - ids)} row(s) without a chunk and misses "
                        f"{len(ids - terms)} chunk(s)")
    path = vectors_file(folder, manifest["generation"])
    if not path.is_file():
        problems.append(f"the vectors file {path.name} is missing")
    elif manifest.get("vectors_sha256") and file_sha256(path) != manifest["vectors_sha256"]:
        problems.append(f"the vectors file {path.name} does not match its checksum (damaged)")
    else:
        try:
            index = faiss.read_index(str(path))
            stored = set(vector_index.stored_ids(index, manifest.get("vectors", {})).tolist())
            if stored != ids:
                problems.append(f"the vectors hold {len(stored - ids)} id(s) without a chunk and miss "
                                f"{len(ids - stored)} chunk(s)")
        except RuntimeError:
            problems.append(f"the vectors file {path.name} is unreadable")
    try:
        copy = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if copy.get("generation") != manifest["generation"]:
            problems.append(f"manifest.json is stale (generation {copy.get('generation')}, "
                            f"committed {manifest['generation']})")
    except (OSError, ValueError):
        problems.append("manifest.json is missing or unreadable")
    stray = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")
             or (p.name.startswith("vectors-") and p != path)]
    if stray:
        problems.append(f"{len(stray)} leftover file(s) from an interrupted update: {', '.join(sorted(stray))}")
    conn.close()
    return report


def repair(folder: Path, models_dir: Path, home: Path) -> DoctorReport:
    """Fix what ``check`` found; the result's ``problems`` are what a fresh check still finds."""
    before = check(folder)
    if before.healthy:
        return before
    conn, manifest = _sidecar(folder)
    conn.close()
    embedder = load_embedder(resolve_model(manifest["model"]["name"], models_dir))
    lexical.configure(home / "cache")
    with IndexWriter(folder, embedder.info, manifest["chunking"], repair=True) as writer:
        actions = writer.repair(embedder.encode_passages, lambda text: " ".join(lexical.segment(text)))
        writer.commit()  # also rewrites manifest.json and removes leftover vectors files
    for leftover in folder.glob("*.tmp"):
        leftover.unlink(missing_ok=True)
        actions.append(f"removed {leftover.name}")
    after = check(folder)
    after.repaired = actions or ["rewrote the manifest and removed leftover files"]
    return after
