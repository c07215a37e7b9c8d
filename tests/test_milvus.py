"""A Milvus collection as the store, on Milvus Lite (a temp .db per test) and on its gRPC server over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.errors import FsearchError, ModelMismatchError
from faiss_search.indexing.pipeline import index_path
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import open_reader as open_index

from .conftest import FSEARCH_CLI, FakeEmbedder, with_previous_keyword_words
from .servers import free_port

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from faiss_search.locations import parse_address  # noqa: E402
from faiss_search.stores import faults  # noqa: E402
from faiss_search.stores.milvus import client as milvus_client  # noqa: E402
from faiss_search.stores.milvus import doctor as milvus_doctor  # noqa: E402
from faiss_search.stores.milvus import ledger as milvus_ledger  # noqa: E402
from faiss_search.stores.milvus.publish import push  # noqa: E402
from faiss_search.stores.milvus.reader import MilvusReader  # noqa: E402

DOCS = {
    "高铁 #1.txt": "高铁是中国城市之间最便捷的出行方式，从北京到上海只需要四个多小时。\n春节前后火车票非常紧张。",
    "熊猫?.md": "大熊猫主要生活在四川的山区，以竹子为食。\n\n熊猫宝宝出生时只有一百克左右。",
    "bread 100%.txt": "To bake bread, mix flour, water, yeast and salt, knead it and let it rise for an hour.",
    "子目录 with space/量子.txt": "量子计算机利用量子叠加和纠缠进行计算，适合分解大整数。",
}
QUERIES = ["坐火车去上海", "熊猫吃什么", "how to bake bread", "量子计算"]


def write_docs(folder: Path, docs: dict[str, str]) -> Path:
    for name, text in docs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def kb(home: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The documents (names with #, ?, %, spaces and Chinese) indexed locally with the fake embedder."""
    folder = write_docs(tmp_path / "知识库 #1", DOCS)
    index_path(folder, load_settings(), FakeEmbedder())
    return folder, load_settings().index_folder


@pytest.fixture
def lite(tmp_path: Path):
    """A Milvus Lite address in a folder whose name has #, ?, %, a space and Chinese."""
    folder = tmp_path / "库 #?%"
    folder.mkdir()
    return parse_address(f"milvus://{folder}/kb.db")


def searcher(reader) -> Searcher:
    return Searcher(reader, FakeEmbedder())


def answers(reader, mode: str, k: int = 3) -> list[list[tuple[str, str]]]:
    s = searcher(reader)
    return [[(h.source, h.text) for h in s.search(q, k, mode, min_score=0).hits] for q in QUERIES]


def test_a_pushed_index_answers_as_the_local_one(kb, lite):
    folder, index_dir = kb
    report = push(index_dir, lite)
    assert report.chunks_added == report.chunks == open_index(index_dir).manifest.counts.chunks > 0
    local, remote = open_index(index_dir), MilvusReader(lite)
    try:
        assert remote.manifest.model == local.manifest.model and remote.manifest.chunking == local.manifest.chunking
        assert answers(remote, "dense") == answers(local, "dense")  # same vectors, exact inner product
        for query_local, query_remote in zip(answers(local, "keyword"), answers(remote, "keyword"), strict=True):
            assert query_local[0] == query_remote[0]  # Milvus's BM25 and FTS5 agree on the best chunk
        hybrid = answers(remote, "hybrid")
        assert [top[0][0] for top in hybrid] == [str(folder / n) for n in DOCS]
        hit = searcher(remote).search("熊猫吃什么", 1, "hybrid").hits[0]
        assert (hit.line, hit.start) == (1, 0) and hit.snippet
        assert {f.path for f in remote.indexed_files()} == {str(folder / n) for n in DOCS}
        inside = folder / "子目录 with space"
        assert set(remote.file_states(str(inside))) == {str(inside / "量子.txt")}
        for phrase in ("熊猫", "BREAD", "没有这个短语"):  # quoted phrases: the same chunks from both stores
            assert remote.chunks_holding([phrase]) == local.chunks_holding([phrase])
        assert local.chunks_holding(["熊猫"]) and local.chunks_holding(["BREAD"])
        quoted = searcher(remote).search('"熊猫" 吃什么', 10, "hybrid").hits
        assert quoted and all("熊猫" in h.text for h in quoted)
    finally:
        local.close()
        remote.close()
    again = push(index_dir, lite)
    assert (again.chunks_added, again.chunks_removed) == (0, 0)


def test_an_ivf_index_is_pushed_whole(home, tmp_path, lite, monkeypatch):
    """An IVF file has no id-to-vector map; the push reads its vectors all the same."""
    from faiss_search.stores.local import vectors

    monkeypatch.setattr(vectors, "IVF_MIN_CHUNKS", 40)
    folder = write_docs(tmp_path / "多 #docs", {f"第{i}篇.txt": f"第{i}篇讲的是编号{i}的故事。" for i in range(48)})
    assert index_path(folder, load_settings(), FakeEmbedder(), index_type="ivf").vectors["type"] == "ivf"
    index_dir = load_settings().index_folder
    assert push(index_dir, lite).chunks_added == 48
    local, remote = open_index(index_dir), MilvusReader(lite)
    try:
        for query in ("第7篇讲的是编号7的故事。", "编号30"):
            assert [h.source for h in searcher(remote).search(query, 5, "dense", min_score=0).hits] == \
                [h.source for h in searcher(local).search(query, 5, "dense", min_score=0).hits]
    finally:
        local.close()
        remote.close()


def test_an_update_sends_only_what_changed_and_a_searcher_that_stays_open_follows_it(kb, lite):
    folder, index_dir = kb
    push(index_dir, lite)
    reader = MilvusReader(lite)
    before = searcher(reader).search("熊猫吃什么", 10, "keyword", min_score=0).hits
    assert any("竹子" in h.text for h in before)
    (folder / "熊猫?.md").write_text("大熊猫现在也吃苹果和胡萝卜。", encoding="utf-8")
    (folder / "bread 100%.txt").unlink()
    embedder = FakeEmbedder()
    report = index_path(folder, load_settings(), embedder)
    assert (report.files_changed, report.files_removed) == (1, 1)
    pushed = push(index_dir, lite)
    assert pushed.chunks_added == 1 and pushed.chunks_removed >= 2
    s = searcher(reader)  # the same reader, open across the push
    texts = [h.text for q in QUERIES for h in s.search(q, 10, "hybrid", min_score=0).hits]
    assert "大熊猫现在也吃苹果和胡萝卜。" in texts
    assert not any("竹子" in t or "bread" in t for t in texts)
    assert s.size == reader.manifest.counts.chunks == open_index(index_dir).manifest.counts.chunks
    assert str(folder / "bread 100%.txt") not in reader.file_states()
    reader.close()
    assert milvus_doctor.check(lite).problems == []


def test_words_made_again_by_a_newer_segmenter_are_sent_again(kb, lite):
    """A local index whose keyword words were made by an older segmenter gets them made again when it is
    next updated; the next push sends every chunk's new words, or Milvus's BM25 would keep the old ones."""
    folder, index_dir = kb
    (folder / "iter.md").write_text("An object is iterable when it defines Symbol.iterator.", encoding="utf-8")
    index_path(folder, load_settings(), FakeEmbedder())
    with_previous_keyword_words(index_dir / "chunks.sqlite")
    first = push(index_dir, lite)
    assert first.chunks_resent == 0 and first.chunks_added == first.chunks
    reader = MilvusReader(lite)
    assert searcher(reader).search("Symbol.iterator", 3, "keyword", min_score=0).hits[0].source.endswith("iter.md")
    assert reader.keyword_search(["symbolǀiterator"], 3) == []  # the old words
    index_path(folder, load_settings(), FakeEmbedder())  # nothing changed but the segmenter's version
    again = push(index_dir, lite)
    assert (again.chunks_resent, again.chunks_added, again.chunks_removed) == (first.chunks, 0, 0)
    assert len(reader.keyword_search(["symbolǀiterator"], 3)) == 1
    assert push(index_dir, lite).chunks_resent == 0  # once
    reader.close()
    assert milvus_doctor.check(lite).problems == []


def test_unpublished_and_retired_chunks_are_never_seen(kb, lite):
    """A push stopped between its steps: readers see the published state whole, doctor names the rest."""
    folder, index_dir = kb
    push(index_dir, lite)
    reader = MilvusReader(lite)
    ledger = reader.ledger
    client = reader._client
    extra = dict(client.get(lite.collection, ids=[1], output_fields=["*"])[0])
    extra.pop("sparse", None)
    client.upsert(lite.collection, [{**extra, "id": ledger.last_chunk_id + 5, "text": "未发布的熊猫文本"}])
    retired = milvus_ledger.Ledger(**{**vars(ledger), "retired": [[1, 1]]})
    milvus_ledger.write_state(client, lite, reader.manifest, retired)
    s = searcher(reader)
    texts = [h.text for q in QUERIES + ["未发布的熊猫文本"] for mode in ("dense", "keyword", "hybrid")
             for h in s.search(q, 50, mode, min_score=0).hits]
    assert "未发布的熊猫文本" not in texts and extra["text"] not in texts
    assert reader.build_state() == "push unfinished"
    problems = milvus_doctor.check(lite).problems
    assert any("not published" in p for p in problems)
    finished = push(index_dir, lite)
    assert finished.finished_earlier and finished.chunks_removed == 1
    assert milvus_doctor.check(lite).problems == [] and reader.build_state() == "complete"
    reader.close()


def test_another_model_or_index_is_refused_and_replace_drops_it(kb, lite, tmp_path, monkeypatch):
    folder, index_dir = kb
    push(index_dir, lite)
    other = tmp_path / "other-index"
    monkeypatch.setenv("FSEARCH_INDEX_DIR", str(other))
    index_path(folder, load_settings(), FakeEmbedder(name="fake-16", dim=16))
    with pytest.raises(ModelMismatchError, match="fake"):
        push(other, lite)
    pushed = push(other, lite, replace_other=True)
    assert pushed.chunks_added == pushed.chunks
    reader = MilvusReader(lite)
    assert reader.manifest.model["dim"] == 16
    with pytest.raises(ModelMismatchError):
        searcher(reader).search("熊猫", 1, "dense")  # the collection's model is checked like a local index's
    reader.close()


def test_a_second_writer_is_refused_while_the_first_holds_the_lease(kb, lite):
    _, index_dir = kb
    push(index_dir, lite)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        client = milvus_client.connect(lite)
        client.upsert(lite.meta, [milvus_ledger._meta_row("writer", json.dumps(
            {"host": os.uname().nodename, "pid": holder.pid, "renewed": time.time()}))])
        milvus_client.disconnect(client, lite)
        with pytest.raises(FsearchError, match="being written by"):
            push(index_dir, lite)
    finally:
        holder.kill()
        holder.wait()
    assert push(index_dir, lite).chunks_added == 0  # the holder died: its lease is taken over


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FSEARCH_CLI, *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("step", faults.PUSH_POINTS)
def test_an_export_killed_midway_leaves_the_collection_searchable_and_the_next_one_finishes_it(kb, lite, step):
    folder, index_dir = kb
    push(index_dir, lite)
    (folder / "熊猫?.md").write_text("大熊猫现在也吃苹果。", encoding="utf-8")
    index_path(folder, load_settings(), FakeEmbedder())
    killed = run_cli("export", "--to", lite.spec, env={"FSEARCH_CRASH_AT": step})
    assert killed.returncode == -9, killed.stderr
    reader = MilvusReader(lite)
    texts = [h.text for q in QUERIES for h in searcher(reader).search(q, 50, "hybrid", min_score=0).hits]
    published = step == "push-after-publish"
    assert ("大熊猫现在也吃苹果。" in texts) == published
    assert any("竹子" in t for t in texts) != published  # the old version or the new one, never both
    # unfinished either way: before publishing only the inserted chunks tell, after it the retired ranges
    assert bool(reader.ledger.retired) == published
    assert reader.build_state() == "push unfinished"
    reader.close()
    runner = CliRunner()  # the kill needed a process of its own; the rest runs here
    doctor = runner.invoke(app, ["doctor", "--store", lite.spec, "--json"])
    assert doctor.exit_code == 1 and json.loads(doctor.stdout)["problems"]
    finished = runner.invoke(app, ["export", "--to", lite.spec, "--json"])
    assert finished.exit_code == 0, finished.output
    assert json.loads(finished.stdout)["finished_earlier"]
    assert runner.invoke(app, ["doctor", "--store", lite.spec]).exit_code == 0


def test_cli_errors_are_one_line(home, runner: CliRunner, kb, tmp_path):
    a_file = tmp_path / "notes.db"
    a_file.write_text("not a database")
    lite_db = tmp_path / "kb.db"
    push(kb[1], parse_address(f"milvus://{lite_db}"))
    for args, message in [
        (["search", "x", "--store", "http://127.0.0.1:9"], "cannot reach Milvus http://127.0.0.1:9"),
        (["index", str(kb[0]), "--store", "http://127.0.0.1:9"], "cannot reach Milvus http://127.0.0.1:9"),
        (["search", "x", "--store", f"milvus://{tmp_path}/missing/kb.db"], "no folder"),
        (["search", "x", "--store", f"milvus://{tmp_path}/kb"], "is a .db path"),
        (["search", "x", "--store", f"milvus://{tmp_path}/typo.db"], "no Milvus Lite database at"),
        (["status", "--store", f"milvus://{a_file}"], "is a file, not a Milvus Lite database"),
        (["status", "--store", f"milvus://{tmp_path}/kb.db", "--collection", "bad-name"], "cannot name"),
        (["search", "x", "--store", f"milvus://{lite_db}", "--collection", "other"], "no fsearch index in Milvus Lite"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output and "bug" not in result.output
    assert not (home / "stores").exists()  # the unreachable store was found out before anything was embedded
    assert not (tmp_path / "typo.db").exists()  # a reader never creates a database


def test_a_lite_file_open_in_another_process_is_named(kb, lite):
    _, index_dir = kb
    push(index_dir, lite)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
                               f"MilvusClient({lite.uri!r}); print('open', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = CliRunner().invoke(app, ["status", "--store", lite.spec])
        assert result.exit_code == 2
        assert "open in another process" in result.stderr and "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def milvus_server(tmp_path):
    """Milvus Lite's gRPC server on loopback: the protocol a Milvus standalone server speaks."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "srv"),
                                "--port", str(port), "--host", "127.0.0.1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = parse_address(f"http://127.0.0.1:{port}", "kb")
    deadline = time.time() + 60
    while True:
        try:
            milvus_client.disconnect(milvus_client.connect(address), address)
            break
        except FsearchError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("milvus-lite server did not start")
            time.sleep(0.3)
    yield address
    process.kill()
    process.wait()


def test_a_server_is_shared_by_a_writer_and_a_long_running_reader(kb, milvus_server, runner: CliRunner, home):
    folder, index_dir = kb
    push(index_dir, milvus_server)
    reader = MilvusReader(milvus_server)  # e.g. fsearch serve on another machine
    assert reader.size_on_disk() is None
    (folder / "新文件.txt").write_text("机器学习需要大量的数据和算力。", encoding="utf-8")
    index_path(folder, load_settings(), FakeEmbedder())
    push(index_dir, milvus_server)
    hits = searcher(reader).search("机器学习", 3, "keyword", min_score=0).hits
    assert hits and hits[0].text == "机器学习需要大量的数据和算力。"
    reader.close()
    status = runner.invoke(app, ["status", "--store", milvus_server.spec, "--collection", "kb", "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.output)
    assert (info["files"], info["build"], info["model"]) == (len(DOCS) + 1, "complete", "fake")
    listing = runner.invoke(app, ["ls", "--store", milvus_server.spec, "--collection", "kb", "--json"])
    assert {f["path"] for f in json.loads(listing.output)["files"]} == {str(p) for p in folder.rglob("*.*")}


def search_json(runner: CliRunner, *args: str) -> list[str]:
    result = runner.invoke(app, ["search", *args, "--json", "-k", "3", "--min-score", "0"])
    assert result.exit_code == 0, result.output
    return [hit["text"] for hit in json.loads(result.stdout)["results"]]


@pytest.mark.parametrize("backend", ["bundled", "st-folder", "remote"])
def test_every_backend_indexes_into_milvus_and_another_home_searches_it(backend, home, runner, tmp_path,
                                                                       monkeypatch, request):
    """`fsearch index --store` with the bundled model, a sentence-transformers folder and an OpenAI-compatible
    server; then a searcher with only the address (an empty FSEARCH_HOME) answers as the local index does."""
    from .conftest import SAMPLE

    store = f"milvus://{tmp_path}/共享 #kb.db"
    args, query_args = [], []
    local_copy = ["--index-dir", str(tmp_path / "local")]
    if backend == "st-folder":
        args = ["--model", str(request.getfixturevalue("tiny_model"))]
    server = None
    if backend == "remote":
        from faiss_search.backends import choose_embedder
        from faiss_search.serve.app import create_app

        from .servers import uvicorn_app

        server = uvicorn_app(create_app(choose_embedder(None, home / "models")))
        url = server.__enter__()
        args = ["--embedder", "openai", "--model", "multilingual-e5-small-q4", "--base-url", url]
        query_args = ["--base-url", url]
    docs = tmp_path / "文档 #1" / "docs.txt"
    docs.parent.mkdir()
    docs.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    (docs.parent / "列车.txt").write_text("高铁列车。", encoding="utf-8")
    try:
        result = runner.invoke(app, ["index", str(docs.parent), "--store", store, "--json", *args, *local_copy])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["store"]["chunks_added"] == report["total_chunks"] > 0
        local = {mode: search_json(runner, "坐火车去别的城市", "--mode", mode, *query_args, *local_copy)
                 for mode in ("dense", "hybrid")}
        monkeypatch.setenv("FSEARCH_HOME", str(tmp_path / "another machine"))
        for mode in ("dense", "hybrid"):
            assert search_json(runner, "坐火车去别的城市", "--mode", mode, "--store", store, *query_args) == local[mode]
        (docs.parent / "列车.txt").write_text("磁悬浮列车的时速可以超过六百公里。", encoding="utf-8")
        monkeypatch.setenv("FSEARCH_HOME", str(home))
        again = runner.invoke(app, ["index", str(docs.parent), "--store", store, "--json", *args, *local_copy])
        assert again.exit_code == 0, again.output
        update = json.loads(again.stdout)
        # only the changed file is embedded; Milvus gets its new chunk and loses its old one
        assert (update["files_changed"], update["files_unchanged"], update["chunks_embedded"]) == (1, 1, 1)
        pushed = update["store"]
        assert (pushed["chunks_added"], pushed["chunks_removed"]) == (update["chunks_added"], update["chunks_removed"])
        monkeypatch.setenv("FSEARCH_HOME", str(tmp_path / "another machine"))
        assert "磁悬浮列车的时速可以超过六百公里。" in " ".join(
            search_json(runner, "磁悬浮列车", "--mode", "hybrid", "--store", store, *query_args))
    finally:
        if server is not None:
            server.__exit__(None, None, None)


def test_eval_through_milvus_matches_the_local_store(home, runner, tmp_path):
    from .test_eval import CORPUS, QRELS, QUERIES

    folder = tmp_path / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}, ensure_ascii=False) + "\n"
                                                 for k, v in CORPUS.items()), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}, ensure_ascii=False) + "\n"
                                                  for k, v in QUERIES.items()), encoding="utf-8")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n"
                                                                                      for q, d in QRELS))

    def rows(*extra: str) -> dict:
        result = runner.invoke(app, ["eval", str(folder), "--json", *extra])
        assert result.exit_code == 0, result.output
        return {row["mode"]: row for row in json.loads(result.stdout)["results"]}

    local, milvus = rows(), rows("--store", f"milvus://{tmp_path}/eval.db")
    for mode in ("dense", "keyword", "hybrid"):
        assert milvus[mode]["recall@1"] == pytest.approx(local[mode]["recall@1"], abs=0.01), mode
        assert milvus[mode]["MRR@10"] == pytest.approx(local[mode]["MRR@10"], abs=0.01), mode


def test_serve_answers_from_milvus(kb, lite):
    import urllib.request

    from faiss_search.serve.app import create_app

    from .servers import uvicorn_app

    _, index_dir = kb
    push(index_dir, lite)
    s = searcher(MilvusReader(lite))
    with uvicorn_app(create_app(s.embedder, s)) as url:
        request = urllib.request.Request(url + "/v1/search", json.dumps({"query": "熊猫吃什么", "top_k": 2}).encode(),
                                         {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
    local = searcher(open_index(index_dir)).search("熊猫吃什么", 2)
    assert body["results"] and "熊猫" in body["results"][0]["text"]
    assert [(r["source"], r["text"]) for r in body["results"]] == [(h.source, h.text) for h in local.hits]
    s.reader.close()


def test_doctor_repair_pushes_the_local_index_again(kb, lite, runner: CliRunner):
    _, index_dir = kb
    push(index_dir, lite)
    client = milvus_client.connect(lite)
    client.delete(lite.collection, ids=[1, 2])  # lost on the server's side
    milvus_client.disconnect(client, lite)
    checked = runner.invoke(app, ["doctor", "--store", lite.spec, "--json"])
    assert checked.exit_code == 1 and "published" in " ".join(json.loads(checked.stdout)["problems"])
    repaired = runner.invoke(app, ["doctor", "--store", lite.spec, "--repair", "--json"])
    assert repaired.exit_code == 0, repaired.output
    assert "2 chunk(s) sent" in json.loads(repaired.stdout)["repaired"][0]
    client = milvus_client.connect(lite)
    state = milvus_ledger.read_state(client, lite)
    state.ledger.origin = "another-host:/srv/kb-index"
    milvus_ledger.write_state(client, lite, state.manifest, state.ledger)
    client.delete(lite.collection, ids=[3])
    milvus_client.disconnect(client, lite)
    elsewhere = runner.invoke(app, ["doctor", "--store", lite.spec, "--repair"])
    assert elsewhere.exit_code == 2 and "written from another-host" in elsewhere.output


def test_each_store_gets_its_own_working_copy(home, runner: CliRunner, tmp_path, monkeypatch):
    """Two collections indexed from two folders never mirror one local index (nor the default one)."""
    first, second = (write_docs(tmp_path / name, {f"{name}.txt": text}) for name, text in
                     (("a", "熊猫吃竹子。"), ("b", "高铁很快。")))
    stores = [f"milvus://{tmp_path}/{name}.db" for name in ("a", "b")]
    for folder, store in zip((first, second), stores, strict=True):
        result = runner.invoke(app, ["index", str(folder), "--store", store, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["index_dir"].startswith(str(home / "stores"))
    for folder, store in zip((first, second), stores, strict=True):
        listing = json.loads(runner.invoke(app, ["ls", "--store", store, "--json"]).stdout)
        assert [f["path"] for f in listing["files"]] == [str(next(folder.iterdir()))]
    assert not (home / "index").exists()


@pytest.mark.parametrize("message, expected", [
    ("Fail connecting to server on 10.0.0.9:19530, illegal connection params or server unavailable",
     "cannot reach Milvus"),
    ("UNAUTHENTICATED: auth check failure, please check username and password", "refused the token"),
    ("UNIMPLEMENTED: Method not found", "lacks a feature fsearch needs"),
])
def test_server_failures_are_named(message, expected):
    """What a real server says (it cannot be run here: Milvus Lite has no users, tokens or old versions)."""
    from pymilvus.exceptions import MilvusException

    address = parse_address("http://milvus.example:19530", "kb", token="root:wrong")
    explained = milvus_client._explain(MilvusException(code=1, message=message), address)
    assert expected in explained.message and explained.hint
    assert "root:wrong" not in explained.message + explained.hint + repr(address)


def test_rm_with_a_store_removes_from_the_working_copy_and_the_collection(home, runner: CliRunner, tmp_path):
    folder = write_docs(tmp_path / "docs", {"keep.txt": "熊猫吃竹子。", "drop me.txt": "高铁很快。"})
    store = f"milvus://{tmp_path}/kb.db"
    assert runner.invoke(app, ["index", str(folder), "--store", store]).exit_code == 0
    result = runner.invoke(app, ["rm", str(folder / "drop me.txt"), "--store", store, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["store"]["chunks_removed"] == 1
    listing = json.loads(runner.invoke(app, ["ls", "--store", store, "--json"]).stdout)
    assert [f["path"] for f in listing["files"]] == [str(folder / "keep.txt")]


def test_a_collection_fsearch_did_not_make_is_left_alone(kb, lite):
    _, index_dir = kb
    client = milvus_client.connect(lite)
    client.create_collection(lite.collection, dimension=4)  # somebody else's, with the same name
    client.insert(lite.collection, [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}])
    milvus_client.disconnect(client, lite)
    with pytest.raises(FsearchError, match="did not make"):
        push(index_dir, lite)
    client = milvus_client.connect(lite)
    client.load_collection(lite.collection)
    assert client.query(lite.collection, filter="id == 1", output_fields=["id"])  # untouched
    milvus_client.disconnect(client, lite)
    assert push(index_dir, lite, replace_other=True).chunks_added > 0


def test_the_mcp_tools_answer_from_milvus(kb, lite, monkeypatch):
    import asyncio

    from faiss_search.serve.mcp import build_server

    folder, index_dir = kb
    push(index_dir, lite)
    monkeypatch.setenv("FSEARCH_STORE", lite.spec)
    s = searcher(MilvusReader(lite))
    server = build_server(s, load_settings())

    def call(name: str, arguments: dict) -> dict:
        result = asyncio.run(server.call_tool(name, arguments))
        assert not result.is_error, result.content
        return result.structured_content or json.loads(result.content[0].text)

    status = call("status", {})
    assert status["store"] == str(lite) and status["files"] == len(DOCS)
    found = call("search", {"query": "熊猫吃什么", "k": 1, "min_score": 0})
    source = found["results"][0]["source"]
    assert source == str(folder / "熊猫?.md")
    assert "竹子" in call("read", {"source": source})["text"]
    s.reader.close()
