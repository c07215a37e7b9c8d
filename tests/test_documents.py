import codecs

import pytest

from faiss_search.documents import load_text, read_document
from faiss_search.errors import InputError, NotText
from faiss_search.formats.text import decode
from faiss_search.indexing.discovery import discover

CHINESE = "春节前后火车票非常紧张，很多人提前一个月在网上抢票回家过年。"


@pytest.mark.parametrize(
    "data, encoding",
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + CHINESE.encode("utf-8"), "utf-8-sig"),
        (CHINESE.encode("gbk"), "gb18030"),
        (CHINESE.encode("gb18030"), "gb18030"),
        (CHINESE.encode("utf-16"), "utf-16"),
        ("plain ASCII in UTF-16 without a BOM".encode("utf-16-le"), "utf-16-le"),
        ("plain ASCII in UTF-16 without a BOM".encode("utf-16-be"), "utf-16-be"),
    ],
)
def test_decode_detects_encodings(data, encoding):
    text, found = decode(data)
    assert found == encoding
    assert text.lstrip("\ufeff") in (CHINESE, "plain ASCII in UTF-16 without a BOM")


def test_decode_latin1_text_is_not_mistaken_for_chinese():
    text, encoding = decode("Café crème brûlée, naïve façade. ".encode("cp1252") * 5)
    assert "Café" in text and encoding != "gb18030"


def test_binary_is_refused():
    with pytest.raises(NotText):
        decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))


def test_discover_walks_folders_and_counts_what_it_skips(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("b")
    (tmp_path / "sub" / "c.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.txt").write_text("d")
    found = discover(tmp_path)
    assert [p.name for p in found.files] == ["a.txt", "b.md"]
    assert found.skipped["unsupported type"] == 1


def test_discover_missing_path(tmp_path):
    with pytest.raises(InputError, match="path not found"):
        discover(tmp_path / "nope")


def test_load_text_skips_binary_and_empty(tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes(CHINESE.encode("gbk") + b"\r\nsecond line\r\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    loaded = [load_text(lambda p=p: read_document(p)) for p in (good, empty, binary)]
    docs = [d for d, _ in loaded if d]
    assert len(docs) == 1
    assert docs[0].text == CHINESE + "\nsecond line\n"
    assert docs[0].encoding == "gb18030"
    assert [reason for _, reason in loaded] == ["", "empty", "binary"]
