"""The second stage: a cross-encoder re-scores (query, passage) pairs, here or on a server.

* ``CrossEncoderReranker``: a sentence-transformers ``CrossEncoder`` folder (bge-reranker-*), loaded on
  first use, its threads sized as the embedders' are (threads.py), pairs cut to the model's limit.
* ``RemoteReranker``: a server in one of the two shapes the ecosystem speaks: Text Embeddings
  Inference (``POST /rerank`` ``{"query", "texts"}`` → ``[{"index", "score"}]``) and Jina/Cohere
  (``POST /v1/rerank`` ``{"model", "query", "documents", "top_n"}`` → ``{"results": [{"index",
  "relevance_score"}]}``; vLLM, Infinity, Xinference). ``auto`` asks the Jina shape first and falls
  back to TEI's where the server has no ``/v1/rerank``.

Scores are relevances between 0 and 1 (the sigmoid of a cross-encoder's logit, as TEI, Jina and
sentence-transformers give them), one per passage, in the order the passages were given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from .config import DEFAULT_RERANKER, RERANK_APIS, Settings
from .embedding import load_offline
from .errors import ConfigError, ModelLoadError, RerankError
from .models.registry import RERANKER, resolve_model
from .remote import Refused, Servers
from .threads import ThreadPolicy  # importing .embedding has made OpenMP pools sleep when idle

#: tokens of a (query, passage) pair the local cross-encoder reads; the rest of a long passage is cut
MAX_PAIR_TOKENS = 512
#: the environment variable that holds a reranking server's key (never a flag: flags show in `ps`)
KEY_VARIABLE = "FSEARCH_RERANK_API_KEY"


class Reranker(Protocol):
    """What the search and the server need of a reranker."""

    #: how results name it (a model alias, a folder, or the server's address)
    name: str

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Each passage's relevance to ``query`` (0-1), in the order given."""
        ...


class CrossEncoderReranker:
    """A cross-encoder model folder, loaded on the first ``score``."""

    def __init__(self, folder: Path, name: str, max_tokens: int = MAX_PAIR_TOKENS, threads: int = 0,
                 precision: str = "auto") -> None:
        self.folder, self.name = folder, name
        self.max_tokens = max_tokens
        self.policy = ThreadPolicy(threads)
        self.precision = precision
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            def load() -> Any:
                from sentence_transformers import CrossEncoder

                return CrossEncoder(str(self.folder), device="cpu", local_files_only=True, max_length=self.max_tokens)

            model = load_offline(load, f"the reranker in {self.folder}", "is it a complete cross-encoder folder?")
            if getattr(model, "num_labels", 1) != 1:
                raise ModelLoadError(f"{self.folder} scores {model.num_labels} labels per pair, not one relevance",
                                     hint="a reranker has a single output (bge-reranker-*, ms-marco cross-encoders)")
            self._model = _at_precision(model, self.precision)
        return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        import torch

        model = self.model
        torch.set_num_threads(self.policy.current().workers)  # a pool that sleeps when idle, sized to the free CPUs
        with torch.inference_mode():
            scores = model.predict([(query, p) for p in passages], batch_size=8, show_progress_bar=False,
                                   convert_to_numpy=True)
        return [float(s) for s in scores]


def _at_precision(model: Any, precision: str) -> Any:
    """``auto``: bf16 where the CPU computes it natively (same ranking, about twice as fast), else fp32.
    ``int8``: dynamically quantized linear layers (bench/rerank.py measures all three)."""
    import torch

    from .e5torch import native_bf16

    chosen = ("bf16" if native_bf16() else "fp32") if precision == "auto" else precision
    if chosen == "bf16":
        model.model.to(torch.bfloat16)
    elif chosen == "int8":
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    elif chosen != "fp32":
        raise ConfigError(f"unknown precision '{precision}'", hint="auto, fp32, bf16 or int8")
    return model


class RemoteReranker:
    """A reranking server (TEI's shape or Jina/Cohere's), with the embedders' retries and timeouts."""

    def __init__(self, url: str, api: str = "auto", model: str = "", timeout: float = 60.0, retries: int = 3,
                 backoff: float = 0.5) -> None:
        if api not in RERANK_APIS:
            raise ConfigError(f"unknown rerank API '{api}'", hint=f"use one of {', '.join(RERANK_APIS)}")
        cleaned = url.strip().rstrip("/")
        if api == "auto" and cleaned.endswith("/rerank"):  # the full address of the route names its shape
            api = "jina" if cleaned.endswith("/v1/rerank") else "tei"
        self.servers = Servers([cleaned.removesuffix("/rerank")], os.environ.get(KEY_VARIABLE), RerankError,
                               "rerank", "a rerank", "check that the server is up", timeout, retries, backoff)
        self.api, self.model = api, model
        self.name = f"{self.servers.base_urls[0]} ({api})" if api != "auto" else self.servers.base_urls[0]

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        texts = list(passages)
        try:
            if self.api in ("auto", "jina"):
                try:
                    return self.servers.ask(lambda url: _jina_scores(self.servers, url, self.model, query, texts))
                except Refused as exc:
                    if self.api == "jina" or exc.status not in (404, 405):
                        raise
                    self.api = "tei"  # no Jina-shaped route there: TEI's, from now on
            return self.servers.ask(lambda url: _tei_scores(self.servers, url, query, texts))
        except Refused as exc:
            raise RerankError(str(exc), hint="is it a reranking server? (--rerank-api tei or jina)") from None


def _jina_scores(servers: Servers, url: str, model: str, query: str, texts: list[str]) -> list[float]:
    body = {"query": query, "documents": texts, "top_n": len(texts), "return_documents": False}
    answer = servers.post(url, "/v1/rerank", {"model": model, **body} if model else body)
    return _in_order(url, [(row["index"], row["relevance_score"]) for row in answer["results"]], len(texts))


def _tei_scores(servers: Servers, url: str, query: str, texts: list[str]) -> list[float]:
    answer = servers.post(url, "/rerank", {"query": query, "texts": texts, "truncate": True})
    return _in_order(url, [(row["index"], row["score"]) for row in answer], len(texts))


def _in_order(url: str, rows: list[tuple[Any, Any]], count: int) -> list[float]:
    """One finite score per passage, by index; anything else is the server's fault."""
    import math

    scores: dict[int, float] = {}
    for index, value in rows:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise RerankError(f"{url} answered a score for passage {index!r} of {count}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RerankError(f"{url} answered {value!r} as a score")
        scores[index] = float(value)
    if len(scores) != count:
        raise RerankError(f"{url} scored {len(scores)} of the {count} passages it was sent")
    return [scores[i] for i in range(count)]


def load_reranker(name: str, models_dir: Path, threads: int = 0) -> CrossEncoderReranker:
    """A downloaded reranker by alias or repo id, or a cross-encoder folder (nothing is loaded yet)."""
    resolved = resolve_model(name, models_dir, kind=RERANKER)
    assert resolved.path is not None  # no reranker is bundled
    limit = min(resolved.spec.max_tokens, MAX_PAIR_TOKENS) if resolved.spec else MAX_PAIR_TOKENS
    return CrossEncoderReranker(resolved.path, resolved.name, limit, threads)


def reranker_from(settings: Settings) -> Reranker:
    """The reranker the settings name: their server, else their model, else DEFAULT_RERANKER."""
    if settings.rerank_url:
        return RemoteReranker(settings.rerank_url, settings.rerank_api, settings.rerank)
    return load_reranker(settings.rerank or DEFAULT_RERANKER, settings.models_dir, settings.threads)
