"""The core flows on every backend: the bundled model, a sentence-transformers folder, a remote server.

Index, unchanged re-index, edit, delete, search in every mode, doctor, repair and serve, each through
the CLI, so that what breaks with one kind of model (as re-indexing with every downloaded model once
did) cannot hide behind the bundled one.
"""

import json
import urllib.request
from pathlib import Path

import pytest

from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.retrieval.search import open_searcher
from faiss_search.serve.app import create_app

from .conftest import FakeEmbedder
from .servers import uvicorn_app

DOCS = {"trains.txt": "高铁是城市之间最快的交通工具。\n", "panda.txt": "熊猫每天吃很多竹子。\n",
        "bread.md": "Bake bread with flour, water and yeast.\n"}


@pytest.fixture(params=[pytest.param("bundled", marks=pytest.mark.real_model), "folder", "remote"])
def backend(request, home, tmp_path) -> list[str]:
    """The `fsearch index` options that select each backend."""
    if request.param == "bundled":
        yield []
    elif request.param == "folder":
        yield ["--model", str(request.getfixturevalue("tiny_model"))]
    else:
        with uvicorn_app(create_app(FakeEmbedder("remote-fake", dim=16))) as url:
            yield ["--embedder", "openai", "--model", "remote-fake", "--base-url", url]


def invoke(runner, *args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    return result


def index(runner, folder, backend):
    result = invoke(runner, "index", folder, "--json", *backend)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def hits(runner, query, mode):
    result = invoke(runner, "search", query, "--json", "--mode", mode, "-k", "5")
    found = json.loads(result.stdout)["results"]
    assert result.exit_code == (0 if found else 1), result.output  # like grep: 1 when nothing was found
    return found


def test_core_flows(backend, runner, tmp_path, home):
    folder = tmp_path / "kb"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    assert index(runner, folder, backend)["files_added"] == 3
    again = index(runner, folder, [])  # the index's own backend, without options
    assert again["files_unchanged"] == 3 and again["chunks_embedded"] == 0
    (folder / "panda.txt").write_text("熊猫其实也吃一点肉。\n", encoding="utf-8")
    (folder / "bread.md").unlink()
    changed = index(runner, folder, [])
    assert (changed["files_changed"], changed["files_removed"], changed["total_files"]) == (1, 1, 2)
    for mode in ("hybrid", "dense", "keyword"):
        found = hits(runner, "熊猫吃肉", mode)
        assert found, mode
        for hit in found:
            assert hit["text"] in Path(hit["source"]).read_text(encoding="utf-8"), (mode, hit)
    assert not any("bread" in hit["text"] or "竹子" in hit["text"] for hit in hits(runner, "bread 竹子", "keyword"))
    assert invoke(runner, "doctor").exit_code == 0
    next((home / "index").glob("vectors-*.faiss")).unlink()  # lost vectors: rebuilt with the index's own model
    assert invoke(runner, "doctor").exit_code == 1
    repaired = invoke(runner, "doctor", "--repair", "--json")
    assert repaired.exit_code == 0 and json.loads(repaired.stdout)["healthy"], repaired.output
    assert "熊猫" in hits(runner, "熊猫其实也吃一点肉。", "dense")[0]["text"]

    settings = load_settings()
    searcher = open_searcher(settings.index_folder, settings.models_dir)
    with uvicorn_app(create_app(searcher.embedder, searcher)) as url:
        (folder / "tea.txt").write_text("普洱茶是云南的后发酵茶。\n", encoding="utf-8")
        index(runner, folder, [])
        health = json.loads(urllib.request.urlopen(url + "/health", timeout=10).read())
        assert health["index_chunks"] == 3
        body = json.dumps({"query": "普洱茶", "top_k": 1, "mode": "keyword"}).encode()
        request = urllib.request.Request(url + "/v1/search", body, {"Content-Type": "application/json"})
        served = json.loads(urllib.request.urlopen(request, timeout=10).read())["results"]
        assert served[0]["text"] == "普洱茶是云南的后发酵茶。"
