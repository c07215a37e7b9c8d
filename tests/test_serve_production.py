"""`fsearch serve` behind a load balancer: hostile requests, fairness, limits, errors, metrics, readiness.

Raw HTTP (http.client) and the openai SDK on 127.0.0.1; a slow fake model makes scheduling observable.
"""

import base64
import http.client
import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from faiss_search.cli import app
from faiss_search.embedding import load_embedder
from faiss_search.errors import IndexBusyError, ModelLoadError, RemoteEmbeddingError, StoreError
from faiss_search.models.registry import resolve_model
from faiss_search.remote import OpenAIEmbedder, Servers
from faiss_search.serve.app import create_app

from .conftest import FakeEmbedder
from .servers import uvicorn_app


class SlowEmbedder(FakeEmbedder):
    """A fake model that takes ``seconds`` per text, fails on 'BOOM' (ValueError) and 'CRASH' (RuntimeError)."""

    def __init__(self, seconds=0.0, fail_to_load=False):
        super().__init__("slow", dim=8)
        self.seconds, self.fail_to_load, self.encoded, self.calls = seconds, fail_to_load, 0, []

    def encode_passages(self, texts):
        if self.fail_to_load:
            raise ModelLoadError("the model file is damaged")
        if any("BOOM" in t for t in texts):
            raise ValueError("the engine cannot take this text")
        if any("CRASH" in t for t in texts):
            raise RuntimeError("engine fault")
        time.sleep(self.seconds * len(texts))
        self.encoded += len(texts)
        self.calls.append(list(texts))
        return super().encode_passages(texts)

    def encode_queries(self, texts):
        return super().encode_passages(["q " + t for t in texts])

    def twin(self):
        """A second instance, as the bundled engine gets (its own calls, its own lock)."""
        if not hasattr(self, "other"):
            self.other = SlowEmbedder(self.seconds, self.fail_to_load)
        return self.other


def request(url, method, path, body=None, headers=None, raw=None, timeout=30):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()  # a client that gives up closes its connection
    return response.status, (json.loads(data) if data.startswith(b"{") else data.decode())


def embed(url, texts, **extra):
    return request(url, "POST", "/v1/embeddings", {"model": "m", "input": texts, **extra})


@pytest.fixture
def slow():
    embedder = SlowEmbedder()
    with uvicorn_app(create_app(embedder)) as url:
        yield url, embedder


@pytest.fixture(scope="module")
def e5_server():
    embedder = load_embedder(resolve_model("multilingual-e5-small-q4", None))
    with uvicorn_app(create_app(embedder, api_key="K")) as url:
        yield url, embedder


# -- hostile and odd requests ------------------------------------------------------------------------------

def test_one_bad_input_fails_only_its_own_request(e5_server):
    url, embedder = e5_server
    auth = {"Authorization": "Bearer K"}
    bodies = [{"model": "m", "input": "x \ud800"}] + [{"model": "m", "input": f"熊猫{i}"} for i in range(6)]
    with ThreadPoolExecutor(7) as pool:
        answers = list(pool.map(lambda b: request(url, "POST", "/v1/embeddings", b, auth), bodies))
    assert answers[0][0] == 400 and "lone surrogate" in answers[0][1]["error"]["message"]
    assert answers[0][1]["error"]["type"] == "invalid_request_error"
    assert all(status == 200 for status, _ in answers[1:])


def test_engine_errors_are_per_request_and_classified(slow):
    url, _ = slow
    with ThreadPoolExecutor(3) as pool:
        bad, fault, good = pool.map(lambda text: embed(url, text), ["BOOM here", "CRASH here", "fine"])
    assert bad[0] == 400 and bad[1]["error"]["param"] == "input"
    assert fault[0] == 500 and fault[1]["error"]["type"] == "server_error"
    assert good[0] == 200 and len(good[1]["data"]) == 1


def test_a_nul_does_not_cut_the_text(e5_server):
    url, embedder = e5_server
    whole = embedder.encode_passages(["大熊猫吃竹子\0长城在北方，高铁很快"])[0]
    head = embedder.encode_passages(["大熊猫吃竹子"])[0]
    assert float(whole @ head) < 0.98  # the rest of the text counts
    auth = {"Authorization": "bearer K"}  # the scheme in lower case is accepted
    status, body = request(url, "POST", "/v1/embeddings", {"model": "m", "input": "大熊猫吃竹子\0长城在北方，高铁很快"},
                           auth)
    _, head_only = request(url, "POST", "/v1/embeddings", {"model": "m", "input": "大熊猫吃竹子"}, auth)
    assert status == 200 and body["usage"]["prompt_tokens"] > head_only["usage"]["prompt_tokens"]
    assert np.allclose(body["data"][0]["embedding"], whole, atol=1e-5)


def test_a_chunked_body_over_the_limit_is_refused_while_reading():
    with uvicorn_app(create_app(SlowEmbedder(), max_body_bytes=10_000)) as url:
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)

        def body():
            yield b'{"model": "m", "input": "'
            for _ in range(200):
                yield b"x" * 1000
            yield b'"}'

        conn.request("POST", "/v1/embeddings", body(), {"Content-Type": "application/json"}, encode_chunked=True)
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 413 and "larger than 10000 bytes" in answer["error"]["message"]


@pytest.mark.parametrize("method, path, raw, status", [
    ("GET", "/nowhere", None, 404),
    ("GET", "/v1/embeddings", None, 405),
    ("POST", "/v1/embeddings", b'{"model": "m", "input": "\xff\xfe"}', 400),
    ("POST", "/v1/embeddings", b"{not json", 400),
    ("GET", "/v1/models/unknown-model", None, 404),
])
def test_every_error_is_openai_style_json(slow, method, path, raw, status):
    url, _ = slow
    got, body = request(url, method, path, raw=raw)
    assert got == status and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert "detail" not in body and "JSON decode error" not in body["error"]["message"]


@pytest.mark.parametrize("extra, param, fragment", [
    ({"dimensions": "384"}, "dimensions", "valid integer"),
    ({"input": [True, False]}, "input", "input must be"),
    ({"encoding_format": "int8"}, "encoding_format", "float"),
    ({"input_type": "search"}, "input_type", "query"),
])
def test_typed_validation_of_embeddings_requests(slow, extra, param, fragment):
    url, _ = slow
    status, body = request(url, "POST", "/v1/embeddings", {"model": "m", "input": "x", **extra})
    assert status == 400 and body["error"]["param"] == param and fragment in body["error"]["message"], body


def test_typed_validation_of_search_requests(home, fake_embedder):
    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_documents
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores.local.reader import IndexReader

    from .test_trust import doc_set

    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    with uvicorn_app(create_app(fake_embedder, Searcher(IndexReader(settings.index_folder), fake_embedder))) as url:
        for body, param in (({"query": "x", "top_k": True}, "top_k"), ({"query": 5}, "query"),
                            ({"query": "x", "mode": "fuzzy"}, "mode"), ({"query": "x", "top_k": 101}, "top_k")):
            status, answer = request(url, "POST", "/v1/search", body)
            assert status == 400 and answer["error"]["param"] == param, (body, answer)
        assert request(url, "POST", "/v1/search", {"query": "熊猫", "top_k": 2})[0] == 200


@pytest.mark.parametrize("error", [StoreError("Milvus http://milvus:19530 is unreachable"),
                                   IndexBusyError("the index is being rebuilt")])
def test_a_store_that_fails_here_is_a_503_not_a_bug(home, fake_embedder, monkeypatch, error):
    """What failed is on this side and may pass (a Milvus server away, a busy index): 503, with its one line."""
    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_documents
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores.local.reader import IndexReader

    from .test_trust import doc_set

    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(Searcher, "search", fail)  # the quick lane's searcher too
    with uvicorn_app(create_app(fake_embedder, searcher)) as url:
        status, answer = request(url, "POST", "/v1/search", {"query": "熊猫"})
    assert status == 503 and answer["error"]["message"] == error.message, answer


def test_models_retrieve_and_the_query_side_name(slow):
    from openai import OpenAI

    url, embedder = slow
    client = OpenAI(base_url=url + "/v1", api_key="x")
    assert [m.id for m in client.models.list().data] == ["slow", "slow:query"]
    assert client.models.retrieve("slow:query").id == "slow:query"
    as_query = client.embeddings.create(model="slow:query", input="熊猫", encoding_format="float").data[0].embedding
    as_passage = client.embeddings.create(model="slow", input="熊猫", encoding_format="float").data[0].embedding
    assert np.allclose(as_query, embedder.encode_queries(["熊猫"])[0], atol=1e-6)
    assert np.allclose(as_passage, embedder.encode_passages(["熊猫"])[0], atol=1e-6)


def test_server_faults_are_5xx_and_readiness_says_why():
    with uvicorn_app(create_app(SlowEmbedder(fail_to_load=True))) as url:
        status, body = request(url, "GET", "/ready")
        assert status == 503 and not body["ready"] and "damaged" in body["problems"][0]
        status, body = embed(url, "x")
        assert status == 503 and body["error"]["type"] == "server_error"
        assert request(url, "GET", "/health")[0] == 200  # alive, not ready


# -- fairness, cancellation, budgets --------------------------------------------------------------------------

def test_requests_in_one_lane_take_turns():
    embedder = SlowEmbedder(seconds=0.004)
    with uvicorn_app(create_app(embedder)) as url:
        with ThreadPoolExecutor(2) as pool:
            big = pool.submit(embed, url, [f"big {i}" for i in range(400)])  # ~1.6 s of work
            time.sleep(0.2)
            medium = embed(url, [f"medium {i}" for i in range(10)])  # too many texts for the quick lane
            big_done_when_medium_answered = big.done()
            assert medium[0] == 200 and not big_done_when_medium_answered
            assert big.result()[0] == 200 and len(big.result()[1]["data"]) == 400
    assert max(len(call) for call in embedder.calls) <= 64
    medium_calls = [i for i, call in enumerate(embedder.calls) if any(t.startswith("medium") for t in call)]
    assert medium_calls and medium_calls[-1] < len(embedder.calls) - 3  # served between the big one's batches


def test_a_search_holds_the_quick_lane_only_while_its_query_is_embedded(home, fake_embedder, monkeypatch):
    """While /v1/search looks through the index (no model needed), a query on the same lane is embedded."""
    import threading

    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_documents
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores.local.reader import IndexReader

    from .test_trust import doc_set

    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    searching, release = threading.Event(), threading.Event()
    real_dense_search = IndexReader.dense_search

    def held(self, *args, **kwargs):
        searching.set()
        release.wait(60)
        return real_dense_search(self, *args, **kwargs)

    monkeypatch.setattr(IndexReader, "dense_search", held)
    with uvicorn_app(create_app(fake_embedder, Searcher(IndexReader(settings.index_folder), fake_embedder))) as url:
        with ThreadPoolExecutor(2) as pool:
            search = pool.submit(request, url, "POST", "/v1/search", {"query": "熊猫", "mode": "dense"})
            assert searching.wait(30)
            query = pool.submit(embed, url, "熊猫吃什么")
            try:
                assert query.result(timeout=20)[0] == 200 and not search.done()
            finally:
                release.set()
            assert search.result()[0] == 200


def test_a_query_runs_beside_a_bulk_request_on_its_own_model_instance():
    embedder = SlowEmbedder(seconds=0.01)
    with uvicorn_app(create_app(embedder)) as url:
        with ThreadPoolExecutor(1) as pool:
            big = pool.submit(embed, url, [f"big {i}" for i in range(200)])  # ~2 s on the bulk lane
            time.sleep(0.3)
            started = time.monotonic()
            status, _ = embed(url, "熊猫吃什么", input_type="query")
            waited = time.monotonic() - started
            assert status == 200 and not big.done()
            assert big.result()[0] == 200
    assert embedder.other.calls and all("big" not in text for call in embedder.other.calls for text in call)
    assert all("熊猫吃什么" not in call for call in embedder.calls)  # never queued behind the bulk lane
    assert waited < 2  # far less than the big request (a loose bound; the point is the lane)


def test_an_abandoned_request_is_dropped():
    embedder = SlowEmbedder(seconds=0.005)
    with uvicorn_app(create_app(embedder)) as url:
        with pytest.raises((TimeoutError, socket.timeout, OSError)):
            request(url, "POST", "/v1/embeddings", {"model": "m", "input": [f"t{i}" for i in range(600)]}, timeout=0.4)
        time.sleep(4.0)  # the whole request would have taken 3 s
        assert embedder.encoded < 450  # noticed within 0.25 s, dropped after the batch in progress


def test_a_request_over_its_time_budget_gets_a_504():
    with uvicorn_app(create_app(SlowEmbedder(seconds=0.01), request_seconds=0.3)) as url:
        status, body = embed(url, [f"t{i}" for i in range(300)])
    assert status == 504 and "budget" in body["error"]["message"]


def test_a_busy_port_is_one_clear_line_before_serving(home, runner):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        result = runner.invoke(app, ["serve", "--port", str(busy.getsockname()[1])])
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1" in result.stderr
    assert "serving" not in result.output and "Traceback" not in result.output


# -- operations ----------------------------------------------------------------------------------------------------

def test_metrics_in_prometheus_format_and_an_access_log(slow, caplog):
    from prometheus_client.parser import text_string_to_metric_families

    url, _ = slow
    with caplog.at_level(logging.INFO, logger="fsearch.access"):
        assert embed(url, ["a", "b", "c"])[0] == 200
        assert request(url, "GET", "/nowhere")[0] == 404
    status, text = request(url, "GET", "/metrics")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("fsearch_requests_total", (("route", "/v1/embeddings"), ("status", "200")))] == 1
    assert samples[("fsearch_requests_total", (("route", "unmatched"), ("status", "404")))] == 1
    assert samples[("fsearch_inputs_total", ())] >= 3 and samples[("fsearch_tokens_total", ())] >= 3
    assert ("fsearch_request_seconds_bucket", (("le", "0.5"), ("route", "/v1/embeddings"))) in samples
    assert ("fsearch_batch_texts_count", ()) in samples and ("fsearch_queue_texts", ()) in samples
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fsearch.access"]
    posted = [line for line in lines if line["path"] == "/v1/embeddings"]
    assert len(posted) == 1 and posted[0]["method"] == "POST" and posted[0]["status"] == 200
    assert posted[0]["ms"] > 0 and posted[0]["client"] == "127.0.0.1"
    assert any(line["path"] == "/nowhere" and line["status"] == 404 for line in lines)


# -- the remote embedder (fsearch index --embedder openai) -------------------------------------------------------

def test_base_urls_in_both_forms_and_without_a_scheme(slow, monkeypatch):
    url, embedder = slow
    for form in (url, url + "/v1", url + "/v1/"):
        vectors = OpenAIEmbedder("slow", [form]).encode_passages(["熊猫"])
        assert np.allclose(vectors[0], embedder.encode_passages(["熊猫"])[0], atol=1e-6)
    started = time.monotonic()
    with pytest.raises(RemoteEmbeddingError, match="needs http:// or https://"):
        OpenAIEmbedder("slow", ["127.0.0.1:8000"])
    assert time.monotonic() - started < 0.5


def test_only_the_key_named_for_fsearch_is_sent(monkeypatch):
    with uvicorn_app(create_app(SlowEmbedder(), api_key="sk-same")) as url:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-same")  # would open this server, but is meant for OpenAI
        monkeypatch.delenv("FSEARCH_API_KEY", raising=False)
        with pytest.raises(RemoteEmbeddingError, match="401"):
            OpenAIEmbedder("slow", [url], retries=0).encode_passages(["x"])
        monkeypatch.setenv("FSEARCH_API_KEY", "sk-same")
        assert OpenAIEmbedder("slow", [url]).encode_passages(["x"]).shape == (1, 8)


def test_short_messages_for_answers_that_are_not_embeddings(monkeypatch):
    blob = base64.b64encode(b"\x00" * 30_000).decode()
    answers = iter([{"data": [{"embedding": [1.0, 0.0]}]}, {"data": [{"index": 0, "embedding": blob}]}])
    monkeypatch.setattr(Servers, "post", lambda self, url, path, body: next(answers))
    for fragment in ("the field 'index' is missing", "ValueError"):
        with pytest.raises(RemoteEmbeddingError) as info:
            OpenAIEmbedder("x", ["http://127.0.0.1:9"])._request(["a"], "passage")
        assert fragment in info.value.message and len(info.value.message) < 300


def test_a_damaged_index_makes_the_server_unready_not_dead(home, fake_embedder):
    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_documents
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores.local.reader import IndexReader

    from .test_trust import doc_set, swap_two_ids

    settings = load_settings()
    index_documents(doc_set("A", 3), settings, fake_embedder)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    with uvicorn_app(create_app(fake_embedder, searcher)) as url:
        index_documents(doc_set("A", 4), settings, fake_embedder)  # a new generation, then damaged on disk
        swap_two_ids(settings.index_folder)
        assert request(url, "GET", "/health")[0] == 200
        status, body = request(url, "GET", "/ready")
        assert status == 503 and "checksum" in body["problems"][0]
        status, body = request(url, "POST", "/v1/search", {"query": "熊猫"})
        assert status == 503 and "checksum" in body["error"]["message"]
