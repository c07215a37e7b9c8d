"""Keyword search, fusion and calibration: hybrid search must never let a weak leg drown a strong one."""

import json
from pathlib import Path

import pytest

from faiss_search import lexical
from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.documents import Document
from faiss_search.indexing.pipeline import index_documents
from faiss_search.retrieval.fusion import confidence, fuse, leg_weights
from faiss_search.retrieval.search import Searcher
from faiss_search.stores.local.reader import IndexReader

from .conftest import with_previous_keyword_words

TOPICS = ["火车", "茶叶", "熊猫", "长城", "信用卡", "跑步", "面包", "咖啡", "电脑", "医院", "足球", "钢琴"]


def test_segment_chinese_english_and_stop_words():
    assert lexical.segment("我们坐火车去北京的长城") == ["我们", "火车", "坐火车", "去", "北京", "长城"]
    words = lexical.segment("How do I bake Bread? 3.14 GPUs!")
    assert "bread" in words and "bake" in words and "how" not in words and "?" not in words
    assert "的" not in lexical.segment("我的书")
    assert {"中华", "人民", "共和", "共和国", "中华人民共和国"} <= set(lexical.segment("中华人民共和国"))


def test_a_joined_word_gets_the_words_python_jieba_gave_it_and_one_whole_copy():
    """jieba-rs keeps index_dir, il-6 and 127.0.0.1 whole where Python jieba split them; indexes and queries
    keep jieba's pieces (SciFact's keyword recall@1 fell 0.25 points without them), and the identifier token is
    the one whole copy, so BM25 does not count such a word twice."""
    assert sorted(lexical.segment("index_dir")) == sorted(["index", "dir", "indexǀdir"])
    assert sorted(lexical.segment("zh-hk 版本")) == sorted(["zh", "hk", "zhǀhk", "版本"])
    assert sorted(lexical.segment("IL-6 细胞")) == sorted(["il", "6", "ilǀ6", "细胞"])
    assert sorted(lexical.segment("127.0.0.1")) == sorted(["127.0", "0.1", "127ǀ0ǀ0ǀ1", "127"])
    assert sorted(lexical.segment("p < 0.05")) == sorted(["p", "0.05", "0ǀ05", "05"])
    assert lexical.segment("c++ 和 c#") == ["c++", "c#"]


def test_match_expression_is_partial_and_safe():
    assert lexical.match_expression("") is None and lexical.match_expression("的 ?") is None
    # every word is quoted and OR-ed: a word no document has does not veto the others
    assert lexical.match_expression('火车 "quoted" unknownword') == '"火车" OR "quoted" OR "unknownword"'
    long = lexical.match_expression("字" * 5000 + " ".join(f"w{i}" for i in range(500)))
    assert long.count(" OR ") < lexical.MAX_QUERY_TERMS


def test_confidence_rewards_a_clear_winner_not_a_tie_at_the_top():
    assert confidence([0.5] * 50) == 1.0
    assert confidence([0.9] + [0.5] * 49) > 5
    assert confidence([1.0, 0.9]) == 1.0
    # a rare word matched by several chunks: their scores stand far above the rest, but no one of them wins
    assert confidence([9.0, 9.0, 8.9] + [1.0] * 47) == 1.0


def test_leg_weights_only_silence_a_leg_that_cannot_read_the_corpus():
    assert leg_weights(0.21, 0.99) == (0.0, 1.0)  # an English-only model on Chinese text
    assert leg_weights(0.72, 0.89) == (1.0, 1.0)  # substrings flatter keyword search: a 20 % lag is no verdict
    assert leg_weights(0.99, 0.45 * 0.99) == (1.0, pytest.approx(0.5))  # in between, a ramp
    assert leg_weights(0.0, 0.0) == (1.0, 1.0)


def test_fuse_with_a_silenced_leg_keeps_the_other_ranking():
    keyword = [(1, 9.0), (2, 5.0), (3, 4.0)]
    dense = [(3, 0.9), (2, 0.8), (1, 0.7)]
    fused, weights = fuse(dense, keyword, (0.0, 1.0))
    assert [cid for cid, _ in fused] == [1, 2, 3]
    fused, _ = fuse(dense, keyword, (1.0, 0.0))
    assert [cid for cid, _ in fused] == [3, 2, 1]
    # equal weights and flat scores: plain reciprocal-rank fusion (ties broken by first leg order)
    fused, weights = fuse([(1, 1.0), (2, 1.0)], [(2, 1.0), (3, 1.0)], (1.0, 1.0), k=10)
    assert weights == (1.0, 1.0) and fused[0][0] == 2


def _ranked(ids, scores):
    return list(zip(ids, scores, strict=True))


def test_fuse_when_the_legs_agree_and_when_they_disagree():
    tail = [0.50 - 0.001 * i for i in range(95)]
    # both legs put chunk 7 first: it stays first, whatever the confidences
    agree, _ = fuse(_ranked([7, 1, 2, 3, 4] + list(range(100, 195)), [0.90, 0.70, 0.69, 0.68, 0.67] + tail),
                    _ranked([7, 5, 6, 8, 9] + list(range(200, 295)), [12.0, 11.9, 11.8, 4.0, 3.9] + tail), (1, 1))
    assert agree[0][0] == 7
    # they disagree: dense has one clear winner (chunk 1), keyword's top is a tie of rare-word matches (2, 3, 4);
    # the clear winner comes first
    dense = _ranked([1, 5, 6, 7, 8] + list(range(100, 195)), [0.90, 0.70, 0.69, 0.68, 0.67] + tail)
    keyword = _ranked([2, 3, 4, 9, 10] + list(range(200, 295)), [9.0, 9.0, 9.0, 2.0, 1.9] + tail)
    fused, weights = fuse(dense, keyword, (1, 1))
    assert fused[0][0] == 1 and weights[0] > 5 and weights[1] == 1.0
    # the mirror case: keyword is sure (one chunk far ahead), dense's top is flat: keyword's answer wins
    flat = _ranked([1, 5, 6, 7, 8] + list(range(100, 195)), [0.80, 0.80, 0.79, 0.79, 0.79] + tail)
    sure = _ranked([2, 3, 4, 9, 10] + list(range(200, 295)), [15.0, 3.0, 2.9, 2.0, 1.9] + tail)
    assert fuse(flat, sure, (1, 1))[0][0][0] == 2


def _corpus(n_per_topic=5):
    docs = []
    for t, topic in enumerate(TOPICS):
        for i in range(n_per_topic):
            text = f"第{i}篇关于{topic}的文章。{topic}编号{t}-{i}的说明文字，内容各不相同，序号{t * 100 + i}。"
            docs.append(Document(f"doc-{t}-{i}", text, "utf-8", f"h{t}-{i}", len(text), 0.0))
    return docs


def test_useless_dense_leg_is_calibrated_away(home, fake_embedder):
    """Random vectors (a model that cannot read the text) must not change keyword's answers."""
    settings = load_settings()
    report = index_documents(_corpus(), settings, fake_embedder)
    fusion = report.fusion
    assert fusion["keyword_probe_mrr"] > 0.9 and fusion["dense_probe_mrr"] < 0.5
    assert fusion["dense_weight"] == 0.0 and fusion["keyword_weight"] == 1.0
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    queries = [f"{topic}编号{t}-2" for t, topic in enumerate(TOPICS)]
    hybrid = searcher.search_many(queries, 5, "hybrid")
    keyword = searcher.search_many(queries, 5, "keyword")
    for h, k in zip(hybrid, keyword, strict=True):
        assert [x.chunk_id for x in h.hits] == [x.chunk_id for x in k.hits]
        assert h.hits[0].keyword_rank == 1


@pytest.fixture
def sample_index(sample_indexed):
    return sample_indexed


@pytest.mark.real_model
def test_modes_in_json(real_sample_indexed, runner):
    for mode in ("hybrid", "dense", "keyword"):
        result = runner.invoke(app, ["search", "熊猫吃竹子", "--mode", mode, "--json", "-k", "2"])
        data = json.loads(result.stdout)
        assert data["mode"] == mode and "竹子" in data["results"][0]["text"]
        top = data["results"][0]
        assert (top["dense_rank"] is not None) == (mode != "keyword")
        assert (top["keyword_rank"] is not None) == (mode != "dense")
    default = json.loads(runner.invoke(app, ["search", "熊猫", "--json"]).stdout)
    assert default["mode"] == "hybrid" and set(default["weights"]) == {"dense", "keyword"}


def test_keyword_mode_finds_an_exact_name_dense_ranks_lower(sample_index, runner):
    data = json.loads(runner.invoke(app, ["search", "Git", "--mode", "keyword", "--json", "-k", "1"]).stdout)
    assert data["results"][0]["text"].startswith("Git lets developers")
    partial = json.loads(runner.invoke(app, ["search", "熊猫 xyzzyunknown", "--mode", "keyword", "--json"]).stdout)
    assert "熊猫" in partial["results"][0]["text"]


def test_unknown_mode_and_instruction(sample_index, runner):
    result = runner.invoke(app, ["search", "x", "--mode", "fuzzy"])
    assert result.exit_code == 2 and "unknown mode 'fuzzy'" in result.stderr
    result = runner.invoke(app, ["search", "x", "--instruction", "maybe"])
    assert result.exit_code == 2 and "--instruction takes auto, on or off" in result.stderr
    result = runner.invoke(app, ["search", "x", "--instruction", "off"])
    assert result.exit_code == 2 and "always uses its 'query: ' prefix" in result.stderr


def test_explain_view_and_repl_commands(sample_index, runner):
    result = runner.invoke(app, ["search", "坐火车去别的城市", "--explain", "--min-score", "0"])
    assert "weights dense" in result.stdout and "dense #1" in result.stdout
    result = runner.invoke(app, ["search"], input=":mode keyword\n熊猫\n:explain\n熊猫\n:mode bogus\n:quit\n")
    assert result.exit_code == 0
    assert "mode keyword" in result.stdout and "explain on" in result.stdout
    assert "keyword #1" in result.stdout and "(keyword)" in result.stdout
    assert "`:mode` takes one of" in result.stderr


def test_calibration_is_kept_through_small_edits_and_redone_after_big_ones(home, fake_embedder):
    settings = load_settings()
    docs = _corpus()
    first = index_documents(docs, settings, fake_embedder).fusion
    assert first["changed_chunks"] == 0 and first["probes"] == 60

    def edit(n):
        edited = [Document(d.source, d.text + "（修订）", "utf-8", d.sha256 + "x", d.size, 0.0) for d in docs[:n]]
        return edited + docs[n:]

    small = index_documents(edit(1), settings, fake_embedder).fusion
    assert small["changed_chunks"] == 2 and small["dense_probe_mrr"] == first["dense_probe_mrr"]
    big = index_documents(edit(10), settings, fake_embedder).fusion
    assert big["changed_chunks"] == 0  # 2 + 18 changed chunks > 10 % of 60: measured again


def test_hybrid_runs_its_keyword_leg_while_the_vectors_are_scanned(home, fake_embedder, monkeypatch):
    """A hybrid query costs its slower leg, not both: the dense scan waits here until the keyword leg has
    started, which only a keyword leg on another thread can do (in turn, the legs would deadlock)."""
    import threading

    settings = load_settings()
    index_documents(_corpus(), settings, fake_embedder)
    reader = IndexReader(settings.index_folder)
    searcher = Searcher(reader, fake_embedder)
    queries = [f"{topic}编号{t}-2" for t, topic in enumerate(TOPICS)]
    expected = [[h.chunk_id for h in r.hits] for r in searcher.search_many(queries, 5, "hybrid")]
    keyword_started, keyword_threads = threading.Event(), set()
    dense_search, keyword_search = reader.dense_search, reader.keyword_search

    def waiting_dense(vectors, k):
        assert keyword_started.wait(10), "the keyword leg did not start while the vectors were scanned"
        return dense_search(vectors, k)

    def noted_keyword(terms, k):
        keyword_threads.add(threading.get_ident())
        keyword_started.set()
        return keyword_search(terms, k)

    monkeypatch.setattr(reader, "dense_search", waiting_dense)
    monkeypatch.setattr(reader, "keyword_search", noted_keyword)
    results = searcher.search_many(queries, 5, "hybrid")
    assert [[h.chunk_id for h in r.hits] for r in results] == expected  # the same answers
    assert keyword_threads and threading.get_ident() not in keyword_threads
    assert all(r.seconds > 0 for r in results)



def test_scores_never_rise_down_the_list(home, fake_embedder, monkeypatch):
    """Hybrid ranks by fused ranks while a hit's relevance is its stronger leg's, so a lower hit's own
    relevance can be the higher (0.62 then 0.82, as a user saw): each score shown is held to the one
    above it. The cut still judges each hit by its own relevance."""
    settings = load_settings()
    index_documents(_corpus(), settings, fake_embedder)
    searcher = Searcher(IndexReader(settings.index_folder), fake_embedder)
    own = iter([0.62, 0.82, 0.40, 0.91, 0.70] * 20)
    monkeypatch.setattr("faiss_search.retrieval.search.hit_relevance", lambda *args: next(own))
    for mode in ("hybrid", "dense", "keyword"):
        result = searcher.search("熊猫编号3", 5, mode, min_score=0.5)
        assert [round(h.score, 2) for h in result.hits] == [0.62, 0.62, 0.62, 0.62], mode  # 0.40 is cut
        assert result.below_min_score == 1


def test_a_quoted_phrase_is_in_every_hit_and_l_lists_every_file_that_holds_it(home, runner, tmp_path):
    """As grep -l would: `"Symbol.iterator"` finds the files that hold it (any case), and only those."""
    docs = tmp_path / "js"
    docs.mkdir()
    holders = set()
    for n in range(12):
        name = docs / f"chapter{n:02d}.md"
        if n % 3 == 0:
            text = f"# Chapter {n}\n\nAn object is iterable when it has a SYMBOL.ITERATOR method ({n})."
            holders.add(name)
        elif n % 3 == 1:
            text = f"# Chapter {n}\n\nSymbol.toStringTag names the object; the iterator protocol is elsewhere ({n})."
        else:
            text = f"# Chapter {n}\n\nSymbol iterator, written apart, is not the identifier ({n})."
        name.write_text(text, encoding="utf-8")
    assert runner.invoke(app, ["index", str(docs)]).exit_code == 0
    for mode in ("hybrid", "dense", "keyword"):
        found = json.loads(runner.invoke(app, ["search", '"Symbol.iterator" protocol', "--json", "-k", "3",
                                               "--mode", mode]).stdout)
        assert found["results"] and all("symbol.iterator" in h["text"].lower() for h in found["results"]), mode
    listed = runner.invoke(app, ["search", '"Symbol.iterator"', "-l", "-k", "1"])
    assert listed.exit_code == 0 and {docs / line for line in
                                      (Path(p).name for p in listed.stdout.split())} == holders
    none = runner.invoke(app, ["search", '"Symbol.asyncIterator"'])
    assert none.exit_code == 1 and "no good match" in none.stdout


def test_an_identifier_is_a_word_whole_and_in_parts(home, runner, tmp_path):
    """`Symbol.iterator` finds the chunk that holds it before chunks that hold `Symbol` and `iterator` apart."""
    assert "symbolǀiterator" in lexical.segment("obj[Symbol.iterator]()")
    assert {"ip", "addr", "kind", "ipaddrkindǀv4"} <= set(lexical.segment("IpAddrKind::V4"))
    assert {"snakeǀcase", "define", "property"} <= set(lexical.segment("snake_case defineProperty"))
    docs = tmp_path / "js"
    docs.mkdir()
    (docs / "tag.md").write_text("Symbol.toStringTag names an object. The iterator protocol: see symbol tables, "
                                 "symbol lookup and the iterator of arrays.", encoding="utf-8")
    (docs / "iter.md").write_text("An object is iterable when it defines Symbol.iterator.", encoding="utf-8")
    assert runner.invoke(app, ["index", str(docs)]).exit_code == 0
    for query in ("Symbol.iterator", "symbol.iterator"):
        top = json.loads(runner.invoke(app, ["search", query, "--json", "--mode", "keyword", "--min-score", "0"]
                                       ).stdout)["results"][0]
        assert top["source"].endswith("iter.md"), query


def test_an_index_of_the_previous_keyword_format_gets_its_words_made_again(home, runner, tmp_path):
    import sqlite3

    docs = tmp_path / "js"
    docs.mkdir()
    (docs / "iter.md").write_text("An object is iterable when it defines Symbol.iterator.", encoding="utf-8")
    assert runner.invoke(app, ["index", str(docs)]).exit_code == 0
    sidecar = home / "index" / "chunks.sqlite"
    with_previous_keyword_words(sidecar)
    (docs / "more.md").write_text("Symbol.asyncIterator is for async iteration.", encoding="utf-8")
    updated = json.loads(runner.invoke(app, ["index", str(docs), "--json"]).stdout)
    assert any("words again for 1 chunk" in step for step in updated["migrated"]), updated["migrated"]
    with sqlite3.connect(sidecar) as conn:
        terms = " ".join(row[0] for row in conn.execute("SELECT terms FROM chunk_terms"))
    assert "symbolǀiterator" in terms and "symbolǀasynciterator" in terms
    assert updated["fusion"]["changed_chunks"] == 0  # the fusion was measured again on the new words
