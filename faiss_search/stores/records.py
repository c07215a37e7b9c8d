"""What a store gives back, the same from the local folder and from Milvus."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileState:
    """What the index knows about a file, to tell whether it changed."""

    size: int
    mtime: float
    sha256: str
    #: the version of the reader that read it (formats.READER_VERSIONS); 1 where none was recorded
    reader: int = 1


@dataclass(frozen=True)
class IndexedFile:
    """A file as ``fsearch ls`` shows it; ``indexed_at`` is None for files indexed before it was recorded."""

    path: str
    chunks: int
    size: int
    indexed_at: float | None


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the sidecar returns it for a search hit."""

    id: int
    text: str
    source: str
    start: int
    end: int
    line: int
    page: int | None = None
    heading: str = ""


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
    #: chunks already there sent again because the local index's keyword words were made again by a newer
    #: segmenter (the collection's BM25 would otherwise keep the old words)
    chunks_resent: int = 0

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class DoctorReport:
    index_dir: str
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    generation: int = 0
    chunks: int = 0
    #: a writer held the lock during the check: its files in progress were not counted as leftovers
    writer_active: bool = False

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"index_dir": self.index_dir, "healthy": self.healthy, "problems": self.problems,
                "repaired": self.repaired, "generation": self.generation, "chunks": self.chunks,
                "writer_active": self.writer_active}


def text_hash(text: str) -> str:
    """How a store recognises a chunk's text: the same text is embedded once, an altered one is found."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
