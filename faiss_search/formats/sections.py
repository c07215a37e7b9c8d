"""Where sections begin: headings found in Markdown, or given by a reader's blocks, named by their heading path."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .extracted import Block, Extracted, HeadingPath, Section, enter_heading, heading_name, tidy


def from_blocks(blocks: Iterable[Block]) -> Extracted:
    """Paragraphs joined by blank lines; each heading starts a section named by its heading path."""
    parts: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for block in blocks:
        text = tidy(block.text) if block.level else block.text.strip("\n") if block.code else block.text.strip()
        if not text.strip():
            continue
        if block.code:  # fenced as Markdown fences it: snippets then keep its lines (snippets.py)
            text = f"```\n{text}\n```"
        if block.level:
            headings.append((offset, block.level, text))
        parts.append(text)
        offset += len(text) + 2
    text = "\n\n".join(parts)
    return Extracted(text, _heading_sections(text, headings))


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
    path: HeadingPath = []
    carried: int | None = None  # the start of a heading that had no text of its own
    for n, (offset, level, name) in enumerate(headings):
        path = enter_heading(path, level, name)
        end = headings[n + 1][0] if n + 1 < len(headings) else len(text)
        start = offset if carried is None else carried
        if n + 1 < len(headings) and not _body(text[offset:end]).strip():
            carried = start
            continue
        carried = None
        sections.append(Section(start, None, heading_name(path)))
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


MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
