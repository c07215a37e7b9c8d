"""Remote servers: ``Servers`` (round-robin and retries, for embedders and rerankers alike) and an
``Embedder`` that calls OpenAI-compatible ``/v1/embeddings`` servers (vLLM, SGLang, TEI, fsearch serve).

Batches go out several at a time, round-robin over the given base URLs; a batch that fails
(HTTP 429/5xx, timeout, refused connection) is retried on the next server with exponential
backoff, and the run stops with a clear error when the servers keep failing. Vectors are
normalized here, whatever the server does.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import FsearchError, RemoteEmbeddingError
from .manifest import ModelInfo

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

BACKEND = "openai"
SOURCE_PREFIX = "openai-compatible: "
RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


def remote_model_name(model: str) -> str:
    return f"{BACKEND}:{model}"


def base_urls_from_source(source: str) -> list[str]:
    """The servers an index was built through, as its manifest records them."""
    return [u.strip() for u in source.removeprefix(SOURCE_PREFIX).split(",") if u.strip()]


#: a server's raw vector with a norm outside this range is nonsense (NaN, Inf, 1e30, all zeros)
SANE_NORMS = (1e-6, 1e6)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors; a row with a nonsensical norm becomes NaN, which the caller refuses with its source."""
    import numpy as np

    with np.errstate(all="ignore"):
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
        sane = np.isfinite(norms) & (norms > SANE_NORMS[0]) & (norms < SANE_NORMS[1])
        return np.where(sane, vectors / np.where(sane, norms, 1.0), np.nan).astype(np.float32)


def server_root(url: str) -> str:
    """``http://host:port`` from that or from ``http://host:port/v1`` (the form OpenAI clients use)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise RemoteEmbeddingError(f"--base-url needs http:// or https:// and a host, got '{url}'",
                                   hint="for example --base-url http://gpu1:8000/v1")
    return url.strip().rstrip("/").removesuffix("/v1")


def _not_readable(exc: Exception) -> str:
    """A short reason (a bad answer can be megabytes: never quote it whole)."""
    if isinstance(exc, KeyError):
        return f"the field {exc} is missing"
    return f"{type(exc).__name__}: {str(exc)[:100]}"


class Refused(Exception):
    """A server's answer that asking again will not change (an HTTP error outside RETRYABLE)."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(f"{url} answered HTTP {status}: {detail}")
        self.url, self.status, self.detail = url, status, detail


class Servers:
    """One or more base URLs asked round-robin: a request that fails (429/5xx, timeout, refused connection)
    is asked again of the next with exponential backoff, and ``error`` says so once they keep failing."""

    def __init__(self, base_urls: Sequence[str], api_key: str | None, error: type[FsearchError], server: str,
                 answer: str, hint: str, timeout: float = 60.0, retries: int = 5, backoff: float = 0.5) -> None:
        """``server`` and ``answer`` name them in messages ("the embedding server(s) kept failing", "not an
        embeddings response"); ``hint`` is what to check when they keep failing."""
        self.base_urls = [server_root(u) for u in base_urls]
        self.api_key = api_key
        self.error, self.server, self.answer, self.hint = error, server, answer, hint
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._next_server = itertools.cycle(range(len(self.base_urls)))
        self._lock = threading.Lock()

    def _url(self) -> str:
        with self._lock:
            return self.base_urls[next(self._next_server)]

    def post(self, url: str, path: str, body: dict) -> Any:
        """One POST of JSON to ``url + path``, its answer parsed."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url + path, json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def ask(self, attempt: Callable[[str], T]) -> T:
        """``attempt(url)`` on one server after another until one answers; Refused is raised at once, and an
        answer ``attempt`` cannot read (ValueError, KeyError, TypeError) is ``error``."""
        failures = []
        for number in range(self.retries + 1):
            url = self._url()
            try:
                return attempt(url)
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code not in RETRYABLE:
                    raise Refused(url, exc.code, detail) from None
                failures.append(f"{url}: HTTP {exc.code}")
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                failures.append(f"{url}: {'timed out' if isinstance(reason, TimeoutError) else reason}")
            except (ValueError, KeyError, TypeError) as exc:
                raise self.error(f"{url} sent an answer that is not {self.answer} response "
                                 f"({_not_readable(exc)})") from None
            if number < self.retries:
                time.sleep(self.backoff * 2 ** number)
        raise self.error(f"the {self.server} server(s) kept failing after {self.retries + 1} attempts: "
                         + "; ".join(failures[-3:]), hint=self.hint)


class OpenAIEmbedder:
    """Embeds through one or more OpenAI-compatible servers."""

    long_input_policy = "handled by the server"

    def __init__(self, model: str, base_urls: Sequence[str], api_key: str | None = None, batch_size: int = 64,
                 concurrency: int = 4, timeout: float = 60.0, retries: int = 5, send_input_type: bool = True,
                 backoff: float = 0.5) -> None:
        if not base_urls:
            raise RemoteEmbeddingError("--embedder openai needs at least one --base-url")
        self.model = model
        # only a key meant for fsearch: OPENAI_API_KEY is never sent to a server the user did not name for it
        self.servers = Servers(base_urls, api_key or os.environ.get("FSEARCH_API_KEY"), RemoteEmbeddingError,
                               "embedding", "an embeddings", "check that the servers are up and serve --model",
                               timeout, retries, backoff)
        self.base_urls = self.servers.base_urls
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.send_input_type = send_input_type
        self._dim: int | None = None

    @property
    def info(self) -> ModelInfo:
        if self._dim is None:
            self._dim = self._request(["dimension probe"], "query").shape[1]
        return ModelInfo(name=remote_model_name(self.model), backend=BACKEND, dim=self._dim, query_prefix="",
                         passage_prefix="", max_tokens=0, source=SOURCE_PREFIX + ", ".join(self.base_urls))

    def twin(self) -> OpenAIEmbedder:
        """The same object: lanes that share it take turns."""
        return self

    def _vectors(self, url: str, texts: list[str], input_type: str) -> np.ndarray:
        import numpy as np

        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.send_input_type:
            body["input_type"] = input_type
        rows = sorted(self.servers.post(url, "/v1/embeddings", body)["data"], key=lambda item: item["index"])
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        if vectors.shape[0] != len(texts):
            raise RemoteEmbeddingError(f"{url} returned {vectors.shape[0]} vectors for {len(texts)} texts")
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise RemoteEmbeddingError(f"{url} returned {vectors.shape[1]}-dimensional vectors, expected {self._dim}",
                                       hint="every --base-url must serve the same model")
        return _normalized(vectors)

    def _request(self, texts: list[str], input_type: str) -> np.ndarray:
        try:
            return self.servers.ask(lambda url: self._vectors(url, texts, input_type))
        except Refused as exc:
            if exc.status in (400, 422) and self.send_input_type and (
                    "input_type" in exc.detail or "xtra" in exc.detail):
                self.send_input_type = False  # a strict server that rejects the extension field
                return self._request(texts, input_type)
            raise RemoteEmbeddingError(str(exc)) from None

    def _encode(self, texts: Sequence[str], input_type: str) -> np.ndarray:
        import numpy as np

        dim = self.info.dim  # the first request fixes the dimension every later batch must have
        batches = [list(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if not batches:
            return np.zeros((0, dim), dtype=np.float32)
        if len(batches) == 1:  # a query: asked from this thread, so Ctrl-C interrupts the wait at once
            return self._request(batches[0], input_type)
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches)))
        try:
            return np.concatenate(list(pool.map(lambda batch: self._request(batch, input_type), batches)))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # interrupted: do not wait for requests in flight

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "passage")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [0 for _ in texts]  # the server's tokenizer is not known here; it truncates as it must

    def use_query_prefix(self, on: bool) -> None:
        """Prefixes are the server's business."""
