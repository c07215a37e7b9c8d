"""The fast tier's stand-in for the bundled model: instant, deterministic vectors that still match by wording.

Every test that goes through ``backends.choose_embedder`` (the CLI, the library, serve, MCP) gets it
unless marked ``real_model``; sentence-transformers folders and remote servers are left as they are
(the tiny model and the fake servers are fast already). The vectors are hashed character unigrams
and bigrams, so a query shares most of its direction with the passages that contain its words:
searches that need words, not meaning, find the same documents as with the real model.

``python tests/fast_model.py ARGS`` runs the fsearch CLI with it, for tests whose process boundary
is the point (kills, locks, the CLI contract); there FSEARCH_CRASH_AT=<point> SIGKILLs the process
at that point of the writers (faiss_search/stores/faults.py).
"""

from __future__ import annotations

import os
import signal
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class FastBundledModel:
    """The bundled model's name, dimension and limits (its ``ModelInfo``) with hashed n-gram vectors."""

    def __init__(self, real) -> None:
        self._real = real
        self.info = real.info
        self.long_input_policy = real.long_input_policy

    def _vector(self, text: str) -> np.ndarray:
        text = text.lower()
        grams = [c for c in text if not c.isspace()] + [text[i:i + 2] for i in range(len(text) - 1)]
        vector = np.zeros(self.info.dim, np.float32)
        for gram in grams:
            h = zlib.crc32(gram.encode("utf-8", "surrogatepass"))
            vector[h % self.info.dim] += 1.0 if h & 0x80000000 else -1.0
        vector /= max(np.linalg.norm(vector), 1.0)
        # a little of the text's own direction: texts that share no n-gram never tie at exactly 0
        seed = zlib.crc32(text.encode("utf-8", "surrogatepass"))
        noise = np.random.default_rng(seed).standard_normal(self.info.dim).astype(np.float32)
        vector += 0.2 * noise / self.info.dim ** 0.5
        return vector / np.linalg.norm(vector)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.info.dim), np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_passages(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """About the bundled tokenizer's count: a CJK character or a short word is a token or two."""
        return [2 + len(t.encode("utf-8")) // 3 for t in texts]

    def use_query_prefix(self, on: bool) -> None:
        self._real.use_query_prefix(on)

    def twin(self) -> FastBundledModel:
        return FastBundledModel(self._real.twin())


def install(patch_attribute) -> None:
    """Route ``backends.load_embedder`` through the stand-in for the bundled model.
    ``patch_attribute(owner, name, value)``: pytest's ``monkeypatch.setattr``, or plain ``setattr``."""
    from faiss_search import backends
    from faiss_search.models.registry import BUNDLED_BACKEND

    real_load = backends.load_embedder

    def load_embedder(resolved, engine: str = "auto", threads: int = 0):
        embedder = real_load(resolved, engine, threads)
        return FastBundledModel(embedder) if resolved.backend == BUNDLED_BACKEND else embedder

    patch_attribute(backends, "load_embedder", load_embedder)


def crash_at_the_named_point() -> None:
    """FSEARCH_CRASH_AT=<point>: this process SIGKILLs itself there, as a power cut would stop it."""
    chosen = os.environ.get("FSEARCH_CRASH_AT")
    if chosen:
        from faiss_search.stores import faults

        faults.install(lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == chosen else None)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    install(setattr)
    crash_at_the_named_point()
    from faiss_search.cli import main

    main()
