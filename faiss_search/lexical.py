"""Words for keyword search: jieba segmentation for Chinese, lower-cased words for English.

The same function segments documents and queries, so a word matches only itself. jieba's
search mode also emits the shorter words inside long ones (中华人民共和国 → 中华, 人民, 共和国 …),
which lets a query match part of a compound. Identifiers (``Symbol.iterator``, ``IpAddrKind::V4``,
``snake_case``, ``camelCase``, paths, version numbers) are words twice over: whole, as one token,
and as their parts, so the chunk that holds the identifier itself outranks one that holds its parts.

The segmenter is jieba-rs (``rjieba``): jieba's dictionary and algorithm in Rust. Python jieba
took 0.6 s to load its dictionary (1.2 s before its cache existed), 65 MB, and 1.7 s of GIL-holding
CPU to segment cmrc2018's 432k characters; jieba-rs takes 0.13 s, 33 MB and 0.08 s. Its words are
Python jieba's but for runs of ASCII it keeps whole (``_pieces_left`` restores those): 0.04 % of 746k
words differ on the eval sets, code and docs, and no eval figure moved.
"""

from __future__ import annotations

import re
import threading
from types import ModuleType

WORD_CHAR = re.compile(r"[0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]", re.IGNORECASE)
STOP_WORDS = frozenset(
    """a an and are as at be but by for from has have how i in into is it its of on or that the their
    this to was were what when where which who why will with do does did can you your we our
    的 了 是 在 和 与 及 也 就 都 而 着 或 之 其 这 那 这个 那个 有 被 把 对 从 为 以 于 上 中 下
    吗 呢 吧 啊 呀 什么 哪 哪个 哪些 哪里 谁 怎么 怎样 如何 为什么 多少 几 是否 请问""".split()
)
MAX_QUERY_TERMS = 64

_lock = threading.Lock()
_segmenter: ModuleType | None = None


def _jieba() -> ModuleType:
    global _segmenter
    with _lock:
        if _segmenter is None:
            import rjieba

            rjieba.cut("")  # its dictionary loads on first use
            _segmenter = rjieba
    return _segmenter


def load() -> None:
    """Load the dictionary now (0.13 s) rather than inside the first query's timing."""
    _jieba()


#: an identifier: parts joined by . :: -> / _ - (Symbol.iterator, a::b, src/cli.py, snake_case, 1.2.3),
#: or one camelCase word; its parts are also found by jieba
IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:(?:\.|::|->|/|_|-)[A-Za-z0-9]+)+|[a-z]+[A-Z][A-Za-z0-9]*|[A-Z][a-z]+[A-Z]\w*")
_CAMEL_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: what joins an identifier's parts in its whole token: a letter to FTS5's tokenizer (so the token stays one),
#: and one that no text holds
JOINER = "ǀ"
_SEPARATORS = re.compile(r"\.|::|->|/|_|-")
#: what jieba-rs keeps as one word where Python jieba split it (index_dir, zh-hk, 127.0.0.1): ``identifiers``
#: adds such a word whole (JOINER-joined) and in parts, so the segmenter's copy would count it twice
_JOINED = re.compile(r"[\x00-\x7f]*[._:/-][\x00-\x7f]*")
#: how Python jieba split a run of ASCII it did not know: letters and digits, a decimal and a percent sign kept
_JIEBA_PIECE = re.compile(r"[a-z0-9]+(?:\.\d+)?%?")


def segment(text: str) -> list[str]:
    """The words of ``text`` worth matching: no punctuation, no stop words, lower case; identifiers whole too."""
    words: list[str] = []
    for word in _jieba().cut_for_search(text.lower()):
        word = word.strip()
        if not word or not WORD_CHAR.search(word) or word in STOP_WORDS:
            continue
        if _JOINED.fullmatch(word):
            words += _pieces_left(word, words)
        else:
            words.append(word)
    return words + identifiers(text, set(words))


def _pieces_left(joined: str, words: list[str]) -> list[str]:
    """The pieces Python jieba made of a word jieba-rs keeps whole (il-6 → il, 6; 0.5 stays 0.5) that jieba-rs's
    search mode did not emit just before it (it emits the longer parts: il, then il-6)."""
    emitted = []
    for word in reversed(words):
        if word not in joined:
            break
        emitted.append(word)
    left = []
    for piece in _JIEBA_PIECE.findall(joined):
        if piece in emitted:
            emitted.remove(piece)
        elif piece not in STOP_WORDS:
            left.append(piece)
    return left


def identifiers(text: str, known: set[str]) -> list[str]:
    """Each identifier of ``text`` as one token (its parts joined by JOINER), and those of its parts (a camelCase
    word's) that are not among the ``known`` words already: an identifier's parts are not counted twice."""
    tokens = []
    for found in IDENTIFIER.findall(text):
        pieces = _SEPARATORS.split(found)
        if len(pieces) > 1:
            tokens.append(JOINER.join(piece.lower() for piece in pieces))
        for part in (p.lower() for piece in pieces for p in _CAMEL_PARTS.findall(piece)):
            if part not in known and len(part) > 1 and part not in STOP_WORDS:
                tokens.append(part)
                known.add(part)
    return tokens


def query_terms(query: str) -> list[str]:
    """The query's distinct words, in order, at most MAX_QUERY_TERMS."""
    return list(dict.fromkeys(segment(query)))[:MAX_QUERY_TERMS]


def any_of(terms: list[str]) -> str | None:
    """An FTS5 query that matches any of ``terms`` (a missing word does not veto the rest)."""
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def match_expression(query: str) -> str | None:
    """The FTS5 query for a search query: any of its words."""
    return any_of(query_terms(query))
