"""What reranking costs on this CPU: seconds per query of a base-size cross-encoder by precision and candidates.

No reranker weights can be downloaded here, so the model is bge-reranker-base's shape (12 layers,
768 wide, as XLM-R base) with random weights and the bge-small-zh vocabulary from ../shared/fixtures:
the compute per token is the real model's, the scores mean nothing. Rankings of bf16 and int8 are
compared with fp32's on these weights (Spearman, and the top-5 they share); the same comparison on
the real weights is a command away once they are downloaded:

    python bench/rerank.py                         # idle: fp32, bf16, int8 at 10/20/30/50 candidates
    python bench/rerank.py --load loops            # the same beside two busy loops (busy.py's loads)
    python bench/rerank.py --model ~/.cache/fsearch/models/bge-reranker-base   # real weights
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from busy import load  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def base_size_reranker(dest: Path) -> Path:
    """A random-weight BERT-base cross-encoder (bge-reranker-base's compute) with a real Chinese vocabulary."""
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    layout = SHARED / "fixtures" / "bge-small-zh-v1.5-layout"
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(layout / name, dest / name)
    config = BertConfig.from_pretrained(layout)
    config.update({"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "intermediate_size": 3072, "num_labels": 1,
                   "architectures": ["BertForSequenceClassification"]})
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(dest, safe_serialization=True)
    return dest


def chunks_and_questions(count: int) -> tuple[list[str], list[str]]:
    """500-character chunks and questions from cmrc2018-dev."""
    folder = SHARED / "data" / "cmrc2018-dev"
    rows = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    chunks = [text[i:i + 500] for row in rows for text in [row["text"]] for i in range(0, len(text), 450)]
    queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").read_text(encoding="utf-8")
               .splitlines()[:count]]
    return [c for c in chunks if len(c) >= 400], queries


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(values: list[float]) -> list[int]:
        order = sorted(range(len(values)), key=values.__getitem__)
        result = [0] * len(values)
        for rank, i in enumerate(order):
            result[i] = rank
        return result

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb, strict=True)) / (n * (n * n - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a cross-encoder folder [default: random base-size weights]")
    parser.add_argument("--candidates", type=int, nargs="+", default=[10, 20, 30, 50])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--load", default="idle", choices=["idle", "loops", "omp"])
    args = parser.parse_args()
    if not (SHARED / "data" / "cmrc2018-dev").is_dir():
        sys.exit("../shared/data/cmrc2018-dev is not here")
    from faiss_search.reranking import CrossEncoderReranker

    chunks, queries = chunks_and_questions(args.queries)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model or base_size_reranker(Path(scratch))
        most = max(args.candidates)
        reference: dict[int, list[float]] = {}
        print(f"model {folder.name if args.model else 'random base-size'}, load {args.load}, "
              f"{len(queries)} queries, chunks of 400-500 characters")
        with load(args.load):
            for precision in args.precisions:
                reranker = CrossEncoderReranker(folder, "bench", precision=precision)
                tokens = reranker.model.tokenizer(queries[0], chunks[0])["input_ids"]
                reranker.score(queries[0], chunks[:4])  # warm up
                agreement, overlap = [], []
                for n in args.candidates:
                    seconds = []
                    for q, query in enumerate(queries):
                        passages = chunks[q * most:q * most + n]
                        started = time.perf_counter()
                        scores = reranker.score(query, passages)
                        seconds.append(time.perf_counter() - started)
                        if n == most:
                            reference.setdefault(q, scores)
                            agreement.append(spearman(reference[q], scores))
                            top = sorted(range(n), key=lambda i, s=scores: -s[i])[:5]
                            best = sorted(range(n), key=lambda i, s=reference[q]: -s[i])[:5]
                            overlap.append(len(set(top) & set(best)) / 5)
                    per_query = statistics.median(seconds)
                    print(f"  {precision:5} {n:3} candidates: {per_query:6.2f} s/query "
                          f"({1000 * per_query / n:5.0f} ms a pair of ~{len(tokens)} tokens)")
                if agreement:
                    print(f"  {precision:5} vs fp32 at {most}: Spearman {statistics.mean(agreement):.3f}, "
                          f"top-5 shared {statistics.mean(overlap):.2f}")


if __name__ == "__main__":
    main()
