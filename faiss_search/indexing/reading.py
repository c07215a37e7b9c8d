"""Reading ahead of the embedding: files read, parsed, chunked and segmented on worker threads or processes.

Memory is bounded by READ_AHEAD_BYTES; a big run of files is read in processes of their own.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from .. import lexical
from ..chunking import Chunk, chunk_document
from ..config import Settings
from ..documents import (
    Document,
    load_text,
)
from ..errors import FsearchError
from ..stores import FileState
from .candidates import Candidate, FileLoad, holds
from .reports import IndexReport


@dataclass(frozen=True)
class Pending:
    """A document to (re)index: its chunks, their keyword terms, and whether it replaces an indexed version."""

    doc: Document  # without its text: the chunks carry what is stored
    chunks: list[Chunk]
    terms: list[str]
    replaces: bool


@dataclass(frozen=True)
class Read:
    """A candidate read on the worker thread: its document (or why not) and, when it changed, its chunks."""

    candidate: Candidate
    state: FileState | None
    doc: Document | None
    reason: str
    chunks: list[Chunk]
    terms: list[str]


#: file bytes read ahead of the embedding: enough to keep it busy, small enough to bound memory
READ_AHEAD_BYTES = 32 * 1024 * 1024
#: files read and segmented in processes of their own once a run has this many bytes to read: jieba is
#: pure Python, and on a thread it would hold the GIL against the writer, the model's thread and torch's loading
READ_IN_PROCESSES_ABOVE = 1024 * 1024




def _read(job: tuple[Candidate, FileState | None], chunk_size: int, chunk_overlap: int) -> Read:
    candidate, state = job
    doc, reason = load_text(candidate.load)
    if doc is None or holds(state, doc):
        return Read(candidate, state, doc, reason, [], [])
    chunks = chunk_document(doc.text, doc.sections, chunk_size, chunk_overlap)
    return Read(candidate, state, doc, reason, chunks, [" ".join(lexical.segment(c.text)) for c in chunks])


#: reading processes run at this lower priority: they need only stay ahead of the model, never slow it
READER_NICENESS = 5


def _start_reading_process() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    if hasattr(os, "nice"):
        os.nice(READER_NICENESS)
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
                                   initializer=_start_reading_process)
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsearch-read")


def read_ahead(jobs: list[tuple[Candidate, FileState | None]], settings: Settings,
                report: IndexReport, processes: bool) -> Iterator[Read]:
    """The jobs read in order by ``_readers``, up to READ_AHEAD_BYTES ahead of the caller."""
    pool = _readers(jobs, settings, processes)
    queued: deque = deque()
    ahead = 0

    def oldest() -> Read:
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
