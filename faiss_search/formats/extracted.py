"""What every reader returns: the text, its sections, and the tidying all readers share."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from io import BytesIO

from ..errors import NotText

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
    """A paragraph, a heading (``level`` 1-6) or a block of ``code`` of a structured document, in reading order."""

    text: str
    level: int = 0
    code: bool = False


_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
CJK_CHAR = re.compile(f"[{_CJK}]")
SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t\u00a0]+(?=[{_CJK}])")
_WRAP_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t\r]*\n\\s*(?=[{_CJK}])")
_WHITESPACE = re.compile(r"\s+")


#: the headings a place is under, outermost first: (level, name)
HeadingPath = list[tuple[int, str]]


def enter_heading(path: HeadingPath, level: int, name: str) -> HeadingPath:
    """The path after a heading of ``level``: the headings of that level or deeper that it closes are gone."""
    return [(lvl, nm) for lvl, nm in path if lvl < level] + [(level, name)]


def heading_name(path: HeadingPath) -> str:
    """A path as sections name it: ``安装 › 离线安装``."""
    return HEADING_SEPARATOR.join(name for _, name in path)


def tidy(text: str) -> str:
    """Text as a browser shows it: a line wrapped inside Chinese text joins without a space; other runs of
    whitespace become one space."""
    return _WHITESPACE.sub(" ", _WRAP_BETWEEN_CJK.sub("", text)).strip()


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
