"""The wire: OpenAI-shaped requests, their validation, and errors as OpenAI-style JSON bodies."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from ..errors import (
    FsearchError,
    IndexBusyError,
    IndexCorruptError,
    IndexNotFoundError,
    InputError,
    InvalidVectorError,
    ModelKindError,
    ModelLoadError,
    ModelMismatchError,
    RemoteEmbeddingError,
    RerankError,
    StoreError,
)

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 100_000
#: a request still unanswered after this long is given up with a 504
REQUEST_SECONDS = 120.0
#: the model name that embeds inputs as queries, for clients that cannot send input_type
QUERY_SUFFIX = ":query"
TOKEN_ID_HINT = ("this server received token ids (LangChain's OpenAIEmbeddings sends them by default) and cannot "
                 "decode them: tiktoken's cl100k_base encoding is not available here. Send text instead: in "
                 "LangChain set OpenAIEmbeddings(check_embedding_ctx_length=False)")


INPUT_SHAPES = "input must be a non-empty string, list of strings, list of token ids or list of token-id lists"


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


#: our errors as HTTP: what the client sent is 4xx, what failed here is 5xx
_STATUS = ((InputError, 400, "invalid_request_error"), (ModelMismatchError, 409, "invalid_request_error"),
           (IndexNotFoundError, 404, "not_found_error"), (IndexCorruptError, 503, "server_error"),
           (ModelLoadError, 503, "server_error"), (RemoteEmbeddingError, 502, "server_error"),
           (RerankError, 502, "server_error"), (ModelKindError, 503, "server_error"),
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
    #: None: as the server was started (on where it was given a reranker)
    rerank: StrictBool | None = None


class TextObject(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: StrictStr


class RerankRequest(BaseModel):
    """The Jina/Cohere rerank request (vLLM, Infinity and Xinference take it too); documents may be
    strings or ``{"text": ...}`` objects. Fields the server has no use for (``max_chunks_per_doc``,
    ``rank_fields``) are accepted and ignored, as those servers do."""

    model_config = ConfigDict(extra="allow")
    model: StrictStr | None = None
    query: StrictStr
    documents: list[StrictStr | TextObject]
    top_n: StrictInt | None = Field(None, ge=1)
    return_documents: StrictBool = False


class TeiRerankRequest(BaseModel):
    """Text Embeddings Inference's ``POST /rerank``."""

    model_config = ConfigDict(extra="allow")
    query: StrictStr
    texts: list[StrictStr]
    return_text: StrictBool = False


def rerank_texts(query: str, documents: list) -> list[str]:
    """The documents' texts, within the limits every route keeps."""
    if not query.strip():
        raise ApiError(400, "query must not be empty", "query")
    texts = [d if isinstance(d, str) else d.text for d in documents]
    if not texts:
        raise ApiError(400, "documents must not be empty", "documents")
    if len(texts) > MAX_INPUTS:
        raise ApiError(413, f"too many documents: {len(texts)} (at most {MAX_INPUTS} per request)", "documents")
    for i, text in enumerate([query, *texts]):
        if len(text) > MAX_INPUT_CHARS:
            where = "query" if i == 0 else f"documents[{i - 1}]"
            raise ApiError(413, f"{where} is longer than {MAX_INPUT_CHARS} characters", where)
    return texts


def parse_input(raw: Any) -> list[str]:
    """OpenAI's ``input`` (already shape-checked): a string, strings, token ids, or lists of token ids."""
    if isinstance(raw, str):
        texts = [raw]
    elif raw and all(isinstance(x, str) for x in raw):
        texts = list(raw)
    elif raw and (all(isinstance(x, int) for x in raw) or all(isinstance(x, list) and x for x in raw)):
        decoder = token_decoder()
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
def token_decoder():
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or its encoding file cannot be fetched offline
        return None


def error_body(status: int, message: str, param: str | None = None, kind: str | None = None) -> dict:
    kind = kind or ("server_error" if status >= 500 else "not_found_error" if status == 404
                    else "authentication_error" if status == 401 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}
