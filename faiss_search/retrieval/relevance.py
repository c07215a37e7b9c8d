"""Scores a person can compare: every mode's raw score mapped to a relevance between 0 and 1.

Each mode scores on its own scale (cosine ~0.8 for anything with an e5 model, BM25 without
bound, fused reciprocal ranks around 0.1), so a raw number says nothing by itself. At index
time the index is asked gibberish (Latin letters, random Chinese characters), which no index
can answer, and sentences of its own chunks, which it can. A mode's relevance is a logistic
curve through two points measured there:

* 0.5 at the top score that only 5 % of the gibberish reaches (``JUNK_QUANTILE``),
* 0.9 at the median top score of the answerable ones.

So 0.5 means "as good as noise gets" on every index and in every mode. Gibberish, not
off-topic questions, defines the noise: any fixed list of "off-topic" questions is on-topic for
some knowledge base (on a corpus of everyday questions such a list hid a third of the right
answers).  ``MIN_RELEVANCE`` is
the default cut: a hit must score above it to be shown, and with none ``fsearch search`` exits 1.
Indexes of fewer than ``MIN_CHUNKS_FOR_CURVE`` chunks get no curve (raw scores, no cut).
"""

from __future__ import annotations

import math
import random
import statistics

MIN_RELEVANCE = 0.5
#: in hybrid mode a hit whose relevance is above the cut but not above AGREED_BELOW is shown only where both
#: legs rank it among their first AGREEMENT_RANKS (bench/relevance.py: on a cmrc2018 index 27 % of lcqmc's
#: everyday questions keep an answer instead of 40 %, and 0.7 % of the right answers are hidden instead of 0.3 %)
AGREED_BELOW = 0.6
AGREEMENT_RANKS = 5
JUNK_QUANTILE = 0.95
#: below this many chunks an index is too small to tell answers from noise (BM25's word weights need
#: a corpus: a word in half of four chunks weighs nothing); its raw scores are shown and nothing is cut
MIN_CHUNKS_FOR_CURVE = 20
_ANSWERABLE_RELEVANCE = 0.9

_GIBBERISH = 32
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def gibberish(n: int, seed: int = 0) -> list[str]:
    """Strings no index can answer, half Latin letters, half random Chinese characters (deterministic)."""
    rng = random.Random(seed)
    latin = [" ".join("".join(rng.choice(_LETTERS) for _ in range(rng.randint(3, 8)))
                      for _ in range(rng.randint(1, 4))) for _ in range(n - n // 2)]
    chinese = ["".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 10))) for _ in range(n // 2)]
    return latin + chinese


def junk_queries() -> list[str]:
    """What the calibration asks as questions an index cannot answer."""
    return gibberish(_GIBBERISH)


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


def passes_cut(mode: str, score: float, cut: float, dense_rank: int | None, keyword_rank: int | None,
               both_legs_answered: bool) -> bool:
    """Whether a hit of relevance ``score`` is shown under the cut (0: every hit is).

    Above the cut is enough in one leg's mode, from AGREED_BELOW up, or where a leg found nothing at all
    (a second opinion that was not given cannot disagree). Between the cut and AGREED_BELOW a hybrid hit
    needs both legs: an off-topic question in the corpus's language gets a passable best match from
    each leg, but rarely the same one.
    """
    if cut <= 0:
        return True
    if score <= cut:
        return False
    if mode != "hybrid" or score > AGREED_BELOW or not both_legs_answered:
        return True
    return dense_rank is not None and keyword_rank is not None and max(dense_rank, keyword_rank) <= AGREEMENT_RANKS


def has_curves(mode: str, curves: dict) -> bool:
    """Whether an index's curves (its manifest's ``fusion.relevance``) can score ``mode``."""
    return all(curves.get(leg) for leg in (("dense", "keyword") if mode == "hybrid" else (mode,)))


def hit_relevance(mode: str, raw: float, leg_scores: dict[str, float | None], curves: dict) -> float:
    """A hit's relevance in ``mode`` (the index must ``has_curves``).

    In hybrid mode it is the stronger of the two legs' relevances for that chunk (a leg that did not
    return it counts 0): the fused score is a statistic of ranks, and as a relevance it hid 13 % of the
    right answers on lcqmc-dev, against 0 % for the dense leg's. Hits keep the fusion's order.
    """
    if mode != "hybrid":
        return relevance(raw, curves[mode]) or 0.0
    return max((relevance(score, curves[leg]) or 0.0 for leg, score in leg_scores.items() if score is not None),
               default=0.0)
