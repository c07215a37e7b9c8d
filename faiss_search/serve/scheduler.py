"""Two lanes that embed: one for short requests (queries), one for the rest; and one that reranks.

Each takes a slice of each waiting request in turn, so a big request is split into batches and never
holds a query up for long; a request whose client went away is dropped, one past its budget fails."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..embedding import Embedder
from ..manifest import ModelInfo
from ..reranking import RemoteReranker, Reranker
from .api import ApiError
from .metrics import Metrics

if TYPE_CHECKING:
    import numpy as np

BATCH_WINDOW_SECONDS = 0.005
MAX_BATCH = 64
#: characters in one encode call: what a newcomer may wait behind (~1 s of the bundled model on 2 cores)
MAX_BATCH_CHARS = 2000
#: texts a request contributes to one batch before the next request's turn (fair interleaving)
SLICE = 8
#: requests this small go to the quick lane (queries): at most this many texts and characters
QUICK_TEXTS = 4
QUICK_CHARS = 1000


@dataclass
class Job:
    """One request's texts, embedded a slice at a time."""

    texts: list[str]
    input_type: str
    budget: float
    deadline: float
    future: Future = field(default_factory=Future)
    handed_out: int = 0
    received: int = 0
    parts: dict[int, Any] = field(default_factory=dict)
    cancelled: bool = False
    #: what the texts are scored against, in a rerank job
    query: str = ""

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def joined(self) -> Any:
        """What the slices gave, in the order of the texts."""
        import numpy as np

        return np.concatenate([self.parts[k] for k in sorted(self.parts)])


class Turns:
    """One thread works for the waiting requests, a slice of each in turn; what the work is, subclasses say
    (``_warm_up``, ``_call`` for a batch of slices, ``_result`` for a finished request)."""

    def __init__(self, name: str, lock: threading.Lock, metrics: Metrics | None) -> None:
        self.metrics = metrics
        self.lock = lock  # held while this lane's model computes (shared with a lane that shares the model)
        self.ready = threading.Event()
        self.load_error: BaseException | None = None
        self._jobs: deque[Job] = deque()
        self._wake = threading.Condition()
        self._closed = False
        threading.Thread(target=self._run, daemon=True, name=f"fsearch-{name}").start()

    def submit(self, job: Job) -> None:
        with self._wake:
            if self._closed:
                raise ApiError(503, "the server is shutting down", kind="server_error")
            self._jobs.append(job)
            self._wake.notify()

    def queued_texts(self) -> int:
        with self._wake:
            return sum(len(j.texts) - j.handed_out for j in self._jobs)

    def close(self) -> None:
        """Stop taking work; what is still waiting is answered with a 503."""
        with self._wake:
            self._closed = True
            jobs, self._jobs = list(self._jobs), deque()
            self._wake.notify()
        for job in jobs:
            job.fail(ApiError(503, "the server is shutting down", kind="server_error"))

    def _warm_up(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            with self.lock:
                self._warm_up()  # load the model before saying ready
        except Exception as exc:  # reported by /ready and by every request
            self.load_error = exc
        self.ready.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            for input_type in ("query", "passage", "rerank"):
                group = [piece for piece in batch if piece[0].input_type == input_type]
                if group:
                    self._encode(group, input_type)

    def _next_batch(self) -> list[tuple[Job, int, list[str]]] | None:
        """A batch of slices, one request after another in turn; None once closed.

        A slice is up to SLICE texts of one request; a batch holds at most MAX_BATCH texts and
        about MAX_BATCH_CHARS characters, so a newcomer never waits long behind a big request.
        """
        with self._wake:
            while not self._jobs and not self._closed:
                self._wake.wait()
            if self._closed:
                return None
            if sum(len(j.texts) - j.handed_out for j in self._jobs) < MAX_BATCH:
                self._wake.wait(BATCH_WINDOW_SECONDS)  # let concurrent small requests join
            now = time.monotonic()
            for job in [j for j in self._jobs if j.cancelled or j.deadline < now]:
                self._jobs.remove(job)  # its client is gone, or it is out of time: drop the rest of its work
                job.fail(ApiError(499, "the client closed the connection") if job.cancelled else ApiError(
                    504, f"the request took longer than its {job.budget:g} s budget; send fewer or shorter "
                         "inputs per request", kind="server_error"))
            batch: list[tuple[Job, int, list[str]]] = []
            texts = chars = 0
            while self._jobs and texts < MAX_BATCH and chars < MAX_BATCH_CHARS:
                job = self._jobs.popleft()
                start = end = job.handed_out
                while end < len(job.texts) and end - start < SLICE and texts < MAX_BATCH and (
                        end == start or chars < MAX_BATCH_CHARS):
                    chars += len(job.texts[end])
                    texts += 1
                    end += 1
                batch.append((job, start, job.texts[start:end]))
                job.handed_out = end
                if end < len(job.texts):
                    self._jobs.append(job)  # the rest waits for its next turn
            return batch

    def _encode(self, group: list[tuple[Job, int, list[str]]], input_type: str) -> None:
        """One encode call for the group; if it fails, each request alone, so one bad input fails only its own."""
        if self.load_error is not None:
            for job, _, _ in group:
                job.fail(self.load_error)
            return
        try:
            vectors = self._call(group, input_type)
        except Exception as exc:
            if len(group) == 1:
                group[0][0].fail(exc)
                return
            for piece in group:
                self._encode([piece], input_type)
            return
        start = 0
        for job, offset, part in group:
            self._deliver(job, offset, vectors[start:start + len(part)])
            start += len(part)

    def _deliver(self, job: Job, offset: int, vectors: Any) -> None:
        job.parts[offset] = vectors
        job.received += len(vectors)
        if job.received < len(job.texts) or job.future.done():
            return
        job.future.set_result(self._result(job))

    def _call(self, group: list[tuple[Job, int, list[str]]], input_type: str) -> Any:
        raise NotImplementedError

    def _result(self, job: Job) -> Any:
        raise NotImplementedError


class Lane(Turns):
    """An embedding lane: one thread embeds for the requests of its lane."""

    def __init__(self, name: str, embedder: Embedder, lock: threading.Lock, metrics: Metrics | None) -> None:
        self.embedder = embedder
        super().__init__(name, lock, metrics)

    def _warm_up(self) -> None:
        self.embedder.encode_passages(["warm up"])

    def _call(self, group: list[tuple[Job, int, list[str]]], input_type: str) -> Any:
        texts = [t for _, _, part in group for t in part]
        with self.lock:
            encode = self.embedder.encode_queries if input_type == "query" else self.embedder.encode_passages
            vectors = encode(texts)
        if self.metrics:
            self.metrics.batch_size.observe(len(texts))
        return vectors

    def _result(self, job: Job) -> Any:
        """A finished job's answer: its vectors, in order, and its tokens."""
        with self.lock:
            tokens = sum(self.embedder.count_tokens(job.texts))
        if self.metrics:
            self.metrics.inputs.inc(len(job.texts))
            self.metrics.tokens.inc(tokens)
        return job.joined(), tokens


class RerankLane(Turns):
    """One thread reranks for every request that needs it (``/v1/rerank``, ``/v1/search`` with rerank), a slice
    of each in turn as the embedding lanes do: a long list of documents does not hold a short one up."""

    def __init__(self, reranker: Reranker, metrics: Metrics | None) -> None:
        self.reranker = reranker
        super().__init__("rerank", threading.Lock(), metrics)

    def _warm_up(self) -> None:
        if not isinstance(self.reranker, RemoteReranker):  # a remote one is asked when there is work, not before
            self.reranker.score("warm up", ["warm up"])

    def _call(self, group: list[tuple[Job, int, list[str]]], input_type: str) -> Any:
        import numpy as np

        with self.lock:
            scores = [np.asarray(self.reranker.score(job.query, part), dtype=np.float32) for job, _, part in group]
        if self.metrics:
            self.metrics.rerank_pairs.inc(sum(len(part) for _, _, part in group))
        return np.concatenate(scores)

    def _result(self, job: Job) -> Any:
        return job.joined()

    def ask(self, query: str, documents: list[str], seconds: float) -> Job:
        """A job that scores ``documents`` against ``query``, in line with the others."""
        job = Job(documents, "rerank", seconds, time.monotonic() + seconds, query=query)
        self.submit(job)
        return job


class LaneReranker:
    """The rerank lane as a ``Reranker`` for /v1/search: each call waits its turn there."""

    def __init__(self, lane: RerankLane, seconds: float) -> None:
        self.lane, self.seconds = lane, seconds
        self.name = lane.reranker.name

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        return [float(s) for s in self.lane.ask(query, list(passages), self.seconds).future.result()]


class LockedEmbedder:
    """A lane's model for /v1/search: the lane's lock is held while a query is embedded, not while the
    index is searched and its snippets cut (which need no model)."""

    def __init__(self, lane: Lane) -> None:
        self._embedder, self._lock = lane.embedder, lane.lock
        self.long_input_policy = lane.embedder.long_input_policy

    @property
    def info(self) -> ModelInfo:
        return self._embedder.info

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embedder.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embedder.encode_passages(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._embedder.count_tokens(texts)

    def use_query_prefix(self, on: bool) -> None:
        with self._lock:  # the lane's own requests read it while they embed
            self._embedder.use_query_prefix(on)

    def twin(self) -> Embedder:
        return self._embedder.twin()


class Scheduler:
    """Two lanes: short requests (a few short texts: queries, mostly) and everything else.

    Each lane has its own thread and, where the backend allows (the bundled engine), its own
    instance of the model, so a short query runs beside a long bulk request instead of
    behind it. Within a lane, requests take turns a slice at a time.
    """

    def __init__(self, embedder: Embedder, metrics: Metrics | None = None, reranker: Reranker | None = None) -> None:
        quick = embedder.twin()
        bulk_lock = threading.Lock()
        quick_lock = bulk_lock if quick is embedder else threading.Lock()
        self.bulk = Lane("bulk", embedder, bulk_lock, metrics)
        self.quick = Lane("quick", quick, quick_lock, metrics)
        self.rerank = RerankLane(reranker, metrics) if reranker is not None else None

    @property
    def lanes(self) -> tuple[Turns, ...]:
        return (self.quick, self.bulk) + ((self.rerank,) if self.rerank is not None else ())

    def submit(self, texts: list[str], input_type: str, seconds: float) -> Job:
        job = Job(texts, input_type, seconds, time.monotonic() + seconds)
        quick = len(texts) <= QUICK_TEXTS and sum(map(len, texts)) <= QUICK_CHARS
        (self.quick if quick else self.bulk).submit(job)
        return job

    @property
    def ready(self) -> bool:
        return all(lane.ready.is_set() for lane in self.lanes)

    @property
    def load_error(self) -> BaseException | None:
        return next((lane.load_error for lane in self.lanes if lane.load_error is not None), None)

    def queued_texts(self) -> int:
        return sum(lane.queued_texts() for lane in self.lanes)

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()
