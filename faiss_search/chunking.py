"""Splitting a document into overlapping chunks that keep their offsets and line numbers.

Units come first: blank-line separated paragraphs, or, in a file without blank lines,
single lines (so a file of one short document per line stays one result per line).
Paragraphs are packed together up to ``size`` characters; a unit longer than that is cut
at a line break, then after sentence punctuation (``。！？；.!?;``), then at a space, and
only then at any character, with ``overlap`` characters carried into the next chunk.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .formats.extracted import Section

SENTENCE_ENDS = frozenset("。！？；.!?;…")
_CLOSERS = frozenset("”’」』）)\"'】》]")
_BLANK_LINE = re.compile(r"\n[ \t\u3000]*\n")


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``text == document[start:end]``; ``line`` is 1-based.

    ``page`` (PDF) and ``heading`` (the heading path, ``安装 › 离线安装``) come from the
    document's section the chunk lies in.
    """

    text: str
    start: int
    end: int
    line: int
    page: int | None = None
    heading: str = ""


def _is_sentence_break(text: str, i: int) -> bool:
    """True when a sentence ends just before ``i`` (after its closing quotes)."""
    j = i - 1
    while j > 0 and text[j] in _CLOSERS:
        j -= 1
    if j < 0 or text[j] not in SENTENCE_ENDS:
        return False
    if text[j] in ".;" and i < len(text) and not text[i].isspace():
        return False  # 3.14, e.g., a.b: not the end of a sentence
    return True


def _find_break(text: str, lo: int, hi: int) -> int:
    """The best place in (lo, hi] to end a chunk, by the priority in the module docstring."""
    checks = (
        lambda i: text[i - 1] == "\n",
        lambda i: _is_sentence_break(text, i),
        lambda i: text[i - 1].isspace(),
    )
    for check in checks:
        for i in range(hi, lo, -1):
            if check(i):
                return i
    return hi


def _overlap_start(text: str, lo: int, cut: int) -> int:
    """Start the next chunk at a sentence or word start inside the overlap window, if there is one."""
    for check in (lambda i: _is_sentence_break(text, i) or text[i - 1] == "\n", lambda i: text[i - 1].isspace()):
        for i in range(lo, cut):
            if i > 0 and check(i):
                return i
    return lo


def _split_long(text: str, start: int, end: int, size: int, overlap: int) -> list[tuple[int, int]]:
    spans = []
    pos = start
    while pos + size < end:
        cut = _find_break(text, pos + max(1, size // 2), pos + size)
        spans.append((pos, cut))
        pos = _overlap_start(text, max(cut - overlap, pos + 1), cut) if overlap else cut
    spans.append((pos, end))
    return spans


def _units(text: str) -> tuple[list[tuple[int, int]], bool]:
    """(unit spans, whether neighbouring units may be packed into one chunk)."""
    if _BLANK_LINE.search(text):
        bounds = [0] + [b for m in _BLANK_LINE.finditer(text) for b in (m.start(), m.end())] + [len(text)]
        return list(zip(bounds[0::2], bounds[1::2], strict=False)), True
    spans, pos = [], 0
    for line in text.split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans, False


def _pack(units: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    for start, end in units:
        if groups and end - groups[-1][0] <= size:
            groups[-1] = (groups[-1][0], end)
        else:
            groups.append((start, end))
    return groups


def chunk_text(text: str, size: int = 500, overlap: int = 50) -> list[Chunk]:
    """Chunks of at most ``size`` characters (whitespace trimmed), neighbours sharing at most ``overlap``."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    units, packable = _units(text)
    groups = _pack(units, size) if packable else units
    newlines = [i for i, c in enumerate(text) if c == "\n"]
    chunks = []
    for group_start, group_end in groups:
        for start, end in _split_long(text, group_start, group_end, size, overlap):
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start < end:
                line = bisect.bisect_left(newlines, start) + 1
                chunks.append(Chunk(text[start:end], start, end, line))
    return chunks


def chunk_document(text: str, sections: Sequence[Section], size: int = 500, overlap: int = 50) -> list[Chunk]:
    """Chunks of each section (a page, a heading's text) apart, so every chunk has one page and one heading path."""
    if not sections:
        return chunk_text(text, size, overlap)
    if sections[0].start > 0:
        sections = [Section(0), *sections]
    chunks: list[Chunk] = []
    lines_before = 0
    for n, section in enumerate(sections):
        end = sections[n + 1].start if n + 1 < len(sections) else len(text)
        if n:
            lines_before += text.count("\n", sections[n - 1].start, section.start)
        for c in chunk_text(text[section.start:end], size, overlap):
            chunks.append(replace(c, start=c.start + section.start, end=c.end + section.start,
                                  line=c.line + lines_before, page=section.page, heading=section.heading))
    return chunks
