"""Text and locations out of documents that are not plain text: PDF, Word, HTML, EPUB, and Markdown's headings.

Every reader returns an ``Extracted``: the document's text (what is chunked, stored and shown)
and its ``Section``s, the places where a page or a heading begins. Chunks never cross a
section boundary, so each one can cite its page (``manual.pdf:p12``) or heading path
(``安装 › 离线安装``). Readers raise ``NotText`` with a reason a person can act on (an
encrypted or scanned PDF, a zip bomb) instead of indexing nothing silently.

Libraries (all MIT-compatible): pypdfium2 (PDFium, Apache-2.0/BSD-3) for PDF, measured the
fastest and most exact on Chinese PDFs, with pypdf (BSD-3) for pages PDFium misreads;
python-docx (MIT) for Word; BeautifulSoup (MIT) with lxml (BSD) for HTML and for EPUB
chapters, whose container we read with ``zipfile`` (ebooklib is AGPL).
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from itertools import pairwise
from pathlib import PurePosixPath
from statistics import median
from typing import Any

from .errors import NotText

HEADING_SEPARATOR = " › "
#: a zip member we parse (XML, HTML) may expand to this much; more is a zip bomb, not a document
MAX_MEMBER_BYTES = 64 * 1024 * 1024
#: and the whole archive to this much (images included)
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Section:
    """From ``start`` (an offset in the extracted text) to the next section: one page, or one heading's text."""

    start: int
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True)
class Extracted:
    text: str
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class Block:
    """A paragraph or a heading (``level`` 1-6) of a structured document, in reading order."""

    text: str
    level: int = 0


_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t\u00a0]+(?=[{_CJK}])")
_WRAP_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t\r]*\n\\s*(?=[{_CJK}])")
_WHITESPACE = re.compile(r"\s+")


def tidy(text: str) -> str:
    """Text as a browser shows it: a line wrapped inside Chinese text joins without a space; other runs of
    whitespace become one space."""
    return _WHITESPACE.sub(" ", _WRAP_BETWEEN_CJK.sub("", text)).strip()


def from_blocks(blocks: Iterable[Block]) -> Extracted:
    """Paragraphs joined by blank lines; each heading starts a section named by its heading path."""
    parts: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for block in blocks:
        text = tidy(block.text) if block.level else block.text.strip()
        if not text:
            continue
        if block.level:
            headings.append((offset, block.level, text))
        parts.append(text)
        offset += len(text) + 2
    text = "\n\n".join(parts)
    return Extracted(text, _heading_sections(text, headings))


# --- Markdown -------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: emphasis and code marks (an underscore inside a word, as in config_file, is not one) and link targets
_INLINE_MARKUP = re.compile(r"[*`]+|(?<!\w)_+|_+(?!\w)|\[([^\]]*)\]\([^)]*\)")


def markdown_sections(text: str) -> tuple[Section, ...]:
    """The heading sections of a Markdown text (ATX ``#`` and setext headings; not inside code fences).

    The text itself is indexed as it is, so line numbers stay those of the file.
    """
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    headings: list[tuple[int, int, str]] = []  # (offset, level, name)
    fence = ""
    for i, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened.group(1)
            continue
        atx = _ATX.match(line)
        if atx:
            headings.append((starts[i], len(atx.group(1)), _plain(atx.group(2) or "")))
        elif i > 0 and _SETEXT.match(line) and lines[i - 1].strip() and not _ATX.match(lines[i - 1]) \
                and (not headings or headings[-1][0] != starts[i - 1]):
            headings.append((starts[i - 1], 1 if line.strip()[0] == "=" else 2, _plain(lines[i - 1])))
    return _heading_sections(text, headings)


def _plain(heading: str) -> str:
    """A Markdown heading's words, without emphasis, code marks and link targets."""
    return tidy(_INLINE_MARKUP.sub(_link_text, heading))


def _heading_sections(text: str, headings: list[tuple[int, int, str]]) -> tuple[Section, ...]:
    """One section per heading, named by its path; text before the first heading gets a section of its own.

    A heading with no text of its own before the next one (``# 安装`` then ``## 离线安装``) shares
    the next one's section, so no chunk is a lone title.
    """
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    carried: int | None = None  # the start of a heading that had no text of its own
    for n, (offset, level, name) in enumerate(headings):
        path = [(lvl, nm) for lvl, nm in path if lvl < level] + [(level, name)]
        end = headings[n + 1][0] if n + 1 < len(headings) else len(text)
        start = offset if carried is None else carried
        if n + 1 < len(headings) and not _body(text[offset:end]).strip():
            carried = start
            continue
        carried = None
        sections.append(Section(start, None, HEADING_SEPARATOR.join(nm for _, nm in path)))
    first = sections[0].start if sections else len(text)
    if text[:first].strip():
        sections.insert(0, Section(0))
    return tuple(sections)


def _link_text(match: re.Match) -> str:
    return match.group(1) or ""


def _body(section: str) -> str:
    """A section's text without its heading line (and a setext underline)."""
    rest = section.split("\n", 1)[1] if "\n" in section else ""
    first, _, after = rest.partition("\n")
    return after if _SETEXT.match(first) else rest


# --- PDF ------------------------------------------------------------------------------------------

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
    except pdfium.PdfiumError:
        raise NotText("damaged PDF") from None
    finally:
        pdf.close()
    running = _running_lines(pages)
    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    for number, (lines, height) in enumerate(pages, start=1):
        body = [line for line in lines if not (_in_margin(line, height) and (_shape(line.text) in running
                                                                             or _PAGE_NUMBER.match(line.text)))]
        text = "\n\n".join(_paragraphs(body, height))
        if text:
            sections.append(Section(offset, number))
            parts.append(text)
            offset += len(text) + 2
    if not parts:
        raise NotText("no text layer (a scanned PDF?)")
    return Extracted("\n\n".join(parts), tuple(sections))


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
            width = sum(size if _CJK_CHAR.match(c) else size / 2 for c in text)
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
    return [_SPACE_BETWEEN_CJK.sub("", tidy(_join_lines(parts))) for parts in paragraphs]


def _gap(before: _Line, line: _Line) -> float:
    return before.y - (line.first_y if line.first_y is not None else line.y)


def _join_lines(lines: list[str]) -> str:
    """A paragraph's lines as one: nothing between Chinese characters, a word hyphenated at the line's end
    mended ("individu-" "ally"), a hyphen kept before anything else ("240-" "250"), else a space."""
    text = lines[0]
    for line in lines[1:]:
        if text.endswith("-") and text[-2:-1].isalpha() and line[:1].islower():
            text = text[:-1] + line
        elif _CJK_CHAR.match(text[-1:]) or _CJK_CHAR.match(line[:1]) or text.endswith("-"):
            text += line
        else:
            text += " " + line
    return text


# --- zip containers (DOCX, EPUB) ------------------------------------------------------------------

def open_zip(data: bytes, kind: str) -> zipfile.ZipFile:
    """A zip archive whose members may be read: their declared sizes are checked before anything expands."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise NotText(f"damaged {kind}") from None
    if any(m.file_size > MAX_MEMBER_BYTES for m in members) or \
            sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
        raise NotText(f"{kind} expands to more than {MAX_MEMBER_BYTES // 2**20} MB per part (a zip bomb?)")
    return archive


def read_docx(data: bytes) -> Extracted:
    """Paragraphs, headings (Word's heading styles or outline levels), tables row by row, lists."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    archive = open_zip(data, "DOCX")
    archive.close()
    try:
        document = docx.Document(BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, SyntaxError) as exc:
        raise NotText("damaged DOCX" if not isinstance(exc, PackageNotFoundError) else "not a Word document") \
            from None
    return from_blocks(_docx_blocks(document))


_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*([1-9])$", re.IGNORECASE)


def _docx_blocks(document: Any) -> Iterator[Block]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            yield Block(paragraph.text, _docx_level(paragraph))
        elif tag == "tbl":
            yield from (Block(row) for row in _table_rows(Table(element, document)))


def _docx_level(paragraph: Any) -> int:
    """1-6 for a heading (its style, "Title", or an outline level set on the paragraph), 0 for body text."""
    style = paragraph.style
    while style is not None:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 1
        found = _HEADING_STYLE.match(name)
        if found:
            return min(6, int(found.group(1)))
        style = style.base_style
    outline = paragraph._p.find(".//{http://schemas.openxmlformats.org/wordprocessingml/2006/main}outlineLvl")
    if outline is not None:
        value = outline.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}val", "9")
        return min(6, int(value) + 1) if value.isdigit() and int(value) < 9 else 0
    return 0


def _table_rows(table: Any) -> Iterator[str]:
    """Each row as "cell | cell"; a merged cell (which python-docx repeats) once; nested tables inline."""
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(tidy(line) for line in cell.text.split("\n") if line.strip())
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            yield " | ".join(cells)


# --- HTML and EPUB --------------------------------------------------------------------------------

#: elements that are page furniture, not the document
_BOILERPLATE = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "button",
                "iframe", "svg", "select", "head")
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu"}
_BOILERPLATE_NAMES = re.compile(r"(^|[-_ ])(nav|navbar|menu|breadcrumbs?|sidebar|footer|header|toc|comments?|"
                                r"share|social|cookie|advert|ads)([-_ ]|$)", re.IGNORECASE)
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote",
               "table", "tr", "figure", "figcaption", "address", "center", "body", "caption", "hr"}


def read_html(data: bytes) -> Extracted:
    """The page's main text (``<main>`` or ``<article>`` when there is one) with its headings; no furniture."""
    return from_blocks(html_blocks(data))


def html_blocks(data: bytes) -> list[Block]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for element in soup.find_all(_is_boilerplate):
        if not element.decomposed:
            element.decompose()
    main = soup.find("main") or soup.find("article")
    root = main if main is not None and main.get_text(strip=True) else (soup.body or soup)
    blocks: list[Block] = []
    _walk(root, blocks, [])
    if title and not any(b.level for b in blocks) and blocks:
        blocks.insert(0, Block(title, 1))
    return blocks


def _is_boilerplate(element: Any) -> bool:
    if element.name in _BOILERPLATE or element.get("role") in _BOILERPLATE_ROLES or element.get("hidden") is not None:
        return True
    names = " ".join(element.get("class") or []) + " " + (element.get("id") or "")
    return element.name not in ("body", "main", "article") and bool(_BOILERPLATE_NAMES.search(names))


def _walk(node: Any, blocks: list[Block], words: list[str]) -> None:
    """Depth first: text gathers into ``words`` until a block element ends it; headings are blocks of their own."""
    from bs4 import NavigableString, Tag
    from bs4.element import Comment

    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            words.append(str(child))
        elif isinstance(child, Tag):
            name = child.name
            if len(name) == 2 and name[0] == "h" and name[1] in "123456":
                _flush(blocks, words)
                blocks.append(Block(child.get_text(" "), int(name[1])))
            elif name == "br":
                words.append(_BREAK)
            elif name in ("td", "th"):
                words.append(" | " if words and "".join(words).strip() else "")
                _walk(child, blocks, words)
            elif name == "pre":
                _flush(blocks, words)
                blocks.append(Block(child.get_text()))
            elif name in _BLOCK_TAGS:
                _flush(blocks, words)
                _walk(child, blocks, words)
                _flush(blocks, words)
            else:
                _walk(child, blocks, words)


_BREAK = "\x00"  # where a <br> was, among the page's text (whose own newlines are only whitespace)


def _flush(blocks: list[Block], words: list[str]) -> None:
    text = "\n".join(line for line in (tidy(part).strip(" |") for part in "".join(words).split(_BREAK)) if line)
    if text:
        blocks.append(Block(text))
    words.clear()


_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"


def read_epub(data: bytes) -> Extracted:
    """The chapters in reading order (the package's spine), each read as HTML."""
    import xml.etree.ElementTree as ET

    archive = open_zip(data, "EPUB")
    with archive:
        try:
            container = ET.fromstring(archive.read("META-INF/container.xml"))
            rootfile = container.find(f".//{_CONTAINER}rootfile")
            package_path = rootfile.get("full-path") if rootfile is not None else None
            package = ET.fromstring(archive.read(package_path or ""))
            base = PurePosixPath(package_path or "").parent
            hrefs = {item.get("id"): item.get("href", "") for item in package.iter(f"{_OPF}item")}
            blocks: list[Block] = []
            for ref in package.iter(f"{_OPF}itemref"):
                href = hrefs.get(ref.get("idref"))
                if href:
                    blocks += html_blocks(archive.read(str(base / href.split("#")[0])))
        except (KeyError, ET.ParseError, zipfile.BadZipFile, OSError):
            raise NotText("damaged EPUB") from None
    return from_blocks(blocks)


#: readers of the formats that need more than decoding, by file suffix
READERS: dict[str, Callable[[bytes], Extracted]] = {
    ".pdf": read_pdf,
    ".docx": read_docx,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".epub": read_epub,
}
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})


def cites_lines(source: str) -> bool:
    """Whether a line number in ``source`` means something to a person: plain text and Markdown, not PDF or Word."""
    return PurePosixPath(source).suffix.lower() not in READERS
