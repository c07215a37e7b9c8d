"""Paraphrased Chinese questions that share almost no words with their answers must find them first."""

import json

import pytest

from faiss_search.cli import app

SENTENCES = [
    "高铁让城市之间的往来变得又快又舒服。",
    "绿茶没有经过发酵，所以保留了更多的茶多酚。",
    "熊猫每天要花十几个小时啃竹子。",
    "信用卡逾期不还会影响个人征信记录。",
    "深度学习模型需要大量带标注的数据来训练。",
    "长时间盯着手机屏幕容易导致眼睛干涩。",
    "饺子是北方人过年必不可少的传统食物。",
    "地震发生时应该躲在坚固的桌子底下。",
]
PARAPHRASES = {
    "坐火车去别的城市": 0,
    "哪种茶不发酵": 1,
    "大熊猫平时以什么为食": 2,
    "欠银行的钱没按时还有什么后果": 3,
    "训练神经网络要准备什么": 4,
    "看手机太久对视力有什么影响": 5,
    "春节的时候北方人吃什么": 6,
    "遇到大地震怎么保护自己": 7,
}


@pytest.mark.real_model
def test_paraphrased_chinese_queries_rank_the_answer_first(home, runner, tmp_path):
    corpus = tmp_path / "eight.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["index", str(corpus)]).exit_code == 0
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(PARAPHRASES), encoding="utf-8")
    result = runner.invoke(app, ["search", "--queries", str(queries), "--json", "-k", "1"])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    for answer in answers:
        expected = SENTENCES[PARAPHRASES[answer["query"]]]
        assert answer["results"][0]["text"] == expected, answer
