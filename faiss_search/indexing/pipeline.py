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

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import trust
from ..config import Settings
from ..documents import SUPPORTED_SUFFIXES, UNREADABLE, Document, source_name
from ..embedding import Embedder
from ..errors import FsearchError, InputError, NothingToIndexError
from ..manifest import ModelInfo
from ..paths import source_under
from ..stores import FileState, Writer, committed_manifest, no_index, open_writer
from .calibration import record_changes, update_calibration
from .candidates import (
    Candidate,
    document_candidate,
    file_candidates,
    holds,
    least_new_characters,
    stored_mtime,
    unchanged,
)
from .discovery import Filters, Skips, discover
from .encoding import Embedding
from .reading import Pending, Read, read_ahead
from .reports import IndexProgress, IndexReport, PhaseCallback, ProgressCallback, Removal, quiet
from .stream import Stream


def run_index(candidates: Iterable[Candidate], settings: Settings, embedder: Embedder, *, rebuild: bool = False,
              prune_under: str | None = None, keep_under: Iterable[str] = (), index_type: str = "auto",
              skipped: Skips | None = None, progress: ProgressCallback | None = None, wait: bool = True,
              on_wait: Callable[[str], None] | None = None, on_phase: PhaseCallback = quiet,
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
    started, run_started = time.perf_counter(), time.time()
    report = IndexReport(index_dir=str(settings.index_folder), model=embedder.info.name,
                         max_tokens=embedder.info.max_tokens, long_input_policy=embedder.long_input_policy,
                         skipped=skipped if skipped is not None else Skips())
    chunking = {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap}
    trust.check_update(settings.index_folder, rebuild)
    ours = trust.index_trusted(settings.index_folder)  # a rebuild of an index made elsewhere resumes none of it
    with open_writer(settings.index_folder, embedder.info, chunking, rebuild=rebuild, index_type=index_type,
                     wait=wait, on_wait=on_wait, resume=ours) as writer:
        trust.adopt(settings.index_folder)
        if root is not None:
            writer.add_root(root)
        report.resumed, report.migrated = writer.resumed, writer.migrated
        on_phase("reading files")
        seen = _Seen(run_started, {} if prune_under is None else writer.file_states(prune_under or None))
        jobs = _changed(candidates, writer, seen, prune_under is not None, report)
        stream = _embed_and_store(jobs, writer, embedder, settings, report, seen, progress, on_phase, processes)
        _remove_gone(writer, seen, keep_under, report)
        stream.record_changes()
        update_calibration(writer, embedder, on_phase)
        on_phase("saving")
        manifest = writer.commit()
        report.commits += 1
        report.warnings += writer.warnings
    report.total_files, report.total_chunks = manifest.counts.files, manifest.counts.chunks
    report.fusion, report.vectors = manifest.fusion, manifest.vectors
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Seen:
    """What a run found of the files indexed under its folder: those it keeps, and those that are gone."""

    #: when the run began: a file modified this recently may change again unseen (candidates.RACY_SECONDS)
    started_at: float
    known: dict[str, FileState]
    kept: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)


def _changed(candidates: Iterable[Candidate], writer: Writer, seen: _Seen, pruning: bool,
             report: IndexReport) -> list[tuple[Candidate, FileState | None]]:
    """The candidates to read (new or changed by size and mtime), each with what the index knows of it."""
    jobs = []
    for candidate in candidates:
        state = (seen.known if pruning else writer.file_states(candidate.source)).get(candidate.source)
        if unchanged(candidate, state):
            seen.kept.add(candidate.source)
            report.files_unchanged += 1
        else:
            jobs.append((candidate, state))
    return jobs


def _embed_and_store(jobs: list[tuple[Candidate, FileState | None]], writer: Writer, embedder: Embedder,
                     settings: Settings, report: IndexReport, seen: _Seen, progress: ProgressCallback | None,
                     on_phase: PhaseCallback, processes: bool) -> Stream:
    """Read ``jobs`` ahead, embed what changed and stream it to the writer; returns the stream, finished."""
    tracker = IndexProgress(files_total=len(jobs), bytes_total=sum(c.size for c, _ in jobs))
    embedding = Embedding(writer, embedder, settings, report, tracker, progress, on_phase)
    stream = Stream(writer, embedding, settings, report, tracker, progress)
    embedding.foresee(least_new_characters(jobs))
    try:
        for read in read_ahead(jobs, settings, report, processes):
            tracker.files_read += 1
            tracker.bytes_read += read.candidate.size
            tracker.chunks_read += len(read.chunks)
            _take(read, writer, stream, seen, report)
        stream.finish()
    finally:
        embedding.close()
    return stream


def _take(read: Read, writer: Writer, stream: Stream, seen: _Seen, report: IndexReport) -> None:
    """One file read: skipped, kept as it was, its stat refreshed, or sent on to be embedded and stored."""
    doc, state, source = read.doc, read.state, read.candidate.source
    if doc is None:
        report.skipped.add(read.reason, source)
        if state is not None and read.reason == UNREADABLE:
            seen.kept.add(source)  # what could not be read now is kept as it was
            report.files_kept_unreadable += 1
        elif state is not None:
            seen.gone.add(source)  # emptied, or no longer text
        return
    seen.kept.add(doc.source)
    mtime = stored_mtime(doc.mtime, seen.started_at)
    if holds(state, doc):
        writer.touch_file(doc.source, doc.size, mtime)
        report.files_unchanged += 1
        return
    stream.add(Pending(replace(doc, text="", mtime=mtime), read.chunks, read.terms, state is not None))


def _remove_gone(writer: Writer, seen: _Seen, keep_under: Iterable[str], report: IndexReport) -> None:
    """Drop the indexed files the run no longer found (not those under folders it could not list)."""
    unlisted = {s for s in seen.known if source_under(s, list(keep_under))}
    report.files_kept_unreadable += len(unlisted - seen.kept)
    seen.gone.update(s for s in seen.known if s not in seen.kept and s not in unlisted)
    if not report.files_indexed and not seen.kept and not seen.gone and not unlisted:
        raise NothingToIndexError("nothing indexable")
    report.chunks_removed += writer.remove_files(sorted(seen.gone))
    report.files_removed = len(seen.gone)


def remove_paths(paths: list[Path], settings: Settings, wait: bool = True,
                 on_wait: Callable[[str], None] | None = None) -> Removal:
    """Take files, or everything under folders, out of the index (no model needed, nothing re-embedded).

    Every path must match something indexed, or nothing is changed: a typo must not look like success.
    """
    manifest = committed_manifest(settings.index_folder)
    if manifest is None:
        raise no_index(settings.index_folder)
    trust.check_update(settings.index_folder, rebuild=False)
    with open_writer(settings.index_folder, ModelInfo.recorded(manifest.model),
                     manifest.chunking, wait=wait, on_wait=on_wait) as writer:
        sources: set[str] = set()
        for path in paths:
            matched = writer.file_states(source_name(path))
            if not matched:
                raise InputError(f"not in the index: {path}", hint="`fsearch ls` lists what the index holds; "
                                 "nothing was removed")
            sources.update(matched)
        chunks = writer.remove_files(sorted(sources))
        record_changes(writer, chunks)  # the next `fsearch index` recalibrates once enough has changed
        manifest = writer.commit()
    return Removal(str(settings.index_folder), len(sources), chunks, manifest.counts.files, manifest.counts.chunks)


def index_documents(documents: Iterable[Document], settings: Settings, embedder: Embedder, rebuild: bool = False,
                    progress: ProgressCallback | None = None) -> IndexReport:
    """Make the index hold exactly ``documents`` (by source id); used for evaluation data sets."""
    return run_index((document_candidate(d) for d in documents), settings, embedder, rebuild=rebuild,
                     prune_under="", progress=progress)


def index_path(path: Path, settings: Settings, embedder: Embedder, rebuild: bool = False,
               progress: ProgressCallback | None = None, index_type: str = "auto", wait: bool = True,
               on_wait: Callable[[str], None] | None = None, filters: Filters = Filters(),
               on_phase: PhaseCallback = quiet, processes: bool = False) -> IndexReport:
    """Index a file or a folder; files that vanished from (or are now ignored in) an indexed folder leave it.

    ``processes``: see ``run_index``."""
    found = discover(path, filters)
    candidates = file_candidates(found.files, settings, found.skipped)
    prune = source_name(path.resolve()) if path.is_dir() else None
    dropped = _indexed_outside(settings.index_folder, prune or source_name(path)) if rebuild else []
    try:
        report = run_index(candidates, settings, embedder, rebuild=rebuild, prune_under=prune,
                           keep_under=found.unreadable_folders, index_type=index_type, skipped=found.skipped,
                           progress=progress, wait=wait, on_wait=on_wait, on_phase=on_phase, processes=processes,
                           root=prune or source_name(path))
    except NothingToIndexError:
        reasons = found.skipped.summary() or "no files"
        raise NothingToIndexError(f"nothing indexable in {path} ({reasons})", hint=_why_nothing(found.skipped)
                                  ) from None
    if dropped:
        report.warnings.append(f"--rebuild dropped {len(dropped)} file(s) of other folders that this index held "
                               f"(e.g. {dropped[0]}); give each project its own index with `fsearch init`")
    return report


def _why_nothing(skipped: Skips) -> str:
    """The hint for a run that found nothing to index, from why its files were passed over."""
    reasons = set(skipped.counts)
    if reasons and reasons <= {"binary", "undecodable"}:
        return ("the file(s) look binary, not text: text files are read as UTF-8, GBK/GB18030 or UTF-16, and "
                "PDF, Word, HTML and EPUB documents need their own suffix (.pdf, .docx, .html, .epub)")
    if reasons == {"empty"}:
        return "the file(s) hold no text"
    return f"fsearch reads {', '.join(sorted(SUPPORTED_SUFFIXES))} files"


def _indexed_outside(index_dir: Path, kept: str) -> list[str]:
    """Indexed files that are neither ``kept`` nor inside it: what a rebuild of ``kept`` leaves out."""
    from ..stores import open_reader

    try:
        reader = open_reader(index_dir)
    except FsearchError:
        return []  # no index, or a damaged one that --rebuild replaces: nothing to report
    try:
        with reader.snapshot():
            inside = reader.file_states(kept)
            return [path for path in reader.file_states() if path not in inside]
    finally:
        reader.close()
