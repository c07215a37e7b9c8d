"""The sidecar's schema version (``PRAGMA user_version``) and the numbered migrations that upgrade it in place.

Version 0 is a sidecar written before versions were recorded; the columns later releases
added may or may not be there, so each migration checks before it adds. A writer runs the
migrations a sidecar lacks inside its own transaction: an interrupted upgrade leaves the
older version whole, and nothing is re-embedded (the vectors file is not touched). Readers
read every version up to SCHEMA_VERSION (a column an older sidecar lacks reads as empty)
and refuse a newer one, which this release cannot know how to read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import IndexCorruptError


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    apply: Callable[[sqlite3.Connection], object]


def _add_columns(table: str, *columns: tuple[str, str]) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        for column, kind in columns:
            if not has_column(conn, table, column):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    return apply


MIGRATIONS = (
    Migration(1, "files.indexed_at: when each file was indexed (fsearch ls)",
              _add_columns("files", ("indexed_at", "REAL"))),
    Migration(2, "chunks.page and chunks.heading: where in its document a chunk lies",
              _add_columns("chunks", ("page", "INTEGER"), ("heading", "TEXT"))),
    Migration(3, "term_frequencies: the common words of a big index, for bounded keyword queries",
              lambda conn: conn.execute("CREATE TABLE IF NOT EXISTS term_frequencies "
                                        "(term TEXT PRIMARY KEY, chunks INTEGER NOT NULL)")),
    Migration(4, "files.reader: the version of the reader that read each file (a better one reads it again)",
              _add_columns("files", ("reader", "INTEGER"))),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_readable(conn: sqlite3.Connection, where: object) -> int:
    """The sidecar's version, or a clear refusal when a newer fsearch wrote it."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise IndexCorruptError(f"the index at {where} has schema version {version}, written by a newer fsearch; "
                                f"this one reads up to version {SCHEMA_VERSION}", hint="upgrade fsearch")
    return version


def migrate(conn: sqlite3.Connection, where: object) -> list[str]:
    """Bring the sidecar to SCHEMA_VERSION inside the caller's open transaction; returns what was done."""
    version = check_readable(conn, where)
    done = []
    for migration in MIGRATIONS:
        if migration.version > version:
            migration.apply(conn)
            done.append(f"{migration.version}: {migration.what}")
    mark_current(conn)
    return done


def mark_current(conn: sqlite3.Connection) -> None:
    """A sidecar created with today's schema is at the newest version."""
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
