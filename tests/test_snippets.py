"""The best-matching line of a hit and the snippet around it."""

from rich.cells import cell_len

from faiss_search.lexical import segment
from faiss_search.retrieval.snippets import SNIPPET_CELLS, locate, sentence_spans


def test_sentences_end_at_punctuation_and_line_breaks_not_inside_numbers():
    text = "版本 3.5 发布了。新功能很多！\nSee e.g. the notes. Done"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["版本 3.5 发布了。", "新功能很多！", "See e.g.",
                                                            "the notes.", "Done"]


def test_the_line_of_the_sentence_sharing_most_with_the_query():
    chunk = "第一行讲历史。\n第二行讲地理。\n熊猫每天吃十几公斤竹子。\n最后一行。"
    query = "熊猫一天吃多少竹子"
    assert locate(segment(query), query, chunk, first_line=40).line == 42
    paraphrase = "大熊猫的食量有多大"  # shares few whole words: character pairs decide
    assert locate(segment(paraphrase), paraphrase, chunk, first_line=1).line == 3
    assert locate([], "zzz", chunk, first_line=7).line == 7  # nothing shared: the chunk's start


def test_a_snippet_fits_two_terminal_lines_and_marks_what_it_cut():
    chunk = "\n".join(f"这是第{i}句很长很长的中文句子，用来填满一个块的内容。" for i in range(20))
    chunk += "\n答案在这里：熊猫吃竹子。"
    match = locate(segment("熊猫吃什么"), "熊猫吃什么", chunk, first_line=1)
    assert match.line == 21 and "熊猫吃竹子" in match.snippet
    assert match.snippet.startswith("…") and cell_len(match.snippet) <= SNIPPET_CELLS + 2
    one_long_sentence = "熊猫" + "很" * 400 + "可爱"
    cut = locate(segment("熊猫"), "熊猫", one_long_sentence, first_line=1).snippet
    assert cut.startswith("熊猫") and cut.endswith("…") and cell_len(cut) <= SNIPPET_CELLS + 2



def test_a_snippet_never_cuts_an_identifier_or_a_url():
    url = "https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Object/defineProperty"
    text = f"The method Object.defineProperty adds a property with a descriptor such as {url} which explains it."
    kept = locate(segment("defineProperty descriptor"), "defineProperty descriptor", text, 1).snippet.strip("…")
    assert kept.split()[-1] in (url, "as")  # the URL whole, or not at all; never "wh" of "which"
    assert all(word in text.split() for word in kept.split())


def test_a_snippet_inside_a_code_block_keeps_its_lines():
    text = ("Iterators.\n\n```js\nconst it = {\n  [Symbol.iterator]() {\n    let n = 0;\n"
            "    return { next: () => ({ value: n++, done: n > 3 }) };\n  }\n};\n```\n\nAfter the block.")
    match = locate(segment("Symbol.iterator"), "Symbol.iterator", text, 10)
    assert match.line == 14
    assert match.snippet.split("\n") == ["  [Symbol.iterator]() {", "    let n = 0;",
                                          "    return { next: () => ({ value: n++, done: n > 3 }) };", "  }"]


def test_a_chunk_cut_from_the_middle_of_a_code_block_still_shows_code_as_code():
    """The Rust book's mdBook pages: a chunk that begins with the end of one block (its closing fence has no
    info string and follows the code) holds the next block, whose lines the snippet keeps."""
    text = ("fn route(ip_kind: IpAddrKind) {}\n```\n\nAnd we can call this function with either variant:\n\n"
            "```\nenum IpAddrKind {\n    V4,\n    V6,\n}\n\nfn main() {\n    let four = IpAddrKind::V4;\n"
            "    route(IpAddrKind::V4);\n}\n```")
    match = locate(segment("IpAddrKind::V4"), "IpAddrKind::V4", text, 1)
    assert match.snippet.split("\n") == ["    let four = IpAddrKind::V4;", "    route(IpAddrKind::V4);", "}"]
    prose = locate(segment("call this function"), "call this function", text, 1)
    assert prose.snippet.startswith("…And we can call this function") and "\n" not in prose.snippet
    opened = "Iterators:\n\n```js\nconst it = 1;\n```\n\nAfter the block, prose."  # an info string opens
    assert "\n" not in locate(segment("prose"), "prose", opened, 1).snippet


def test_piped_results_are_neither_padded_nor_wrapped(sample_indexed):
    import os
    import subprocess

    from .conftest import FSEARCH_CLI

    env = {**os.environ, "FSEARCH_HOME": str(sample_indexed.parent), "COLUMNS": "40"}
    printed = subprocess.run([*FSEARCH_CLI, "search", "熊猫吃什么", "-k", "2", "--min-score", "0"], env=env,
                             capture_output=True, text=True, check=True).stdout
    lines = printed.splitlines()
    assert lines and all(line == line.rstrip() for line in lines), printed
    assert any(len(line) > 40 for line in lines), printed  # not wrapped at the terminal's width
