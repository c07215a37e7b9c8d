"""The keyword leg of the local index: an FTS5 table of chunk text segmented by lexical.py, ranked by BM25.

Big indexes answer from their rarest query words first (see ``KeywordLookups.keyword_search``),
scored as FTS5 would score them (``bm25.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ... import lexical
from . import bm25

#: how chunk_terms was filled; an index of an older version of the same segmenter has its words made again
#: from its chunk texts when a writer opens it (2: identifiers whole as well as in parts; 3: jieba-rs, whose
#: words differ from Python jieba's in 0.04 % of cases, such as 'h3' and 'v1' kept whole), another is rebuilt
KEYWORD_FORMAT = {"segmenter": "jieba-search", "version": 3}
#: a keyword query whose words' posting lists hold more rows than this is answered from its rarest
#: words' matches (see keyword_search); measured at 1M chunks in bench/perf.py
KEYWORD_POSTINGS_BUDGET = 50_000
KEYWORD_CANDIDATES = 500
#: indexes of more chunks than this keep the words found in COMMON_TERM_CHUNKS chunks or more in
#: term_frequencies (refreshed with the fusion calibration), so a query learns at once which of its
#: words are common; FTS5's own vocabulary counts a word by reading its whole posting list
TERM_FREQUENCIES_ABOVE = 100_000
COMMON_TERM_CHUNKS = 2_000


class KeywordLookups:
    """Keyword search over a sidecar connection: shared by readers and the writer (which calibrates on it)."""

    _conn: sqlite3.Connection

    def keyword_search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score, higher is better) of the chunks holding any of ``terms``.

        FTS5 ranks every chunk that matches, so a query with a word found in a large share of
        a big index ranks hundreds of thousands of rows. When the query's posting lists hold
        more than KEYWORD_POSTINGS_BUDGET rows, candidates come from its rarest words alone
        (as many as fit the budget, at least one), and the best KEYWORD_CANDIDATES of them are
        scored with every word, as FTS5 would score them (bm25.py). Below the budget (every
        index of a few thousand documents) the answer is FTS5's own.
        """
        expression = lexical.any_of(terms)
        if not expression:
            return []
        frequency = self._document_frequencies(terms)
        if sum(frequency.values()) <= KEYWORD_POSTINGS_BUDGET:
            rows = self._conn.execute(
                "SELECT rowid, -bm25(chunk_terms) FROM chunk_terms WHERE chunk_terms MATCH ? "
                "ORDER BY bm25(chunk_terms) LIMIT ?", (expression, k)).fetchall()
            return [(int(i), float(s)) for i, s in rows]
        candidates = [row[0] for row in self._conn.execute(
            "SELECT rowid FROM chunk_terms WHERE chunk_terms MATCH ? ORDER BY bm25(chunk_terms) LIMIT ?",
            (lexical.any_of(_rarest(terms, frequency)), max(k, KEYWORD_CANDIDATES)))]
        return self._scored(candidates, terms, frequency)[:k]

    def _scored(self, ids: list[int], terms: list[str], frequency: dict[str, int]) -> list[tuple[int, float]]:
        """``ids`` ranked by the bm25() FTS5 would give them for ``terms``."""
        if not ids:
            return []
        marks = ",".join(str(int(i)) for i in ids)
        texts = self.chunk_terms(ids).items()
        sizes = dict(self._conn.execute(f"SELECT id, sz FROM chunk_terms_docsize WHERE id IN ({marks})"))
        total_rows, total_tokens = bm25.varints(
            self._conn.execute("SELECT block FROM chunk_terms_data WHERE id = 1").fetchone()[0])[:2]
        phrases = [(bm25.tokens(t), bm25.idf(total_rows, frequency.get(t, 0))) for t in terms]
        average = total_tokens / max(total_rows, 1)
        scored = [(int(i), bm25.score(bm25.tokens(text), bm25.varints(sizes[i])[0], phrases, average))
                  for i, text in texts]
        return sorted(scored, key=lambda hit: (-hit[1], hit[0]))

    def chunk_terms(self, ids: Iterable[int]) -> dict[int, str]:
        """The segmented words the keyword index holds for each chunk, as FTS5 matches them."""
        marks = ",".join(str(int(i)) for i in ids)
        return dict(self._conn.execute(f"SELECT rowid, terms FROM chunk_terms WHERE rowid IN ({marks})")) \
            if marks else {}

    def _document_frequencies(self, terms: list[str]) -> dict[str, int]:
        """Chunks holding each term: the common ones from term_frequencies, the rest from FTS5's vocabulary
        (quick for a rare word; a word FTS5 splits in several tokens is counted as a phrase)."""
        marks = ",".join("?" * len(terms))
        known = dict(self._conn.execute(f"SELECT term, chunks FROM term_frequencies WHERE term IN ({marks})",
                                        terms)) if self._has_term_frequencies() else {}
        rest = [t for t in terms if t not in known]
        if rest:
            self._open_vocabulary()
            single = {t: bm25.tokens(t) for t in rest}
            words = [t for t in rest if single[t] == [t]]
            known.update(self._conn.execute(
                f"SELECT term, doc FROM temp.fsearch_vocabulary WHERE term IN ({','.join('?' * len(words))})", words))
            for term in rest:
                if single[term] != [term] and single[term]:
                    known[term] = self._conn.execute("SELECT COUNT(*) FROM chunk_terms WHERE chunk_terms MATCH ?",
                                                     (lexical.any_of([term]),)).fetchone()[0]
        return known

    def _open_vocabulary(self) -> None:
        """FTS5's vocabulary as ``temp.fsearch_vocabulary``: a temp table, so a read-only reader can make it."""
        self._conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fsearch_vocabulary "
                           "USING fts5vocab(main, chunk_terms, row)")

    def resegment(self) -> int:
        """Fill chunk_terms again from the chunk texts with this segmenter; returns the chunks done."""
        rows = self._conn.execute("SELECT id, text FROM chunks").fetchall()
        self._conn.execute("DELETE FROM chunk_terms")
        self._conn.executemany("INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)",
                               ((chunk_id, " ".join(lexical.segment(text))) for chunk_id, text in rows))
        return len(rows)

    def _has_term_frequencies(self) -> bool:
        return bool(self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'term_frequencies'").fetchone())

    def refresh_term_frequencies(self) -> None:
        """Record the common words of a big index (see TERM_FREQUENCIES_ABOVE); a small one keeps none."""
        self._conn.execute("DELETE FROM term_frequencies")
        if self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] <= TERM_FREQUENCIES_ABOVE:
            return
        self._open_vocabulary()
        self._conn.execute("INSERT INTO term_frequencies (term, chunks) SELECT term, doc FROM temp.fsearch_vocabulary "
                           "WHERE doc >= ?", (COMMON_TERM_CHUNKS,))


def _rarest(terms: list[str], frequency: dict[str, int]) -> list[str]:
    """The rarest terms whose postings fit KEYWORD_POSTINGS_BUDGET together (at least one)."""
    chosen: list[str] = []
    postings = 0
    for term in sorted(terms, key=lambda t: frequency.get(t, 0)):
        postings += frequency.get(term, 0)
        if chosen and postings > KEYWORD_POSTINGS_BUDGET:
            break
        chosen.append(term)
    return chosen
