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
