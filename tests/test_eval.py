"""`fsearch eval`: metrics on a hand-made BEIR set with known answers, and agreement with `fsearch search`."""

import json
import math

import pytest

from faiss_search.cli import app
from faiss_search.evaluation import score

CORPUS = {
    "panda": "大熊猫生活在四川的山区，每天吃很多竹子。",
    "tea": "绿茶不发酵，红茶是全发酵茶。",
    "train1": "高铁是城市之间最快的火车。",
    "train2": "春节前后火车票很难买到。",
    "bread": "Bake bread with flour, water, yeast and salt.",
    "reef": "The Great Barrier Reef is the largest coral reef on earth.",
}
QUERIES = {"q1": "熊猫 竹子", "q2": "xyzzy", "q3": "火车", "q4": "coral reef"}
QRELS = [("q1", "panda"), ("q2", "tea"), ("q3", "train1"), ("q3", "train2"), ("q4", "reef")]


@pytest.fixture
def beir(tmp_path):
    folder = tmp_path / "tiny-beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}, ensure_ascii=False)
                                                 + "\n" for k, v in CORPUS.items()), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}, ensure_ascii=False) + "\n"
                                                  for k, v in QUERIES.items()), encoding="utf-8")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                              + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS))
    return folder


def run_eval(runner, *args):
    result = runner.invoke(app, ["eval", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return {row["mode"]: row for row in json.loads(result.stdout)["results"]}


def test_keyword_metrics_match_the_known_answers(home, runner, beir):
    rows = run_eval(runner, beir, "--mode", "keyword")
    keyword = rows["keyword"]
    # q1 and q4: the only documents with those words -> rank 1; q2: no document matches -> 0;
    # q3: both relevant documents, and only they, contain 火车 -> recall@1 0.5, everything else perfect.
    assert keyword["recall@1"] == pytest.approx(100 * (1 + 0 + 0.5 + 1) / 4, abs=0.01)
    assert keyword["recall@5"] == pytest.approx(75.0, abs=0.01)
    assert keyword["MRR@10"] == pytest.approx(75.0, abs=0.01)
    assert keyword["nDCG@10"] == pytest.approx(75.0, abs=0.01)
    assert keyword["queries"] == 4 and keyword["documents"] == 6 and not keyword["reused_index"]


def _independent_metrics(ranked: dict[str, list[str]]) -> dict[str, float]:
    """Written separately from faiss_search.evaluation.score, on purpose."""
    relevant: dict[str, list[str]] = {}
    for q, d in QRELS:
        relevant.setdefault(q, []).append(d)
    r1 = mrr = ndcg = 0.0
    for q, docs in relevant.items():
        top = ranked[q][:10]
        r1 += sum(1 for d in docs if d in top[:1]) / len(docs)
        positions = sorted(top.index(d) + 1 for d in docs if d in top)
        mrr += 1 / positions[0] if positions else 0
        ndcg += sum(1 / math.log2(p + 1) for p in positions) / sum(1 / math.log2(i + 2) for i in range(len(docs)))
    n = len(relevant)
    return {"recall@1": 100 * r1 / n, "MRR@10": 100 * mrr / n, "nDCG@10": 100 * ndcg / n}


def test_eval_agrees_with_search_for_every_mode(home, runner, beir, tmp_path):
    index_dir = tmp_path / "eval-index"
    rows = run_eval(runner, beir, "--index-dir", index_dir)
    assert set(rows) == {"hybrid", "dense", "keyword"}
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(QUERIES.values()) + "\n", encoding="utf-8")
    for mode, row in rows.items():
        out = runner.invoke(app, ["search", "--queries", str(queries), "--json", "-k", "30", "--mode", mode,
                                  "--index-dir", str(index_dir)]).stdout
        ranked = {}
        for q, line in zip(QUERIES, out.splitlines(), strict=True):
            ranked[q] = list(dict.fromkeys(hit["source"] for hit in json.loads(line)["results"]))
        for name, value in _independent_metrics(ranked).items():
            assert row[name] == pytest.approx(value, abs=0.01), (mode, name)
    again = run_eval(runner, beir, "--index-dir", index_dir)
    assert all(row["reused_index"] for row in again.values())
    assert again["dense"]["MRR@10"] == rows["dense"]["MRR@10"]


def test_eval_human_table(home, runner, beir):
    result = runner.invoke(app, ["eval", str(beir), "--mode", "keyword"])
    assert result.exit_code == 0 and "tiny-beir" in result.stdout and "R@1" in result.stdout
    assert "75.00" in result.stdout and "keyword" in result.stdout


def test_eval_bad_input(home, runner, beir, tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path / "none")])
    assert result.exit_code == 2 and "data set folder not found" in result.stderr
    result = runner.invoke(app, ["eval", str(beir), "--split", "test"])
    assert result.exit_code == 2 and "no qrels/test.tsv" in result.stderr and "dev" in result.stderr
    result = runner.invoke(app, ["eval", str(beir), "--mode", "magic"])
    assert result.exit_code == 2 and "unknown mode 'magic'" in result.stderr
    (beir / "corpus.jsonl").write_text("{broken\n")
    result = runner.invoke(app, ["eval", str(beir)])
    assert result.exit_code == 2 and "not JSON Lines" in result.stderr


def test_score_on_a_hand_made_ranking():
    qrels = {"q1": {"a"}, "q2": {"b"}, "q3": {"c", "d"}}
    ranked = {"q1": ["a", "x"], "q2": ["x", "y", "b"], "q3": ["d", "x", "c"]}
    metrics = score(ranked, qrels)
    assert metrics["recall@1"] == pytest.approx(100 * (1 + 0 + 0.5) / 3)
    assert metrics["recall@5"] == pytest.approx(100.0)
    assert metrics["MRR@10"] == pytest.approx(100 * (1 + 1 / 3 + 1) / 3)
    ndcg_q3 = (1 + 1 / 2) / (1 + 1 / math.log2(3))
    assert metrics["nDCG@10"] == pytest.approx(100 * (1 + 0.5 + ndcg_q3) / 3)


def test_a_stale_eval_cache_is_rebuilt(home, runner, beir):
    import sqlite3

    run_eval(runner, beir, "--mode", "keyword")
    cache = next((home / "eval").iterdir())
    conn = sqlite3.connect(cache / "chunks.sqlite")
    manifest = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()[0])
    conn.execute("UPDATE meta SET value = ? WHERE key = 'manifest'", (json.dumps({**manifest, "format_version": 1}),))
    conn.commit()
    conn.close()
    again = run_eval(runner, beir, "--mode", "keyword")["keyword"]
    assert not again["reused_index"] and again["MRR@10"] == pytest.approx(75.0, abs=0.01)


def test_eval_with_a_reranker_agrees_with_reranked_search(home, runner, beir, tmp_path, tiny_reranker):
    index_dir = tmp_path / "eval-index"
    rerank = ["--reranker", str(tiny_reranker), "--rerank-candidates", "4"]
    rows = run_eval(runner, beir, "--mode", "keyword", "--mode", "dense", "--index-dir", index_dir, *rerank)
    assert set(rows) == {"keyword", "keyword+rerank", "dense", "dense+rerank"}
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(QUERIES.values()) + "\n", encoding="utf-8")
    for mode in ("keyword", "dense"):
        row = rows[f"{mode}+rerank"]
        assert row["reranker"] == str(tiny_reranker.resolve()) and "reranker" not in rows[mode]
        assert 0 <= row["rerank_ms"]["p50"] <= row["rerank_ms"]["p95"]
        out = runner.invoke(app, ["search", "--queries", str(queries), "--json", "-k", "30", "--mode", mode,
                                  "--index-dir", str(index_dir), "--min-score", "0", *rerank]).stdout
        ranked = {q: list(dict.fromkeys(hit["source"] for hit in json.loads(line)["results"]))
                  for q, line in zip(QUERIES, out.splitlines(), strict=True)}
        for name, value in _independent_metrics(ranked).items():
            assert row[name] == pytest.approx(value, abs=0.01), (mode, name)
    table = runner.invoke(app, ["eval", str(beir), "--mode", "keyword", "--index-dir", str(index_dir), *rerank])
    assert "keyword+rerank" in table.stdout and "ms to a query (p50)" in table.stdout
