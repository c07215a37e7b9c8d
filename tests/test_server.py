"""`fsearch serve` called with real clients: the openai package, LangChain, raw token ids."""

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.retrieval.search import open_searcher
from faiss_search.serve import api as server_module
from faiss_search.serve.app import create_app

from .conftest import FSEARCH_CLI
from .servers import uvicorn_app

TEXTS = ["高铁是城市之间最快的交通工具。", "How do I bake bread?", "熊猫吃竹子"]


class CountingEmbedder:
    """The real default model, counting encode calls (to see batching)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.info, self.long_input_policy = inner.info, inner.long_input_policy

    def encode_passages(self, texts):
        self.calls += 1
        return self.inner.encode_passages(texts)

    def encode_queries(self, texts):
        self.calls += 1
        return self.inner.encode_queries(texts)

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)

    def use_query_prefix(self, on):
        self.inner.use_query_prefix(on)

    def twin(self):
        return self  # one counter for both lanes


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """fsearch serve's app over the sample index, on 127.0.0.1."""
    import os

    from .test_cli import SAMPLE

    home = tmp_path_factory.mktemp("serve-home")
    os.environ["FSEARCH_HOME"] = str(home)
    try:
        from typer.testing import CliRunner

        assert CliRunner().invoke(app, ["index", str(SAMPLE)]).exit_code == 0
        settings = load_settings()
        searcher = open_searcher(settings.index_folder, settings.models_dir)
        embedder = CountingEmbedder(searcher.embedder)
        searcher._embedder = embedder
        with uvicorn_app(create_app(embedder, searcher)) as url:
            yield url, embedder, searcher
    finally:
        os.environ.pop("FSEARCH_HOME", None)


def post(url, path, body, headers=None):
    request = urllib.request.Request(url + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json", **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def cosines(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_openai_client_gets_the_local_vectors(served):
    from openai import OpenAI

    url, embedder, _ = served
    client = OpenAI(base_url=url + "/v1", api_key="not-needed")
    response = client.embeddings.create(model="multilingual-e5-small-q4", input=TEXTS)  # base64 by default
    remote = [item.embedding for item in response.data]
    assert cosines(remote, embedder.inner.encode_passages(TEXTS)).min() >= 0.9999
    assert response.model == "multilingual-e5-small-q4" and response.usage.prompt_tokens > len(TEXTS)
    floats = client.embeddings.create(model="m", input="熊猫", encoding_format="float")
    assert len(floats.data[0].embedding) == 384


def test_langchain_gets_the_local_vectors(served):
    from langchain_openai import OpenAIEmbeddings

    url, embedder, _ = served
    lc = OpenAIEmbeddings(model="multilingual-e5-small-q4", base_url=url + "/v1", api_key="x",
                          check_embedding_ctx_length=False)
    assert cosines(lc.embed_documents(TEXTS), embedder.inner.encode_passages(TEXTS)).min() >= 0.9999
    assert len(lc.embed_query("熊猫")) == 384


def test_token_ids_get_a_guiding_400_or_are_decoded(served, monkeypatch):
    url, embedder, _ = served
    status, body = post(url, "/v1/embeddings", {"model": "m", "input": [[1, 2, 3], [4, 5]]})
    if server_module.token_decoder() is None:  # no cl100k_base file on this machine
        assert status == 400 and "check_embedding_ctx_length=False" in body["error"]["message"]

    class Decoder:
        def decode(self, ids):
            return "熊猫" if ids[0] == 1 else "bread"

    monkeypatch.setattr(server_module, "token_decoder", lambda: Decoder())
    status, body = post(url, "/v1/embeddings", {"model": "m", "input": [[1, 2, 3], [4, 5]]})
    assert status == 200 and len(body["data"]) == 2
    expected = embedder.inner.encode_passages(["熊猫", "bread"])
    assert cosines([d["embedding"] for d in body["data"]], expected).min() >= 0.9999
    status, body = post(url, "/v1/embeddings", {"model": "m", "input": [1, 2, 3]})
    assert status == 200 and len(body["data"]) == 1


def test_query_input_type_and_base64(served):
    url, embedder, _ = served
    status, body = post(url, "/v1/embeddings", {"model": "m", "input": "熊猫", "input_type": "query",
                                                "encoding_format": "base64"})
    vector = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert status == 200 and cosines([vector], embedder.inner.encode_queries(["熊猫"]))[0] >= 0.9999


@pytest.mark.parametrize("body, status, fragment", [
    ({"model": "m", "input": "x", "dimensions": 128}, 400, "dimensions=128 is not supported"),
    ({"model": "m", "input": ""}, 400, "must not be empty"),
    ({"model": "m", "input": [{"a": 1}]}, 400, "input must be"),
    ({"model": "m", "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"model": "m", "input": ["x"] * 3000}, 413, "too many inputs"),
    ({"model": "m", "input": "长" * 200_000}, 413, "longer than"),
])
def test_bad_requests_are_clear(served, body, status, fragment):
    url, _, _ = served
    got, answer = post(url, "/v1/embeddings", body)
    assert got == status and fragment in answer["error"]["message"]


def test_malformed_json_is_400_not_422(served):
    url, _, _ = served
    request = urllib.request.Request(url + "/v1/embeddings", b"{not json", {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and "invalid request" in json.loads(info.value.read())["error"]["message"]


def test_models_health_and_dimensions_equal(served):
    url, _, _ = served
    models = json.loads(urllib.request.urlopen(url + "/v1/models").read())
    assert models["data"][0]["id"] == "multilingual-e5-small-q4"
    health = json.loads(urllib.request.urlopen(url + "/health").read())
    assert health == {"status": "ok", "model": "multilingual-e5-small-q4", "dim": 384, "index_chunks": 20}
    assert post(url, "/v1/embeddings", {"model": "m", "input": "x", "dimensions": 384})[0] == 200


def test_search_route_returns_the_cli_objects(served):
    url, _, searcher = served
    status, body = post(url, "/v1/search", {"query": "坐火车去别的城市", "top_k": 2, "mode": "hybrid"})
    local = searcher.search("坐火车去别的城市", 2, "hybrid").to_dict()
    assert status == 200 and body["results"] == local["results"] and body["mode"] == "hybrid"
    assert post(url, "/v1/search", {"query": "x", "top_k": 0})[0] == 400
    assert post(url, "/v1/search", {"query": "", "top_k": 1})[1]["error"]["message"] == "empty query"


def test_concurrent_requests_are_batched_and_each_gets_its_own_vector(served):
    url, embedder, _ = served
    before = embedder.calls
    texts = [f"第{i}个句子讲的是不同的事情" for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda t: post(url, "/v1/embeddings", {"model": "m", "input": t}), texts))
    vectors = [body["data"][0]["embedding"] for _, body in answers]
    assert cosines(vectors, embedder.inner.encode_passages(texts)).min() >= 0.9999
    assert embedder.calls - before < len(texts)


def test_api_key_is_required_except_for_health(served):
    _, embedder, _ = served
    with uvicorn_app(create_app(embedder.inner, api_key="s3cret", max_body_bytes=2000)) as url:
        assert post(url, "/v1/embeddings", {"model": "m", "input": "x"})[0] == 401
        status, _ = post(url, "/v1/embeddings", {"model": "m", "input": "x"}, {"Authorization": "Bearer s3cret"})
        assert status == 200
        assert json.loads(urllib.request.urlopen(url + "/health").read())["status"] == "ok"
        big = post(url, "/v1/embeddings", {"model": "m", "input": "x" * 5000}, {"Authorization": "Bearer s3cret"})
        assert big[0] == 413 and "larger than 2000 bytes" in big[1]["error"]["message"]
        assert post(url, "/v1/search", {"query": "x"}, {"Authorization": "Bearer s3cret"})[0] == 404


def test_the_serve_command(home, tmp_path):
    """`fsearch serve` itself: flags, the API key from the environment, the index, a clean stop."""
    import os
    import subprocess

    from .servers import free_port, wait_until_up
    from .test_cli import SAMPLE

    env = {**os.environ, "FSEARCH_HOME": str(home), "FSEARCH_SERVE_API_KEY": "k"}
    subprocess.run([*FSEARCH_CLI, "index", str(SAMPLE)], env=env, check=True,
                   capture_output=True)
    port = free_port()
    process = subprocess.Popen([*FSEARCH_CLI, "serve", "--port", str(port),
                                "--shutdown-timeout", "1"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/health")
        assert post(url, "/v1/search", {"query": "熊猫", "top_k": 1})[0] == 401
        status, body = post(url, "/v1/search", {"query": "熊猫", "top_k": 1}, {"Authorization": "Bearer k"})
        assert status == 200 and "竹子" in body["results"][0]["text"]
        # SIGTERM while a request needing ~15 s of work runs: the server stops within its shutdown deadline
        big = {"model": "m", "input": ["大熊猫生活在四川的山里，每天吃很多竹子。" * 25] * 40}
        threading.Thread(target=lambda: _ignore_errors(post, url, "/v1/embeddings", big,
                                                       {"Authorization": "Bearer k"}), daemon=True).start()
        time.sleep(1.0)
    finally:
        stopping = time.monotonic()
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert time.monotonic() - stopping < 6, "shutdown waited for the whole request"
    assert "serving multilingual-e5-small-q4" in err and "(API key required)" in err and "Traceback" not in err
    assert '"path": "/v1/search"' in err  # the access log, one JSON line per request


def _ignore_errors(function, *args):
    try:
        function(*args)
    except OSError:
        pass  # the server went away, as it was told to
