import json
import os
from pathlib import Path

import numpy as np
import pytest

from faiss_search.chunking import chunk_text
from faiss_search.config import load_settings
from faiss_search.errors import (
    ConfigError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexWriteError,
    InputError,
    ModelMismatchError,
)
from faiss_search.fileio import atomic_write_bytes
from faiss_search.indexing.pipeline import index_path
from faiss_search.manifest import check_model
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import text_hash
from faiss_search.stores.local import folder as store
from faiss_search.stores.local.reader import IndexReader
from faiss_search.stores.local.writer import IndexWriter

from .conftest import FakeEmbedder

CHUNKING = {"chunk_size": 500, "chunk_overlap": 50}


def _write(folder: Path, embedder, files: dict[str, str], rebuild=False) -> dict:
    with IndexWriter(folder, embedder.info, CHUNKING, rebuild=rebuild) as writer:
        for path, text in files.items():
            chunks = chunk_text(text, 500, 50)
            writer.remove_files([path])
            writer.add_file(path, "h-" + text, len(text), 0.0, "utf-8", chunks,
                            embedder.encode_passages([c.text for c in chunks]), [c.text.lower() for c in chunks],
                            [text_hash(c.text) for c in chunks])
        return writer.commit()


def test_round_trip_finds_the_exact_chunk(tmp_path, fake_embedder):
    manifest = _write(tmp_path / "idx", fake_embedder, {"/a.txt": "alpha\nbeta\ngamma", "/b.txt": "delta"})
    assert (manifest.counts.files, manifest.counts.chunks) == (2, 4)
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["generation"] == 1
    reader = IndexReader(tmp_path / "idx")
    hits = Searcher(reader, fake_embedder).search("gamma", 2, "dense").hits
    assert hits[0].text == "gamma" and hits[0].source == "/a.txt" and hits[0].line == 3
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 2


def test_replacing_a_file_drops_its_old_chunks(tmp_path, fake_embedder):
    folder = tmp_path / "idx"
    _write(folder, fake_embedder, {"/a.txt": "old text", "/b.txt": "other"})
    manifest = _write(folder, fake_embedder, {"/a.txt": "new text"})
    assert (manifest.counts.files, manifest.counts.chunks) == (2, 2) and manifest.generation == 2
    reader = IndexReader(folder)
    texts = {h.text for h in Searcher(reader, fake_embedder).search("old text", 5, "dense").hits}
    assert texts == {"new text", "other"}
    assert sorted(p.name for p in folder.glob("vectors-*")) == ["vectors-2.faiss"]


def test_another_model_is_refused(tmp_path, fake_embedder):
    _write(tmp_path / "idx", fake_embedder, {"/a.txt": "x"})
    with pytest.raises(ModelMismatchError, match="dim"):
        _write(tmp_path / "idx", FakeEmbedder("fake", dim=16), {"/b.txt": "y"})
    with pytest.raises(ModelMismatchError, match="other-model"):
        check_model(IndexReader(tmp_path / "idx").manifest, FakeEmbedder("other-model").info)
    # --rebuild may change the model
    manifest = _write(tmp_path / "idx", FakeEmbedder("fake", dim=16), {"/b.txt": "y"}, rebuild=True)
    assert manifest.model["dim"] == 16 and manifest.counts.chunks == 1


def test_other_chunking_is_refused(tmp_path, fake_embedder):
    _write(tmp_path / "idx", fake_embedder, {"/a.txt": "x"})
    with pytest.raises(ModelMismatchError, match="chunk size 500"):
        IndexWriter(tmp_path / "idx", fake_embedder.info, {"chunk_size": 100, "chunk_overlap": 0})


def test_failed_commit_leaves_the_old_index(tmp_path, fake_embedder, monkeypatch):
    folder = tmp_path / "idx"
    _write(folder, fake_embedder, {"/a.txt": "kept"})

    def broken(index, path):
        Path(str(path) + ".tmp").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("faiss_search.stores.local.writer._write_vectors", broken)
    with pytest.raises(IndexWriteError, match="no space left .* the previous index is unchanged"):
        _write(folder, fake_embedder, {"/b.txt": "lost"})
    reader = IndexReader(folder)
    assert reader.manifest.counts.chunks == 1
    assert [h.text for h in Searcher(reader, fake_embedder).search("kept", 3, "dense").hits] == ["kept"]


def test_atomic_write_keeps_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    atomic_write_bytes(target, b"old")

    def fail(*args):
        raise OSError("boom")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"


def test_truncated_vectors_are_reported(tmp_path, fake_embedder):
    folder = tmp_path / "idx"
    _write(folder, fake_embedder, {"/a.txt": "x"})
    vectors = folder / "vectors-1.faiss"
    vectors.write_bytes(vectors.read_bytes()[:40])
    with pytest.raises(IndexCorruptError, match="damaged|truncated"):
        IndexReader(folder)


def test_garbage_sidecar_is_reported(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "chunks.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexCorruptError, match="unreadable"):
        IndexReader(folder)


def test_missing_index(tmp_path):
    with pytest.raises(IndexNotFoundError):
        IndexReader(tmp_path / "none")


def test_indexer_skips_unchanged_and_replaces_changed(home, tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("first line\nsecond line\n")
    (docs / "b.md").write_text("# title\n\nbody")
    settings = load_settings()
    first = index_path(docs, settings, fake_embedder)
    assert (first.files_added, first.chunks_added, first.total_chunks) == (2, 3, 3)
    again = index_path(docs, settings, fake_embedder)
    assert (again.files_indexed, again.files_unchanged, again.chunks_added) == (0, 2, 0)
    (docs / "a.txt").write_text("first line changed\nsecond line\n")
    changed = index_path(docs, settings, fake_embedder)
    assert (changed.files_changed, changed.chunks_removed, changed.total_chunks) == (1, 2, 3)
    assert (changed.chunks_embedded, changed.chunks_reused) == (1, 1)  # "second line" kept its vector


def test_indexer_refuses_nothing_indexable(home, tmp_path, fake_embedder):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "pic.png").write_bytes(b"\x89PNG")
    (tmp_path / "docs" / "bin.txt").write_bytes(b"\x00" * 50)
    with pytest.raises(InputError, match=r"nothing indexable .*1 binary, 1 unsupported type"):
        index_path(tmp_path / "docs", load_settings(), fake_embedder)
    assert not (home / "index" / "vectors-1.faiss").exists()


def test_fetch_is_by_id_only(tmp_path, fake_embedder):
    _write(tmp_path / "idx", fake_embedder, {"/a.txt": "\n".join(f"line {i}" for i in range(50))})
    reader = IndexReader(tmp_path / "idx")
    fetched = reader.fetch([3, 4])
    assert sorted(fetched) == [3, 4] and fetched[3].text == "line 2"
    assert reader.dense_search(np.zeros((1, 8), np.float32), 5)[0][0][1] == pytest.approx(0.0)


def test_two_runs_claiming_a_new_folder_at_once_agree_on_its_marker(tmp_path):
    """A folder holding only another run's marker being written is still claimable, and of runs that
    write the marker at once one wins and every run takes its id (the trust list records that id)."""
    import threading

    staged = tmp_path / "racing"
    staged.mkdir()
    (staged / f"{store.MARKER}.{'0' * 32}.tmp").write_bytes(b"{")
    store.claim_index_folder(staged)
    assert store.marker_id(staged) is not None
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json.tmp").write_text("a user's file with one of fsearch's names")
    with pytest.raises(ConfigError, match="not an fsearch index"):  # only a marker being written is passed over
        store.claim_index_folder(other)
    for attempt in range(20):
        folder = tmp_path / f"new{attempt}"
        folder.mkdir()
        ids: list[str] = []
        start = threading.Barrier(4)

        def claim(folder=folder, ids=ids, start=start) -> None:
            start.wait()
            ids.append(store.ensure_marker(folder))

        threads = [threading.Thread(target=claim) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(ids)) == 1 and ids[0] == store.marker_id(folder)
        assert sorted(p.name for p in folder.iterdir()) == [store.MARKER]  # no staged file left behind
    (folder / store.MARKER).write_text("damaged")
    assert store.ensure_marker(folder) == store.marker_id(folder) is not None
