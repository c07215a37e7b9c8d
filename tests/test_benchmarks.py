"""Benchmark-style checks: minutes long, excluded from the default run (pytest -m slow)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import shared_path

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cmrc2018_recall_at_1_with_the_default_model(tmp_path):
    dataset = shared_path("data", "cmrc2018-dev")
    out = subprocess.run([sys.executable, str(REPO / "bench" / "retrieval.py"), str(dataset), "--json",
                          "--workdir", str(tmp_path)], check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    assert report["queries"] == 3219 and report["documents"] == 848
    assert report["recall@1"] >= 93.0, report


def test_metrics_on_a_hand_made_ranking():
    sys.path.insert(0, str(REPO / "bench"))
    from retrieval import score

    qrels = {"q1": {"a"}, "q2": {"b"}, "q3": {"c", "d"}}
    ranked = {"q1": ["a", "x"], "q2": ["x", "y", "b"], "q3": ["d", "x", "c"]}
    metrics = score(ranked, qrels)
    assert metrics["recall@1"] == pytest.approx(100 * (1 + 0 + 0.5) / 3)
    assert metrics["MRR@10"] == pytest.approx(100 * (1 + 1 / 3 + 1) / 3)
    ideal_q3 = 1 + 1 / math.log2(3)
    ndcg_q3 = (1 + 1 / 2) / ideal_q3
    assert metrics["nDCG@10"] == pytest.approx(100 * (1 + 0.5 + ndcg_q3) / 3)
