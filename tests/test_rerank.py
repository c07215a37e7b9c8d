"""Reranking: a cross-encoder (local or a server) re-scores the first hits, through the library, CLI and prompt."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from faiss_search.cli import _optional_values, app
from faiss_search.config import load_settings
from faiss_search.errors import InputError, ModelKindError, ModelLoadError, RerankError
from faiss_search.models.registry import EMBEDDING, RERANKER, find_model, resolve_model
from faiss_search.reranking import CrossEncoderReranker, RemoteReranker

from .conftest import FSEARCH_CLI
from .servers import fake_reranking_server, free_port, overlap_score


class CharacterReranker:
    """Scores by the query characters a passage holds; records what it was asked."""

    name = "characters"

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def score(self, query, passages):
        self.asked.append(list(passages))
        return [overlap_score(query, p) for p in passages]


def _searcher(index: Path, reranker=None, candidates: int = 10):
    from faiss_search.backends import choose_embedder
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores import open_reader

    reader = open_reader(index, None)
    embedder = choose_embedder(reader.manifest.model, index.parent / "models")
    return Searcher(reader, embedder, reranker=reranker, rerank_candidates=candidates)


# -- the registry: rerankers by alias, and each kind refused where the other is needed -------------------

def test_rerankers_are_known_by_alias_on_both_hubs():
    for alias in ("bge-reranker-base", "bge-reranker-large", "bge-reranker-v2-m3"):
        spec = find_model(alias)
        assert spec is not None and spec.kind == RERANKER and spec.hf_id and spec.modelscope_id
    assert find_model("bge-small-zh").kind == EMBEDDING


def test_a_model_of_the_other_kind_is_refused_with_what_it_is_for(home, tiny_model, tiny_reranker):
    with pytest.raises(ModelKindError, match="is a reranker"):
        resolve_model(str(tiny_reranker), home / "models")
    with pytest.raises(ModelKindError, match="is an embedding model, not a reranker"):
        resolve_model(str(tiny_model), home / "models", kind=RERANKER)
    with pytest.raises(ModelKindError, match="is a reranker"):
        resolve_model("bge-reranker-base", home / "models")
    with pytest.raises(ModelKindError, match="embedding model"):
        resolve_model("multilingual-e5-small-q4", home / "models", kind=RERANKER)


def test_bad_rerankers_get_one_clear_line_through_the_cli(runner, sample_indexed, tiny_model, tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    for flags, words in ((["--reranker", str(tiny_model)], "is an embedding model, not a reranker"),
                         (["--reranker", str(empty)], "cannot load the reranker"),
                         (["--rerank"], "'bge-reranker-base' is not downloaded")):  # the default reranker
        result = runner.invoke(app, ["search", "火车", *flags])
        assert result.exit_code == 2, result.output
        assert words in result.output and "Traceback" not in result.output


def test_a_reranker_is_no_model_to_index_with(runner, home, tiny_reranker, tmp_path):
    (tmp_path / "a.txt").write_text("火车票", encoding="utf-8")
    result = runner.invoke(app, ["index", str(tmp_path / "a.txt"), "--model", str(tiny_reranker)])
    assert result.exit_code == 2 and "is a reranker" in result.output and "--reranker" in result.output


# -- the searcher ---------------------------------------------------------------------------------------------

def test_reranking_orders_and_scores_the_first_candidates(sample_indexed):
    plain = _searcher(sample_indexed).search("火车票 回家", 10, min_score=0)
    reranker = CharacterReranker()
    result = _searcher(sample_indexed, reranker, candidates=6).search("火车票 回家", 3, min_score=0, rerank=True)
    assert reranker.asked == [[hit.text for hit in plain.hits[:6]]]  # the first six, in their order
    expected = sorted(plain.hits[:6], key=lambda h: -overlap_score("火车票 回家", h.text))[:3]
    assert [hit.chunk_id for hit in result.hits] == [hit.chunk_id for hit in expected]
    assert [hit.rank for hit in result.hits] == [1, 2, 3]
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True) and scores == [hit.rerank_score for hit in result.hits]
    before = {hit.chunk_id: (hit.rank, hit.score) for hit in plain.hits}
    assert all((hit.rank_before_rerank, hit.score_before_rerank) == before[hit.chunk_id] for hit in result.hits)
    body = result.to_dict()
    assert body["reranker"] == "characters" and body["rerank_ms"] >= 0
    assert "reranker" not in plain.to_dict()


def test_reranking_sees_only_what_passed_the_cut_and_the_quoted_phrase(sample_indexed):
    reranker = CharacterReranker()
    searcher = _searcher(sample_indexed, reranker, candidates=20)
    loose = searcher.search("火车", 20, min_score=0)
    strict = searcher.search("火车", 20, min_score=0.7, rerank=True)
    assert len(reranker.asked[-1]) == len(strict.hits) == len(loose.hits) - strict.below_min_score
    quoted = searcher.search('"火车票"', 5, rerank=True)
    assert quoted.hits and all("火车票" in text for text in reranker.asked[-1])


def test_rerank_without_a_reranker_is_an_input_error(sample_indexed):
    with pytest.raises(InputError, match="no reranker"):
        _searcher(sample_indexed).search("火车", 3, rerank=True)


# -- the local cross-encoder ------------------------------------------------------------------------------------

def test_the_cross_encoder_scores_pairs_as_sentence_transformers_does(tiny_reranker):
    from sentence_transformers import CrossEncoder

    texts = ["火车票非常紧张", "绿茶不发酵", "机器学习" * 400]  # the last is cut to the model's limit
    ours = CrossEncoderReranker(tiny_reranker, "tiny", precision="fp32").score("火车", texts)
    theirs = CrossEncoder(str(tiny_reranker), device="cpu", max_length=512).predict([("火车", t) for t in texts])
    assert ours == pytest.approx([float(s) for s in theirs], abs=1e-5)
    assert all(0 < s < 1 for s in ours)
    assert CrossEncoderReranker(tiny_reranker, "tiny").score("火车", []) == []


def test_the_tiny_cross_encoder_reorders_results_through_the_cli(runner, sample_indexed, tiny_reranker):
    plain = json.loads(runner.invoke(app, ["search", "火车票", "--json", "-k", "10", "--min-score", "0"]).output)
    result = runner.invoke(app, ["search", "火车票", "--json", "-k", "10", "--min-score", "0",
                                 "--reranker", str(tiny_reranker)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    hits = body["results"]
    assert body["reranker"] == str(tiny_reranker.resolve())
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True) and scores == [hit["rerank_score"] for hit in hits]
    assert [h["rank_before_rerank"] for h in hits] != list(range(1, len(hits) + 1))  # it did reorder
    assert sorted(h["chunk_id"] for h in hits) == sorted(h["chunk_id"] for h in plain["results"])
    expected = CrossEncoderReranker(tiny_reranker, "tiny").score("火车票", [hits[0]["text"]])[0]
    assert hits[0]["rerank_score"] == pytest.approx(expected, abs=1e-3)  # bf16 where the CPU has it


def test_the_settings_file_turns_reranking_on_and_the_flag_off(runner, sample_indexed, tiny_reranker, home):
    config = home.parent / "settings.toml"  # named with --config: the user's own word
    config.write_text(f'rerank = "{tiny_reranker}"\nrerank_candidates = 4\n', encoding="utf-8")
    body = json.loads(runner.invoke(app, ["search", "火车", "--json", "--config", str(config), "-k", "2",
                                          "--min-score", "0"]).output)
    assert body["reranker"] == str(tiny_reranker.resolve()) and len(body["results"]) == 2
    assert all(hit["rank_before_rerank"] <= 4 for hit in body["results"])
    assert load_settings(config).rerank_candidates == 4
    off = runner.invoke(app, ["search", "火车", "--json", "--config", str(config), "--no-rerank"])
    assert "reranker" not in json.loads(off.output)


def test_git_style_optional_value():
    assert _optional_values(["search", "--rerank=bge-reranker-v2-m3", "q"]) == \
        ["search", "--reranker", "bge-reranker-v2-m3", "q"]
    assert _optional_values(["search", "--rerank", "q", "--", "--rerank=x"]) == \
        ["search", "--rerank", "q", "--", "--rerank=x"]


def test_rerank_equals_model_works_in_a_real_process(home, sample_indexed, tiny_reranker):
    done = subprocess.run([*FSEARCH_CLI, "search", f"--rerank={tiny_reranker}", "火车", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reranker"] == str(tiny_reranker.resolve())


def test_an_untrusted_project_may_not_choose_the_reranker(runner, home, tiny_reranker, sample_indexed):
    project = home.parent / "work"
    for line, words in ((f'rerank = "{tiny_reranker}"', "a model folder"),
                        ('rerank_url = "http://203.0.113.9:8080"', "your text would be sent there")):
        (project / "fsearch.toml").write_text(line + f'\nindex_dir = "{sample_indexed}"\n', encoding="utf-8")
        result = runner.invoke(app, ["search", "火车"])
        assert result.exit_code == 2 and words in result.output and "fsearch trust" in result.output


# -- remote rerankers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["tei", "jina"])
def test_both_server_shapes_are_found_and_used(shape, sample_indexed, monkeypatch):
    monkeypatch.setenv("FSEARCH_RERANK_API_KEY", "sk-rerank")
    with fake_reranking_server(shape) as (url, seen):
        reranker = RemoteReranker(url, model="bge-reranker-v2-m3")
        texts = ["火车票紧张", "绿茶", "火车"]
        assert reranker.score("火车票", texts) == [overlap_score("火车票", t) for t in texts]
        assert reranker.score("绿茶", texts) == [overlap_score("绿茶", t) for t in texts]
    assert all(auth == "Bearer sk-rerank" for _, auth, _ in seen)
    route = "/rerank" if shape == "tei" else "/v1/rerank"
    assert seen[-1][0] == route and reranker.api == ("tei" if shape == "tei" else "auto")
    if shape == "jina":
        assert seen[0][2]["model"] == "bge-reranker-v2-m3" and seen[0][2]["documents"] == texts
    else:
        assert [path for path, _, _ in seen[:2]] == ["/v1/rerank", "/rerank"]  # asked once, then remembered
        assert len(seen) == 3 and seen[1][2]["texts"] == texts


def test_the_api_can_be_named_and_the_route_tells_it(sample_indexed):
    with fake_reranking_server("tei") as (url, seen):
        assert RemoteReranker(url, api="tei").score("a", ["a", "b"]) == [1.0, 0.0]
        assert RemoteReranker(url + "/rerank").score("a", ["b"]) == [0.0]
        assert [path for path, _, _ in seen] == ["/rerank", "/rerank"]
        with pytest.raises(RerankError, match="HTTP 404"):
            RemoteReranker(url, api="jina").score("a", ["b"])


@pytest.mark.parametrize("shape, flags", [("jina", ["--rerank-url", "{url}/v1"]),
                                          ("tei", ["--rerank-url", "{url}", "--rerank-api", "tei"]),
                                          ("tei", ["--rerank-url", "{url}"])])
def test_a_remote_reranker_reorders_through_the_cli(runner, sample_indexed, shape, flags):
    with fake_reranking_server(shape) as (url, _):
        result = runner.invoke(app, ["search", "火车票", "--json", "-k", "5", "--min-score", "0",
                                     *[flag.format(url=url) for flag in flags]])
    body = json.loads(result.output)
    assert result.exit_code == 0 and body["reranker"].startswith(url)
    assert [h["score"] for h in body["results"]] == [overlap_score("火车票", h["text"]) for h in body["results"]]


@pytest.mark.parametrize("answer, words", [
    ({"results": [{"index": 7, "relevance_score": 0.5}]}, "for passage 7"),
    ({"results": [{"index": 0, "relevance_score": "high"}]}, "as a score"),
    ({"hits": []}, "not a rerank response"),
    ("<html>", "not a rerank response"),
])
def test_garbage_gets_one_line_and_exit_2(runner, sample_indexed, answer, words):
    with fake_reranking_server("jina", answer=answer) as (url, _):
        result = runner.invoke(app, ["search", "火车", "--rerank-url", url])
    assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output


def test_a_server_that_is_down_gets_one_line_and_exit_2_after_its_retries(runner, sample_indexed):
    down = runner.invoke(app, ["search", "火车", "--rerank-url", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == 2 and "the rerank server(s) kept failing after 4 attempts" in down.output
    assert "check that the server is up" in down.output and "Traceback" not in down.output


def test_the_key_comes_from_the_environment_never_a_flag(runner):
    result = runner.invoke(app, ["search", "--help"])
    assert "FSEARCH_RERANK_API_KEY" in result.output and "--rerank-api-key" not in result.output


# -- the prompt ---------------------------------------------------------------------------------------------------

def test_the_prompt_turns_reranking_on_and_off(sample_indexed, capsys):
    from faiss_search.repl import run_repl

    reranker = CharacterReranker()
    lines = iter([":rerank", ":rerank on", "火车票", ":rerank off", "火车票", ":rerank maybe"])

    def read_line(_: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    run_repl(_searcher(sample_indexed, reranker, 4), 3, read_line=read_line)
    captured = capsys.readouterr()
    shown = captured.out
    assert "rerank off (characters)" in shown and "rerank on (characters)" in shown
    assert len(reranker.asked) == 1 and "reranked by characters" in shown
    assert "takes on or off, got maybe" in captured.err


def test_the_prompt_without_a_reranker_says_how_to_get_one(sample_indexed, capsys):
    from faiss_search.repl import run_repl

    lines = iter([":rerank on", ":quit"])
    run_repl(_searcher(sample_indexed), 3, read_line=lambda _: next(lines))
    assert "no reranker here" in capsys.readouterr().err


def test_a_folder_with_several_labels_is_no_reranker(tiny_reranker, tmp_path):
    import shutil

    folder = tmp_path / "three-labels"
    shutil.copytree(tiny_reranker, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    config["label2id"] = {"a": 0, "b": 1, "c": 2}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError):
        CrossEncoderReranker(folder, "three").score("q", ["p"])


def test_the_cross_encoder_takes_its_threads_from_the_policy(tiny_reranker, monkeypatch):
    import torch

    from faiss_search.threads import ThreadPlan, ThreadPolicy

    reranker = CrossEncoderReranker(tiny_reranker, "tiny")
    before = torch.get_num_threads()
    try:
        for workers in (1, 2):
            monkeypatch.setattr(ThreadPolicy, "current", lambda self, w=workers: ThreadPlan(workers=w))
            reranker.score("火车", ["火车票"])
            assert torch.get_num_threads() == workers  # sized to the free CPUs, as the embedders are
    finally:
        torch.set_num_threads(before)


def test_the_tiny_cross_encoder_reranks_in_the_prompt(runner, sample_indexed, tiny_reranker):
    result = runner.invoke(app, ["search", "--reranker", str(tiny_reranker), "--explain"],
                           input="火车票\n:rerank off\n火车票\n:quit\n")
    assert result.exit_code == 0, result.output
    reranked, plain = result.output.split("rerank off")
    assert "reranked by" in reranked and "before reranking #" in reranked
    assert "reranked by" not in plain and "before reranking" not in plain


@pytest.mark.parametrize("backend", ["sentence-transformers folder", "remote server"])
def test_reranking_works_over_every_embedder(runner, home, tmp_path, tiny_model, tiny_reranker, backend):
    from .conftest import FakeEmbedder
    from .servers import json_server
    from .test_cli import SAMPLE

    def embeddings(path, headers, body):
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return 200, {"data": [{"index": i, "embedding": FakeEmbedder()._vector(t).tolist()}
                              for i, t in enumerate(texts)]}

    with json_server(embeddings) as url:
        model = ["--model", str(tiny_model)] if backend.startswith("sentence") else \
            ["--embedder", "openai", "--model", "m", "--base-url", url]
        assert runner.invoke(app, ["index", str(SAMPLE), *model]).exit_code == 0
        result = runner.invoke(app, ["search", "火车票", "--json", "-k", "3", "--min-score", "0",
                                     "--reranker", str(tiny_reranker)])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)["results"]
    expected = CrossEncoderReranker(tiny_reranker, "tiny").score("火车票", [h["text"] for h in hits])
    assert [h["rerank_score"] for h in hits] == pytest.approx(expected, abs=1e-3)
    assert [h["score"] for h in hits] == sorted(h["score"] for h in hits)[::-1]
