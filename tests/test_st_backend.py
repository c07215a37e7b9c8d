"""The sentence-transformers backend on a real model layout (bge-small-zh-v1.5) with small random weights."""

import json
import shutil

import numpy as np

from faiss_search.cli import app
from faiss_search.embedding import load_embedder
from faiss_search.models.registry import METADATA_FILE, resolve_model

BGE_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："


def test_folder_model_encodes_normalized_float32(tiny_model, tmp_path):
    embedder = load_embedder(resolve_model(str(tiny_model), tmp_path))
    vectors = embedder.encode_passages(["高铁很快。", "Bread needs yeast."])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.info.dim == 512 and embedder.info.max_tokens == 512
    assert embedder.count_tokens(["你好"]) == [4]  # [CLS] 你 好 [SEP]


def test_registry_prefixes_apply_to_queries_only(tiny_model, tmp_path):
    downloaded = tmp_path / "bge-small-zh"
    shutil.copytree(tiny_model, downloaded)
    (downloaded / METADATA_FILE).write_text(json.dumps({"alias": "bge-small-zh"}))
    embedder = load_embedder(resolve_model(str(downloaded), tmp_path))
    assert embedder.info.query_prefix == BGE_INSTRUCTION and embedder.info.passage_prefix == ""
    raw = embedder.model.encode([BGE_INSTRUCTION + "火车", "火车"], normalize_embeddings=True)
    assert np.allclose(embedder.encode_queries(["火车"])[0], raw[0], atol=1e-5)
    assert np.allclose(embedder.encode_passages(["火车"])[0], raw[1], atol=1e-5)


def test_index_and_search_with_a_model_folder(home, runner, tiny_model, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("第一句话\n第二句话\nthird sentence\n", encoding="utf-8")
    result = runner.invoke(app, ["index", str(corpus), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["dim"] == 512 and status["chunks"] == 3 and status["model"] == str(tiny_model)
    # the index remembers its model: no --model needed to search it
    found = json.loads(runner.invoke(app, ["search", "第二句话", "--json", "-k", "1"]).stdout)
    assert found["results"][0]["text"] == "第二句话"
    # asking for the bundled default instead is refused, naming both models
    result = runner.invoke(app, ["search", "x", "--model", "multilingual-e5-small-q4"])
    assert result.exit_code == 2 and "built with model" in result.stderr


def test_broken_model_folder_is_a_clean_error(home, runner, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    corpus = tmp_path / "c.txt"
    corpus.write_text("some text\n")
    result = runner.invoke(app, ["index", str(corpus), "--model", str(broken)])
    assert result.exit_code == 2 and "cannot load the model" in result.stderr
