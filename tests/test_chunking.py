from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faiss_search.chunking import chunk_text


def test_short_lines_stay_one_chunk_each():
    text = "第一行是关于火车的。\n第二行是关于茶叶的。\nThird line is English.\n"
    chunks = chunk_text(text, 500, 50)
    assert [c.text for c in chunks] == ["第一行是关于火车的。", "第二行是关于茶叶的。", "Third line is English."]
    assert [c.line for c in chunks] == [1, 2, 3]


def test_paragraphs_are_packed_up_to_the_size():
    text = "Para one.\n\nPara two.\n\n" + "x" * 30
    chunks = chunk_text(text, 25, 5)
    assert chunks[0].text == "Para one.\n\nPara two."
    assert chunks[0].line == 1
    assert chunks[1].line == 5


def test_long_chinese_paragraph_breaks_after_sentence_punctuation():
    sentence = "今天天气很好，我们去公园散步。"  # 15 characters
    text = sentence * 10
    chunks = chunk_text(text, 40, 0)
    assert all(len(c.text) <= 40 for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)
    assert "".join(c.text for c in chunks) == text


@pytest.mark.parametrize("punct", list("。！？；.!?;"))
def test_every_sentence_mark_is_a_break(punct):
    text = ("甲乙丙丁戊己庚" + punct + " ") * 6
    chunks = chunk_text(text.strip(), 20, 0)
    assert all(c.text.endswith(punct) for c in chunks[:-1])


def test_decimal_point_is_not_a_sentence_end():
    text = "Pi is about 3.14159 and e is about 2.71828 which are both irrational numbers"
    chunks = chunk_text(text, 30, 0)
    assert not any(c.text.endswith("3.") or c.text.endswith("2.") for c in chunks)


def test_no_punctuation_falls_back_to_any_character():
    text = "字" * 95
    chunks = chunk_text(text, 30, 5)
    assert [len(c.text) for c in chunks][:3] == [30, 30, 30]
    assert chunks[1].start == 25  # 5 characters of overlap


def test_overlap_prefers_a_sentence_start():
    text = "One two three four. Five six seven eight. Nine ten eleven twelve."
    chunks = chunk_text(text, 45, 25)
    assert chunks[1].text.startswith("Five")


def test_offsets_and_lines_point_into_the_source():
    text = "头一行\n\n" + "第二段的第一句。第二句话在这里！" * 5 + "\n\n最后一段"
    for c in chunk_text(text, 30, 8):
        assert text[c.start:c.end] == c.text
        assert c.line == text.count("\n", 0, c.start) + 1


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        chunk_text("abc", 10, 10)
    with pytest.raises(ValueError):
        chunk_text("abc", 0, 0)


def test_empty_and_blank_text_give_no_chunks():
    assert chunk_text("", 10, 2) == []
    assert chunk_text(" \n\n \n", 10, 2) == []


alphabet = st.sampled_from(list("ab 中文。！？；.!?;\n") + ["\n\n", "“", "”"])


@settings(max_examples=300, deadline=None)
@given(st.lists(alphabet, max_size=400).map("".join), st.integers(1, 60), st.data())
def test_chunk_properties(text, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    chunks = chunk_text(text, size, overlap)
    covered = set()
    for c in chunks:
        assert 0 < len(c.text) <= size
        assert text[c.start:c.end] == c.text
        assert c.text == c.text.strip()
        assert c.line == text.count("\n", 0, c.start) + 1
        covered.update(range(c.start, c.end))
    # every visible character lands in some chunk
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    for before, after in pairwise(chunks):
        assert after.start >= before.start
        assert max(0, before.end - after.start) <= overlap
