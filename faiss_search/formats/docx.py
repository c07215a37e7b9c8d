"""Word documents with python-docx: paragraphs, heading styles (English and Chinese names) and tables."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from ..errors import NotText
from .extracted import Block, Extracted, open_zip, tidy
from .sections import from_blocks


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
