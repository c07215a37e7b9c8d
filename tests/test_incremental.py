"""Re-indexing a folder that changes: only what changed is read and embedded; deleted files leave."""

import json
import os
import time

import pytest

from faiss_search import stores
from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.documents import Document
from faiss_search.errors import ConfigError
from faiss_search.indexing import candidates, encoding, pipeline, reading
from faiss_search.indexing.pipeline import index_documents, index_path
from faiss_search.retrieval.search import Searcher
from faiss_search.stores.local.reader import IndexReader


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "kb"
    (docs / "sub").mkdir(parents=True)
    (docs / "trains.txt").write_text("高铁是城市之间最快的交通工具。\n春节火车票很难买。\n", encoding="utf-8")
    (docs / "tea.md").write_text("# 茶\n\n绿茶不发酵，红茶是全发酵茶。\n", encoding="utf-8")
    (docs / "sub" / "panda.txt").write_text("熊猫每天吃十几个小时竹子。\n", encoding="utf-8")
    return docs


def test_edit_delete_add_through_the_cli(home, runner, folder):
    first = json.loads(runner.invoke(app, ["index", str(folder), "--json"]).stdout)
    assert (first["files_added"], first["total_chunks"]) == (3, 4)
    (folder / "trains.txt").write_text("高铁是城市之间最快的交通工具。\n普洱茶是云南的后发酵茶。\n", encoding="utf-8")
    (folder / "sub" / "panda.txt").unlink()
    (folder / "bread.txt").write_text("Bake bread with flour, water and yeast.\n")
    result = runner.invoke(app, ["index", str(folder), "--json"])
    report = json.loads(result.stdout)
    assert (report["files_added"], report["files_changed"], report["files_removed"], report["files_unchanged"]) == \
        (1, 1, 1, 1)
    assert report["chunks_embedded"] == 2 and report["chunks_reused"] == 1  # the unedited line kept its vector
    assert report["total_files"] == 3 and report["total_chunks"] == 4
    human = runner.invoke(app, ["index", str(folder)]).stdout
    assert "0 added, 0 changed, 0 removed, 3 unchanged" in human

    def top(query, mode):
        data = json.loads(runner.invoke(app, ["search", query, "--json", "-k", "5", "--mode", mode]).stdout)
        return data["results"]

    assert "普洱茶" in top("云南的茶", "hybrid")[0]["text"]
    assert "bread" in top("how to bake bread", "hybrid")[0]["text"]
    for mode in ("hybrid", "dense", "keyword"):
        assert all("panda" not in hit["source"] and "熊猫" not in hit["text"] for hit in top("熊猫吃竹子", mode))


def age(folder, seconds=60):
    """Files saved a while ago: not 'racy' (see candidates.RACY_SECONDS), so a stat is enough to trust them."""
    for path in folder.rglob("*.*"):
        os.utime(path, (time.time() - seconds, time.time() - seconds))


def test_a_file_an_older_reader_read_is_read_again(home, runner, folder):
    """An HTML page indexed by fsearch before its reader learned DocBook's sections (files.reader empty, as that
    release wrote it) is read again by the next run, its bytes unchanged; the other files are not."""
    import sqlite3

    from .sitepages import docbook

    (folder / "manual.html").write_text(docbook().html, encoding="utf-8")
    assert runner.invoke(app, ["index", str(folder)]).exit_code == 0
    sidecar = home / "index" / "chunks.sqlite"
    with sqlite3.connect(sidecar) as conn:
        conn.execute("UPDATE files SET reader = NULL")  # as the release before reader versions wrote every file
    again = json.loads(runner.invoke(app, ["index", str(folder), "--json"]).stdout)
    assert (again["files_changed"], again["files_unchanged"]) == (1, 3)
    assert again["chunks_embedded"] == 0 and again["chunks_reused"] > 0  # its texts kept their vectors
    with sqlite3.connect(sidecar) as conn:
        assert {row[0] for row in conn.execute("SELECT reader FROM files")} == {None, 2}  # the page is at 2 now
    assert json.loads(runner.invoke(app, ["index", str(folder), "--json"]).stdout)["files_unchanged"] == 4


def test_unchanged_files_are_not_read(home, folder, fake_embedder, monkeypatch):
    settings = load_settings()
    age(folder)
    index_path(folder, settings, fake_embedder)
    reads = []
    original = candidates.read_document
    monkeypatch.setattr(candidates, "read_document", lambda path, *a: reads.append(path) or original(path, *a))
    again = index_path(folder, settings, fake_embedder)
    assert reads == [] and again.files_unchanged == 3 and not again.changed_anything
    # same content, new mtime (old enough not to be racy): read once, recognised by its hash, and remembered
    os.utime(folder / "tea.md", (time.time() - 60, time.time() - 60))
    touched = index_path(folder, settings, fake_embedder)
    assert len(reads) == 1 and touched.files_unchanged == 3 and touched.chunks_embedded == 0
    index_path(folder, settings, fake_embedder)
    assert len(reads) == 1


def test_other_folders_and_single_files_are_not_pruned(home, tmp_path, folder, fake_embedder):
    settings = load_settings()
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("another folder\n")
    index_path(folder, settings, fake_embedder)
    index_path(other, settings, fake_embedder)
    report = index_path(folder / "tea.md", settings, fake_embedder)
    assert report.files_removed == 0 and report.total_files == 4


def test_a_file_that_turns_binary_leaves_the_index(home, folder, fake_embedder):
    settings = load_settings()
    index_path(folder, settings, fake_embedder)
    (folder / "tea.md").write_bytes(b"\x00\x01\x02" * 50)
    report = index_path(folder, settings, fake_embedder)
    assert report.files_removed == 1 and report.skipped["binary"] == 1 and report.total_files == 2


def _many_docs(n):
    return [Document(f"doc{i}", f"文档{i} 主题{i % 97} 编号{i}", "utf-8", f"h{i}", 10, 0.0) for i in range(n)]


@pytest.mark.parametrize("kind", ["ivf", "hnsw", "flat"])
def test_index_types_search_and_update(home, fake_embedder, kind, monkeypatch):
    from faiss_search.stores.local import vectors

    monkeypatch.setattr(vectors, "IVF_MIN_CHUNKS", 1000)
    settings = load_settings()
    docs = _many_docs(3000)
    report = pipeline.run_index((candidates.document_candidate(d) for d in docs), settings, fake_embedder,
                               prune_under="", index_type=kind)
    assert report.vectors["type"] == kind and report.total_chunks == 3000
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    hits = searcher.search("文档1234 主题70 编号1234", 3, "dense").hits
    assert hits[0].source == "doc1234" and hits[0].raw_score == pytest.approx(1.0, abs=1e-4)
    # drop 1000 documents: removal works for every type (HNSW rebuilds its graph); a copy reuses a vector
    copy = Document("copy2500", docs[2500].text, "utf-8", "copy", 10, 0.0)
    report = index_documents(docs[1000:] + [copy], settings, fake_embedder)
    assert report.files_removed == 1000 and report.total_chunks == 2001 and report.vectors["type"] == kind
    assert (report.chunks_reused, report.chunks_embedded) == (1, 0)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    assert searcher.search("文档5 主题5 编号5", 3, "dense").hits[0].source != "doc5"
    assert {h.source for h in searcher.search("文档2500 主题75 编号2500", 2, "dense").hits} == {"doc2500", "copy2500"}
    # and removal without reusing anything (an IVF index then has no id map)
    report = index_documents(docs[1000:], settings, fake_embedder)
    assert report.files_removed == 1 and report.total_chunks == 2000
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    hits = searcher.search("文档2500 主题75 编号2500", 2, "dense").hits
    assert [h.source for h in hits][:1] == ["doc2500"] and "copy2500" not in {h.source for h in hits}


def test_an_ivf_file_carries_no_id_map(home, fake_embedder, monkeypatch):
    """Readers load an IVF file whole; its id-to-vector map would cost each ~75 bytes a chunk."""
    import faiss

    from faiss_search.stores import committed_manifest
    from faiss_search.stores.local import vectors
    from faiss_search.stores.local.folder import vectors_file

    monkeypatch.setattr(vectors, "IVF_MIN_CHUNKS", 1000)
    settings = load_settings()
    docs = _many_docs(2000)
    pipeline.run_index((candidates.document_candidate(d) for d in docs), settings, fake_embedder,
                      prune_under="", index_type="ivf")
    copy = Document("copy5", docs[5].text, "utf-8", "copy", 10, 0.0)
    assert index_documents(docs[1:] + [copy], settings, fake_embedder).chunks_reused == 1  # built the map, used it
    generation = committed_manifest(settings.index_folder).generation
    ivf = faiss.extract_index_ivf(faiss.read_index(str(vectors_file(settings.index_folder, generation))))
    assert ivf.direct_map.type == faiss.DirectMap.NoMap and ivf.ntotal == 2000


def test_index_type_cannot_change_without_rebuild(home, fake_embedder):
    settings = load_settings()
    docs = _many_docs(50)
    index_documents(docs, settings, fake_embedder)
    with pytest.raises(ConfigError, match="flat index, not hnsw"):
        pipeline.run_index([], settings, fake_embedder, prune_under="", index_type="hnsw")
    with pytest.raises(ConfigError, match="IVF index needs at least"):
        pipeline.run_index((candidates.document_candidate(d) for d in docs), settings, fake_embedder,
                          prune_under="", index_type="ivf", rebuild=True)


# -- reading runs beside the embedding ------------------------------------------------------------

class _CountedReads:
    """Candidates whose loads are counted (and optionally slow), as files on a disk would be."""

    def __init__(self, n: int, delay: float = 0.0) -> None:
        import threading

        self.done = 0
        self.changed = threading.Condition()
        self.docs = _many_docs(n)
        self.delay = delay

    def load(self, doc: Document) -> Document:
        time.sleep(self.delay)
        with self.changed:
            self.done += 1
            self.changed.notify_all()
        return doc

    def candidates(self) -> list:
        return [candidates.Candidate(d.source, d.size, d.mtime, lambda d=d: self.load(d)) for d in self.docs]


def test_files_are_read_while_the_model_embeds(home, fake_embedder, monkeypatch):
    """The first window is embedded before the last file is read, and reading goes on during embedding."""
    monkeypatch.setattr(encoding, "EMBED_WINDOW", 2)
    reads = _CountedReads(40)
    seen: list[tuple[int, bool]] = []
    real_encode = fake_embedder.encode_passages

    def encode(texts):
        if not seen:
            with reads.changed:
                before = reads.done
                moved_on = reads.changed.wait_for(lambda: reads.done > before, timeout=10)
            seen.append((before, moved_on))
        return real_encode(texts)

    monkeypatch.setattr(fake_embedder, "encode_passages", encode)
    report = pipeline.run_index(reads.candidates(), load_settings(), fake_embedder, prune_under="")
    (read_before_embedding, read_during_embedding), = seen
    assert read_before_embedding < 40 and read_during_embedding
    assert report.files_added == 40 and report.total_chunks == report.chunks_added == report.chunks_embedded


def test_a_window_is_written_while_the_next_one_is_embedded(home, fake_embedder, monkeypatch):
    """The model does not wait for the store: the second window's embedding waits here until the first
    window's files are being written, which only a model on a thread of its own allows."""
    import threading

    from faiss_search.stores.local.writer import IndexWriter

    monkeypatch.setattr(encoding, "EMBED_WINDOW", 2)
    first_written, model_threads = threading.Event(), set()
    real_encode, real_add = fake_embedder.encode_passages, IndexWriter.add_file

    def encode(texts):
        model_threads.add(threading.get_ident())
        if encode.calls == 1:  # the second window
            assert first_written.wait(10), "the first window was not written while the second was embedded"
        encode.calls += 1
        return real_encode(texts)

    def add_file(self, *args, **kwargs):
        first_written.set()
        return real_add(self, *args, **kwargs)

    encode.calls = 0
    monkeypatch.setattr(fake_embedder, "encode_passages", encode)
    monkeypatch.setattr(fake_embedder, "encode_queries", real_encode)  # the fusion's probes
    monkeypatch.setattr(IndexWriter, "add_file", add_file)
    docs = _many_docs(12)
    report = index_documents(docs, load_settings(), fake_embedder)
    assert report.files_added == 12 and report.total_chunks == report.chunks_embedded == 12
    assert threading.get_ident() not in model_threads


def test_a_text_repeated_in_the_next_window_is_embedded_once(home, fake_embedder, monkeypatch):
    """The next window is gathered before the one in the model is written: a chunk text it shares
    with that window is taken from it, not embedded again."""
    monkeypatch.setattr(encoding, "EMBED_WINDOW", 2)
    embedded: list[str] = []
    real_encode = fake_embedder.encode_passages

    def encode(texts):
        embedded.extend(texts)
        return real_encode(texts)

    monkeypatch.setattr(fake_embedder, "encode_passages", encode)
    monkeypatch.setattr(fake_embedder, "encode_queries", real_encode)  # the fusion's probes
    docs = [Document(f"d{i}.txt", text, "utf-8", f"h{i}", len(text.encode()), 0.0)
            for i, text in enumerate(["熊猫吃竹子。", "高铁很快。", "熊猫吃竹子。", "面包要发酵。", "高铁很快。"])]
    report = index_documents(docs, load_settings(), fake_embedder)
    assert sorted(embedded) == sorted({d.text for d in docs}) and report.total_chunks == 5


class _Expecting:
    """The fake embedder with the bundled model's ``expect_passages``, recording each count and the files read then."""

    def __init__(self, embedder, reads: "_CountedReads | None" = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self._reads = reads
        embedder.expect_passages = self.expect

    def expect(self, characters: int) -> None:
        self.calls.append((characters, self._reads.done if self._reads else -1))


def test_the_model_is_told_what_is_coming_while_the_first_window_is_read(home, fake_embedder, monkeypatch):
    """The bundled model loads torch when told a big job is coming: that happens once EXPECT_AFTER
    chunks are read, not when the first window is full, so the loading overlaps the reading."""
    monkeypatch.setattr(encoding, "EXPECT_AFTER", 4)
    reads = _CountedReads(40, delay=0.02)
    told = _Expecting(fake_embedder, reads)
    pipeline.run_index(reads.candidates(), load_settings(), fake_embedder, prune_under="")
    characters = sum(len(d.text) for d in reads.docs)
    # told early of the whole job, foretold from the first files' bytes; then of the window (sent after the last read)
    assert told.calls[0][1] < 40 and abs(told.calls[0][0] - characters) <= 0.2 * characters
    assert told.calls[1:] == [(characters, 40)]


def test_new_plain_text_files_tell_the_model_before_any_is_read(home, fake_embedder):
    """Their bytes bound their characters (UTF-8: at most 4 a character), so torch can load from the
    start; files already indexed, and formats whose bytes are not text (PDF), are not counted."""
    reads = _CountedReads(40)
    told = _Expecting(fake_embedder, reads)
    notes = [candidates.Candidate(f"{c.source}.md", c.size, c.mtime, c.load) for c in reads.candidates()]
    pdf = candidates.Candidate("scan.pdf", 4_000_000, 0.0, lambda: reads.docs[0])
    known = stores.FileState(size=1, mtime=0.0, sha256="old")
    jobs = [(c, None) for c in notes] + [(pdf, None), (candidates.Candidate("old.txt", 400, 0.0, reads.load), known)]
    assert candidates.least_new_characters(jobs) == 40 * 10 // 4

    pipeline.run_index(notes, load_settings(), fake_embedder, prune_under="")
    characters = sum(len(d.text) for d in reads.docs)
    assert [n for n, _ in told.calls] == [40 * 10 // 4, characters]  # up front, then the window


def test_an_edit_of_a_big_file_tells_the_model_only_of_its_new_chunks(home, fake_embedder, monkeypatch):
    monkeypatch.setattr(encoding, "EXPECT_AFTER", 4)
    paragraphs = [f"第{i}段：" + "知识库里的文档被切成块，每一块单独嵌入。" * 12 for i in range(16)]
    doc = Document("big.txt", "\n\n".join(paragraphs), "utf-8", "h1", 4000, 0.0)
    index_documents([doc], load_settings(), fake_embedder)
    told = _Expecting(fake_embedder)
    edited = "\n\n".join(paragraphs[:-1] + ["最后一段改写了：现在只有这一块是新的。"])
    report = index_documents([Document("big.txt", edited, "utf-8", "h2", 4000, 0.0)], load_settings(), fake_embedder)
    assert report.chunks_added >= 8 and report.chunks_embedded == 1
    # one chunk's characters, not the file's (~3,700): torch is not loaded for one chunk
    assert told.calls[0][0] <= load_settings().chunk_size < len(edited) / 5


def test_reading_ahead_is_bounded(home, fake_embedder, monkeypatch):
    """While the model works, at most READ_AHEAD_BYTES of files (plus the one in hand) are read ahead."""
    monkeypatch.setattr(encoding, "EMBED_WINDOW", 1)
    reads = _CountedReads(40)
    size = reads.docs[0].size
    monkeypatch.setattr(reading, "READ_AHEAD_BYTES", 3 * size)
    ahead: list[int] = []
    real_encode = fake_embedder.encode_passages

    def encode(texts):
        time.sleep(0.05)  # ample time for an unbounded reader to read all 40
        with reads.changed:
            ahead.append(reads.done)
        return real_encode(texts)

    monkeypatch.setattr(fake_embedder, "encode_passages", encode)
    pipeline.run_index(reads.candidates(), load_settings(), fake_embedder, prune_under="")
    assert max(d.size for d in reads.docs) == size and ahead[0] <= 1 + 3 + 1
    assert len(ahead) >= 40 and ahead[-1] == 40


def test_an_interrupted_run_stops_reading(home, fake_embedder, monkeypatch):
    """Ctrl-C during embedding: nothing is committed and the files not yet read are never read."""
    reads = _CountedReads(40, delay=0.02)

    def interrupt(texts):
        raise KeyboardInterrupt

    monkeypatch.setattr(encoding, "EMBED_WINDOW", 2)
    monkeypatch.setattr(fake_embedder, "encode_passages", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_index(reads.candidates(), load_settings(), fake_embedder, prune_under="")
    time.sleep(1.0)  # an unstopped reader would have read all 40 by now
    assert reads.done < 10
    assert not (home / "index" / "manifest.json").exists()


def test_short_texts_go_to_the_model_in_calls_as_big_as_full_chunks(home, fake_embedder, monkeypatch):
    """batch_size chunks per call, or more short ones while the call padded to its longest stays within
    batch_size full chunks' characters (a long text among short ones must not widen them all)."""
    assert list(encoding.batches([500] * 40, 16, 8000)) == [(0, 16), (16, 32), (32, 40)]
    assert list(encoding.batches([13] * 1000, 16, 8000)) == [(0, 615), (615, 1000)]
    assert list(encoding.batches([400] + [10] * 100, 16, 8000)) == [(0, 20), (20, 101)]
    assert list(encoding.batches([9000, 10, 10], 16, 8000)) == [(0, 3)]
    calls: list[int] = []
    real_encode = fake_embedder.encode_passages
    monkeypatch.setattr(fake_embedder, "encode_passages", lambda texts: calls.append(len(texts)) or real_encode(texts))
    docs = [Document(f"note{i}.txt", f"第{i}条笔记", "utf-8", f"h{i}", 20, 0.0) for i in range(100)]
    index_documents(docs, load_settings(), fake_embedder)
    assert calls[0] == 100  # not seven calls of 16 (what follows is the calibration's queries)
