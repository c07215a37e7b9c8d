"""`fsearch serve`: the model (and optionally an index) behind an OpenAI-compatible HTTP API.

Routes: ``POST /v1/embeddings`` (OpenAI format), ``GET /v1/models`` (and ``/v1/models/{id}``),
``POST /v1/search`` (the objects of ``fsearch search --json``), ``GET /health`` (liveness),
``GET /ready`` (readiness: model loaded, index open) and ``GET /metrics`` (Prometheus).

Requests are validated by typed models; every error, ours or the framework's, is an
OpenAI-style JSON body: client faults 4xx, server faults 5xx. Two lanes embed: one for short
requests (queries), one for the rest, each taking a slice of each waiting request in turn,
so a big request is split into batches and never holds a query up for long; a request whose
client went away is dropped, and one that outlives its time budget is answered with an error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hmac
import json
import logging
import threading
import time
from collections import deque
from collections.abc import MutableMapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException

from .embedding import Embedder
from .errors import (
    FsearchError,
    IndexBusyError,
    IndexCorruptError,
    IndexNotFoundError,
    InputError,
    InvalidVectorError,
    ModelLoadError,
    ModelMismatchError,
    RemoteEmbeddingError,
    StoreError,
)
from .manifest import ModelInfo
from .search import Searcher

if TYPE_CHECKING:
    import numpy as np

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 100_000
BATCH_WINDOW_SECONDS = 0.005
MAX_BATCH = 64
#: characters in one encode call: what a newcomer may wait behind (~1 s of the bundled model on 2 cores)
MAX_BATCH_CHARS = 2000
#: texts a request contributes to one batch before the next request's turn (fair interleaving)
SLICE = 8
#: requests this small go to the quick lane (queries): at most this many texts and characters
QUICK_TEXTS = 4
QUICK_CHARS = 1000
#: a request still unanswered after this long is given up with a 504
REQUEST_SECONDS = 120.0
#: the model name that embeds inputs as queries, for clients that cannot send input_type
QUERY_SUFFIX = ":query"
TOKEN_ID_HINT = ("this server received token ids (LangChain's OpenAIEmbeddings sends them by default) and cannot "
                 "decode them: tiktoken's cl100k_base encoding is not available here. Send text instead: in "
                 "LangChain set OpenAIEmbeddings(check_embedding_ctx_length=False)")
INPUT_SHAPES = "input must be a non-empty string, list of strings, list of token ids or list of token-id lists"

access_log = logging.getLogger("fsearch.access")


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


#: our errors as HTTP: what the client sent is 4xx, what failed here is 5xx
_STATUS = ((InputError, 400, "invalid_request_error"), (ModelMismatchError, 409, "invalid_request_error"),
           (IndexNotFoundError, 404, "not_found_error"), (IndexCorruptError, 503, "server_error"),
           (ModelLoadError, 503, "server_error"), (RemoteEmbeddingError, 502, "server_error"),
           (InvalidVectorError, 500, "server_error"), (StoreError, 503, "server_error"),
           (IndexBusyError, 503, "server_error"))


def status_of(exc: FsearchError) -> tuple[int, str]:
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "server_error"


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request; ``input_type`` is the common extension (vLLM, TEI, Voyage)."""

    model_config = ConfigDict(extra="allow")  # clients send fields such as "user"
    model: StrictStr | None = None
    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    input_type: Literal["query", "passage", "document"] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: StrictStr
    top_k: StrictInt = Field(3, ge=1, le=100)
    mode: Literal["hybrid", "dense", "keyword"] | None = None


@dataclass
class _Job:
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

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class Lane:
    """One thread embeds for the requests of its lane, a slice of each waiting request in turn."""

    def __init__(self, name: str, embedder: Embedder, lock: threading.Lock, metrics: Metrics | None) -> None:
        self.embedder = embedder
        self.metrics = metrics
        self.lock = lock  # held while this lane's model computes (shared with a lane that shares the model)
        self.ready = threading.Event()
        self.load_error: BaseException | None = None
        self._jobs: deque[_Job] = deque()
        self._wake = threading.Condition()
        self._closed = False
        threading.Thread(target=self._run, daemon=True, name=f"fsearch-{name}").start()

    def submit(self, job: _Job) -> None:
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

    def _run(self) -> None:
        try:
            with self.lock:
                self.embedder.encode_passages(["warm up"])  # load the model before saying ready
        except Exception as exc:  # reported by /ready and by every request
            self.load_error = exc
        self.ready.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            for input_type in ("query", "passage"):
                group = [piece for piece in batch if piece[0].input_type == input_type]
                if group:
                    self._encode(group, input_type)

    def _next_batch(self) -> list[tuple[_Job, int, list[str]]] | None:
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
            batch: list[tuple[_Job, int, list[str]]] = []
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

    def _encode(self, group: list[tuple[_Job, int, list[str]]], input_type: str) -> None:
        """One encode call for the group; if it fails, each request alone, so one bad input fails only its own."""
        if self.load_error is not None:
            for job, _, _ in group:
                job.fail(self.load_error)
            return
        texts = [t for _, _, part in group for t in part]
        try:
            vectors = self._call(texts, input_type)
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

    def _call(self, texts: list[str], input_type: str) -> Any:
        with self.lock:
            encode = self.embedder.encode_queries if input_type == "query" else self.embedder.encode_passages
            vectors = encode(texts)
        if self.metrics:
            self.metrics.batch_size.observe(len(texts))
        return vectors

    def _deliver(self, job: _Job, offset: int, vectors: Any) -> None:
        import numpy as np

        job.parts[offset] = vectors
        job.received += len(vectors)
        if job.received < len(job.texts) or job.future.done():
            return
        with self.lock:
            tokens = sum(self.embedder.count_tokens(job.texts))
        if self.metrics:
            self.metrics.inputs.inc(len(job.texts))
            self.metrics.tokens.inc(tokens)
        job.future.set_result((np.concatenate([job.parts[k] for k in sorted(job.parts)]), tokens))


class _Locked:
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

    def __init__(self, embedder: Embedder, metrics: Metrics | None = None) -> None:
        quick = embedder.twin()
        bulk_lock = threading.Lock()
        quick_lock = bulk_lock if quick is embedder else threading.Lock()
        self.bulk = Lane("bulk", embedder, bulk_lock, metrics)
        self.quick = Lane("quick", quick, quick_lock, metrics)

    @property
    def lanes(self) -> tuple[Lane, Lane]:
        return self.quick, self.bulk

    def submit(self, texts: list[str], input_type: str, seconds: float) -> _Job:
        job = _Job(texts, input_type, seconds, time.monotonic() + seconds)
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


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

    def __init__(self, model_name: str, dim: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = CollectorRegistry()
        self.requests = Counter("fsearch_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("fsearch_request_seconds", "Request latency by route", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
                                 registry=self.registry)
        self.batch_size = Histogram("fsearch_batch_texts", "Texts per encode call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.inputs = Counter("fsearch_inputs", "Texts embedded (rate() gives inputs per second)",
                              registry=self.registry)
        self.tokens = Counter("fsearch_tokens", "Tokens embedded (rate() gives tokens per second)",
                              registry=self.registry)
        self.queue = Gauge("fsearch_queue_texts", "Texts waiting to be embedded", registry=self.registry)
        self.index_chunks = Gauge("fsearch_index_chunks", "Chunks in the served index", registry=self.registry)
        Info("fsearch_model", "The served model", registry=self.registry).info({"name": model_name,
                                                                                "dim": str(dim)})


def parse_input(raw: Any) -> list[str]:
    """OpenAI's ``input`` (already shape-checked): a string, strings, token ids, or lists of token ids."""
    if isinstance(raw, str):
        texts = [raw]
    elif raw and all(isinstance(x, str) for x in raw):
        texts = list(raw)
    elif raw and (all(isinstance(x, int) for x in raw) or all(isinstance(x, list) and x for x in raw)):
        decoder = _token_decoder()
        if decoder is None:
            raise ApiError(400, TOKEN_ID_HINT, "input")
        rows = [raw] if isinstance(raw[0], int) else raw
        texts = [decoder.decode(row) for row in rows]
    else:
        raise ApiError(400, INPUT_SHAPES, "input")
    if len(texts) > MAX_INPUTS:
        raise ApiError(413, f"too many inputs: {len(texts)} (at most {MAX_INPUTS} per request)", "input")
    for i, text in enumerate(texts):
        if len(text) > MAX_INPUT_CHARS:
            raise ApiError(413, f"input[{i}] is longer than {MAX_INPUT_CHARS} characters", "input")
        if not text.strip():
            raise ApiError(400, f"input[{i}]: inputs must not be empty", "input")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, f"input[{i}] is not valid Unicode text (it holds a lone surrogate)", "input") from None
    return texts


@functools.cache
def _token_decoder():
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or its encoding file cannot be fetched offline
        return None


def _error_body(status: int, message: str, param: str | None = None, kind: str | None = None) -> dict:
    kind = kind or ("server_error" if status >= 500 else "not_found_error" if status == 404
                    else "authentication_error" if status == 401 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def _authorized(header: bytes, key: str) -> bool:
    """``Authorization: Bearer KEY``: the scheme in any case, the key compared as UTF-8 bytes in constant time."""
    scheme, _, token = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key.encode("utf-8"))


#: the names a server bound to loopback answers to: any other Host header is a page's DNS rebinding
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def host_name(header: bytes) -> str:
    """The host of a Host header, without its port: ``[::1]:8000`` -> ``::1``, ``Localhost.`` -> ``localhost``."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0].rstrip(".") if text.count(":") == 1 else text.rstrip(".")


def create_app(embedder: Embedder, searcher: Searcher | None = None, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, request_seconds: float = REQUEST_SECONDS,
               allowed_hosts: frozenset[str] | None = None) -> Any:
    """The ASGI application: the FastAPI routes behind the edge (Host, key, declared size, metrics, access log).

    ``allowed_hosts``: the Host names answered (None: any, for a server bound to a public address).
    """
    import numpy as np

    model_name = embedder.info.name
    metrics = Metrics(model_name, embedder.info.dim)
    lanes = Scheduler(embedder, metrics)
    quick_searcher = Searcher(searcher.reader, _Locked(lanes.quick), searcher.query_instruction) if searcher else None

    @contextlib.asynccontextmanager
    async def lifespan(_: Any):
        yield
        lanes.close()  # on shutdown, waiting requests get a 503 instead of hanging

    # FastAPI counts the bytes as it reads them: a chunked body has no Content-Length to trust
    app = FastAPI(title="fsearch", version="1", lifespan=lifespan, max_body_size=max_body_bytes)

    def error(status: int, message: str, param: str | None = None, kind: str | None = None) -> JSONResponse:
        return JSONResponse(_error_body(status, message, param, kind), status_code=status)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.param, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(p) for p in first.get("loc", ())[1:] if not isinstance(p, int) or p]
        where = location[0] if location else None
        if first.get("type") == "json_invalid" or not where:
            return error(400, "invalid request: the body is not valid JSON")
        if where == "input":
            return error(400, f"invalid request: {INPUT_SHAPES}", "input")
        return error(400, f"invalid request: {where}: {first.get('msg', 'invalid value')}", where)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException):
        if exc.status_code == 413:
            return error(413, f"request body larger than {max_body_bytes} bytes")
        detail = exc.detail if exc.status_code != 400 else f"invalid request: {exc.detail}"
        return error(exc.status_code, str(detail))

    @app.exception_handler(FsearchError)
    async def fsearch_error(_: Request, exc: FsearchError):
        status, kind = status_of(exc)
        return error(status, exc.message, kind=kind)

    def index_chunks() -> tuple[int | None, str | None]:
        """The served index's size, or why it cannot be read now."""
        if searcher is None:
            return None, None
        try:
            return searcher.size, None
        except FsearchError as exc:
            return None, exc.message

    @app.get("/health")
    def health():
        """Liveness: the process answers (a damaged index makes it unready, not dead)."""
        return {"status": "ok", "model": model_name, "dim": embedder.info.dim, "index_chunks": index_chunks()[0]}

    @app.get("/ready")
    def ready():
        """Readiness for a load balancer: the model is loaded and the index (if any) opens."""
        problems = []
        if not lanes.ready:
            problems.append("the model is loading")
        elif lanes.load_error is not None:
            problems.append(f"the model failed to load: {lanes.load_error}")
        chunks, problem = index_chunks()
        problems += [problem] if problem else []
        body = {"ready": not problems, "model": model_name, "index_chunks": chunks, "problems": problems}
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics")
    def prometheus_metrics():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        metrics.queue.set(lanes.queued_texts())
        chunks, _ = index_chunks()
        if chunks is not None:
            metrics.index_chunks.set(chunks)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def model_object(name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "fsearch"}

    names = (model_name, model_name + QUERY_SUFFIX)

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [model_object(name) for name in names]}

    @app.get("/v1/models/{model_id:path}")
    def model(model_id: str):
        if model_id not in names:
            raise ApiError(404, f"no model '{model_id}' here; this server has {' and '.join(names)}", "model",
                           kind="not_found_error")
        return model_object(model_id)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request, body: EmbeddingsRequest):
        texts = parse_input(body.input)
        input_type = body.input_type or ("query" if (body.model or "").endswith(QUERY_SUFFIX) else "passage")
        input_type = "passage" if input_type == "document" else input_type
        if body.dimensions is not None and body.dimensions != embedder.info.dim:
            raise ApiError(400, f"dimensions={body.dimensions} is not supported: {model_name} returns "
                                f"{embedder.info.dim}-dimensional vectors (leave dimensions out)", "dimensions")
        job = lanes.submit(texts, input_type, request_seconds)
        vectors, tokens = await _answer(request, job)
        vectors = np.asarray(vectors, dtype=np.float32)
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                 if body.encoding_format == "base64" else v.tolist()} for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": body.model or model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    @app.post("/v1/search")
    def search(body: SearchRequest):
        if quick_searcher is None:
            raise ApiError(404, "this server has no index (start it with --index-dir)", kind="not_found_error")
        return quick_searcher.search(body.query, body.top_k, body.mode).to_dict()  # on the quick lane's model

    return _Edge(app, metrics, api_key, max_body_bytes, lanes, allowed_hosts)


class _Edge:
    """What every request passes first (plain ASGI, so the app still sees a client that hangs up).

    The Host header (a loopback server answers only its own names); the API key; a declared Content-Length
    over the limit (Starlette's own refusal is plain
    text, and bodies without one are counted by FastAPI's ``max_body_size``); metrics and one
    access-log line per request.
    """

    OPEN = ("/health", "/ready")

    def __init__(self, app: Any, metrics: Metrics, api_key: str | None, limit: int, lanes: Scheduler,
                 allowed_hosts: frozenset[str] | None = None) -> None:
        self.app, self.metrics, self.api_key, self.limit, self.lanes = app, metrics, api_key, limit, lanes
        self.allowed_hosts = allowed_hosts

    def close(self) -> None:
        """Answer every waiting request with a 503 at once (the first step of a graceful shutdown)."""
        self.lanes.close()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [0]
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")

        async def recorded(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                self._record(scope, status[0], time.perf_counter() - started)  # before the client has it all
            await send(message)

        if self.allowed_hosts is not None and host_name(headers.get(b"host", b"")) not in self.allowed_hosts:
            await _json(421, "this server does not answer to that Host name (add it with --allowed-host)")(
                scope, receive, recorded)
        elif self.api_key and scope["path"] not in self.OPEN and not _authorized(
                headers.get(b"authorization", b""), self.api_key):
            await _json(401, "missing or wrong API key (send Authorization: Bearer <key>)")(scope, receive, recorded)
        elif declared.isdigit() and int(declared) > self.limit:
            await _json(413, f"request body larger than {self.limit} bytes")(scope, receive, recorded)
        else:
            await self.app(scope, receive, recorded)

    def _record(self, scope: dict, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        client = scope.get("client")
        access_log.info(json.dumps({"method": scope["method"], "path": scope["path"], "status": status,
                                    "ms": round(seconds * 1000, 1), "client": client[0] if client else None}))


def _json(status: int, message: str) -> JSONResponse:
    return JSONResponse(_error_body(status, message), status_code=status)


async def _answer(request: Any, job: _Job) -> Any:
    """Wait for the job; if the client goes away first, drop the rest of its work."""
    future = asyncio.wrap_future(job.future)
    while True:
        done, _ = await asyncio.wait({future}, timeout=0.25)
        if done:
            break
        if await request.is_disconnected():
            job.cancelled = True
            raise ApiError(499, "the client closed the connection")
    try:
        return future.result()
    except (ApiError, FsearchError):
        raise
    except (UnicodeError, ValueError) as exc:  # an input the engine cannot take: this request's fault alone
        raise ApiError(400, f"the model could not embed this input ({type(exc).__name__})", "input") from None
    except Exception as exc:
        raise ApiError(500, f"the model failed: {type(exc).__name__}", kind="server_error") from None


def run(application: _Edge, listener: Any, shutdown_seconds: float) -> None:
    """Serve on an already bound socket until SIGTERM or Ctrl-C.

    On the signal, waiting requests are answered with a 503 at once and uvicorn stops taking
    new ones; work in progress gets ``shutdown_seconds`` before it is cancelled.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            application.close()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(application, fd=listener.fileno(), log_level="warning",
                            timeout_graceful_shutdown=shutdown_seconds)  # type: ignore[arg-type]  # a float waits too
    Server(config).run()
