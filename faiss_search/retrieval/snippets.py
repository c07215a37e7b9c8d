"""Where in a hit the answer is: the chunk's sentence closest to the query, and a short snippet around it.

A chunk is ~500 characters; the user wants the line to open (``vim +N``) and two lines to read.
The sentence is chosen by the query's words it contains (longer words weigh more) and, for
paraphrases that share few whole words, by the character pairs it shares with the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from ..chunking import SENTENCE_ENDS
from ..lexical import WORD_CHAR

#: about two lines of an 80-column terminal (a Chinese character takes two columns)
SNIPPET_CELLS = 180
#: a sentence ends at a line break or sentence punctuation; a "." only before a space (not in 3.5 or e.g.)
_ENDS = (SENTENCE_ENDS | {"\n"}) - {".", "…"}


@dataclass(frozen=True)
class Match:
    """The best sentence of a chunk: its line in the file and a one-paragraph snippet around it."""

    line: int
    snippet: str


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line, without surrounding blanks."""
    spans, start = [], 0
    for i, char in enumerate(text):
        if char in _ENDS or (char == "." and (i + 1 == len(text) or text[i + 1].isspace())):
            spans.append((start, i + 1))
            start = i + 1
    spans.append((start, len(text)))
    trimmed = []
    for begin, end in spans:
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin < end:
            trimmed.append((begin, end))
    return trimmed or [(0, len(text))]


def _pairs(text: str) -> set[str]:
    chars = [c for c in text.lower() if WORD_CHAR.match(c)]
    return {a + b for a, b in pairwise(chars)}


def best_span(terms: list[str], query: str, text: str) -> tuple[int, int]:
    """The sentence sharing most with the query: matched words by length, then shared character pairs."""
    lowered, query_pairs = text.lower(), _pairs(query)
    best, best_score = None, 0.0
    for begin, end in sentence_spans(text):
        sentence = lowered[begin:end]
        score = sum(len(t) for t in terms if t in sentence) + 0.5 * len(query_pairs & _pairs(sentence))
        if score > best_score:
            best, best_score = (begin, end), score
    return best or sentence_spans(text)[0]


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def snippet(text: str, span: tuple[int, int], budget: int = SNIPPET_CELLS) -> str:
    """The span, widened by the sentences after (then before) it while it fits ``budget`` columns, on one line.

    Inside a fenced code block the snippet keeps its lines (at most CODE_LINES of the block, indented as
    written): code read on one line is no longer code."""
    spans = sentence_spans(text)
    first = last = spans.index(span) if span in spans else 0
    starts_inside = _starts_inside_fence(text)
    if _inside_fence(text, spans[first][0], starts_inside):
        return _code_snippet(text, spans[first])

    def joined(lo: int, hi: int) -> str:
        return " ".join(text[spans[lo][0]:spans[hi][1]].split())

    # sentences outside code: prose is never widened into a code block
    prose = [not _inside_fence(text, start, starts_inside) and not _FENCE.match(text, start) for start, _ in spans]
    grown = True
    while grown:
        grown = False
        for lo, hi in ((first, last + 1), (first - 1, last)):
            if 0 <= lo and hi < len(spans) and prose[lo] and prose[hi] and _cells(joined(lo, hi)) <= budget:
                first, last, grown = lo, hi, True
                break
    flat = joined(first, last)
    cut = _cells(flat) > budget
    if cut:
        flat = _cut(flat, budget)
    return ("…" if first > 0 else "") + flat + ("…" if cut or last < len(spans) - 1 else "")


#: lines of a code block a snippet shows, and the columns of each
CODE_LINES, CODE_CELLS = 4, 100
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.M)
#: characters that make up one token (an identifier, a path, a URL, a number): a cut never falls inside one
_TOKEN = re.compile(r"[A-Za-z0-9_./:#?&=%+@~\-]")


def _inside_fence(text: str, offset: int, starts_inside: bool) -> bool:
    """Whether ``offset`` lies inside a Markdown code fence of the chunk (an odd number of fences before it,
    counting the one a chunk that ``starts_inside`` a block lacks)."""
    return (len(_FENCE.findall(text, 0, offset)) + starts_inside) % 2 == 1


def _starts_inside_fence(text: str) -> bool:
    """Whether the chunk begins inside a code block, cut from the document mid-block: its first fence closes
    a block. A closing fence has no info string (```js opens) and ends the code right above it; an opening
    one follows a blank line, as Markdown writers and fsearch's own HTML and DOCX readers put it."""
    first = _FENCE.search(text)
    if first is None or first.start() == 0:
        return False
    info = text[first.end():].split("\n", 1)[0].strip()
    line_above = text[:first.start()].split("\n")[-2]  # the fence starts a line: the text before ends with one
    return not info and bool(line_above.strip())


def _code_snippet(text: str, span: tuple[int, int]) -> str:
    """The code line of ``span`` and the block's lines after it, as written, up to CODE_LINES."""
    line_start = text.rfind("\n", 0, span[0]) + 1
    lines: list[str] = []
    for line in text[line_start:].split("\n"):
        if _FENCE.match(line) or len(lines) == CODE_LINES:
            break
        line = line.rstrip()
        lines.append(_cut(line, CODE_CELLS) + ("…" if _cells(line) > CODE_CELLS else ""))
    return "\n".join(lines)


def _cut(text: str, budget: int) -> str:
    """The longest start of ``text`` that fits ``budget`` columns without splitting a token (unless one token
    alone is longer than the budget)."""
    kept, used = [], 0
    for char in text:
        used += _cells(char)
        if used > budget:
            break
        kept.append(char)
    end = len(kept)
    if end < len(text) and _TOKEN.match(text[end]) and end and _TOKEN.match(kept[-1]):
        boundary = end
        while boundary > 0 and _TOKEN.match(kept[boundary - 1]):
            boundary -= 1
        if boundary > 0:
            end = boundary
    return "".join(kept[:end]).rstrip()


def locate(terms: list[str], query: str, text: str, first_line: int) -> Match:
    """Where in a chunk (starting on ``first_line`` of its file) the query is best answered."""
    span = best_span(terms, query, text)
    return Match(first_line + text.count("\n", 0, span[0]), snippet(text, span))
