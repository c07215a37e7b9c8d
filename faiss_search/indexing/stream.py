"""Each window's files to the store as soon as their vectors exist, with a commit every so many chunks or seconds."""

from __future__ import annotations

import time
from collections import deque

from ..config import Settings
from ..stores import Writer, text_hash
from .calibration import record_changes
from .encoding import Embedding, Window
from .reading import Pending
from .reports import IndexProgress, IndexReport, ProgressCallback

#: the most of a run's time that its intermediate commits may take
COMMIT_TIME_SHARE = 0.1


class Stream:
    """Documents on their way to the store: embedded a window at a time, written, committed now and then.

    A window is written once the next one is on its way through the model. A changed file's old
    chunks leave in the same write as its new ones arrive, so every commit holds each file
    whole, in one version or the other.
    """

    def __init__(self, writer: Writer, embedding: Embedding, settings: Settings, report: IndexReport,
                 tracker: IndexProgress, progress: ProgressCallback | None) -> None:
        self._writer, self._embedding, self._settings, self._report = writer, embedding, settings, report
        self._tracker, self._progress = tracker, progress
        self._waiting: list[Pending] = []
        self._sent: deque[tuple[list[Pending], Window]] = deque()
        self._uncommitted_chunks = 0
        self._last_commit = time.monotonic()
        self._commit_cost = 0.0
        self._committed_changes = 0

    def add(self, item: Pending) -> None:
        self._waiting.append(item)
        if self._embedding.add(item.doc.source, item.chunks):
            self._send()

    def finish(self) -> None:
        """Embed and write what is left (the caller commits)."""
        if self._waiting:
            self._send()
        while self._sent:
            self._write(*self._sent.popleft())

    def _send(self) -> None:
        self._sent.append((self._waiting, self._embedding.send()))
        self._waiting = []
        while len(self._sent) > 1:  # the window before is written while this one is embedded
            self._write(*self._sent.popleft())

    def _write(self, items: list[Pending], window: Window) -> None:
        vectors, report = window.vectors(), self._report
        # one removal for the window: removing ids scans the whole vector index
        report.chunks_removed += self._writer.remove_files([item.doc.source for item in items if item.replaces])
        for item in items:
            doc = item.doc
            hashes = [text_hash(c.text) for c in item.chunks]
            self._writer.add_file(doc.source, doc.sha256, doc.size, doc.mtime, doc.encoding, item.chunks,
                                  [vectors[h] for h in hashes], item.terms, hashes)
            report.files_changed += item.replaces
            report.files_added += not item.replaces
            report.chunks_added += len(item.chunks)
            self._uncommitted_chunks += len(item.chunks)
            self._tracker.files_done += 1
        if self._progress:
            self._progress(self._tracker)
        if self._commit_due():
            self._checkpoint()

    def _commit_due(self) -> bool:
        """Every N chunks or T seconds, but never so often that commits (each rewrites the vectors
        file) take more than COMMIT_TIME_SHARE of the run."""
        elapsed = time.monotonic() - self._last_commit
        due = self._uncommitted_chunks >= self._settings.commit_every_chunks or \
            elapsed >= self._settings.commit_every_seconds
        return due and self._uncommitted_chunks > 0 and elapsed * COMMIT_TIME_SHARE >= self._commit_cost

    def _checkpoint(self) -> None:
        started = time.monotonic()
        self.record_changes()
        self._writer.checkpoint()
        self._last_commit = time.monotonic()
        self._commit_cost = self._last_commit - started
        self._uncommitted_chunks = 0
        self._report.commits += 1

    def record_changes(self) -> None:
        """Count the chunks changed since the last commit toward the next recalibration."""
        changed = self._report.chunks_added + self._report.chunks_removed
        record_changes(self._writer, changed - self._committed_changes)
        self._committed_changes = changed
