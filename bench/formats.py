"""The same documents as plain text, PDF and Word: does extraction lose retrieval quality, and what does it cost?

Every cmrc2018-dev document is written as ``<id>.txt``, ``<id>.pdf`` (drawn with reportlab,
lines filled to the page's width, a page number on each page) and
``<id>.docx``; each folder is indexed with `fsearch`'s own pipeline and every question asked.
Prints recall@1 and MRR@10 per mode, extraction pages/s, the time extraction takes as a
share of the index run, and the share the run spent waiting for it (extraction runs on a
thread beside the embedding, so this should be only the first file).

    python bench/formats.py [--set ../shared/data/cmrc2018-dev] [--limit N] [--formats txt pdf docx]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faiss_search.backends import choose_embedder  # noqa: E402
from faiss_search.config import load_settings  # noqa: E402
from faiss_search.documents import read_document  # noqa: E402
from faiss_search.evaluation import load_beir, rank_documents, score  # noqa: E402
from faiss_search.indexing.pipeline import index_path  # noqa: E402
from faiss_search.retrieval.search import MODES, Searcher  # noqa: E402
from faiss_search.stores import open_reader as open_index  # noqa: E402
from tests.makedocs import make_docx, make_pdf  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(folder: Path, kind: str, doc_id: str, text: str) -> None:
    paragraphs = [p for p in text.split("\n") if p.strip()]
    path = folder / f"{doc_id}.{kind}"
    if kind == "txt":
        path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    elif kind == "pdf":
        make_pdf(path, [paragraphs], header=None)  # a page number, but no running header: one page cannot show it
    else:
        make_docx(path, [(0, p) for p in paragraphs])


def extraction_rate(folder: Path) -> tuple[int, float]:
    """(pages, seconds) to read every file of the folder once, as the indexer does."""
    pages, started = 0, time.perf_counter()
    for path in sorted(folder.iterdir()):
        doc = read_document(path)
        pages += max((s.page or 1 for s in doc.sections), default=1)
    return pages, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SHARED / "cmrc2018-dev")
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents (and their questions)")
    parser.add_argument("--formats", nargs="+", default=["txt", "pdf", "docx"])
    parser.add_argument("--model", default="multilingual-e5-small-q4")
    args = parser.parse_args()
    if not args.set.is_dir():
        sys.exit(f"skipped: {args.set} not found")
    dataset = load_beir(args.set)
    documents = dataset.documents[:args.limit] if args.limit else dataset.documents
    kept = {d.source for d in documents}
    qrels = {q: rel for q, rel in dataset.qrels.items() if rel & kept}
    asked = replace(dataset, queries={q: dataset.queries[q] for q in qrels}, qrels=qrels)
    settings = load_settings()
    embedder = choose_embedder(None, settings.models_dir, args.model)
    print(f"{dataset.name}: {len(documents)} documents, {len(qrels)} questions, model {args.model}")
    print("| format | files | pages | extraction pages/s | index s | extraction share | waited for it | "
          + " | ".join(f"{m} R@1 | {m} MRR@10" for m in MODES) + " |")
    print("|---|---|---|---|---|---|---|" + "---|---|" * len(MODES))
    with tempfile.TemporaryDirectory() as scratch:
        for kind in args.formats:
            folder = Path(scratch) / kind
            folder.mkdir()
            for doc in documents:
                write(folder, kind, doc.source, doc.text)
            pages, seconds = extraction_rate(folder)
            own = replace(settings, index_dir=Path(scratch) / f"index-{kind}")
            report = index_path(folder, own, embedder)
            searcher = Searcher(open_index(own.index_folder), embedder)
            cells = []
            for mode in MODES:
                ranked = rank_documents(searcher, asked, mode, document_id=lambda source: Path(source).stem).documents
                metrics = score(ranked, qrels)
                cells += [f"{metrics['recall@1']:.2f}", f"{metrics['MRR@10']:.2f}"]
            print(f"| {kind} | {len(documents)} | {pages if kind == 'pdf' else '-'} | "
                  f"{pages / seconds:.0f} | {report.seconds:.0f} | {100 * seconds / report.seconds:.1f} % | "
                  f"{100 * report.read_wait_seconds / report.seconds:.2f} % | "
                  + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
