"""Errors a user can act on. The CLI prints ``error: <message>`` (and the hint) and exits 2."""

from __future__ import annotations


class FsearchError(Exception):
    """Base class: every expected failure carries a one-line message and an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(FsearchError, ValueError):
    """A setting has an impossible value (from fsearch.toml, the environment or a flag)."""


class InputError(FsearchError):
    """What the user gave cannot be used: a missing or unreadable file, a bad value, a busy port, a missing
    extra. Not a FileNotFoundError: most of these are not about a file."""


class IndexNotFoundError(FsearchError, FileNotFoundError):
    """No index folder where one was expected."""


class IndexCorruptError(FsearchError):
    """The index files are unreadable, truncated or disagree with each other."""


class ModelMismatchError(FsearchError):
    """The index was built with another model (or dimension) than the one asked for."""


class ModelNotFoundError(FsearchError):
    """An unknown model name, or a known one that is not downloaded yet."""


class ModelKindError(FsearchError):
    """A reranker given where an embedding model is needed, or the other way round."""


class RerankError(FsearchError):
    """A reranking server is down, kept failing, or answered something that is not a ranking."""


class ModelLoadError(FsearchError):
    """A model folder exists but cannot be loaded."""


class DownloadError(FsearchError):
    """A model download failed; the message says which source and why."""


class NothingToIndexError(InputError):
    """Every document was empty, binary or of an unsupported type."""


class StoreError(FsearchError):
    """A Milvus store is unreachable, refused us, or holds something else than asked for."""


class IndexBusyError(FsearchError):
    """Another process is writing the index and the caller asked not to wait."""


class IndexWriteError(FsearchError):
    """Writing the index failed (disk full, permission); the previous index is intact."""


class RemoteEmbeddingError(FsearchError):
    """An OpenAI-compatible embedding server failed, kept failing, or answered nonsense."""


class InvalidVectorError(FsearchError):
    """A model or server returned a vector that cannot be searched (NaN, Inf, all zeros, wrong shape)."""


class NotText(Exception):
    """Internal: a file that yields no text (binary, an encrypted PDF ...); ``reason`` says why, for the skip counts."""

    def __init__(self, reason: str = "binary") -> None:
        super().__init__(reason)
        self.reason = reason
