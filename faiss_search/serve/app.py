"""The FastAPI routes: health, readiness, metrics, models, embeddings, search and rerank."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..embedding import Embedder
from ..errors import FsearchError
from ..manifest import ModelInfo
from ..reranking import Reranker
from ..retrieval.search import Searcher
from .api import (
    INPUT_SHAPES,
    MAX_BODY_BYTES,
    QUERY_SUFFIX,
    REQUEST_SECONDS,
    ApiError,
    EmbeddingsRequest,
    RerankRequest,
    SearchRequest,
    TeiRerankRequest,
    error_body,
    parse_input,
    rerank_texts,
    status_of,
)
from .edge import Edge
from .metrics import Metrics
from .scheduler import Job, LaneReranker, LockedEmbedder, Scheduler


def create_app(embedder: Embedder, searcher: Searcher | None = None, api_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, request_seconds: float = REQUEST_SECONDS,
               allowed_hosts: frozenset[str] | None = None, reranker: Reranker | None = None,
               rerank_searches: bool = False) -> Any:
    """The ASGI application: the FastAPI routes behind the edge (Host, key, declared size, metrics, access log).

    ``allowed_hosts``: the Host names answered (None: any, for a server bound to a public address).
    ``reranker``: serve /v1/rerank (and TEI's /rerank) with it, and rerank /v1/search when asked, or by
    default where ``rerank_searches``.
    """
    metrics = Metrics(embedder.info.name, embedder.info.dim)
    lanes = Scheduler(embedder, metrics, reranker)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any):
        yield
        lanes.close()  # on shutdown, waiting requests get a 503 instead of hanging

    # FastAPI counts the bytes as it reads them: a chunked body has no Content-Length to trust
    app = FastAPI(title="fsearch", version="1", lifespan=lifespan, max_body_size=max_body_bytes)
    _answer_errors_as_json(app, max_body_bytes)
    _add_probes(app, embedder.info, lanes, metrics, searcher)
    _add_models(app, embedder.info.name, reranker.name if reranker else None)
    _add_embeddings(app, embedder.info, lanes, request_seconds)
    _add_search(app, searcher, lanes, request_seconds, rerank_searches)
    _add_rerank(app, lanes, request_seconds)
    return Edge(app, metrics, api_key, max_body_bytes, lanes, allowed_hosts)


def _error(status: int, message: str, param: str | None = None, kind: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, kind), status_code=status)


def _answer_errors_as_json(app: FastAPI, max_body_bytes: int) -> None:
    """Every error, ours or the framework's, as an OpenAI-style JSON body: client faults 4xx, ours 5xx."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return _error(exc.status, exc.message, exc.param, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(p) for p in first.get("loc", ())[1:] if not isinstance(p, int) or p]
        where = location[0] if location else None
        if first.get("type") == "json_invalid" or not where:
            return _error(400, "invalid request: the body is not valid JSON")
        if where == "input":
            return _error(400, f"invalid request: {INPUT_SHAPES}", "input")
        return _error(400, f"invalid request: {where}: {first.get('msg', 'invalid value')}", where)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException):
        if exc.status_code == 413:
            return _error(413, f"request body larger than {max_body_bytes} bytes")
        detail = exc.detail if exc.status_code != 400 else f"invalid request: {exc.detail}"
        return _error(exc.status_code, str(detail))

    @app.exception_handler(FsearchError)
    async def fsearch_error(_: Request, exc: FsearchError):
        status, kind = status_of(exc)
        return _error(status, exc.message, kind=kind)


def _add_probes(app: FastAPI, info: ModelInfo, lanes: Scheduler, metrics: Metrics, searcher: Searcher | None) -> None:
    """/health (liveness), /ready (readiness) and /metrics (Prometheus)."""

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
        return {"status": "ok", "model": info.name, "dim": info.dim, "index_chunks": index_chunks()[0]}

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
        body = {"ready": not problems, "model": info.name, "index_chunks": chunks, "problems": problems}
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics")
    def prometheus_metrics():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        metrics.queue.set(lanes.queued_texts())
        chunks, _ = index_chunks()
        if chunks is not None:
            metrics.index_chunks.set(chunks)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _add_models(app: FastAPI, model_name: str, reranker_name: str | None) -> None:
    """/v1/models: the model, its name with QUERY_SUFFIX for clients that cannot send input_type, the reranker."""
    names = (model_name, model_name + QUERY_SUFFIX, *([reranker_name] if reranker_name else []))

    def model_object(name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "fsearch"}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [model_object(name) for name in names]}

    @app.get("/v1/models/{model_id:path}")
    def model(model_id: str):
        if model_id not in names:
            raise ApiError(404, f"no model '{model_id}' here; this server has {' and '.join(names)}", "model",
                           kind="not_found_error")
        return model_object(model_id)


def _add_embeddings(app: FastAPI, info: ModelInfo, lanes: Scheduler, request_seconds: float) -> None:
    """POST /v1/embeddings in OpenAI's format, through the lanes."""

    @app.post("/v1/embeddings")
    async def embeddings(request: Request, body: EmbeddingsRequest):
        import numpy as np

        texts = parse_input(body.input)
        input_type = body.input_type or ("query" if (body.model or "").endswith(QUERY_SUFFIX) else "passage")
        input_type = "passage" if input_type == "document" else input_type
        if body.dimensions is not None and body.dimensions != info.dim:
            raise ApiError(400, f"dimensions={body.dimensions} is not supported: {info.name} returns "
                                f"{info.dim}-dimensional vectors (leave dimensions out)", "dimensions")
        job = lanes.submit(texts, input_type, request_seconds)
        vectors, tokens = await _answer(request, job)
        vectors = np.asarray(vectors, dtype=np.float32)
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                 if body.encoding_format == "base64" else v.tolist()} for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": body.model or info.name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _add_search(app: FastAPI, searcher: Searcher | None, lanes: Scheduler, request_seconds: float,
                rerank_searches: bool) -> None:
    """POST /v1/search: the objects of ``fsearch search --json``, its query embedded on the quick lane (and its
    hits reranked on the rerank lane)."""
    reranker = LaneReranker(lanes.rerank, request_seconds) if lanes.rerank is not None else None
    quick = Searcher(searcher.reader, LockedEmbedder(lanes.quick), searcher.query_instruction, reranker,
                     searcher.rerank_candidates) if searcher else None

    @app.post("/v1/search")
    def search(body: SearchRequest):
        if quick is None:
            raise ApiError(404, "this server has no index (start it with --index-dir)", kind="not_found_error")
        if body.rerank and reranker is None:
            raise ApiError(400, NO_RERANKER, "rerank")
        rerank = rerank_searches if body.rerank is None else body.rerank
        return quick.search(body.query, body.top_k, body.mode, rerank=rerank and reranker is not None).to_dict()


NO_RERANKER = "this server has no reranker (start it with --reranker MODEL or --rerank-url URL)"


def _add_rerank(app: FastAPI, lanes: Scheduler, request_seconds: float) -> None:
    """POST /v1/rerank (and /v2/rerank, where Cohere's v2 client asks) in the Jina/Cohere shape, and POST /rerank
    in TEI's or that one; the documents are scored on the rerank lane, a slice of each request in turn."""
    import uuid

    async def scores(request: Request, query: str, texts: list[str]) -> list[tuple[int, float]]:
        """(index, score) of each text, best first."""
        if lanes.rerank is None:
            raise ApiError(404, NO_RERANKER, kind="not_found_error")
        answer = await _answer(request, lanes.rerank.ask(query, texts, request_seconds))
        return sorted(((i, float(s)) for i, s in enumerate(answer)), key=lambda pair: -pair[1])

    async def jina(request: Request, body: RerankRequest) -> dict:
        texts = rerank_texts(body.query, body.documents)
        ranked = (await scores(request, body.query, texts))[:body.top_n or len(texts)]
        assert lanes.rerank is not None
        results = [{"index": i, "relevance_score": score,
                    **({"document": {"text": texts[i]}} if body.return_documents else {})} for i, score in ranked]
        return {"id": str(uuid.uuid4()), "model": body.model or lanes.rerank.reranker.name, "results": results,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}

    @app.post("/v1/rerank")
    @app.post("/v2/rerank")
    async def rerank(request: Request, body: RerankRequest):
        return await jina(request, body)

    @app.post("/rerank")
    async def bare_rerank(request: Request, body: TeiRerankRequest | RerankRequest):
        """TEI's shape (``texts``), or Jina/Cohere's (``documents``) for clients given a base URL without /v1
        (Dify's and RAGFlow's "OpenAI-API-compatible" providers, Infinity's clients)."""
        if isinstance(body, RerankRequest):
            return await jina(request, body)
        texts = rerank_texts(body.query, body.texts)
        return [{"index": i, "score": score, **({"text": texts[i]} if body.return_text else {})}
                for i, score in await scores(request, body.query, texts)]


async def _answer(request: Any, job: Job) -> Any:
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
