"""Scores a person can compare: every mode's raw score mapped to a relevance between 0 and 1.

Each mode scores on its own scale (cosine ~0.8 for anything with an e5 model, BM25 without
bound, fused reciprocal ranks around 0.1), so a raw number says nothing by itself. At index
time the index is asked questions it cannot answer (off-topic questions in Chinese and
English, and gibberish) and questions it can (sentences of its own chunks). A mode's relevance is a logistic curve through two points measured there:

* 0.5 at the top score that only 5 % of the unanswerable questions reach (``JUNK_QUANTILE``),
* 0.9 at the median top score of the answerable ones.

So 0.5 means "as good as noise gets" on every index and in every mode; ``MIN_RELEVANCE`` is
the default cut: a hit must score above it to be shown, and with none ``fsearch search`` exits 1.
Indexes of fewer than ``MIN_CHUNKS_FOR_CURVE`` chunks get no curve (raw scores, no cut).
"""

from __future__ import annotations

import math
import random
import statistics

MIN_RELEVANCE = 0.5
JUNK_QUANTILE = 0.95
#: below this many chunks an index is too small to tell answers from noise (BM25's word weights need
#: a corpus: a word in half of four chunks weighs nothing); its raw scores are shown and nothing is cut
MIN_CHUNKS_FOR_CURVE = 50
_ANSWERABLE_RELEVANCE = 0.9

#: questions most knowledge bases cannot answer; a few may fit some index, the 95 % quantile absorbs them
OFF_TOPIC = (
    "如何更换汽车轮胎", "明天北京会下雨吗", "红烧肉怎么做才好吃", "最近的地铁站在哪里", "怎样训练小狗坐下",
    "世界上最高的山是哪座", "足球比赛一共多少分钟", "怎么给手机贴膜", "孕妇可以喝咖啡吗", "机票改签要多少钱",
    "吉他怎么调音", "哪种猫最适合公寓饲养", "冬天如何给多肉浇水", "离婚需要准备什么材料", "高考数学怎么提分",
    "美元兑人民币汇率是多少", "失眠了怎么办", "怎样折纸飞机飞得远", "信用卡逾期有什么后果", "马拉松配速怎么算",
    "how do I change a flat tyre", "what is the capital of Peru", "best pizza dough recipe",
    "how long do cats live", "when does the next train to Boston leave", "how to tie a bowtie",
    "what time is the football match tonight", "is it safe to eat raw cookie dough",
    "how many calories in a banana", "how to fix a squeaky door", "who won the chess world championship",
    "how to grow tomatoes on a balcony", "what does a plumber charge per hour", "why is the sky blue",
    "how to remove red wine stains", "lyrics of a famous love song", "how to train for a half marathon",
    "cheap flights to Lisbon in May", "how to fold a fitted sheet", "what is the speed of a cheetah",
)
_GIBBERISH = 12
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def junk_queries(seed: int = 0) -> list[str]:
    """Questions an index cannot answer: off-topic ones and letter gibberish (deterministic)."""
    rng = random.Random(seed)
    letters = [" ".join("".join(rng.choice(_LETTERS) for _ in range(rng.randint(3, 8)))
                        for _ in range(rng.randint(2, 4))) for _ in range(_GIBBERISH)]
    return [*OFF_TOPIC, *letters]


def fit(junk_top: list[float], answerable_top: list[float]) -> dict | None:
    """The logistic curve's midpoint and slope for one mode, from the top scores of both kinds of question.

    None when the index is too small to fit one: the mode's raw score is then shown as it is.
    """
    if len(answerable_top) < MIN_CHUNKS_FOR_CURVE:
        return None
    junk = sorted(junk_top) or [0.0]
    midpoint = junk[min(len(junk) - 1, int(JUNK_QUANTILE * len(junk)))]
    typical = statistics.median(answerable_top) if answerable_top else midpoint
    spread = statistics.pstdev(junk) if len(junk) > 1 else 0.0
    # from 0.5 to 0.9 over the gap between noise and answers, but never more steeply than over the
    # noise's own spread (a tiny gap on a tiny index must not turn the curve into a step)
    gap = max(typical - midpoint, spread, 1e-6)
    slope = math.log(_ANSWERABLE_RELEVANCE / (1 - _ANSWERABLE_RELEVANCE)) / gap
    return {"midpoint": midpoint, "slope": slope}


def relevance(score: float, curve: dict | None) -> float | None:
    """A raw score on the 0-1 scale of ``curve`` (from ``fit``); None if the index has no curve."""
    if not curve:
        return None
    x = curve["slope"] * (score - curve["midpoint"])
    return 1 / (1 + math.exp(-x)) if x > -700 else 0.0
