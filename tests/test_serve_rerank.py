"""`fsearch serve` as a reranking service: /v1/rerank (Jina/Cohere), /rerank (TEI), reranked /v1/search, and MCP."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from faiss_search.reranking import CrossEncoderReranker, RemoteReranker
from faiss_search.serve.app import create_app

from .servers import uvicorn_app
from .test_rerank import CharacterReranker, _searcher
from .test_server import post

DOCUMENTS = ["春节前后火车票非常紧张", "绿茶和红茶的区别在于发酵程度", "高铁是城市之间便捷的出行方式", "火车"]


@pytest.fixture(scope="module")
def rerank_server(tmp_path_factory):
    """serve's app over the sample index with the tiny cross-encoder; yields its URL, reranker and searcher."""
    from .conftest import shared_path
    from .tiny_model import build_tiny_reranker

    folder = build_tiny_reranker(shared_path("fixtures", "bge-small-zh-v1.5-layout"),
                                 tmp_path_factory.mktemp("reranker"))
    reranker = CrossEncoderReranker(folder, "tiny-reranker")
    index = _sample_index(tmp_path_factory)
    searcher = _searcher(index)
    with uvicorn_app(create_app(searcher.embedder, searcher, reranker=reranker, api_key="s3cret")) as url:
        yield url, reranker, searcher


def _sample_index(tmp_path_factory):
    from .conftest import built_once
    from .test_cli import SAMPLE

    return built_once(tmp_path_factory, "rerank-sample", str(SAMPLE))


KEY = {"Authorization": "Bearer s3cret"}


def test_v1_rerank_answers_the_jina_cohere_shape(rerank_server):
    url, reranker, _ = rerank_server
    status, body = post(url, "/v1/rerank", {"model": "bge-reranker-base", "query": "火车票", "top_n": 3,
                                            "documents": [DOCUMENTS[0], {"text": DOCUMENTS[1]}, *DOCUMENTS[2:]],
                                            "return_documents": True}, KEY)
    assert status == 200, body
    expected = reranker.score("火车票", DOCUMENTS)
    best = sorted(range(4), key=lambda i: -expected[i])[:3]
    assert [row["index"] for row in body["results"]] == best
    assert [row["relevance_score"] for row in body["results"]] == pytest.approx([expected[i] for i in best])
    assert [row["document"]["text"] for row in body["results"]] == [DOCUMENTS[i] for i in best]
    assert body["model"] == "bge-reranker-base" and body["id"]
    status, bare = post(url, "/v2/rerank", {"query": "火车票", "documents": DOCUMENTS}, KEY)
    assert status == 200 and len(bare["results"]) == 4 and "document" not in bare["results"][0]


def test_rerank_answers_tei_and_jina_bodies_alike(rerank_server):
    url, reranker, _ = rerank_server
    expected = reranker.score("火车", DOCUMENTS)
    status, rows = post(url, "/rerank", {"query": "火车", "texts": DOCUMENTS, "return_text": True}, KEY)
    assert status == 200 and [row["index"] for row in rows] == sorted(range(4), key=lambda i: -expected[i])
    assert rows[0]["text"] == DOCUMENTS[rows[0]["index"]]
    status, body = post(url, "/rerank", {"model": "m", "query": "火车", "documents": DOCUMENTS, "top_n": 1}, KEY)
    assert status == 200 and len(body["results"]) == 1  # Dify's provider with a base URL without /v1


def test_fsearch_is_its_own_remote_reranker_in_both_shapes(rerank_server, monkeypatch):
    url, reranker, _ = rerank_server
    monkeypatch.setenv("FSEARCH_RERANK_API_KEY", "s3cret")
    expected = pytest.approx(reranker.score("火车", DOCUMENTS))
    assert RemoteReranker(url).score("火车", DOCUMENTS) == expected
    assert RemoteReranker(url, api="tei").score("火车", DOCUMENTS) == expected


@pytest.mark.parametrize("body, status, words", [
    ({"query": "q", "documents": []}, 400, "documents must not be empty"),
    ({"query": " ", "documents": ["a"]}, 400, "query must not be empty"),
    ({"query": "q", "documents": [3]}, 400, "documents"),
    ({"query": "q", "documents": ["a"] * 2049}, 413, "too many documents"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, 400, "top_n"),
    ({"documents": ["a"]}, 400, "query"),
])
def test_bad_rerank_requests_get_one_clear_json_error(rerank_server, body, status, words):
    got, answer = post(rerank_server[0], "/v1/rerank", body, KEY)
    assert got == status and words in answer["error"]["message"]


def test_rerank_keeps_the_key_and_is_counted(rerank_server):
    url = rerank_server[0]
    assert post(url, "/v1/rerank", {"query": "q", "documents": ["a"]})[0] == 401
    post(url, "/v1/rerank", {"query": "q", "documents": ["a", "b"]}, KEY)
    request = urllib.request.Request(url + "/metrics", headers=KEY)
    metrics = urllib.request.urlopen(request, timeout=10).read().decode()
    pairs = next(line for line in metrics.splitlines() if line.startswith("fsearch_rerank_pairs_total"))
    assert float(pairs.split()[-1]) >= 2
    assert 'fsearch_requests_total{route="/v1/rerank",status="200"}' in metrics


def test_search_reranks_when_asked(rerank_server):
    url, reranker, _ = rerank_server
    status, plain = post(url, "/v1/search", {"query": "火车票", "top_k": 5}, KEY)
    assert status == 200 and "reranker" not in plain
    status, body = post(url, "/v1/search", {"query": "火车票", "top_k": 5, "rerank": True}, KEY)
    assert status == 200 and body["reranker"] == "tiny-reranker"
    scores = [hit["rerank_score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(reranker.score("火车票", [body["results"][0]["text"]])[0], abs=1e-3)


def test_a_server_without_a_reranker_says_so(tmp_path_factory):
    searcher = _searcher(_sample_index(tmp_path_factory))
    with uvicorn_app(create_app(searcher.embedder, searcher)) as url:
        status, body = post(url, "/v1/rerank", {"query": "q", "documents": ["a"]})
        assert status == 404 and "--reranker" in body["error"]["message"]
        status, body = post(url, "/v1/search", {"query": "火车", "rerank": True})
        assert status == 400 and "no reranker" in body["error"]["message"]


class SlowReranker(CharacterReranker):
    """Takes 20 ms a passage, so a long request is long."""

    def score(self, query, passages):
        time.sleep(0.02 * len(passages))
        return super().score(query, passages)


def test_a_long_rerank_does_not_hold_a_short_one_up(tmp_path_factory):
    searcher = _searcher(_sample_index(tmp_path_factory))
    with uvicorn_app(create_app(searcher.embedder, searcher, reranker=SlowReranker())) as url:
        finished: dict[str, float] = {}

        def ask(name: str, documents: list[str]) -> None:
            assert post(url, "/v1/rerank", {"query": "火车", "documents": documents})[0] == 200
            finished[name] = time.monotonic()

        long = threading.Thread(target=ask, args=("long", ["火车"] * 200))  # ~4 s of work
        long.start()
        time.sleep(0.3)
        ask("short", ["火车", "茶"])
        long.join()
    assert finished["short"] < finished["long"]  # served between the long one's slices, not after it


def test_real_clients_rerank_against_fsearch(rerank_server):
    """Cohere's own client (v1 and v2 routes) and LangChain's CohereRerank, pointed at fsearch."""
    import cohere
    from langchain_cohere import CohereRerank
    from langchain_core.documents import Document

    url, reranker, _ = rerank_server
    expected = reranker.score("火车票", DOCUMENTS)
    best = max(range(4), key=lambda i: expected[i])
    v2 = cohere.ClientV2(api_key="s3cret", base_url=url).rerank(model="bge-reranker-base", query="火车票",
                                                                 documents=DOCUMENTS, top_n=2)
    assert v2.results[0].index == best and v2.results[0].relevance_score == pytest.approx(expected[best])
    v1 = cohere.Client(api_key="s3cret", base_url=url).rerank(model="bge-reranker-base", query="火车票",
                                                             documents=DOCUMENTS, top_n=2)
    assert [r.index for r in v1.results] == [r.index for r in v2.results]
    compressor = CohereRerank(base_url=url, cohere_api_key="s3cret", model="bge-reranker-base", top_n=2)
    kept = compressor.compress_documents([Document(page_content=d) for d in DOCUMENTS], "火车票")
    assert kept[0].page_content == DOCUMENTS[best] and kept[0].metadata["relevance_score"] == pytest.approx(
        expected[best])


def test_langchains_jina_rerank_against_fsearch(rerank_server, monkeypatch):
    """LangChain's JinaRerank has no base URL setting: its module's JINA_API_URL is what users point at fsearch."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its own sunset
        from langchain_community.document_compressors import jina_rerank
    from langchain_core.documents import Document

    url, reranker, _ = rerank_server
    monkeypatch.setattr(jina_rerank, "JINA_API_URL", url + "/v1/rerank")
    compressor = jina_rerank.JinaRerank(jina_api_key="s3cret", model="bge-reranker-base", top_n=2)
    kept = compressor.compress_documents([Document(page_content=d) for d in DOCUMENTS], "火车票")
    expected = reranker.score("火车票", DOCUMENTS)
    best = sorted(range(4), key=lambda i: -expected[i])[:2]
    assert [d.page_content for d in kept] == [DOCUMENTS[i] for i in best]
    assert kept[0].metadata["relevance_score"] == pytest.approx(expected[best[0]])


def test_mcp_search_reranks_with_the_tiny_cross_encoder(home, runner, tiny_reranker):
    """`fsearch mcp --reranker FOLDER` over stdio, driven by the official SDK's client."""
    import asyncio
    import json
    import os

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from faiss_search.cli import app

    from .conftest import FSEARCH_CLI
    from .test_cli import SAMPLE

    assert runner.invoke(app, ["index", str(SAMPLE)]).exit_code == 0

    async def session(*args: str) -> list:
        params = StdioServerParameters(command=FSEARCH_CLI[0], args=[*FSEARCH_CLI[1:], "mcp", *args],
                                       env={**os.environ, "FSEARCH_HOME": str(home)})
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            return [await client.call_tool("search", arguments) for arguments in (
                {"query": "火车票", "k": 5, "min_score": 0}, {"query": "火车票", "rerank": False})]

    reranked, plain = [json.loads(r.content[0].text) if not r.structured_content else r.structured_content
                       for r in asyncio.run(session("--reranker", str(tiny_reranker)))]
    assert reranked["reranker"] == str(tiny_reranker.resolve()) and "reranker" not in plain
    expected = CrossEncoderReranker(tiny_reranker, "tiny").score("火车票", [h["text"] for h in reranked["results"]])
    scores = [hit["rerank_score"] for hit in reranked["results"]]
    assert scores == sorted(scores, reverse=True) and scores == pytest.approx(expected, abs=1e-3)


def test_mcp_without_a_reranker_says_so(home, sample_indexed):
    import asyncio

    from mcp.server.mcpserver.exceptions import ToolError

    from faiss_search.config import load_settings
    from faiss_search.serve.mcp import build_server

    server = build_server(_searcher(sample_indexed), load_settings())
    with pytest.raises(ToolError, match="no reranker"):  # the SDK's client gets it as an error result
        asyncio.run(server.call_tool("search", {"query": "火车票", "rerank": True}))


def test_fsearch_serve_with_a_reranker_from_the_command_line(home, sample_indexed, tiny_reranker):
    """The flags reach the app: `fsearch serve --reranker FOLDER` answers /v1/rerank and reranks /v1/search."""
    import os
    import subprocess

    from .conftest import FSEARCH_CLI
    from .servers import free_port, wait_until_up

    port = free_port()
    process = subprocess.Popen([*FSEARCH_CLI, "serve", "--port", str(port), "--reranker", str(tiny_reranker),
                                "--shutdown-timeout", "1", "--no-access-log"],
                               env={**os.environ, "FSEARCH_HOME": str(home)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/ready")
        status, body = post(url, "/v1/rerank", {"query": "火车", "documents": DOCUMENTS, "top_n": 2})
        assert status == 200 and len(body["results"]) == 2
        status, found = post(url, "/v1/search", {"query": "火车票", "top_k": 2})
        assert status == 200 and found["reranker"] == str(tiny_reranker.resolve())
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert f"reranking with {tiny_reranker.resolve()}" in err and "Traceback" not in err


def test_reranking_follows_a_rebuild_under_a_running_server_and_prompt(home, fake_embedder, capsys):
    """The reranker sees the new generation's chunks, in serve and in the prompt, with no restart."""
    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_documents
    from faiss_search.repl import run_repl
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores.local.reader import IndexReader

    from .test_trust import doc_set, doc_text

    settings = load_settings()
    index_documents(doc_set("A", 8), settings, fake_embedder)
    served, prompted = CharacterReranker(), CharacterReranker()
    with uvicorn_app(create_app(fake_embedder, Searcher(IndexReader(settings.index_folder), fake_embedder),
                                reranker=served, rerank_searches=True)) as url:
        assert post(url, "/v1/search", {"query": doc_text("A", 2), "top_k": 3, "mode": "dense"})[0] == 200
        index_documents(doc_set("B", 4), settings, fake_embedder, rebuild=True)
        status, body = post(url, "/v1/search", {"query": doc_text("B", 3), "top_k": 3, "mode": "dense"})
    assert status == 200 and body["results"][0]["source"] == "B-3"
    assert all(text.startswith("B-") for text in served.asked[-1])  # only the new generation was reranked

    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder, reranker=prompted)
    lines = iter([doc_text("B", 1), doc_text("C", 1), ":quit"])

    def read_line(_: str) -> str:
        line = next(lines)
        if line.startswith("C"):
            index_documents(doc_set("C", 4), settings, fake_embedder, rebuild=True)
        return line

    run_repl(searcher, 1, mode="dense", read_line=read_line, rerank=True)
    assert all(text.startswith("B-") for text in prompted.asked[0])
    assert all(text.startswith("C-") for text in prompted.asked[1])
    assert "reranked by characters" in capsys.readouterr().out
