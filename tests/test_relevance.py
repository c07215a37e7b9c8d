"""The 0-1 relevance scale: where its 0.5 and 0.9 sit, and what too small an index gets."""

import pytest

from faiss_search.retrieval.relevance import (
    MIN_CHUNKS_FOR_CURVE,
    fit,
    gibberish,
    has_curves,
    hit_relevance,
    relevance,
)


def test_noise_maps_to_one_half_and_a_typical_answer_to_nine_tenths():
    junk = [0.70 + i / 1000 for i in range(100)]  # 95 % of the noise stays at or below 0.795
    answers = [0.90] * MIN_CHUNKS_FOR_CURVE
    curve = fit(junk, answers)
    assert relevance(curve["midpoint"], curve) == pytest.approx(0.5)
    assert relevance(0.90, curve) == pytest.approx(0.9)
    scores = [relevance(x / 100, curve) for x in range(0, 101)]
    assert scores == sorted(scores) and 0 <= scores[0] < 0.01 and scores[-1] <= 1


def test_a_tiny_gap_does_not_turn_the_curve_into_a_step():
    junk = [0.5 + i / 100 for i in range(20)]
    curve = fit(junk, [junk[-2] + 1e-9] * MIN_CHUNKS_FOR_CURVE)
    assert relevance(curve["midpoint"] + 0.01, curve) < 0.6  # over the noise's own spread, not in a jump


def test_too_small_an_index_gets_no_curve_and_hybrid_needs_both_legs():
    assert fit([0.1, 0.2], [0.9] * (MIN_CHUNKS_FOR_CURVE - 1)) is None
    curve = {"midpoint": 0.5, "slope": 10.0}
    assert has_curves("dense", {"dense": curve}) and not has_curves("hybrid", {"dense": curve, "keyword": None})
    both = {"dense": curve, "keyword": {"midpoint": 2.0, "slope": 1.0}}
    assert hit_relevance("hybrid", 0.02, {"dense": 0.5, "keyword": None}, both) == pytest.approx(0.5)
    assert hit_relevance("hybrid", 0.02, {"dense": 0.5, "keyword": 9.0}, both) > 0.99  # the stronger leg
    assert hit_relevance("keyword", 2.0, {}, both) == pytest.approx(0.5)


def test_gibberish_is_deterministic_and_mixes_scripts():
    strings = gibberish(10)
    assert strings == gibberish(10) and strings != gibberish(10, seed=1)
    assert sum(s.isascii() for s in strings) == 5


def test_the_cut_asks_both_legs_to_agree_on_a_passable_hybrid_hit():
    from faiss_search.retrieval.relevance import AGREED_BELOW, AGREEMENT_RANKS, passes_cut

    band = (0.5 + AGREED_BELOW) / 2  # above the default cut, not above AGREED_BELOW
    assert passes_cut("hybrid", band, 0.5, 1, AGREEMENT_RANKS, True)  # both legs rank it high
    assert not passes_cut("hybrid", band, 0.5, 1, AGREEMENT_RANKS + 1, True)  # the keyword leg disagrees
    assert not passes_cut("hybrid", band, 0.5, None, 2, True)  # the dense leg did not find it
    assert passes_cut("hybrid", band, 0.5, 1, None, False)  # the keyword leg found nothing at all: no opinion
    assert passes_cut("hybrid", AGREED_BELOW + 0.01, 0.5, 1, None, True)  # strong enough alone
    assert passes_cut("dense", band, 0.5, 1, None, True) and passes_cut("keyword", band, 0.5, None, 1, True)
    assert not passes_cut("hybrid", 0.5, 0.5, 1, 1, True)  # at the cut is out, as before
    assert passes_cut("hybrid", 0.01, 0.0, None, None, True)  # --min-score 0 shows everything


def test_a_search_leaves_out_passable_hits_the_legs_disagree_on(sample_indexed):
    from faiss_search.retrieval.relevance import AGREED_BELOW, AGREEMENT_RANKS, hit_relevance

    from .test_rerank import _searcher

    searcher = _searcher(sample_indexed)
    curves = searcher.reader.manifest.fusion["relevance"]
    everything = searcher.search("坐火车去别的城市", 20, min_score=0).hits
    own = {h.chunk_id: hit_relevance("hybrid", h.raw_score, {"dense": h.dense_score, "keyword": h.keyword_score},
                                     curves) for h in everything}
    agreed = {h.chunk_id for h in everything if max(h.dense_rank or 99, h.keyword_rank or 99) <= AGREEMENT_RANKS}
    disputed = {c for c, score in own.items() if 0.5 < score <= AGREED_BELOW and c not in agreed}
    strong = {c for c, score in own.items() if score > AGREED_BELOW or (score > 0.5 and c in agreed)}
    assert disputed, "the sample should hold a passable hit the legs disagree on"
    shown = {h.chunk_id for h in searcher.search("坐火车去别的城市", 20, min_score=0.5).hits}
    assert shown == strong and not shown & disputed
