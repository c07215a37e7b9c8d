"""Documents with known text, generated for the format tests and the format benchmark.

PDFs are drawn line by line with reportlab (Chinese in Adobe's STSong-Light CID font, which needs
no font file), lines filled to the text width as a typesetter would, so the tests know each
page's text and where its lines break; Word files come
from python-docx, EPUBs are zipped by hand.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

PAGE_WIDTH, PAGE_HEIGHT = 595, 842
LEFT, TOP, LEADING = 72, 770, 16
CJK_FONT = "STSong-Light"


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


#: what a Chinese typesetter never puts at the start of a line (kinsoku): it stays on the line before
_NO_LINE_START = set("。，、；：？！）」』》”’%.,;:!?)")
TEXT_WIDTH = PAGE_WIDTH - 2 * LEFT


def _register_cjk_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def wrap(paragraph: str, hyphenate: bool = False, size: float = 11) -> list[str]:
    """Lines as a typesetter sets them: filled to the text width, Latin words kept whole (or hyphenated),
    no line starting with closing punctuation."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    _register_cjk_font()
    font = CJK_FONT if _is_cjk(paragraph) else "Helvetica"
    tokens = re.findall(r"[A-Za-z0-9]+[^\sA-Za-z0-9\u4e00-\u9fff]?|\s|.", paragraph)
    lines, line = [], ""
    for token in tokens:
        if stringWidth((line + token).rstrip(), font, size) <= TEXT_WIDTH or not line.strip() \
                or token[0] in _NO_LINE_START:
            line += token
            continue
        if hyphenate and len(token) > 6 and token.isalpha():
            head = next(i for i in range(len(token) - 3, 2, -1)
                        if stringWidth(line + token[:i] + "-", font, size) <= TEXT_WIDTH or i == 3)
            lines.append(line + token[:head] + "-")
            line = token[head:]
            continue
        lines.append(line.rstrip())
        line = token.lstrip()
    return [text for text in (*lines, line.rstrip()) if text]


def make_pdf(path: Path, pages: list[list[str]], header: str | None = "内部资料 Internal", hyphenate: bool = False,
             password: str | None = None, page_numbers: bool = True, headings: dict[str, int] | None = None,
             bookmarks: bool = True) -> Path:
    """A page (or more, where its text does not fit) per list of paragraphs; a running header and a
    "第 N 页" footer on every page. ``headings``: paragraphs that are headings, with their level (0 the top),
    set larger (18 points at level 0, 2 less a level down) and, with ``bookmarks``, in the PDF's outline."""
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    _register_cjk_font()
    encrypt = StandardEncryption(password, canPrint=0) if password else None
    pdf = canvas.Canvas(str(path), pagesize=(PAGE_WIDTH, PAGE_HEIGHT), encrypt=encrypt)
    number = 0

    def new_page() -> float:
        nonlocal number
        number += 1
        pdf.setFont(CJK_FONT, 9)
        if header:
            pdf.drawString(LEFT, 810, header)
        if page_numbers:
            pdf.drawString(280, 30, f"第 {number} 页")
        return TOP

    for paragraphs in pages:
        y = new_page()
        for paragraph in paragraphs:
            level = (headings or {}).get(paragraph)
            if level is not None and bookmarks:
                key = f"heading-{len(paragraph)}-{abs(hash(paragraph))}"
                pdf.bookmarkPage(key)
                pdf.addOutlineEntry(paragraph, key, level=level)
            font = CJK_FONT if _is_cjk(paragraph) else "Helvetica"
            size = 11 if level is None else 18 - 2 * level
            if level is not None:
                y -= LEADING // 2
            for line in wrap(paragraph, hyphenate, size=size):
                if y < 90:
                    pdf.showPage()
                    y = new_page()
                pdf.setFont(font, size)
                pdf.drawString(LEFT, y, line)
                y -= LEADING if level is None else size + 8
            y -= LEADING // 2
        pdf.showPage()
    pdf.save()
    return path


def make_scanned_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF with pictures only (what a scanner makes): no text layer."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=(PAGE_WIDTH, PAGE_HEIGHT))
    for _ in range(pages):
        pdf.rect(LEFT, 300, 300, 400, fill=1)
        pdf.showPage()
    pdf.save()
    return path


def make_docx(path: Path, blocks: list[tuple[int, str]], table: list[list[str]] | None = None,
              bullets: list[str] = ()) -> Path:
    """Blocks of (heading level or 0, text); a table and a bulleted list after them."""
    import docx

    document = docx.Document()
    for level, text in blocks:
        if level:
            document.add_heading(text, level)
        else:
            document.add_paragraph(text)
    for item in bullets:
        document.add_paragraph(item, style="List Bullet")
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    document.save(str(path))
    return path


def make_epub(path: Path, chapters: list[tuple[str, str]]) -> Path:
    """An EPUB 3 of (chapter title, body HTML) in this order; the spine lists them in reverse file order
    to prove reading order comes from the spine, not from file names."""
    with zipfile.ZipFile(path, "w") as epub:
        epub.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        epub.writestr("META-INF/container.xml",
                      '<?xml version="1.0"?><container version="1.0" '
                      'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                      '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                      '</rootfiles></container>')
        names = [f"z{len(chapters) - i:02d}.xhtml" for i in range(len(chapters))]
        items = "".join(f'<item id="c{i}" href="text/{n}" media-type="application/xhtml+xml"/>'
                        for i, n in enumerate(names))
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        epub.writestr("OEBPS/content.opf",
                      '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
                      f'<metadata/><manifest>{items}</manifest><spine>{spine}</spine></package>')
        for name, (title, body) in zip(names, chapters, strict=True):
            epub.writestr(f"OEBPS/text/{name}",
                          f'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                          f"<head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")
    return path


def recovered(expected: str, got: str) -> float:
    """The share of ``expected``'s characters (whitespace aside) found in ``got`` in the same order."""
    import difflib

    want = "".join(expected.split())
    have = "".join(got.split())
    matcher = difflib.SequenceMatcher(None, want, have, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(1, len(want))
