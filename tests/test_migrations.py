"""Indexes written by earlier releases open as they are and are upgraded in place, with the same answers."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from faiss_search.errors import IndexCorruptError
from faiss_search.manifest import ModelInfo
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import committed_manifest
from faiss_search.stores.local import migrations
from faiss_search.stores.local.reader import IndexReader
from faiss_search.stores.local.writer import IndexWriter

from .conftest import FakeEmbedder

FIXTURES = Path(__file__).parent / "fixtures" / "indexes"
#: written by the releases before files.indexed_at, before pages and headings, and by the last unversioned one
RELEASES = sorted(p.name for p in FIXTURES.iterdir())


def answers(index_dir: Path) -> dict:
    searcher = Searcher(IndexReader(index_dir), FakeEmbedder())
    expected = json.loads((index_dir.parent / "expected.json").read_text(encoding="utf-8"))
    found = {}
    for key in expected:
        mode, query = key.split(":", 1)
        found[key] = [[h.source, h.text] for h in searcher.search(query, 3, mode, min_score=0.0).hits]
    return found


def columns(index_dir: Path, table: str) -> list[str]:
    with sqlite3.connect(index_dir / "chunks.sqlite") as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


@pytest.fixture(params=RELEASES)
def old_index(request, tmp_path) -> Path:
    shutil.copytree(FIXTURES / request.param, tmp_path / request.param)
    return tmp_path / request.param / "index"


def test_the_fixtures_are_the_older_formats():
    assert len(RELEASES) == 3
    assert "indexed_at" not in columns(FIXTURES / "v0-before-indexed-at" / "index", "files")
    assert "page" not in columns(FIXTURES / "v0-before-pages" / "index", "chunks")
    assert "heading" in columns(FIXTURES / "v0-pages-and-headings" / "index", "chunks")


def test_an_older_index_answers_as_its_release_did_before_and_after_the_upgrade(old_index, home):
    recorded = json.loads((old_index.parent / "expected.json").read_text(encoding="utf-8"))
    before = answers(old_index)  # read as it is, without writing to it
    # dense and keyword answers are those the older release gave; hybrid's fusion has changed since
    single_leg = {key: hits for key, hits in recorded.items() if not key.startswith("hybrid:")}
    assert {key: before[key] for key in single_leg} == single_leg and len(single_leg) == 12
    with sqlite3.connect(old_index / "chunks.sqlite") as conn:
        assert migrations.schema_version(conn) == 0
    vectors_before = (old_index / "vectors-1.faiss").read_bytes()
    manifest = committed_manifest(old_index)
    with IndexWriter(old_index, ModelInfo.recorded(manifest.model), manifest.chunking) as writer:
        assert writer.migrated  # at least the schema version itself
        writer.commit()
    with sqlite3.connect(old_index / "chunks.sqlite") as conn:
        assert migrations.schema_version(conn) == migrations.SCHEMA_VERSION
    assert "indexed_at" in columns(old_index, "files")
    assert {"page", "heading"} <= set(columns(old_index, "chunks"))
    assert answers(old_index) == before
    assert (old_index / "vectors-2.faiss").read_bytes() == vectors_before  # nothing re-embedded


def test_headings_survive_the_upgrade(tmp_path, home):
    shutil.copytree(FIXTURES / "v0-pages-and-headings", tmp_path / "old")
    index_dir = tmp_path / "old" / "index"
    manifest = committed_manifest(index_dir)
    with IndexWriter(index_dir, ModelInfo.recorded(manifest.model), manifest.chunking) as writer:
        writer.commit()
    reader = IndexReader(index_dir)
    with reader.snapshot():
        headings = {chunk.heading for chunk in reader.fetch(range(1, 100)).values()}
    assert {"茶 › 普洱", "Bread › Sourdough"} <= headings


def test_a_sidecar_from_a_newer_release_is_refused_in_one_line(tmp_path):
    shutil.copytree(FIXTURES / "v0-pages-and-headings", tmp_path / "new")
    index_dir = tmp_path / "new" / "index"
    with sqlite3.connect(index_dir / "chunks.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 1}")
    with pytest.raises(IndexCorruptError, match="written by a newer fsearch"):
        IndexReader(index_dir)
    manifest = committed_manifest(index_dir)
    with pytest.raises(IndexCorruptError, match="written by a newer fsearch"):
        IndexWriter(index_dir, ModelInfo.recorded(manifest.model), manifest.chunking)


def test_a_new_index_is_written_at_the_newest_version(tmp_path, home, fake_embedder):
    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_path

    (tmp_path / "a.txt").write_text("熊猫吃竹子。\n", encoding="utf-8")
    index_path(tmp_path / "a.txt", load_settings(index_dir=tmp_path / "index"), fake_embedder)
    with sqlite3.connect(tmp_path / "index" / "chunks.sqlite") as conn:
        assert migrations.schema_version(conn) == migrations.SCHEMA_VERSION
