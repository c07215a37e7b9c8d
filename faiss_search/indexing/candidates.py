"""The files a run considers, and which of them changed since the index last saw them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..documents import UNREADABLE, Document, read_document, source_name
from ..formats import reader_version
from ..formats.text import TEXT_SUFFIXES
from ..stores import FileState
from .discovery import Skips


@dataclass(frozen=True)
class FileLoad:
    """A file candidate's loader; a class, not a closure, so that a reading process can be sent it."""

    path: Path
    max_bytes: int

    def __call__(self) -> Document:
        return read_document(self.path, self.max_bytes)


@dataclass(frozen=True)
class Candidate:
    """A document that may need indexing. ``load`` reads it only when the cheap checks say it changed."""

    source: str
    size: int
    mtime: float
    load: Callable[[], Document]
    sha256: str | None = None  # known up front for documents that do not come from disk


def unchanged(candidate: Candidate, state: FileState | None) -> bool:
    """Whether the index holds ``candidate`` as it is: same bytes (by size and mtime, or hash), same reader."""
    if state is None or not _read_by_this_reader(state, candidate.source):
        return False
    if candidate.sha256 is not None:
        return candidate.sha256 == state.sha256
    return candidate.size == state.size and candidate.mtime == state.mtime


def holds(state: FileState | None, doc: Document) -> bool:
    """Whether the index holds ``doc`` as it is read now: the same bytes, read by the same reader's version."""
    return state is not None and state.sha256 == doc.sha256 and _read_by_this_reader(state, doc.source)


def _read_by_this_reader(state: FileState, source: str) -> bool:
    """Whether the indexed version of ``source`` was read by its reader's current version (an older one's is
    read again)."""
    return state.reader >= reader_version(source)


#: git's racy-clean rule: a file modified this close to (or after) the run's start may change again within
#: the same mtime tick; its mtime is stored as unknown, so the next run reads it (and compares its hash)
RACY_SECONDS = 2.0
UNKNOWN_MTIME = -1.0


def stored_mtime(mtime: float, run_started: float) -> float:
    return UNKNOWN_MTIME if mtime >= run_started - RACY_SECONDS else mtime


def least_new_characters(jobs: Iterable[tuple[Candidate, FileState | None]]) -> int:
    """The fewest characters that the new plain-text files hold: UTF-8 spends at most 4 bytes a character."""
    return sum(c.size for c, state in jobs if state is None and Path(c.source).suffix.lower() in TEXT_SUFFIXES) // 4


def file_candidates(files: list[Path], settings: Settings, skipped: Skips) -> list[Candidate]:
    """One candidate per file: stat'ed, size-checked, and one name per file (symlinks and links share it)."""
    max_bytes = settings.max_file_mb * 1024 * 1024
    candidates, seen_files, seen_sources = [], set(), set()
    for path in files:
        try:
            info = path.stat()
        except OSError:
            skipped.add(UNREADABLE, path)
            continue
        source = source_name(path)
        if (info.st_dev, info.st_ino) in seen_files or source in seen_sources:
            skipped.add("another name for an indexed file", path)
            continue
        seen_files.add((info.st_dev, info.st_ino))
        seen_sources.add(source)
        if info.st_size > max_bytes:
            skipped.add(f"larger than {settings.max_file_mb} MB", path)
        else:
            candidates.append(Candidate(source, info.st_size, info.st_mtime, FileLoad(path, max_bytes)))
    return candidates


def document_candidate(doc: Document) -> Candidate:
    """A document already in memory (a data set record): compared by its hash."""
    return Candidate(doc.source, doc.size, doc.mtime, lambda: doc, sha256=doc.sha256)
