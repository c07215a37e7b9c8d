"""Shared fixtures: an isolated FSEARCH_HOME, a CLI runner, a deterministic fake embedder."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faiss_search.manifest import ModelInfo

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "docs.txt"
#: the fsearch command in a process of its own, with the fast tier's stand-in for the bundled model
FSEARCH_CLI = [sys.executable, str(Path(__file__).with_name("fast_model.py"))]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own FSEARCH_HOME and working folder, and no FSEARCH_* from outside."""
    for key in list(os.environ):
        if key.startswith("FSEARCH_"):
            monkeypatch.delenv(key)
    fsearch_home = tmp_path / "home"
    monkeypatch.setenv("FSEARCH_HOME", str(fsearch_home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return fsearch_home


@pytest.fixture(autouse=True)
def fast_bundled_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled model answers with fast_model's hashed n-grams unless the test is marked ``real_model``."""
    if request.node.get_closest_marker("real_model") is None:
        from .fast_model import install

        install(monkeypatch.setattr)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


class FakeEmbedder:
    """Vectors from a hash of the text: deterministic, instant, identical texts give identical vectors."""

    long_input_policy = "truncated"

    def __init__(self, name: str = "fake", dim: int = 8) -> None:
        self.info = ModelInfo(name=name, backend="fake", dim=dim, query_prefix="q: ", passage_prefix="p: ",
                              max_tokens=64)

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        v = np.random.default_rng(seed).standard_normal(self.info.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode_passages(self, texts):
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.info.dim), np.float32)

    def encode_queries(self, texts):
        return self.encode_passages(texts)

    def count_tokens(self, texts):
        return [len(t) for t in texts]

    def use_query_prefix(self, on):
        pass

    def twin(self):
        return self


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def with_previous_keyword_words(sidecar: Path) -> None:
    """An index as the release before this keyword format wrote it: the previous version in its manifest, and
    no whole-identifier word ``symbolǀiterator`` among its words."""
    import json
    import sqlite3

    from faiss_search.stores.local.keyword import KEYWORD_FORMAT

    with sqlite3.connect(sidecar) as conn:
        manifest = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
        manifest["keyword"]["version"] = KEYWORD_FORMAT["version"] - 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (json.dumps(manifest),))
        conn.execute("UPDATE chunk_terms SET terms = replace(terms, ' symbolǀiterator', '')")


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or a clean skip where it is absent (a user's clone)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A sentence-transformers folder: the real bge-small-zh-v1.5 layout with tiny random weights."""
    from .tiny_model import build_tiny_model

    layout = shared_path("fixtures", "bge-small-zh-v1.5-layout")
    return build_tiny_model(layout, tmp_path_factory.mktemp("tiny-bge"))


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory) -> Path:
    """A cross-encoder folder (bge-reranker's layout: one relevance label) with tiny random weights."""
    from .tiny_model import build_tiny_reranker

    layout = shared_path("fixtures", "bge-small-zh-v1.5-layout")
    return build_tiny_reranker(layout, tmp_path_factory.mktemp("tiny-reranker"))


def built_once(tmp_path_factory, name: str, *args: str) -> Path:
    """``fsearch index ARGS`` run once into its own folder (with its own FSEARCH_HOME); returns the index.

    Tests that only need some index copy it (``shutil.copytree``) instead of embedding it again.
    """
    from faiss_search.cli import app

    folder = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("FSEARCH_")]:
            patch.delenv(key)
        patch.setenv("FSEARCH_HOME", str(folder / "home"))
        from .fast_model import install

        install(patch.setattr)  # built for the tests of the fast tier, as they search it
        result = CliRunner().invoke(app, ["index", *args, "--index-dir", str(folder / "index")])
    assert result.exit_code == 0, result.output
    return folder / "index"


@pytest.fixture(scope="module")
def built_sample(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "sample", str(SAMPLE))


@pytest.fixture
def real_sample_indexed(request: pytest.FixtureRequest, home: Path) -> Path:
    """data/docs.txt indexed into the test's home by the bundled model itself (tests marked ``real_model``)."""
    from faiss_search.cli import app

    assert request.node.get_closest_marker("real_model"), "mark the test real_model"
    result = CliRunner().invoke(app, ["index", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    return home / "index"


@pytest.fixture
def sample_indexed(home: Path, built_sample: Path) -> Path:
    """data/docs.txt indexed into the test's home (embedded once per module; each test gets its own copy)."""
    shutil.copytree(built_sample, home / "index")
    return home / "index"
