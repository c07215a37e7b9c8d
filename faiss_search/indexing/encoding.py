"""Embedding the chunks read, in windows, reusing the vectors of texts the index already holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..chunking import Chunk
from ..config import Settings
from ..embedding import Embedder, checked_vectors
from ..stores import Writer, text_hash
from .reports import IndexProgress, IndexReport, PhaseCallback, ProgressCallback

if TYPE_CHECKING:
    import numpy as np

#: chunks gathered before embedding them: enough to sort by length (less padding), few enough to start soon
EMBED_WINDOW = 512
#: chunks read before the model is told how many new ones are coming, ahead of the first window
#: (the bundled model then loads torch while the rest of that window is read)
EXPECT_AFTER = 64


class _Stopped(Exception):
    """The run ended elsewhere; the model's thread drops the window in hand."""


class Window:
    """One window's chunks on their way through the model: those whose vectors were found, and the rest
    being embedded on the model's thread. ``earlier`` is the window before it, whose texts this one
    did not embed again, until this one is written."""

    def __init__(self, found: dict[str, np.ndarray], todo: list[str], embedded: Future[dict[str, np.ndarray]],
                 earlier: Window | None) -> None:
        self.found, self.embedded, self.earlier = found, embedded, earlier
        self.hashes = set(found).union(todo)

    def vectors(self) -> dict[str, np.ndarray]:
        """Every vector the window's files need (waits for the model)."""
        vectors = {**(self.earlier.vectors() if self.earlier else {}), **self.found, **self.embedded.result()}
        self.earlier = None  # memory stays bounded to two windows
        return vectors


class Embedding:
    """Embeds the chunks of the documents read so far, a window at a time, on a thread of its own.

    While one window is embedded, the caller writes the window before it to the store and gathers
    the next one, so the model does not stand idle during SQLite and FTS5 writes (they took
    ~2.5 ms a chunk of the model's thread, 5 % of a long build). Vectors are keyed by the chunk
    text's hash; ``places`` name each text's source for the message when a vector is invalid.
    """

    def __init__(self, writer: Writer, embedder: Embedder, settings: Settings, report: IndexReport,
                 tracker: IndexProgress, progress: ProgressCallback | None, on_phase: PhaseCallback) -> None:
        self._writer, self._embedder, self._batch_size = writer, embedder, settings.batch_size
        self._batch_chars = settings.batch_size * settings.chunk_size
        self._report, self._tracker, self._progress, self._on_phase = report, tracker, progress, on_phase
        self._window: list[tuple[str, str, str]] = []  # (hash, text, place)
        self._last: Window | None = None
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

    def send(self) -> Window:
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
        self._last = Window(found, todo, self._model.submit(self._embed, todo, fresh), self._last)
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
