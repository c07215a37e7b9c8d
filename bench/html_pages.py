"""Which HTML extractor keeps the content and drops the furniture on pages as generators write them?

    python bench/html_pages.py

Runs fsearch's reader (faiss_search/formats/html.py), trafilatura and readability-lxml (each only if
installed: `pip install trafilatura readability-lxml`) over the pages of tests/sitepages.py (mdBook,
Sphinx Read the Docs and Furo, MkDocs Material, Docusaurus, VitePress, Hugo, Javadoc, rustdoc, a news
article with a cookie banner, a Chinese CMS page) and prints, per page and in total, the document
sentences kept, the furniture sentences let in, and the headings kept as headings.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sitepages import PAGES, Page  # noqa: E402

#: an extractor: the page's HTML in, its text and the headings it kept out
Extractor = Callable[[str], tuple[str, list[str]]]


def fsearch(html: str) -> tuple[str, list[str]]:
    from faiss_search.formats.html import read_html

    extracted = read_html(html.encode("utf-8"))
    return extracted.text, [part for s in extracted.sections if s.heading for part in s.heading.split(" › ")]


def trafilatura(html: str) -> tuple[str, list[str]]:
    import trafilatura as lib

    text = lib.extract(html, output_format="markdown", include_formatting=True, include_tables=True) or ""
    return text, [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]


def readability(html: str) -> tuple[str, list[str]]:
    from bs4 import BeautifulSoup
    from readability import Document

    document = Document(html)
    soup = BeautifulSoup(document.summary(), "lxml")
    headings = [document.short_title()] + [h.get_text(" ", strip=True) for h in soup.find_all(re.compile("^h[1-6]$"))]
    return soup.get_text("\n"), headings


def available() -> dict[str, Extractor]:
    found: dict[str, Extractor] = {"fsearch": fsearch}
    for name, extractor, module in (("trafilatura", trafilatura, "trafilatura"),
                                    ("readability-lxml", readability, "readability")):
        try:
            __import__(module)
        except ImportError:
            print(f"({name} is not installed: skipped)")
            continue
        found[name] = extractor
    return found


def score(page: Page, extractor: Extractor) -> tuple[int, int, int, float]:
    started = time.perf_counter()
    text, headings = extractor(page.html)
    seconds = time.perf_counter() - started
    squeezed = re.sub(r"\s+", " ", text)
    kept = sum(c in squeezed for c in page.content)
    leaked = sum(f in squeezed for f in page.furniture)
    named = sum(any(h == kept_heading.strip() for kept_heading in headings) for h in page.headings)
    return kept, leaked, named, seconds


def main() -> None:
    extractors = available()
    pages = [make() for make in PAGES]
    print(f"{'page':16}" + "".join(f"{name:>28}" for name in extractors))
    print(f"{'':16}" + "".join(f"{'content furniture headings':>28}" for _ in extractors))
    totals = {name: [0, 0, 0, 0.0] for name in extractors}
    for page in pages:
        row = f"{page.name:16}"
        for name, extractor in extractors.items():
            kept, leaked, named, seconds = score(page, extractor)
            row += f"{f'{kept}/{len(page.content)}':>10}{f'{leaked}/{len(page.furniture)}':>9}" \
                   f"{f'{named}/{len(page.headings)}':>9}"
            for i, value in enumerate((kept, leaked, named, seconds)):
                totals[name][i] += value
        print(row)
    content = sum(len(p.content) for p in pages)
    furniture = sum(len(p.furniture) for p in pages)
    headings = sum(len(p.headings) for p in pages)
    print(f"{'total':16}" + "".join(
        f"{f'{t[0]}/{content}':>10}{f'{t[1]}/{furniture}':>9}{f'{t[2]}/{headings}':>9}" for t in totals.values()))
    print(f"{'ms per page':16}" + "".join(f"{1000 * t[3] / len(pages):>28.1f}" for t in totals.values()))


if __name__ == "__main__":
    main()
