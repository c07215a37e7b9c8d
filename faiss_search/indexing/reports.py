"""What a run reports: progress while it works, and what it did when it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .discovery import Skips


@dataclass
class IndexProgress:
    """How far a run is, for the progress display: chunks of the changed files, embedded or reused.

    ``chunks_total`` is exact once every file is read (reading runs ahead); before that it
    extrapolates the chunks per byte read so far to the bytes still unread.
    """

    files_total: int
    bytes_total: int
    files_done: int = 0
    files_read: int = 0
    bytes_read: int = 0
    chunks_read: int = 0
    chunks_done: int = 0
    embedding_seconds: float = 0.0

    @property
    def chunks_total(self) -> int:
        if self.files_read >= self.files_total or not self.bytes_read:
            return self.chunks_read
        return max(self.chunks_read, round(self.chunks_read * self.bytes_total / self.bytes_read))

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_done / self.embedding_seconds if self.embedding_seconds else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.chunks_per_second
        return (self.chunks_total - self.chunks_done) / rate if rate else None


ProgressCallback = Callable[[IndexProgress], None]
#: told the name of each long step ("reading files", "loading model", "embedding", "calibrating", "saving")
PhaseCallback = Callable[[str], None]


def quiet(name: str) -> None:
    pass


@dataclass
class IndexReport:
    """What one ``fsearch index`` run did, for the summary line and ``--json``."""

    index_dir: str
    model: str
    files_added: int = 0
    files_changed: int = 0
    files_removed: int = 0
    files_unchanged: int = 0
    #: files that could not be read this time (or sit in unreadable folders) and keep their indexed version
    files_kept_unreadable: int = 0
    chunks_added: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_removed: int = 0
    chunks_over_token_limit: int = 0
    max_tokens: int = 0
    long_input_policy: str = ""
    skipped: Skips = field(default_factory=Skips)
    total_files: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    #: how long the run stood waiting for files to be read (reading runs ahead, beside the embedding)
    read_wait_seconds: float = 0.0
    #: commits made (a long run commits as it goes; the last one is the run's end)
    commits: int = 0
    #: the run went on with an interrupted build instead of starting it again
    resumed: bool = False
    #: schema migrations this run applied to an index written by an older fsearch
    migrated: list[str] = field(default_factory=list)
    characters_embedded: int = 0
    fusion: dict = field(default_factory=dict)
    vectors: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def files_indexed(self) -> int:
        return self.files_added + self.files_changed

    @property
    def changed_anything(self) -> bool:
        return bool(self.files_indexed or self.files_removed)

    def to_dict(self) -> dict:
        data = {k: v for k, v in vars(self).items()}
        data["skipped"] = dict(self.skipped.counts)
        data["skipped_files"] = [{"path": path, "reason": why} for path, why in self.skipped.named]
        rate = 1 / self.embed_seconds if self.embed_seconds else 0.0
        data["chunks_per_second"] = round(self.chunks_embedded * rate, 2)
        data["characters_per_second"] = round(self.characters_embedded * rate, 1)
        return data


@dataclass
class Removal:
    """What ``fsearch rm`` took out of the index."""

    index_dir: str
    files_removed: int
    chunks_removed: int
    total_files: int
    total_chunks: int

    def to_dict(self) -> dict:
        return vars(self).copy()
