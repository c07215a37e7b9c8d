"""PDF with pypdfium2 (PDFium), and pypdf for pages PDFium misreads: paragraphs, without running heads."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from io import BytesIO
from itertools import pairwise
from statistics import median
from typing import Any

from ..errors import NotText
from .extracted import (
    CJK_CHAR,
    SPACE_BETWEEN_CJK,
    Extracted,
    HeadingPath,
    Section,
    enter_heading,
    heading_name,
    tidy,
)

#: the top and bottom share of a page where running headers, footers and page numbers live (body text
#: starts about 1 inch, 8.5 %, from the edge of an A4 page; headers sit at about half an inch)
_MARGIN_BAND = 0.075
_SENTENCE_END = tuple("。！？；：.!?;:…”」』)）")


@dataclass(frozen=True)
class _Line:
    text: str
    left: float
    right: float
    y: float  # the baseline (of its last glyph: PDFium joins a line hyphenated at its end with the next one)
    size: float = 0.0  # the font size: a line gap well over it separates paragraphs
    first_y: float | None = None  # the first glyph's baseline, where it differs


def read_pdf(data: bytes) -> Extracted:
    """One section per page with text, in reading order; running headers and footers dropped.

    Lines of a paragraph are joined (no space between Chinese characters, hyphenated words
    mended); paragraphs are told apart by a wider line gap or a short last line.
    """
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise NotText("encrypted PDF (password-protected)" if "password" in str(exc).lower()
                      else "damaged PDF") from None
    try:
        fallback = _PypdfPages(data)
        pages = [_page_lines(pdf, i, fallback) for i in range(len(pdf))]
        outline = _outline(pdf)
    except pdfium.PdfiumError:
        raise NotText("damaged PDF") from None
    finally:
        pdf.close()
    running = _running_lines(pages)
    outline = outline or _headings_by_size(pages, running)
    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    path: HeadingPath = []  # the outline's heading path in effect
    for number, (lines, height) in enumerate(pages, start=1):
        body = [line for line in lines if not (_in_margin(line, height) and (_shape(line.text) in running
                                                                             or _PAGE_NUMBER.match(line.text)))]
        text = "\n\n".join(_paragraphs(body, height))
        if text:
            sections += _page_sections(text, offset, number, outline.get(number - 1, []), path)
            parts.append(text)
            offset += len(text) + 2
        else:
            for level, title in outline.get(number - 1, []):
                path[:] = enter_heading(path, level, title)
    if not parts:
        raise NotText("no text layer (a scanned PDF?)")
    return Extracted("\n\n".join(parts), tuple(sections))


def _outline(pdf: Any) -> dict[int, list[tuple[int, str]]]:
    """The bookmarks (the outline a reader shows beside the pages) by page index: (level, title), in order."""
    found: dict[int, list[tuple[int, str]]] = {}
    for bookmark in pdf.get_toc():
        destination = bookmark.get_dest()
        title = tidy(bookmark.get_title() or "")
        if destination is not None and title and destination.get_index() is not None:
            found.setdefault(destination.get_index(), []).append((bookmark.level, title))
    return found


#: a line set this much larger than the body text, short and without a sentence's end, is a heading
_HEADING_SIZE = 1.2
_HEADING_CHARS = 80


def _headings_by_size(pages: list[tuple[list[_Line], float]], running: set[str]) -> dict[int, list[tuple[int, str]]]:
    """For a PDF without an outline: headings told by their font size, levels by size (the largest is 0)."""
    sizes: Counter[float] = Counter()
    for lines, _ in pages:
        for line in lines:
            if line.size:
                sizes[round(line.size, 1)] += len(line.text)
    if not sizes:
        return {}
    body = sizes.most_common(1)[0][0]
    found: dict[int, list[tuple[float, str]]] = {}
    for index, (lines, _) in enumerate(pages):
        for line in lines:
            text = tidy(line.text)
            if line.size >= _HEADING_SIZE * body and 0 < len(text) <= _HEADING_CHARS and \
                    not text.endswith(_SENTENCE_END) and _shape(line.text) not in running and \
                    not _PAGE_NUMBER.match(line.text):
                found.setdefault(index, []).append((round(line.size, 1), text))
    levels = {size: level for level, size in enumerate(sorted({s for row in found.values() for s, _ in row},
                                                               reverse=True))}
    return {index: [(levels[size], text) for size, text in row] for index, row in found.items()}


def _page_sections(text: str, offset: int, number: int, bookmarks: list[tuple[int, str]],
                   path: HeadingPath) -> list[Section]:
    """A page's sections: it starts in the heading path in effect; each bookmark on it starts a new one where
    its title is found in the text (one at the page's start, or not found before any other, names the page's
    first). ``path`` is carried on to the next page."""
    sections = [Section(offset, number, heading_name(path))]
    searched_from = 0
    for level, title in bookmarks:
        path[:] = enter_heading(path, level, title)
        found = text.find(title, searched_from)
        if found > 0:
            searched_from = found + len(title)
            sections.append(Section(offset + found, number, heading_name(path)))
        elif len(sections) == 1:
            sections[0] = Section(offset, number, heading_name(path))
    return sections


def _page_lines(pdf: Any, index: int, fallback: _PypdfPages) -> tuple[list[_Line], float]:
    """The page's text lines (as PDFium orders them) with their horizontal extent and baseline."""
    import pypdfium2.raw as pdfium_c

    page = pdf[index]
    try:
        if _glyphs_without_height(page):
            return fallback.lines(index), page.get_height()
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range()  # a hyphen PDFium found at a line's end comes back as U+FFFE
            lines, start = [], 0
            for raw in text.split("\r\n"):
                glyphs = [start + i for i, c in enumerate(raw) if not c.isspace()]
                if glyphs:
                    boxes = [textpage.get_charbox(i) for i in glyphs]
                    lines.append(_Line(_SOFT_HYPHEN.sub(_mend, raw).strip(), min(b[0] for b in boxes),
                                       max(b[2] for b in boxes), boxes[-1][1],
                                       pdfium_c.FPDFText_GetFontSize(textpage.raw, glyphs[0]), boxes[0][1]))
                start += len(raw) + 2
            return lines, page.get_height()
        finally:
            textpage.close()
    finally:
        page.close()


def _glyphs_without_height(page: Any) -> bool:
    """Text in a font without glyph boxes (a non-embedded Chinese CID font such as STSong-Light).

    PDFium takes such lines for duplicates of each other (its fake-bold check) and drops every
    repeat of an identical line, so these pages are read with pypdf instead.
    """
    import pypdfium2.raw as pdfium_c

    for text in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_TEXT], max_depth=2):
        _, bottom, _, top = text.get_bounds()
        if top - bottom < 0.01:
            return True
    return False


class _PypdfPages:
    """The document opened in pypdf on first need (most PDFs never need it)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._reader: Any = None

    def lines(self, index: int) -> list[_Line]:
        """A page's lines from pypdf's text operators: baselines exact, right edges estimated from the font size."""
        import pypdf

        if self._reader is None:
            # what pypdf worked around is not the user's to fix: the Debian reference's PDF had it log
            # "fontTools is required to fully parse the encoding of a CFF Type1 font" once a page
            logging.getLogger("pypdf").setLevel(logging.ERROR)
            self._reader = pypdf.PdfReader(BytesIO(self._data))
        fragments: list[tuple[float, float, str, float]] = []

        def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
            if text.strip():
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                fragments.append((round(y, 1), x, text.replace("\n", ""), size * abs(tm[0] * cm[0]) or size))

        self._reader.pages[index].extract_text(visitor_text=visit)
        lines: list[_Line] = []
        for y, x, text, size in sorted(fragments, key=lambda f: (-f[0], f[1])):
            width = sum(size if CJK_CHAR.match(c) else size / 2 for c in text)
            if lines and abs(lines[-1].y - y) < 1:
                last = lines[-1]
                lines[-1] = _Line(last.text + text, last.left, max(last.right, x + width), last.y, last.size)
            else:
                lines.append(_Line(text.strip(), x, x + width, y, size))
        return lines


#: a page number alone on a line ("12", "- 12 -", "第 12 页", "Page 12 of 40", "12 / 40"): dropped from the
#: margins even on a document too short to show that it repeats
_PAGE_NUMBER = re.compile(r"^\s*(?:[-–—]\s*)?(?:第\s*\d+\s*页|(?:page|p\.)?\s*\d+(?:\s*(?:of|/|共)\s*\d+\s*页?)?)"
                          r"(?:\s*[-–—])?\s*$", re.IGNORECASE)


_SOFT_HYPHEN = re.compile("\ufffe(.?)")


def _mend(match: re.Match) -> str:
    """A word PDFium joined across a line break: "individu" + "ally", but "M-Touch" keeps its hyphen."""
    return match.group(1) if match.group(1).islower() else "-" + match.group(1)


def _in_margin(line: _Line, height: float) -> bool:
    return line.y > height * (1 - _MARGIN_BAND) or line.y < height * _MARGIN_BAND


def _shape(text: str) -> str:
    """A header or footer's text with its numbers blanked: "第 3 页" and "第 4 页" are the same line."""
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _running_lines(pages: list[tuple[list[_Line], float]]) -> set[str]:
    """Lines in the top or bottom band that recur on most pages (at least 3): headers, footers, page numbers."""
    if len(pages) < 3:
        return set()
    seen: Counter = Counter()
    for lines, height in pages:
        seen.update({_shape(line.text) for line in lines if _in_margin(line, height)})
    return {shape for shape, n in seen.items() if n >= max(3, 0.6 * len(pages))}


def _paragraphs(lines: list[_Line], height: float) -> list[str]:
    """Join a page's lines into paragraphs: a new one after a wide gap, an indent, a short line, or at a
    margin's edge (a header kept on a short document is not part of the first paragraph)."""
    if not lines:
        return []
    gaps = [gap for gap in map(_gap, lines, lines[1:]) if gap > 0]
    pitch = median(gaps) if gaps else 0.0
    right = max(line.right for line in lines)
    left = min(line.left for line in lines)
    width = right - left
    paragraphs: list[list[str]] = [[lines[0].text]]
    for before, line in pairwise(lines):
        gap = _gap(before, line)
        same_line = abs(gap) < 0.3 * (pitch or 1)  # PDFium splits a line where the text run is interrupted
        breaks = not same_line and (gap < 0 or (pitch and gap > 1.4 * pitch) or gap > 1.9 * (line.size or gap)
                                    or _in_margin(before, height) != _in_margin(line, height)
                                    or before.right < right - 0.1 * width and before.text.endswith(_SENTENCE_END)
                                    or line.left > before.left + 0.02 * width and before.text.endswith(_SENTENCE_END))
        if breaks:
            paragraphs.append([line.text])
        else:
            paragraphs[-1].append(line.text)
    return [SPACE_BETWEEN_CJK.sub("", tidy(_join_lines(parts))) for parts in paragraphs]


def _gap(before: _Line, line: _Line) -> float:
    return before.y - (line.first_y if line.first_y is not None else line.y)


def _join_lines(lines: list[str]) -> str:
    """A paragraph's lines as one: nothing between Chinese characters, a word hyphenated at the line's end
    mended ("individu-" "ally"), a hyphen kept before anything else ("240-" "250"), else a space."""
    text = lines[0]
    for line in lines[1:]:
        if text.endswith("-") and text[-2:-1].isalpha() and line[:1].islower():
            text = text[:-1] + line
        elif CJK_CHAR.match(text[-1:]) or CJK_CHAR.match(line[:1]) or text.endswith("-"):
            text += line
        else:
            text += " " + line
    return text
