"""Never a wrong, stale or lost answer: readers that follow commits, damage caught, odd files, clean messages."""

import json
import os
import signal
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import faiss
import numpy as np
import pytest

from faiss_search import doctor, documents
from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.errors import IndexCorruptError, InvalidVectorError
from faiss_search.indexing.discovery import Filters
from faiss_search.indexing.pipeline import index_documents, index_path
from faiss_search.repl import run_repl
from faiss_search.retrieval.search import Searcher
from faiss_search.serve.app import create_app
from faiss_search.stores import committed_manifest
from faiss_search.stores.local.folder import vectors_file
from faiss_search.stores.local.locking import WriterLock
from faiss_search.stores.local.reader import IndexReader
from faiss_search.stores.local.writer import IndexWriter

from .conftest import FakeEmbedder
from .servers import uvicorn_app

TOPICS = ["熊猫吃竹子", "长城很长", "显卡跑得快", "普洱茶是云南的茶", "高铁很快", "面包要发酵"]


def doc_text(prefix: str, i: int) -> str:
    return f"{prefix}-{i}：{TOPICS[i % len(TOPICS)]}，第{i}号。"


def doc_set(prefix: str, n: int) -> list:
    """Documents whose text names their own source, so any hit can be checked against it."""
    from faiss_search.documents import Document

    docs = []
    for i in range(n):
        text = doc_text(prefix, i)
        docs.append(Document(f"{prefix}-{i}", text, "utf-8", f"{prefix}{i}", len(text), 0.0))
    return docs


def docs_folder(root: Path, files: dict[str, str]) -> Path:
    folder = root / "docs"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


PANDA_AND_WALL = {"a.txt": "熊猫每天吃竹子。\n", "b.txt": "长城在北方。\n"}


def assert_true_hits(searcher: Searcher, embedder: FakeEmbedder, query: str, k: int, mode: str) -> list:
    """Every hit's text belongs to its source, and (dense) its score is the query's cosine with that text."""
    result = searcher.search(query, k, mode)
    if mode != "keyword":  # every generation holds at least k chunks: nothing may go missing
        assert len(result.hits) == k, (mode, result)
    query_vector = embedder.encode_queries([query])[0]
    for hit in result.hits:
        assert hit.text.startswith(hit.source + "："), (hit.source, hit.text)
        if hit.dense_score is not None:
            want = float(embedder.encode_passages([hit.text])[0] @ query_vector)
            assert abs(hit.dense_score - want) < 1e-4, (hit, want)
    return result.hits


# -- 1. long-running readers ---------------------------------------------------------------------

def test_a_running_searcher_follows_updates_and_rebuilds(home, fake_embedder):
    settings = load_settings()
    index_documents(doc_set("A", 12), settings, fake_embedder)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    assert searcher.size == 12 and searcher.search(doc_text("A", 3), 1, "dense").hits[0].source == "A-3"
    old_ids = {h.chunk_id for h in searcher.search("熊猫", 12, "dense").hits}
    index_documents(doc_set("B", 5), settings, fake_embedder, rebuild=True)
    assert searcher.size == 5  # no restart needed
    for mode in ("dense", "keyword", "hybrid"):
        hits = assert_true_hits(searcher, fake_embedder, doc_text("B", 2), 5, mode)
        assert {h.source[0] for h in hits} == {"B"}
    assert searcher.search(doc_text("B", 2), 1, "dense").hits[0].source == "B-2"
    new_ids = {h.chunk_id for h in searcher.search("熊猫", 5, "dense").hits}
    assert min(new_ids) > max(old_ids)  # ids are never reused, not even by a rebuild
    index_documents(doc_set("B", 5) + doc_set("C", 2), settings, fake_embedder)
    assert searcher.size == 7 and searcher.search(doc_text("C", 1), 1, "dense").hits[0].source == "C-1"


def test_the_prompt_follows_commits_between_questions(home, fake_embedder, capsys):
    settings = load_settings()
    index_documents(doc_set("A", 6), settings, fake_embedder)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    lines = iter([doc_text("A", 1), doc_text("B", 1), ":quit"])
    answers = []

    def read_line(prompt):
        answers.append(capsys.readouterr().out)  # what the previous question printed
        line = next(lines)
        if line.startswith("B"):
            index_documents(doc_set("B", 4), settings, fake_embedder, rebuild=True)
        return line

    run_repl(searcher, 1, mode="dense", read_line=read_line)
    # an exact match scores 1.000: the right text under the right vector
    assert "1.000" in answers[1] and doc_text("A", 1) in answers[1]
    assert "1.000" in answers[2] and doc_text("B", 1) in answers[2]


def test_serve_follows_updates_and_rebuilds(home, fake_embedder):
    settings = load_settings()
    index_documents(doc_set("A", 8), settings, fake_embedder)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)

    def search(url, query):
        body = json.dumps({"query": query, "top_k": 3, "mode": "dense"}).encode()
        request = urllib.request.Request(url + "/v1/search", body, {"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(request, timeout=10).read())["results"]

    with uvicorn_app(create_app(fake_embedder, searcher)) as url:
        assert json.loads(urllib.request.urlopen(url + "/health").read())["index_chunks"] == 8
        index_documents(doc_set("B", 4), settings, fake_embedder, rebuild=True)
        assert json.loads(urllib.request.urlopen(url + "/health").read())["index_chunks"] == 4
        hits = search(url, doc_text("B", 3))
        assert hits[0]["source"] == "B-3" and all(h["text"].startswith(h["source"] + "：") for h in hits)
        index_documents(doc_set("B", 4) + doc_set("N", 1), settings, fake_embedder)
        assert search(url, doc_text("N", 0))[0]["source"] == "N-0"


def race(home, embedder, seconds: float) -> dict:
    """A writer alternating updates and rebuilds, against one-shot readers, a long-running searcher and serve."""
    settings = load_settings()
    index_documents(doc_set("G0", 6), settings, embedder)
    stop = threading.Event()
    counts = {"commits": 0, "one-shot": 0, "long-running": 0, "serve": 0, "doctor": 0}
    failures: list = []

    def writer():
        generation = 0
        while not stop.is_set():
            generation += 1
            prefix = f"G{generation}"
            if generation % 3 == 0:
                index_documents(doc_set(prefix, 3 + generation % 5), settings, embedder, rebuild=True)
            else:  # an incremental update: some documents change, some are added
                index_documents(doc_set(prefix, 4) + doc_set("S", 3 + generation % 4), settings, embedder)
            counts["commits"] += 1

    def doctor_says_healthy(query, mode):
        if mode == "dense":  # once per round is plenty
            report = doctor.check(settings.index_folder)
            assert report.healthy, report.problems

    def check(kind: str, ask) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                for mode in ("dense", "hybrid", "keyword"):
                    ask(f"第{i % 7}号 {TOPICS[i % len(TOPICS)]}", mode)
                counts[kind] += 1
            except Exception as exc:  # collected: a thread's assertion would vanish otherwise
                failures.append(f"{kind}: {exc!r}")
                stop.set()

    def one_shot(query, mode):
        searcher = Searcher(IndexReader(settings.index_folder), embedder)
        try:
            assert_true_hits(searcher, embedder, query, 3, mode)
        finally:
            searcher.reader.close()

    long_running = Searcher(IndexReader(settings.index_folder), embedder)
    served = Searcher(IndexReader(settings.index_folder), embedder)
    with uvicorn_app(create_app(embedder, served)) as url:
        def over_http(query, mode):
            body = json.dumps({"query": query, "top_k": 3, "mode": mode}).encode()
            request = urllib.request.Request(url + "/v1/search", body, {"Content-Type": "application/json"})
            result = json.loads(urllib.request.urlopen(request, timeout=30).read())["results"]
            vector = embedder.encode_queries([query])[0]
            assert mode == "keyword" or len(result) == 3, result
            for hit in result:
                assert hit["text"].startswith(hit["source"] + "："), hit
                if hit["dense_score"] is not None:
                    assert abs(hit["dense_score"] - float(embedder.encode_passages([hit["text"]])[0] @ vector)) < 1e-4

        threads = [threading.Thread(target=writer),
                   threading.Thread(target=check, args=("one-shot", one_shot)),
                   threading.Thread(target=check, args=("long-running", lambda q, m: assert_true_hits(
                       long_running, embedder, q, 3, m))),
                   threading.Thread(target=check, args=("serve", over_http)),
                   threading.Thread(target=check, args=("doctor", doctor_says_healthy))]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not failures, failures[:3]
    return counts


def test_readers_racing_a_writer_never_see_a_wrong_or_missing_hit(home, fake_embedder):
    counts = race(home, fake_embedder, 4)
    assert min(counts.values()) >= 3, counts


@pytest.mark.slow
def test_a_minute_of_readers_racing_a_writer(home, fake_embedder):
    counts = race(home, fake_embedder, 60)
    print(counts)
    assert counts["commits"] >= 50, counts


# -- 2. damage is caught, not laundered ------------------------------------------------------------

def swap_two_ids(index_dir: Path) -> None:
    """Damage the vectors file the way a bad disk or a careless tool would: two ids change places."""
    path = vectors_file(index_dir, committed_manifest(index_dir).generation)
    index = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map)
    ids[[0, 1]] = ids[[1, 0]]
    faiss.copy_array_to_vector(ids, index.id_map)
    faiss.write_index(index, str(path))


def test_swapped_ids_are_refused_by_search_and_update_until_repaired(home, runner, tmp_path):
    folder = docs_folder(tmp_path, {"a.txt": "熊猫每天吃竹子。\n", "b.txt": "显卡可以训练神经网络。\n"})
    assert runner.invoke(app, ["index", str(folder)]).exit_code == 0
    swap_two_ids(home / "index")
    searched = runner.invoke(app, ["search", "熊猫吃什么"])
    assert searched.exit_code == 2 and "checksum" in searched.stderr and "doctor --repair" in searched.stderr
    (folder / "c.txt").write_text("长城在北方。\n", encoding="utf-8")
    before = committed_manifest(home / "index").generation
    updated = runner.invoke(app, ["index", str(folder)])
    assert updated.exit_code == 2 and "nothing was changed" in updated.stderr
    assert committed_manifest(home / "index").generation == before  # the damage was not laundered
    doctor = runner.invoke(app, ["doctor", "--repair", "--json"])
    assert doctor.exit_code == 0 and json.loads(doctor.stdout)["healthy"], doctor.output
    top = json.loads(runner.invoke(app, ["search", "熊猫吃什么", "--json", "--mode", "dense"]).stdout)
    assert top["results"][0]["text"] == "熊猫每天吃竹子。"


class BrokenEmbedder(FakeEmbedder):
    """Returns NaN for texts with 'NaN' in them and zeros for texts with 'ZERO'."""

    def encode_passages(self, texts):
        vectors = super().encode_passages(texts)
        for i, text in enumerate(texts):
            if "NaN" in text:
                vectors[i, 0] = np.nan
            if "ZERO" in text:
                vectors[i] = 0
        return vectors


@pytest.mark.parametrize("poison", ["NaN", "ZERO"])
def test_invalid_vectors_are_never_written(home, tmp_path, poison):
    embedder = BrokenEmbedder()
    folder = docs_folder(tmp_path, {"good.txt": "熊猫每天吃竹子。\n"})
    index_path(folder, load_settings(), embedder)
    (folder / "bad.txt").write_text(f"这一段会变成 {poison}。\n", encoding="utf-8")
    with pytest.raises(InvalidVectorError, match=r"invalid vector.*bad\.txt:1"):
        index_path(folder, load_settings(), embedder)
    assert committed_manifest(home / "index").counts.chunks == 1


def test_doctor_finds_text_altered_inside_the_sidecar_and_repair_removes_it(home, runner, tmp_path):
    folder = docs_folder(tmp_path, PANDA_AND_WALL)
    assert runner.invoke(app, ["index", str(folder)]).exit_code == 0
    with sqlite3.connect(home / "index" / "chunks.sqlite") as conn:
        conn.execute("UPDATE chunks SET text = '熊猫其实吃肉。' WHERE text = '熊猫每天吃竹子。'")
    checked = runner.invoke(app, ["doctor", "--json"])
    assert checked.exit_code == 1 and "unexpected" not in checked.output and "bug" not in checked.output
    assert any("altered" in p for p in json.loads(checked.stdout)["problems"])
    repaired = json.loads(runner.invoke(app, ["doctor", "--repair", "--json"]).stdout)
    assert repaired["healthy"] and any("a.txt" in a for a in repaired["repaired"])
    assert "熊猫其实吃肉" not in runner.invoke(app, ["search", "熊猫", "--mode", "keyword"]).stdout
    assert json.loads(runner.invoke(app, ["index", str(folder), "--json"]).stdout)["files_added"] == 1


# -- 3. files and folders -----------------------------------------------------------------------------

def stored_texts(index_dir: Path) -> list[str]:
    with sqlite3.connect(index_dir / "chunks.sqlite") as conn:
        return sorted(r[0] for r in conn.execute("SELECT text FROM chunks"))


def test_a_same_size_edit_within_the_mtime_tick_is_not_lost(home, tmp_path, fake_embedder):
    note = tmp_path / "note.txt"
    note.write_text("version A\n")
    index_path(note, load_settings(), fake_embedder)
    stamp = note.stat().st_mtime_ns
    note.write_text("version B\n")  # same size, and (as on a coarse clock) the same mtime
    os.utime(note, ns=(stamp, stamp))
    index_path(note, load_settings(), fake_embedder)
    assert stored_texts(home / "index") == ["version B"]


def test_a_folder_emptied_or_deleted_empties_the_index(home, runner, tmp_path):
    folder = docs_folder(tmp_path, PANDA_AND_WALL)
    assert runner.invoke(app, ["index", str(folder)]).exit_code == 0
    (folder / "a.txt").unlink()
    (folder / "b.txt").write_text("   \n")
    result = runner.invoke(app, ["index", str(folder)])
    assert result.exit_code == 0 and "the index is now empty" in result.stdout, result.output
    assert json.loads(runner.invoke(app, ["search", "熊猫", "--json"]).stdout)["results"] == []


def test_an_emptied_single_file_leaves_the_index(home, tmp_path, fake_embedder):
    note = tmp_path / "note.txt"
    note.write_text("some text\n")
    index_path(note, load_settings(), fake_embedder)
    note.write_text("")
    assert index_path(note, load_settings(), fake_embedder).total_chunks == 0


def test_unreadable_files_and_folders_keep_their_indexed_version(home, tmp_path, fake_embedder, monkeypatch):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "top.txt").write_text("top file\n")
    (folder / "locked.txt").write_text("locked file\n")
    (folder / "sub" / "inner.txt").write_text("inner file\n")
    index_path(folder, load_settings(), fake_embedder)
    original_scandir, original_read = os.scandir, documents.read_regular_file

    def scandir(path):
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return original_scandir(path)

    def read(path, *args):
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return original_read(path, *args)

    monkeypatch.setattr(documents.os, "scandir", scandir)
    monkeypatch.setattr(documents, "read_regular_file", read)
    (folder / "locked.txt").touch()  # changed, so it must be read, and cannot be
    report = index_path(folder, load_settings(), fake_embedder)
    assert report.files_kept_unreadable == 2 and report.files_removed == 0
    assert stored_texts(home / "index") == ["inner file", "locked file", "top file"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_chinese_utf16_without_a_bom(home, tmp_path, fake_embedder, encoding):
    text = "大熊猫生活在四川的山里，每天要吃很多竹子。\n长城是古代修建的防御工程。\n"
    (tmp_path / "u16.txt").write_bytes(text.encode(encoding))
    report = index_path(tmp_path / "u16.txt", load_settings(), fake_embedder)
    assert report.files_added == 1 and stored_texts(home / "index") == sorted(text.strip().split("\n"))


def test_symlinked_files_and_second_names_never_break_updates(home, tmp_path, fake_embedder):
    outside = tmp_path / "outside.txt"
    outside.write_text("outside text\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a text\n")
    os.symlink(folder / "a.txt", folder / "b-link.txt")
    os.symlink(outside, folder / "out-link.txt")
    report = index_path(folder, load_settings(), fake_embedder)
    assert report.skipped["symlink out of the folder"] == 1  # as rg and fd: not followed out unless asked
    assert stored_texts(home / "index") == ["a text"]
    for round_ in range(3):
        outside.write_text(f"outside text, edit {round_}\n")
        report = index_path(folder, load_settings(), fake_embedder, filters=Filters(follow=True))
        assert report.skipped["another name for an indexed file"] == 1
    assert stored_texts(home / "index") == ["a text", "outside text, edit 2"]


def test_a_file_name_that_is_not_utf8(home, tmp_path, fake_embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    gbk_name = os.path.join(os.fsencode(folder), "中文笔记.txt".encode("gbk"))
    with open(gbk_name, "wb") as fh:
        fh.write("来自 Windows 压缩包的文件。\n".encode())
    (folder / "ok.txt").write_text("ok\n")
    first = index_path(folder, load_settings(), fake_embedder)
    assert first.files_added == 2
    sources = [s for s in indexer_sources(home) if "\ufffd" in s]
    assert len(sources) == 1 and sources[0].endswith(".txt")
    os.utime(gbk_name, (time.time() - 60, time.time() - 60))
    index_path(folder, load_settings(), fake_embedder)
    again = index_path(folder, load_settings(), fake_embedder)
    assert again.files_unchanged == 2 and not again.changed_anything


def indexer_sources(home: Path) -> list[str]:
    with sqlite3.connect(home / "index" / "chunks.sqlite") as conn:
        return [r[0] for r in conn.execute("SELECT path FROM files")]


def test_fifos_and_devices_are_never_read(home, runner, tmp_path, fake_embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "real.txt").write_text("real text\n")
    os.mkfifo(folder / "notes.txt")
    os.symlink("/dev/zero", folder / "zero.txt")
    def hang(*_):
        raise TimeoutError("indexing hung on a FIFO or a device")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)  # a hang fails this test instead of the whole run
    try:
        report = index_path(folder, load_settings(), fake_embedder)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert report.total_files == 1 and report.skipped["not a regular file"] == 1
    assert report.skipped["symlink out of the folder"] == 1  # /dev/zero
    followed = index_path(folder, load_settings(), fake_embedder, filters=Filters(follow=True))
    assert followed.total_files == 1 and followed.skipped["not a regular file"] == 2  # followed, still never read
    result = runner.invoke(app, ["index", str(folder / "notes.txt"), "--index-dir", str(tmp_path / "cli")])
    assert result.exit_code == 2 and "not a regular file" in result.stderr


# -- 4. index folders and messages ---------------------------------------------------------------------

def test_index_folders_with_uri_characters_are_separate(home, tmp_path, fake_embedder):
    for name in ("notes#A", "notes#B", "a?b%20c", "空 格%"):
        settings = load_settings(index_dir=tmp_path / name)
        index_documents(doc_set(name.replace("%", "p"), 2), settings, fake_embedder)
    index_documents(doc_set("R", 1), load_settings(index_dir=tmp_path / "notes#A"), fake_embedder, rebuild=True)
    assert committed_manifest(tmp_path / "notes#B").counts.chunks == 2
    assert committed_manifest(tmp_path / "notes#A").counts.chunks == 1
    made = {p.name for p in tmp_path.iterdir()} - {"home", "work"}
    assert made == {"notes#A", "notes#B", "a?b%20c", "空 格%"}  # nothing written beside the folders
    for name in made:
        assert sorted(p.name for p in (tmp_path / name).iterdir() if p.name.startswith("chunks.sqlite"))[0] == \
            "chunks.sqlite"


def test_rebuild_works_over_a_damaged_sidecar(home, runner, tmp_path, fake_embedder):
    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    for name in ("chunks.sqlite-wal", "chunks.sqlite-shm"):
        (home / "index" / name).unlink(missing_ok=True)
    (home / "index" / "chunks.sqlite").write_bytes(b"garbage" * 1000)
    hinted = runner.invoke(app, ["search", "x"])
    assert hinted.exit_code == 2 and "--rebuild" in hinted.stderr
    note = tmp_path / "n.txt"
    note.write_text("新的开始。\n", encoding="utf-8")
    result = runner.invoke(app, ["index", str(note), "--rebuild", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total_chunks"] == 1
    assert committed_manifest(home / "index").generation > 1  # generations keep rising


def test_doctor_during_a_live_commit_and_after_a_killed_first_build(home, runner, tmp_path, fake_embedder):
    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    index_dir = home / "index"
    with WriterLock(index_dir):  # a writer at work: its temp and next-generation files are not leftovers
        (index_dir / "vectors-2.faiss.tmp").write_bytes(b"half")
        (index_dir / "vectors-2.faiss").write_bytes(b"next")
        busy = runner.invoke(app, ["doctor", "--json"])
    assert busy.exit_code == 0 and json.loads(busy.stdout)["writer_active"], busy.output
    stale = runner.invoke(app, ["doctor"])
    assert stale.exit_code == 1 and "leftover" in stale.stdout and "bug" not in stale.output
    fresh = tmp_path / "fresh"
    writer = IndexWriter(fresh, fake_embedder.info, {"chunk_size": 500, "chunk_overlap": 50})
    writer.close()  # as a killed first build leaves it: a sidecar, never committed
    killed = runner.invoke(app, ["doctor", "--index-dir", str(fresh)])
    assert killed.exit_code == 2 and "nothing is indexed" in killed.stderr and "fsearch index PATH`" in \
        killed.stderr and "cannot be repaired" not in killed.stderr
    searched = runner.invoke(app, ["search", "x", "--index-dir", str(fresh)])
    assert searched.exit_code == 2 and "nothing is indexed" in searched.stderr and "never" not in searched.stderr


def test_search_after_a_first_build_that_found_nothing_says_nothing_is_indexed(home, runner, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    failed = runner.invoke(app, ["index", str(tmp_path / "empty.txt")])
    assert failed.exit_code == 2 and "nothing indexable" in failed.stderr
    for command in (["search", "x"], ["search", "x", "--json"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "nothing is indexed" in result.output, result.output  # --json: on stdout
        assert "interrupted" not in result.output and "Traceback" not in result.output


def test_user_errors_are_one_line(home, runner, tmp_path, monkeypatch):
    huge = runner.invoke(app, ["search", "x", "-k", "99999999999999999999"])
    assert huge.exit_code == 2 and "Traceback" not in huge.output
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("FSEARCH_INDEX_DIR", str(tmp_path / "a-file"))
    for args in (["search", "x"], ["index", str(tmp_path / "a-file")], ["status"], ["doctor"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "is a file" in result.stderr and "unexpected" not in result.stderr, args


def test_a_bad_line_in_a_queries_file_spoils_only_itself(sample_indexed, runner):
    queries = Path("q.txt")
    queries.write_text("熊猫吃什么\n\u200b\n长城\x07在哪里\n", encoding="utf-8")
    result = runner.invoke(app, ["search", "--queries", str(queries), "--json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 2 and [r["line"] for r in rows] == [1, 2, 3]
    assert rows[0]["results"] and rows[2]["results"] and rows[2]["query"] == "长城 在哪里"
    assert rows[1]["error"] == "empty query"
    text = runner.invoke(app, ["search", "--queries", str(queries)])
    assert text.exit_code == 2 and "q.txt:2: empty query" in text.stderr and text.stdout.count("query ") == 2


def test_an_index_remembers_its_chunk_settings(home, runner):
    from .test_cli import SAMPLE

    first = runner.invoke(app, ["index", str(SAMPLE), "--chunk-size", "120", "--chunk-overlap", "10", "--json"])
    assert first.exit_code == 0
    again = runner.invoke(app, ["index", str(SAMPLE), "--json"])
    assert again.exit_code == 0, again.output
    assert committed_manifest(home / "index").chunking == {"chunk_size": 120, "chunk_overlap": 10}


def test_long_running_reader_refuses_a_rebuild_with_another_model(home, fake_embedder):
    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    searcher.search("熊猫", 1, "dense")
    index_documents(doc_set("A", 3), settings, FakeEmbedder("other", dim=16), rebuild=True)
    with pytest.raises(Exception, match="built with model 'other'"):
        searcher.search("熊猫", 1, "dense")


def test_a_reader_refuses_vectors_deleted_under_it(home, fake_embedder):
    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    vectors_file(settings.index_folder, 1).unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        IndexReader(settings.index_folder)
