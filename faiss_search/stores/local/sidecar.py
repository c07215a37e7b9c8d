"""The SQLite sidecar: its schema, the one way to open it, and the manifest it commits."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from ...manifest import Manifest
from .folder import SIDECAR

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    encoding TEXT NOT NULL,
    indexed_at REAL,
    reader INTEGER
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    line INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    page INTEGER,
    heading TEXT
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks(text_hash);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(terms);
CREATE TABLE IF NOT EXISTS term_frequencies (term TEXT PRIMARY KEY, chunks INTEGER NOT NULL);
"""


def sqlite_uri(path: Path, **params: str) -> str:
    """A SQLite URI for ``path``: '#', '?', '%', spaces and non-ASCII are percent-encoded, as URIs need."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"file:{quote(str(path.absolute()))}" + (f"?{query}" if query else "")


def connect_sidecar(path: Path, readonly: bool, immutable: bool = False) -> sqlite3.Connection:
    """The one way fsearch opens a sidecar; ``immutable`` reads media nobody can write (no -shm needed)."""
    params = {"mode": "ro", **({"immutable": "1"} if immutable else {})} if readonly else {}
    conn = sqlite3.connect(sqlite_uri(path, **params), uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def connect_reader(path: Path, fallback: bool = True) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection; falls back to immutable mode where the -shm file cannot be made.

    A WAL database needs its -shm file, which SQLite cannot create on a read-only mount or a
    full disk. The fallback is safe only when no -wal file holds commits that the main file
    lacks, which is the state a writer leaves when it closes (and no writer can work there).
    Returns the connection and whether it is immutable.
    """
    conn = connect_sidecar(path, readonly=True)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn, False
    except sqlite3.OperationalError as exc:
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if not fallback or exc.sqlite_errorcode & 0xFF not in _NO_SHM or (wal.exists() and wal.stat().st_size > 0):
            raise
    return connect_sidecar(path, readonly=True, immutable=True), True


_NO_SHM = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL)


def manifest_text(conn: sqlite3.Connection) -> str | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
    return row[0] if row else None


def read_meta(conn: sqlite3.Connection) -> Manifest | None:
    text = manifest_text(conn)
    return Manifest.from_json(text) if text else None



def rowid(cursor: sqlite3.Cursor) -> int:
    """The row an INSERT made (typed optional by sqlite3, it is always set after one)."""
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def under_clause(under: str | None, column: str = "f.path") -> tuple[str, tuple]:
    """SQL selecting the path ``under`` itself and everything inside it (everything when None)."""
    if under is None:
        return "", ()
    prefix = under.rstrip(os.sep) + os.sep
    return f"WHERE {column} = ? OR substr({column}, 1, ?) = ?", (under, len(prefix), prefix)


def committed_manifest(folder: Path) -> Manifest | None:
    """The committed manifest straight from the sidecar (manifest.json may lag a crash behind); None if none."""
    if not (folder / SIDECAR).is_file():
        return None
    try:
        with closing(connect_reader(folder / SIDECAR)[0]) as conn:
            return read_meta(conn)
    except sqlite3.DatabaseError:
        return None

