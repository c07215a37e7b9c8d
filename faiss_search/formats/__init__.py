"""Text and locations out of documents: plain text (``text``), PDF, Word, HTML, EPUB, and Markdown's headings.

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

from collections.abc import Callable
from pathlib import PurePosixPath

from .docx import read_docx
from .epub import read_epub
from .extracted import Extracted
from .html import read_html
from .pdf import read_pdf

#: readers of the formats that need more than decoding, by file suffix
READERS: dict[str, Callable[[bytes], Extracted]] = {
    ".pdf": read_pdf,
    ".docx": read_docx,
    ".html": read_html,
    ".htm": read_html,
    ".xhtml": read_html,
    ".epub": read_epub,
}


#: a reader's version, where it is past 1: a file its older version read is read again by the next `fsearch index`,
#: though its bytes did not change, so a better reader reaches the indexes made before it
#: (html 2: documents in parts, DocBook's and Asciidoctor's, read whole, and the title heading told apart)
READER_VERSIONS = {".html": 2, ".htm": 2, ".xhtml": 2, ".epub": 2}


def reader_version(source: str) -> int:
    """The version of the reader that reads ``source`` now (1 for readers never improved since it was recorded)."""
    return READER_VERSIONS.get(PurePosixPath(source).suffix.lower(), 1)


def cites_lines(source: str) -> bool:
    """Whether a line number in ``source`` means something to a person: plain text and Markdown, not PDF or Word."""
    return PurePosixPath(source).suffix.lower() not in READERS
