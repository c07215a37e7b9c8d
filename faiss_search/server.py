"""`fsearch serve`: the model (and optionally an index) behind an OpenAI-compatible HTTP API.

Routes: ``POST /v1/embeddings`` (OpenAI format), ``GET /v1/models``, ``GET /health`` and
``POST /v1/search`` (the objects of ``fsearch search --json``). Concurrent embedding
requests are gathered into one batch by a single worker thread; every error is an
OpenAI-style JSON body, never a bare 422.
"""

from __future__ import annotations

import base64
import functools
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from .embedding import Embedder
from .errors import FsearchError
from .search import Searcher

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 100_000
BATCH_WINDOW_SECONDS = 0.005
MAX_BATCH = 64
TOKEN_ID_HINT = ("this server received token ids (LangChain's OpenAIEmbeddings sends them by default) and cannot "
                 "decode them: tiktoken's cl100k_base encoding is not available here. Send text instead: in "
                 "LangChain set OpenAIEmbeddings(check_embedding_ctx_length=False)")


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


@dataclass
class _Job:
    texts: list[str]
    input_type: str
    future: Future


class Batcher:
    """One thread encodes for every request: texts arriving within a few ms share one encode call."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.jobs: queue.Queue[_Job] = queue.Queue()
        self.lock = threading.Lock()  # the model is used by this thread and by /v1/search
        threading.Thread(target=self._run, daemon=True, name="fsearch-batcher").start()

    def encode(self, texts: list[str], input_type: str) -> Any:
        job = _Job(texts, input_type, Future())
        self.jobs.put(job)
        return job.future.result()

    def _run(self) -> None:
        while True:
            jobs = [self.jobs.get()]
            deadline = time.monotonic() + BATCH_WINDOW_SECONDS
            while sum(len(j.texts) for j in jobs) < MAX_BATCH and (left := deadline - time.monotonic()) > 0:
                try:
                    jobs.append(self.jobs.get(timeout=left))
                except queue.Empty:
                    break
            for input_type in ("query", "passage"):
                group = [j for j in jobs if j.input_type == input_type]
                if group:
                    self._encode_group(group, input_type)

    def _encode_group(self, group: list[_Job], input_type: str) -> None:
        texts = [t for j in group for t in j.texts]
        try:
            with self.lock:
                encode = self.embedder.encode_queries if input_type == "query" else self.embedder.encode_passages
                vectors = encode(texts)
        except Exception as exc:  # handed to each waiting request
            for job in group:
                job.future.set_exception(exc)
            return
        start = 0
        for job in group:
            job.future.set_result(vectors[start:start + len(job.texts)])
            start += len(job.texts)


@functools.cache
def _token_decoder():
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or its encoding file cannot be fetched offline
        return None


def parse_input(raw: Any) -> list[str]:
    """OpenAI's ``input``: a string, strings, token ids, or lists of token ids."""
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        texts = list(raw)
    elif isinstance(raw, list) and raw and (all(isinstance(x, int) for x in raw) or
                                           all(isinstance(x, list) and x and all(isinstance(t, int) for t in x)
                                               for x in raw)):
        decoder = _token_decoder()
        if decoder is None:
            raise ApiError(400, TOKEN_ID_HINT, "input")
        rows = [raw] if isinstance(raw[0], int) else raw
        texts = [decoder.decode(row) for row in rows]
    else:
        raise ApiError(400, "input must be a non-empty string, list of strings, list of token ids or list of "
                            "token-id lists", "input")
    if len(texts) > MAX_INPUTS:
        raise ApiError(413, f"too many inputs: {len(texts)} (at most {MAX_INPUTS} per request)", "input")
    if any(len(t) > MAX_INPUT_CHARS for t in texts):
        raise ApiError(413, f"an input is longer than {MAX_INPUT_CHARS} characters", "input")
    if any(not t.strip() for t in texts):
        raise ApiError(400, "inputs must not be empty", "input")
    return texts


def create_app(embedder: Embedder, searcher: Searcher | None = None, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    """The FastAPI application (imported lazily: an optional extra)."""
    import numpy as np
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    app = FastAPI(title="fsearch", version="1")
    batcher = Batcher(embedder)
    model_name = embedder.info.name

    def error(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}},
                            status_code=status)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.param, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        return error(400, f"invalid request: {where or 'body'}: {first.get('msg', 'malformed JSON')}", where or None)

    @app.exception_handler(FsearchError)
    async def fsearch_error(_: Request, exc: FsearchError):
        return error(400, exc.message)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if api_key and request.url.path != "/health":
            if request.headers.get("authorization", "") != f"Bearer {api_key}":
                return error(401, "missing or wrong API key (send Authorization: Bearer <key>)",
                             kind="authentication_error")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body_bytes:
            return error(413, f"request body larger than {max_body_bytes} bytes")
        return await call_next(request)

    @app.get("/health")
    def health():
        return {"status": "ok", "model": model_name, "dim": embedder.info.dim,
                "index_chunks": searcher.size if searcher else None}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "fsearch"}]}

    @app.post("/v1/embeddings")
    def embeddings(body: dict[str, Any]):
        texts = parse_input(body.get("input"))
        input_type = body.get("input_type") or "passage"
        if input_type == "document":
            input_type = "passage"
        if input_type not in ("query", "passage"):
            raise ApiError(400, "input_type must be query or passage (or document)", "input_type")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise ApiError(400, "encoding_format must be float or base64", "encoding_format")
        dimensions = body.get("dimensions")
        if dimensions is not None and dimensions != embedder.info.dim:
            raise ApiError(400, f"dimensions={dimensions} is not supported: {model_name} returns "
                                f"{embedder.info.dim}-dimensional vectors (leave dimensions out)", "dimensions")
        vectors = np.asarray(batcher.encode(texts, input_type), dtype=np.float32)
        with batcher.lock:
            tokens = sum(embedder.count_tokens(texts))
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if encoding == "base64"
                 else v.tolist()} for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    @app.post("/v1/search")
    def search(body: dict[str, Any]):
        if searcher is None:
            raise ApiError(404, "this server has no index (start it with --index-dir)", kind="not_found_error")
        query = body.get("query")
        if not isinstance(query, str):
            raise ApiError(400, "query must be a string", "query")
        top_k = body.get("top_k", 3)
        if not isinstance(top_k, int) or not 1 <= top_k <= 100:
            raise ApiError(400, "top_k must be a whole number from 1 to 100", "top_k")
        with batcher.lock:
            return searcher.search(query, top_k, body.get("mode")).to_dict()

    return app
