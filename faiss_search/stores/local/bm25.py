"""BM25 exactly as SQLite's FTS5 computes ``bm25()``, for scoring a few candidate rows outside FTS5.

FTS5 can only rank every row that matches a query; asked to score a given set of rows
(``rowid IN (...)``), it still scans every match. Keyword search at scale therefore picks
candidates with FTS5 from a query's rarest words and scores them here with all its words,
using FTS5's own statistics (row count, average row length, each row's length), so the
scores are those ``bm25()`` would give: the relevance curves and the fusion stay calibrated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

K1 = 1.2
B = 0.75
#: FTS5's unicode61 tokenizer: letters, numbers and private-use characters make tokens, lower-cased
_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def varints(blob: bytes) -> list[int]:
    """SQLite's variable-length integers (1-9 bytes, big-endian 7-bit groups), as FTS5 stores sizes."""
    values, i = [], 0
    while i < len(blob):
        value = 0
        for n in range(9):
            byte = blob[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        values.append(value)
    return values


def idf(rows: int, hits: int) -> float:
    value = math.log((rows - hits + 0.5) / (hits + 0.5))
    return value if value > 0 else 1e-6


def _count(row: list[str], phrase: list[str]) -> int:
    width = len(phrase)
    return sum(1 for i in range(len(row) - width + 1) if row[i:i + width] == phrase)


def score(row_tokens: list[str], row_length: int, phrases: Iterable[tuple[list[str], float]],
          average_length: float) -> float:
    """FTS5's bm25() of one row, negated (higher is better); ``phrases`` are (tokens, idf) pairs."""
    norm = K1 * (1 - B + B * row_length / average_length)
    total = 0.0
    for phrase, weight in phrases:
        hits = _count(row_tokens, phrase)
        if hits:
            total += weight * hits * (K1 + 1) / (hits + norm)
    return total
