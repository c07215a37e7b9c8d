"""Does embedding a chunk's heading path with its text help retrieval?

Every SciFact abstract is written as a Markdown file, ``# <title>`` then the abstract, and
indexed with fsearch's own pipeline. The title is part of the first chunk's text either way;
the question is whether the later chunks of a document, which carry the title only as their
heading path, are found more often when that path is embedded with them. The ``heading``
variant embeds ``<heading path>\\n\\n<chunk text>`` for every chunk that does not already begin
with its heading line (stored text, keyword terms and locations are the same in both).

Sample: every document judged relevant to a test question, plus the corpus's first other
documents as distractors, up to ``--docs``. Prints recall@1, MRR@10 and nDCG@10 per mode.

    python bench/headings.py [--set ../shared/data/scifact] [--docs 700]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faiss_search.backends import choose_embedder  # noqa: E402
from faiss_search.chunking import chunk_document  # noqa: E402
from faiss_search.config import load_settings  # noqa: E402
from faiss_search.documents import read_document  # noqa: E402
from faiss_search.evaluation import load_beir, rank_documents, score  # noqa: E402
from faiss_search.indexing.pipeline import index_path  # noqa: E402
from faiss_search.retrieval.search import MODES, Searcher  # noqa: E402
from faiss_search.stores import open_reader as open_index  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class HeadingEmbedder:
    """Embeds each passage with the heading path its chunk lies under; queries unchanged."""

    def __init__(self, inner, heading_of: dict[str, str]) -> None:
        self._inner, self._heading_of = inner, heading_of
        self.info, self.long_input_policy = inner.info, inner.long_input_policy

    def _with_heading(self, text: str) -> str:
        heading = self._heading_of.get(text, "")
        return f"{heading}\n\n{text}" if heading and not text.startswith("#") else text

    def encode_passages(self, texts: Sequence[str]):
        return self._inner.encode_passages([self._with_heading(t) for t in texts])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._inner.count_tokens([self._with_heading(t) for t in texts])

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def sample(folder: Path, wanted: int) -> tuple[list[dict], dict[str, set[str]]]:
    """The judged documents plus the first unjudged ones, up to ``wanted`` rows; and the qrels."""
    dataset = load_beir(folder)
    judged = set().union(*dataset.qrels.values())
    rows = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    chosen = [r for r in rows if r["_id"] in judged]
    chosen += [r for r in rows if r["_id"] not in judged][:max(0, wanted - len(chosen))]
    return chosen, dataset.qrels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SHARED / "scifact")
    parser.add_argument("--docs", type=int, default=700)
    parser.add_argument("--model", default="multilingual-e5-small-q4")
    parser.add_argument("--variants", nargs="+", default=["none", "heading"])
    args = parser.parse_args()
    if not args.set.is_dir():
        sys.exit(f"skipped: {args.set} not found")
    rows, qrels = sample(args.set, args.docs)
    dataset = load_beir(args.set)
    asked = replace(dataset, queries={q: dataset.queries[q] for q in qrels})
    settings = load_settings()
    embedder = choose_embedder(None, settings.models_dir, args.model)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "docs"
        folder.mkdir()
        for row in rows:
            (folder / f"{row['_id']}.md").write_text(f"# {row['title']}\n\n{row['text']}\n", encoding="utf-8")
        heading_of = {}
        for path in folder.iterdir():
            doc = read_document(path)
            for chunk in chunk_document(doc.text, doc.sections, settings.chunk_size, settings.chunk_overlap):
                heading_of[chunk.text] = chunk.heading
        chunks = len(heading_of)
        later = sum(1 for t in heading_of if not t.startswith("#"))
        print(f"{args.set.name}: {len(rows)} documents as Markdown, {chunks} chunks ({later} without their title "
              f"line), {len(qrels)} questions, model {args.model}")
        print("| embedded text | " + " | ".join(f"{m} R@1 | {m} MRR@10 | {m} nDCG@10" for m in MODES) + " |")
        print("|---|" + "---|---|---|" * len(MODES))
        for variant in args.variants:
            used = HeadingEmbedder(embedder, heading_of) if variant == "heading" else embedder
            own = replace(settings, index_dir=Path(scratch) / f"index-{variant}")
            index_path(folder, own, used)
            searcher = Searcher(open_index(own.index_folder), used)
            cells = []
            for mode in MODES:
                ranked = rank_documents(searcher, asked, mode, document_id=lambda source: Path(source).stem).documents
                metrics = score(ranked, qrels)
                cells += [f"{metrics[k]:.2f}" for k in ("recall@1", "MRR@10", "nDCG@10")]
            label = "heading path + chunk" if variant == "heading" else "chunk only (today)"
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
