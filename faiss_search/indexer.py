"""The indexing pipeline: files -> documents -> chunks -> (vectors, terms) -> store.

Re-running it is incremental: a file whose size and mtime are unchanged is not even read;
one whose content hash is unchanged is not re-chunked; a chunk whose exact text is already
in the index reuses its stored vector; files that disappeared are removed.

It streams: files are read, parsed, chunked and split into keyword terms on a worker
thread, ahead of the embedding that consumes them in windows of chunks (the engines
release the GIL while they compute); each window's files go to the store as soon as their
vectors exist, and the store commits every ``commit_every_chunks`` chunks or
``commit_every_seconds``. Memory is bounded by the read-ahead and the window, not by the
corpus, and a killed run keeps what it committed: the next run skips those files.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import lexical, trust
from .chunking import Chunk, chunk_document
from .config import Settings
from .documents import (
    SUPPORTED_SUFFIXES,
    TEXT_SUFFIXES,
    UNREADABLE,
    Document,
    Filters,
    Skips,
    discover,
    load_text,
    read_document,
    source_name,
)
from .embedding import Embedder, checked_vectors
from .errors import FsearchError, InputError, NothingToIndexError
from .manifest import ModelInfo
from .paths import source_under
from .search import CALIBRATION_VERSION, calibrate
from .store import FileState, IndexWriter, committed_manifest, no_index, write_errors

if TYPE_CHECKING:
    import numpy as np


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


def _quiet(name: str) -> None:
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


@dataclass(frozen=True)
class Candidate:
    """A document that may need indexing. ``load`` reads it only when the cheap checks say it changed."""

    source: str
    size: int
    mtime: float
    load: Callable[[], Document]
    sha256: str | None = None  # known up front for documents that do not come from disk


def _unchanged(candidate: Candidate, state: FileState | None) -> bool:
    if state is None:
        return False
    if candidate.sha256 is not None:
        return candidate.sha256 == state.sha256
    return candidate.size == state.size and candidate.mtime == state.mtime


#: git's racy-clean rule: a file modified this close to (or after) the run's start may change again within
#: the same mtime tick; its mtime is stored as unknown, so the next run reads it (and compares its hash)
RACY_SECONDS = 2.0
UNKNOWN_MTIME = -1.0


def _stored_mtime(mtime: float, run_started: float) -> float:
    return UNKNOWN_MTIME if mtime >= run_started - RACY_SECONDS else mtime


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Pending:
    """A document to (re)index: its chunks, their keyword terms, and whether it replaces an indexed version."""

    doc: Document  # without its text: the chunks carry what is stored
    chunks: list[Chunk]
    terms: list[str]
    replaces: bool


@dataclass(frozen=True)
class _Read:
    """A candidate read on the worker thread: its document (or why not) and, when it changed, its chunks."""

    candidate: Candidate
    state: FileState | None
    doc: Document | None
    reason: str
    chunks: list[Chunk]
    terms: list[str]


#: file bytes read ahead of the embedding: enough to keep it busy, small enough to bound memory
READ_AHEAD_BYTES = 32 * 1024 * 1024
#: chunks gathered before embedding them: enough to sort by length (less padding), few enough to start soon
EMBED_WINDOW = 512
#: chunks read before the model is told how many new ones are coming, ahead of the first window
#: (the bundled model then loads torch while the rest of that window is read)
EXPECT_AFTER = 64
#: the most of a run's time that its intermediate commits may take
COMMIT_TIME_SHARE = 0.1


#: files read and segmented in processes of their own once a run has this many bytes to read: jieba is
#: pure Python, and on a thread it would hold the GIL against the writer, the model's thread and torch's loading
READ_IN_PROCESSES_ABOVE = 1024 * 1024


@dataclass(frozen=True)
class FileLoad:
    """A file candidate's loader; a class, not a closure, so that a reading process can be sent it."""

    path: Path
    max_bytes: int

    def __call__(self) -> Document:
        return read_document(self.path, self.max_bytes)


def _read(job: tuple[Candidate, FileState | None], chunk_size: int, chunk_overlap: int) -> _Read:
    candidate, state = job
    doc, reason = load_text(candidate.load)
    if doc is None or (state is not None and state.sha256 == doc.sha256):
        return _Read(candidate, state, doc, reason, [], [])
    chunks = chunk_document(doc.text, doc.sections, chunk_size, chunk_overlap)
    return _Read(candidate, state, doc, reason, chunks, [" ".join(lexical.segment(c.text)) for c in chunks])


#: reading processes run at this lower priority: they need only stay ahead of the model, never slow it
READER_NICENESS = 5


def _start_reading_process(cache_dir: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    if hasattr(os, "nice"):
        os.nice(READER_NICENESS)
    lexical.configure(cache_dir)
    parent = os.getppid()

    def end_with_parent() -> None:  # a killed build must not leave its readers running
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=end_with_parent, daemon=True).start()


def _readers(jobs: list[tuple[Candidate, FileState | None]], settings: Settings, processes: bool) -> Executor:
    """Processes for a big run of files (one per core) where the caller allows them, else one thread."""
    files = all(isinstance(candidate.load, FileLoad) for candidate, _ in jobs)
    if processes and files and sum(candidate.size for candidate, _ in jobs) > READ_IN_PROCESSES_ABOVE:
        return ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_reading_process, initargs=(settings.home / "cache",))
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsearch-read")


def _read_ahead(jobs: list[tuple[Candidate, FileState | None]], settings: Settings,
                report: IndexReport, processes: bool) -> Iterator[_Read]:
    """The jobs read in order by ``_readers``, up to READ_AHEAD_BYTES ahead of the caller."""
    pool = _readers(jobs, settings, processes)
    queued: deque = deque()
    ahead = 0

    def oldest() -> _Read:
        nonlocal ahead
        job, future = queued.popleft()
        ahead -= job[0].size
        waited = time.perf_counter()
        try:
            result = future.result()
        except BrokenProcessPool:
            raise FsearchError("a process reading the files died (out of memory?)",
                               hint="run the same command again: what was committed is kept") from None
        report.read_wait_seconds += time.perf_counter() - waited
        return result

    try:
        for job in jobs:
            queued.append((job, pool.submit(_read, job, settings.chunk_size, settings.chunk_overlap)))
            ahead += job[0].size
            while ahead > READ_AHEAD_BYTES and queued:
                yield oldest()
        while queued:
            yield oldest()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # an error or Ctrl-C: at most the files in hand finish
        if queued:
            _stop_readers(pool)


def _stop_readers(pool: Executor) -> None:
    """An interrupted run: reading processes drop the files in hand (the process would wait for them at exit)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):  # no public way before Python 3.14
        process.terminate()


class _Window:
    """One window's chunks on their way through the model: those whose vectors were found, and the rest
    being embedded on the model's thread. ``earlier`` is the window before it, whose texts this one
    did not embed again, until this one is written."""

    def __init__(self, found: dict[str, np.ndarray], todo: list[str], embedded: Future[dict[str, np.ndarray]],
                 earlier: _Window | None) -> None:
        self.found, self.embedded, self.earlier = found, embedded, earlier
        self.hashes = set(found).union(todo)

    def vectors(self) -> dict[str, np.ndarray]:
        """Every vector the window's files need (waits for the model)."""
        vectors = {**(self.earlier.vectors() if self.earlier else {}), **self.found, **self.embedded.result()}
        self.earlier = None  # memory stays bounded to two windows
        return vectors


class _Embedding:
    """Embeds the chunks of the documents read so far, a window at a time, on a thread of its own.

    While one window is embedded, the caller writes the window before it to the store and gathers
    the next one, so the model does not stand idle during SQLite and FTS5 writes (they took
    ~2.5 ms a chunk of the model's thread, 5 % of a long build). Vectors are keyed by the chunk
    text's hash; ``places`` name each text's source for the message when a vector is invalid.
    """

    def __init__(self, writer: IndexWriter, embedder: Embedder, settings: Settings, report: IndexReport,
                 tracker: IndexProgress, progress: ProgressCallback | None, on_phase: PhaseCallback) -> None:
        self._writer, self._embedder, self._batch_size = writer, embedder, settings.batch_size
        self._batch_chars = settings.batch_size * settings.chunk_size
        self._report, self._tracker, self._progress, self._on_phase = report, tracker, progress, on_phase
        self._window: list[tuple[str, str, str]] = []  # (hash, text, place)
        self._last: _Window | None = None
        self._expected = False
        self._phase = ""
        self._model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsearch-embed")
        self._stop = threading.Event()
        self._counting = threading.Lock()  # chunks done are counted on both threads

    def add(self, source: str, chunks: list[Chunk]) -> bool:
        """Queue a document's chunks; True when that filled the window (the caller then ``send``s it)."""
        self._window += [(text_hash(c.text), c.text, f"{source}:{c.line}") for c in chunks]
        if not self._expected and len(self._window) >= EXPECT_AFTER:
            self._expected = True
            texts = {h: text for h, text, _ in self._window}
            stored = self._writer.stored_vectors(texts)
            new = sum(len(text) for h, text in texts.items() if h not in stored)
            # the whole job's, as the files read so far foretell it by their bytes
            self._model.submit(self._expect, round(new * self._tracker.bytes_total / max(self._tracker.bytes_read, 1)))
        return len(self._window) >= EMBED_WINDOW

    def foresee(self, characters: int) -> None:
        """Tell the model, before any file is read, the least the job will embed: the bundled one then
        loads torch while the files are read, instead of after the first chunks."""
        if characters:
            self._model.submit(self._expect, characters)

    def send(self) -> _Window:
        """Start embedding the window gathered so far; a text the window before it embeds is not embedded twice."""
        window, self._window = self._window, []
        fresh = {h: (text, place) for h, text, place in window}
        found = self._writer.stored_vectors(fresh)  # before this window's files replace their old chunks
        reused = sum(1 for h, _, _ in window if h in found)
        self._report.chunks_reused += reused
        self._advance(reused)
        earlier = self._last.hashes if self._last else set()
        todo = sorted((h for h in fresh if h not in found and h not in earlier), key=lambda h: -len(fresh[h][0]))
        self._advance(len(window) - reused - len(todo))  # texts embedded once for several chunks
        self._last = _Window(found, todo, self._model.submit(self._embed, todo, fresh), self._last)
        return self._last

    def close(self) -> None:
        """Stop the model's thread after the batch in hand (an error or Ctrl-C elsewhere ends the run)."""
        self._stop.set()
        self._model.shutdown(wait=False, cancel_futures=True)

    def _advance(self, chunks: int) -> None:
        with self._counting:
            self._tracker.chunks_done += chunks
        if self._progress and chunks:
            self._progress(self._tracker)

    def _expect(self, characters: int) -> None:
        """On the model's thread: tell the model how many characters of passages are coming (the bundled
        one picks its engine)."""
        self._say("loading model")
        expect = getattr(self._embedder, "expect_passages", None)
        if expect is not None:
            expect(characters)

    def _say(self, phase: str) -> None:
        if phase != self._phase and self._phase != "embedding":
            self._phase = phase
            self._on_phase(phase)

    def _embed(self, todo: list[str], fresh: dict[str, tuple[str, str]]) -> dict[str, np.ndarray]:
        """On the model's thread: vectors for ``todo``, longest first in batches of similar length (less padding)."""
        if not todo:
            return {}
        texts = [fresh[h][0] for h in todo]
        lengths = [len(t) for t in texts]
        self._expect(sum(lengths))
        limit = self._embedder.info.max_tokens
        self._report.chunks_over_token_limit += sum(n > limit for n in self._embedder.count_tokens(texts))
        self._say("embedding")
        started = time.perf_counter()
        vectors: dict[str, np.ndarray] = {}
        for start, end in batches(lengths, self._batch_size, self._batch_chars):
            if self._stop.is_set():
                raise _Stopped()
            part = todo[start:end]
            encoded = checked_vectors(self._embedder.encode_passages([fresh[h][0] for h in part]), len(part),
                                      self._embedder.info.dim, "chunk", [fresh[h][1] for h in part])
            vectors.update(zip(part, encoded, strict=True))
            self._tracker.embedding_seconds = self._report.embed_seconds + time.perf_counter() - started
            self._advance(len(part))
        self._report.embed_seconds += time.perf_counter() - started
        self._report.chunks_embedded += len(todo)
        self._report.characters_embedded += sum(lengths)
        return vectors


def batches(lengths: Sequence[int], size: int, characters: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each encode call's texts: ``size`` of them, or more while all of them padded to
    the longest stay within ``characters``, so that short texts (one-line notes, Q&A pairs) go to the
    model in calls as big as full chunks do (per call, its engine pays a fixed cost and loses
    parallelism: one-line texts embedded 203/s in calls of 16 and 285/s in bigger ones). Padded, not
    summed: a sentence-transformers model pads a call to its longest text, and a long text among
    hundreds of short ones would multiply its attention's memory."""
    start = 0
    while start < len(lengths):
        end, longest = start, 0
        while end < len(lengths):
            wider = max(longest, lengths[end])
            if end - start >= size and (end - start + 1) * wider > characters:
                break
            end, longest = end + 1, wider
        yield start, end
        start = end


class _Stopped(Exception):
    """The run ended elsewhere; the model's thread drops the window in hand."""


class _Stream:
    """Documents on their way to the store: embedded a window at a time, written, committed now and then.

    A window is written once the next one is on its way through the model. A changed file's old
    chunks leave in the same write as its new ones arrive, so every commit holds each file
    whole, in one version or the other.
    """

    def __init__(self, writer: IndexWriter, embedding: _Embedding, settings: Settings, report: IndexReport,
                 tracker: IndexProgress, progress: ProgressCallback | None) -> None:
        self._writer, self._embedding, self._settings, self._report = writer, embedding, settings, report
        self._tracker, self._progress = tracker, progress
        self._waiting: list[Pending] = []
        self._sent: deque[tuple[list[Pending], _Window]] = deque()
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

    def _write(self, items: list[Pending], window: _Window) -> None:
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
        _record_changes(self._writer, changed - self._committed_changes)
        self._committed_changes = changed


def run_index(candidates: Iterable[Candidate], settings: Settings, embedder: Embedder, *, rebuild: bool = False,
              prune_under: str | None = None, keep_under: Iterable[str] = (), index_type: str = "auto",
              skipped: Skips | None = None, progress: ProgressCallback | None = None, wait: bool = True,
              on_wait: Callable[[str], None] | None = None, on_phase: PhaseCallback = _quiet,
              processes: bool = False, root: str | None = None) -> IndexReport:
    """Bring the index up to date with ``candidates``; ``root``: the file or folder they came from.

    ``processes``: a big run of files is read and segmented in processes of their own. They are
    started as multiprocessing's spawn does, so the caller's main module must be safe to import
    (``if __name__ == "__main__":``); the CLI allows them.

    Indexed files under ``prune_under`` (a folder path, or "" for all) that are not among the
    candidates, or are now empty or binary, are removed; files that could not be read, and
    files under the ``keep_under`` folders (which could not be listed), keep their indexed version.
    Removals happen at the end, in the final commit: an interrupted run never drops a file it
    has not yet looked at.
    """
    started = time.perf_counter()
    run_started = time.time()
    skipped = skipped if skipped is not None else Skips()
    report = IndexReport(index_dir=str(settings.index_path), model=embedder.info.name,
                         max_tokens=embedder.info.max_tokens, long_input_policy=embedder.long_input_policy,
                         skipped=skipped)
    chunking = {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap}
    lexical.configure(settings.home / "cache")
    trust.check_update(settings.index_path, rebuild)
    ours = trust.index_trusted(settings.index_path)  # a rebuild of an index made elsewhere resumes none of it
    with write_errors(settings.index_path), IndexWriter(
            settings.index_path, embedder.info, chunking, rebuild=rebuild, index_type=index_type, wait=wait,
            on_wait=on_wait, resume=ours) as writer:
        trust.adopt(settings.index_path)
        if root is not None:
            writer.add_root(root)
        report.resumed, report.migrated = writer.resumed, writer.migrated
        on_phase("reading files")
        known = {} if prune_under is None else writer.file_states(prune_under or None)
        jobs: list[tuple[Candidate, FileState | None]] = []
        kept: set[str] = set()
        gone: set[str] = set()
        for candidate in candidates:
            state = (known if prune_under is not None else writer.file_states(candidate.source)).get(candidate.source)
            if _unchanged(candidate, state):
                kept.add(candidate.source)
                report.files_unchanged += 1
            else:
                jobs.append((candidate, state))
        tracker = IndexProgress(files_total=len(jobs), bytes_total=sum(c.size for c, _ in jobs))
        embedding = _Embedding(writer, embedder, settings, report, tracker, progress, on_phase)
        stream = _Stream(writer, embedding, settings, report, tracker, progress)
        embedding.foresee(_least_new_characters(jobs))
        try:
            for read in _read_ahead(jobs, settings, report, processes):
                doc, state = read.doc, read.state
                tracker.files_read += 1
                tracker.bytes_read += read.candidate.size
                tracker.chunks_read += len(read.chunks)
                if doc is None:
                    skipped.add(read.reason, read.candidate.source)
                    if state is not None and read.reason == UNREADABLE:
                        kept.add(read.candidate.source)  # what could not be read now is kept as it was
                        report.files_kept_unreadable += 1
                    elif state is not None:
                        gone.add(read.candidate.source)  # emptied, or no longer text
                    continue
                kept.add(doc.source)
                mtime = _stored_mtime(doc.mtime, run_started)
                if state is not None and state.sha256 == doc.sha256:
                    writer.touch_file(doc.source, doc.size, mtime)
                    report.files_unchanged += 1
                    continue
                stream.add(Pending(replace(doc, text="", mtime=mtime), read.chunks, read.terms, state is not None))
            stream.finish()
        finally:
            embedding.close()
        unreadable = list(keep_under)
        unlisted = {s for s in known if source_under(s, unreadable)}
        report.files_kept_unreadable += len(unlisted - kept)
        gone.update(s for s in known if s not in kept and s not in unlisted)
        if not report.files_indexed and not kept and not gone and not unlisted:
            raise NothingToIndexError("nothing indexable")
        report.chunks_removed += writer.remove_files(sorted(gone))
        report.files_removed = len(gone)
        stream.record_changes()
        _update_calibration(writer, embedder, on_phase)
        on_phase("saving")
        manifest = writer.commit()
        report.commits += 1
        report.warnings += writer.warnings
    report.total_files, report.total_chunks = manifest.counts.files, manifest.counts.chunks
    report.fusion, report.vectors = manifest.fusion, manifest.vectors
    report.seconds = time.perf_counter() - started
    return report


def _least_new_characters(jobs: Iterable[tuple[Candidate, FileState | None]]) -> int:
    """The fewest characters that the new plain-text files hold: UTF-8 spends at most 4 bytes a character."""
    return sum(c.size for c, state in jobs if state is None and Path(c.source).suffix.lower() in TEXT_SUFFIXES) // 4


RECALIBRATE_AFTER = 0.1  # of the index's chunks changed since the fusion weights were measured


def _record_changes(writer: IndexWriter, changed_chunks: int) -> None:
    """Add ``changed_chunks`` to the chunks changed since the last calibration."""
    fusion = writer.manifest.fusion
    writer.set_fusion({**fusion, "changed_chunks": fusion.get("changed_chunks", 0) + changed_chunks})


def _update_calibration(writer: IndexWriter, embedder: Embedder, on_phase: PhaseCallback = _quiet) -> None:
    """Measure the fusion weights again once enough of the index has changed (a small edit keeps them)."""
    fusion = writer.manifest.fusion
    current = fusion.get("version") == CALIBRATION_VERSION
    changed = fusion.get("changed_chunks", 0)
    if current and not changed:
        return
    writer.prepare()
    if not current or changed > RECALIBRATE_AFTER * max(writer.index.ntotal, 1):
        on_phase("calibrating")
        writer.refresh_term_frequencies()  # before the probes: they run keyword queries
        # the probes' queries are the passage engine's last job: its memory goes before jieba's arrives
        release = getattr(embedder, "release_passage_engine", lambda: None)
        writer.set_fusion({**calibrate(writer, embedder, after_dense=release), "changed_chunks": 0})


def _file_candidates(files: list[Path], settings: Settings, skipped: Skips) -> list[Candidate]:
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


def remove_paths(paths: list[Path], settings: Settings, wait: bool = True,
                 on_wait: Callable[[str], None] | None = None) -> Removal:
    """Take files, or everything under folders, out of the index (no model needed, nothing re-embedded).

    Every path must match something indexed, or nothing is changed: a typo must not look like success.
    """
    manifest = committed_manifest(settings.index_path)
    if manifest is None:
        raise no_index(settings.index_path)
    trust.check_update(settings.index_path, rebuild=False)
    with write_errors(settings.index_path), IndexWriter(settings.index_path, ModelInfo.recorded(manifest.model),
                                                        manifest.chunking, wait=wait, on_wait=on_wait) as writer:
        sources: set[str] = set()
        for path in paths:
            matched = writer.file_states(source_name(path))
            if not matched:
                raise InputError(f"not in the index: {path}", hint="`fsearch ls` lists what the index holds; "
                                 "nothing was removed")
            sources.update(matched)
        chunks = writer.remove_files(sorted(sources))
        _record_changes(writer, chunks)  # the next `fsearch index` recalibrates once enough has changed
        manifest = writer.commit()
    return Removal(str(settings.index_path), len(sources), chunks, manifest.counts.files, manifest.counts.chunks)


def document_candidate(doc: Document) -> Candidate:
    """A document already in memory (a data set record): compared by its hash."""
    return Candidate(doc.source, doc.size, doc.mtime, lambda: doc, sha256=doc.sha256)


def index_documents(documents: Iterable[Document], settings: Settings, embedder: Embedder, rebuild: bool = False,
                    progress: ProgressCallback | None = None) -> IndexReport:
    """Make the index hold exactly ``documents`` (by source id); used for evaluation data sets."""
    return run_index((document_candidate(d) for d in documents), settings, embedder, rebuild=rebuild,
                     prune_under="", progress=progress)


def index_path(path: Path, settings: Settings, embedder: Embedder, rebuild: bool = False,
               progress: ProgressCallback | None = None, index_type: str = "auto", wait: bool = True,
               on_wait: Callable[[str], None] | None = None, filters: Filters = Filters(),
               on_phase: PhaseCallback = _quiet, processes: bool = False) -> IndexReport:
    """Index a file or a folder; files that vanished from (or are now ignored in) an indexed folder leave it.

    ``processes``: see ``run_index``."""
    found = discover(path, filters)
    candidates = _file_candidates(found.files, settings, found.skipped)
    prune = source_name(path.resolve()) if path.is_dir() else None
    dropped = _indexed_outside(settings.index_path, prune or source_name(path)) if rebuild else []
    try:
        report = run_index(candidates, settings, embedder, rebuild=rebuild, prune_under=prune,
                           keep_under=found.unreadable_folders, index_type=index_type, skipped=found.skipped,
                           progress=progress, wait=wait, on_wait=on_wait, on_phase=on_phase, processes=processes,
                           root=prune or source_name(path))
    except NothingToIndexError:
        reasons = found.skipped.summary() or "no files"
        raise NothingToIndexError(f"nothing indexable in {path} ({reasons})",
                                  hint=f"fsearch reads {', '.join(sorted(SUPPORTED_SUFFIXES))} files") from None
    if dropped:
        report.warnings.append(f"--rebuild dropped {len(dropped)} file(s) of other folders that this index held "
                               f"(e.g. {dropped[0]}); give each project its own index with `fsearch init`")
    return report


def _indexed_outside(index_dir: Path, kept: str) -> list[str]:
    """Indexed files that are neither ``kept`` nor inside it: what a rebuild of ``kept`` leaves out."""
    from .store import open_index

    try:
        reader = open_index(index_dir)
    except FsearchError:
        return []  # no index, or a damaged one that --rebuild replaces: nothing to report
    try:
        with reader.snapshot():
            inside = reader.file_states(kept)
            return [path for path in reader.file_states() if path not in inside]
    finally:
        reader.close()
