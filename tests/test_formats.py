"""PDF, Word, HTML, EPUB and Markdown: exact text, pages and heading paths, and a reason for every file skipped."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from itertools import pairwise
from pathlib import Path

import pytest

from faiss_search.chunking import chunk_document
from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.documents import load_text, read_document
from faiss_search.errors import NotText
from faiss_search.formats.html import read_html
from faiss_search.formats.sections import markdown_sections
from faiss_search.indexing.discovery import Skips, discover
from faiss_search.indexing.pipeline import index_path
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import open_reader as open_index

from .conftest import built_once
from .makedocs import make_docx, make_epub, make_pdf, make_scanned_pdf, recovered

ZH = [
    "大莱龙铁路沿线设有大家洼站、寒亭站、昌邑北站、海天站、平度北站、沙河站、莱州站、朱桥站、招远站、龙口西站、"
    "龙口北站和龙口港站，是山东省北部沿海通道的组成部分。",
    "锣鼓经是大陆传统器乐及戏曲里面常用的打击乐记谱方法，以中文字的声音模拟敲击乐的声音，纪录打击乐的各种不同的演奏方法。",
]
EN = [
    "Extraction of text from portable documents is notoriously difficult because characters are positioned "
    "individually on the page and the reader must reconstruct words, lines and paragraphs from geometry alone.",
    "Hyphenation at the ends of lines must be repaired without joining unrelated neighbouring words together.",
]
PAGES = [ZH, EN, ["第三页只有一段：离线安装时先把模型文件复制到本机，再运行索引命令。"]]


def _page_texts(path: Path) -> list[str]:
    doc = read_document(path)
    bounds = [s.start for s in doc.sections] + [len(doc.text)]
    assert [s.page for s in doc.sections] == list(range(1, len(doc.sections) + 1))
    return [doc.text[a:b].strip() for a, b in pairwise(bounds)]


def test_pdf_text_comes_back_exactly_page_by_page(tmp_path):
    pages = _page_texts(make_pdf(tmp_path / "手册 #1.pdf", PAGES, hyphenate=True))
    assert len(pages) == 3
    for got, paragraphs in zip(pages, PAGES, strict=True):
        assert recovered("".join(paragraphs), got) >= 0.99
        assert got.split("\n\n") == paragraphs  # paragraphs found, lines of a paragraph joined, in order
    assert "内部资料" not in "".join(pages) and "第 1 页" not in "".join(pages)  # running header and footer


def test_pdf_lines_of_chinese_join_without_spaces_and_hyphens_are_mended(tmp_path):
    zh, en = _page_texts(make_pdf(tmp_path / "a.pdf", [ZH[:1], EN[:1]], header=None, hyphenate=True))
    assert zh == ZH[0]  # the 36-character lines joined with nothing between them
    assert en == EN[0]  # "individu-" + "ally" on the next line is one word again


def test_a_short_pdf_keeps_lines_that_only_look_like_headers_but_drops_page_numbers(tmp_path):
    pages = _page_texts(make_pdf(tmp_path / "a.pdf", [["甲。"], ["乙。"]], header="页眉"))
    assert pages == ["页眉\n\n甲。", "页眉\n\n乙。"]  # two pages cannot tell a running header from text


def test_identical_lines_all_come_back(tmp_path):
    """PDFium drops repeats of a line set in a font without glyph boxes (a non-embedded CID font, common
    in Chinese PDFs); such pages are read with pypdf."""
    line = "本合同一式两份，甲乙双方各执一份，具有同等法律效力，自双方签字之日起生效。"
    pages = _page_texts(make_pdf(tmp_path / "a.pdf", [[line, line, line], ["the same line " * 5] * 3], header=None))
    assert pages[0].split("\n\n") == [line] * 3
    assert pages[1].split("\n\n") == [("the same line " * 5).strip()] * 3


def test_what_pypdf_works_around_is_not_logged(tmp_path, monkeypatch, caplog):
    """The Debian reference's PDF made pypdf log "fontTools is required …" once a page, a screenful on stderr."""
    import logging

    import pypdf

    real = pypdf.PdfReader

    def reader(*args, **kwargs):
        logging.getLogger("pypdf._cmap").warning("fontTools is required to fully parse the encoding of a CFF font")
        return real(*args, **kwargs)

    monkeypatch.setattr(pypdf, "PdfReader", reader)
    line = "本合同一式两份，甲乙双方各执一份，具有同等法律效力，自双方签字之日起生效。"  # read with pypdf (above)
    with caplog.at_level(logging.WARNING):
        assert _page_texts(make_pdf(tmp_path / "a.pdf", [[line, line, line]], header=None))[0].count(line) == 3
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pypdf")] == []


def test_a_pdf_with_an_outline_gets_its_sections(tmp_path):
    """Bookmarks name the sections (a hit reads `manual.pdf:p2 § 1 Introduction › 1.1 Version`); without an
    outline, lines set larger than the body text do."""
    pages = [["1 Introduction", "fsearch searches your own documents by meaning."],
             ["The index lives in a folder of its own.", "1.1 Version", "This manual describes version two."],
             ["2 Usage", "Run fsearch index on a folder first."]]
    levels = {"1 Introduction": 0, "1.1 Version": 1, "2 Usage": 0}
    extracted = read_document(make_pdf(tmp_path / "manual.pdf", pages, header=None, headings=levels))

    def section_of(words: str) -> tuple[int | None, str]:
        at = extracted.text.index(words)
        section = [s for s in extracted.sections if s.start <= at][-1]
        return section.page, section.heading

    assert section_of("searches your own documents") == (1, "1 Introduction")
    assert section_of("lives in a folder") == (2, "1 Introduction")  # page 2 starts inside section 1
    assert section_of("describes version two") == (2, "1 Introduction › 1.1 Version")
    assert section_of("Run fsearch index") == (3, "2 Usage")
    chunks = chunk_document(extracted.text, extracted.sections, 200, 0)
    assert {(c.page, c.heading) for c in chunks} >= {(2, "1 Introduction › 1.1 Version"), (3, "2 Usage")}
    without_outline = read_document(make_pdf(tmp_path / "plain.pdf", pages, header=None, headings=levels,
                                             bookmarks=False))  # the same headings, only set larger
    assert [(s.page, s.heading) for s in without_outline.sections] == [
        (s.page, s.heading) for s in extracted.sections]
    body_only = read_document(make_pdf(tmp_path / "body.pdf", pages, header=None))  # nothing set larger
    assert {s.heading for s in body_only.sections} == {""}


def test_pdf_without_a_text_layer_is_skipped_with_its_reason(tmp_path):
    with pytest.raises(NotText, match="no text layer"):
        read_document(make_scanned_pdf(tmp_path / "scan.pdf"))


def test_encrypted_pdf_is_skipped_with_its_reason(tmp_path):
    with pytest.raises(NotText, match="encrypted PDF"):
        read_document(make_pdf(tmp_path / "secret.pdf", [ZH], password="s3cret"))


@pytest.mark.parametrize("name,data", [
    ("cut.pdf", None),
    ("junk.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40),
    ("junk.docx", b"PK\x03\x04 not really a zip"),
    ("junk.epub", b"not a zip at all"),
    ("nodoc.docx", None),
])
def test_damaged_documents_are_skipped_not_fatal(tmp_path, name, data):
    path = tmp_path / name
    if name == "cut.pdf":
        whole = make_pdf(tmp_path / "whole.pdf", PAGES).read_bytes()
        data = whole[:len(whole) // 2]
    if name == "nodoc.docx":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "a zip, but not a Word document")
    else:
        path.write_bytes(data)
    doc, reason = load_text(lambda: read_document(path))
    assert doc is None and reason


def test_a_zip_bomb_posing_as_docx_is_refused_before_it_expands(tmp_path):
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(80):  # 80 MB of zeros, 80 kB on disk
                member.write(block)
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(NotText, match="zip bomb"):
        read_document(bomb)


def test_docx_headings_tables_and_lists(tmp_path):
    path = make_docx(tmp_path / "说明.docx", [(1, "安装"), (2, "离线安装"), (0, "先把模型文件复制到本机。"),
                                            (2, "在线安装"), (0, "直接运行 pip install fsearch。"), (1, "参数")],
                     table=[["参数", "含义"], ["k", "返回的结果数"]], bullets=["第一项", "第二项"])
    doc = read_document(path)
    assert [s.heading for s in doc.sections] == ["安装 › 离线安装", "安装 › 在线安装", "参数"]
    assert doc.text.split("\n\n") == ["安装", "离线安装", "先把模型文件复制到本机。", "在线安装",
                                      "直接运行 pip install fsearch。", "参数", "第一项", "第二项",
                                      "参数 | 含义", "k | 返回的结果数"]
    chunks = chunk_document(doc.text, doc.sections, size=500, overlap=0)
    assert [(c.heading, c.text.split("\n\n")[-1]) for c in chunks] == [
        ("安装 › 离线安装", "先把模型文件复制到本机。"), ("安装 › 在线安装", "直接运行 pip install fsearch。"),
        ("参数", "k | 返回的结果数")]


def test_html_main_text_without_furniture(tmp_path):
    page = ("<html><head><meta charset='gbk'><title>帮助中心</title><style>p{}</style></head><body>"
            "<nav><a>首页</a><a>关于我们</a></nav><div class='sidebar'>热门文章</div><header>站点标题</header>"
            "<main><h1>离线安装</h1><p>先下载\n模型，再建立 索引。<br>第二行</p><h2>常见问题</h2>"
            "<table><tr><th>问题</th><th>答案</th></tr><tr><td>没有网络</td><td>用镜像</td></tr></table>"
            "<script>var x = '脚本';</script></main><footer>版权所有</footer></body></html>")
    path = tmp_path / "help.html"
    path.write_bytes(page.encode("gbk"))
    doc = read_document(path)
    assert doc.text == "离线安装\n\n先下载模型，再建立 索引。\n第二行\n\n常见问题\n\n问题 | 答案\n\n没有网络 | 用镜像"
    assert [s.heading for s in doc.sections] == ["离线安装", "离线安装 › 常见问题"]


def test_only_markdown_headings_lose_their_markup():
    html = read_html(b"<h1>config_file and *args</h1><p>text</p>")
    assert html.sections[0].heading == "config_file and *args"
    markdown = markdown_sections("# The `config_file` **setting**, __bold__ and [docs](https://x.y)\n\ntext\n")
    assert markdown[0].heading == "The config_file setting, bold and docs"


def test_html_without_headings_is_named_by_its_title():
    doc = read_html(b"<html><head><title>Release notes</title></head><body><p>Faster indexing.</p></body></html>")
    assert doc.text == "Release notes\n\nFaster indexing." and doc.sections[0].heading == "Release notes"


def test_epub_chapters_in_spine_order_with_their_headings(tmp_path):
    path = make_epub(tmp_path / "book.epub", [("第一章", "<p>很久以前，有一座山。</p>"),
                                              ("第二章", "<h2>尾声</h2><p>故事讲完了。</p>")])
    doc = read_document(path)
    assert doc.text == "第一章\n\n很久以前，有一座山。\n\n第二章\n\n尾声\n\n故事讲完了。"
    assert [s.heading for s in doc.sections] == ["第一章", "第二章 › 尾声"]


MARKDOWN = """前言：本文介绍安装。

# 安装

## 离线安装

把模型复制到本机。

```bash
# 这不是标题
fsearch index ~/kb
```

## 在线安装

运行 pip。

Setext 标题
----------

最后一段。
"""


def test_markdown_chunks_know_their_heading_path_and_keep_file_lines():
    sections = markdown_sections(MARKDOWN)
    assert [s.heading for s in sections] == ["", "安装 › 离线安装", "安装 › 在线安装", "安装 › Setext 标题"]
    chunks = chunk_document(MARKDOWN, sections, size=500, overlap=0)
    lines = MARKDOWN.split("\n")
    for chunk in chunks:
        assert lines[chunk.line - 1].strip() == chunk.text.split("\n")[0]  # the file's own line numbers
    assert [(c.heading, c.line) for c in chunks] == [("", 1), ("安装 › 离线安装", 3), ("安装 › 在线安装", 14),
                                                     ("安装 › Setext 标题", 18)]


def make_library(folder: Path) -> Path:
    """A knowledge base of every format, and some files that must be skipped with a reason."""
    folder.mkdir(parents=True, exist_ok=True)
    make_pdf(folder / "手册 #1.pdf", PAGES)
    make_docx(folder / "说明.docx", [(1, "安装"), (2, "离线安装"), (0, "先把模型文件复制到本机。")])
    (folder / "帮助?.html").write_text("<html><body><h1>常见问题</h1><p>锣鼓点是常用的节奏型。</p></body></html>",
                                       encoding="utf-8")
    make_epub(folder / "book.epub", [("第一章", "<p>很久以前，有一座山。</p>")])
    (folder / "notes 50%.md").write_text(MARKDOWN, encoding="utf-8")
    make_scanned_pdf(folder / "scan.pdf")
    make_pdf(folder / "secret.pdf", [ZH], password="pw")
    return folder


def test_a_folder_of_every_format_indexes_with_pages_headings_and_skip_reasons(home, tmp_path, fake_embedder):
    library = make_library(tmp_path / "知识库")
    report = index_path(library, load_settings(), fake_embedder)
    assert report.files_added == 5
    assert report.skipped.counts == {"no text layer (a scanned PDF?)": 1, "encrypted PDF (password-protected)": 1}
    searcher = Searcher(open_index(home / "index"), fake_embedder)
    found: dict = {}
    for hit in searcher.search("离线安装", k=10, mode="keyword").hits:  # each file's best hit
        found.setdefault(hit.source.rsplit("/", 1)[-1], hit)
    assert found["手册 #1.pdf"].page == 3
    assert found["说明.docx"].heading == "安装 › 离线安装"
    assert found["notes 50%.md"].heading == "安装 › 离线安装" and found["notes 50%.md"].line == 5
    assert searcher.search("锣鼓点", k=1, mode="keyword").hits[0].heading == "常见问题"


@pytest.fixture(scope="module")
def built_library(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "library", str(make_library(tmp_path_factory.mktemp("kb") / "知识库")))


def test_search_output_cites_page_and_heading(home, built_library, runner):
    shutil.copytree(built_library, home / "index")
    shown = runner.invoke(app, ["search", "打击乐记谱方法", "--mode", "keyword", "--min-score", "0", "-k", "1"]).stdout
    assert "手册 #1.pdf:p1" in shown
    shown = runner.invoke(app, ["search", "模型文件复制", "--mode", "keyword", "--min-score", "0", "-k", "3"]).stdout
    assert "说明.docx  § 安装 › 离线安装" in shown and "说明.docx:" not in shown
    hits = json.loads(runner.invoke(app, ["search", "打击乐记谱方法", "--mode", "keyword", "--json", "-k", "1"]).stdout)
    assert hits["results"][0]["page"] == 1


def test_an_edited_pdf_replaces_its_pages(home, tmp_path, fake_embedder):
    folder = tmp_path / "kb"
    folder.mkdir()
    pdf = make_pdf(folder / "a.pdf", [ZH, EN])
    index_path(folder, load_settings(), fake_embedder)
    make_pdf(pdf, [EN, ["新加的一页，讲述离线安装。"], ZH])
    report = index_path(folder, load_settings(), fake_embedder)
    assert report.files_changed == 1
    searcher = Searcher(open_index(home / "index"), fake_embedder)
    assert searcher.search("锣鼓经", k=1, mode="keyword").hits[0].page == 3
    assert searcher.search("新加的一页", k=1, mode="keyword").hits[0].page == 2


def test_an_index_from_before_pages_and_headings_still_answers_and_gains_them(home, tmp_path, fake_embedder):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "a.txt").write_text("锣鼓经是打击乐记谱方法。\n\n铁路沿线设有车站。", encoding="utf-8")
    index_path(folder, load_settings(), fake_embedder)
    sidecar = home / "index" / "chunks.sqlite"
    with sqlite3.connect(sidecar) as conn:  # the chunks table as releases before this one wrote it
        conn.execute("ALTER TABLE chunks DROP COLUMN page")
        conn.execute("ALTER TABLE chunks DROP COLUMN heading")
        conn.execute("PRAGMA user_version = 0")  # those releases recorded no schema version
    searcher = Searcher(open_index(home / "index"), fake_embedder)  # stays open, as serve's and the prompt's do
    hit = searcher.search("锣鼓经", k=1, mode="keyword").hits[0]
    assert (hit.page, hit.heading, hit.line) == (None, "", 1)
    make_pdf(folder / "b.pdf", [EN])
    index_path(folder, load_settings(), fake_embedder)  # the writer adds the columns, then the PDF's pages
    assert searcher.search("Hyphenation", k=1, mode="keyword").hits[0].page == 1


def test_unsupported_files_are_counted_and_the_hint_lists_the_formats(home, tmp_path, runner):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")
    found = discover(folder)
    assert found.skipped.counts == Skips().counts | {"unsupported type": 1}
    result = runner.invoke(app, ["index", str(folder)])
    assert result.exit_code == 2 and ".pdf" in result.output and ".docx" in result.output


CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))
from pathlib import Path
from faiss_search.documents import read_document
doc = read_document(Path(sys.argv[1]))
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))  # this program's own peak
print(len(doc.sections), len(doc.text), int(peak.split()[1]) // 1024)
"""


@pytest.mark.slow
def test_a_500_page_pdf_is_read_page_by_page_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    paragraph = "铁路沿线设有大家洼站、寒亭站、昌邑北站、海天站、平度北站、沙河站、莱州站和朱桥站。" * 6
    pdf = make_pdf(tmp_path / "big.pdf", [[f"第{n}页：" + paragraph] for n in range(1, 501)])
    limit = 1024 * 1024 * 1024  # address space, not resident memory: the interpreter and PDFium fit well within
    child = CHILD.replace("ADDRESS_LIMIT", str(limit))
    done = subprocess.run([sys.executable, "-c", child, str(pdf)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sections, characters, peak_mb = map(int, done.stdout.split())
    assert sections == 500 and characters > 500 * 200
    assert peak_mb < 400, peak_mb


def test_documents_index_with_a_model_folder_and_through_a_remote_server(home, runner, tiny_model, tmp_path):
    """The pages and headings come from the documents, whatever embeds them: a sentence-transformers folder
    here, and the same model behind an OpenAI-compatible server."""
    from faiss_search.embedding import load_embedder
    from faiss_search.models.registry import resolve_model
    from faiss_search.serve.app import create_app

    from .servers import uvicorn_app

    library = make_library(tmp_path / "kb")
    folder_index, remote_index = str(tmp_path / "folder-index"), str(tmp_path / "remote-index")
    assert runner.invoke(app, ["index", str(library), "--model", str(tiny_model), "--index-dir",
                               folder_index]).exit_code == 0
    with uvicorn_app(create_app(load_embedder(resolve_model(str(tiny_model), tmp_path)))) as url:
        done = runner.invoke(app, ["index", str(library), "--embedder", "openai", "--model", "tiny", "--base-url",
                                   url, "--index-dir", remote_index])
        assert done.exit_code == 0, done.output
        for index_dir in (folder_index, remote_index):
            hits = json.loads(runner.invoke(app, ["search", "打击乐记谱方法", "--mode", "keyword", "--json", "-k", "1",
                                                  "--min-score", "0", "--index-dir", index_dir]).stdout)["results"]
            assert (hits[0]["source"].endswith("手册 #1.pdf"), hits[0]["page"]) == (True, 1), index_dir
            hits = json.loads(runner.invoke(app, ["search", "模型文件复制", "--mode", "dense", "--json", "-k", "9",
                                                  "--min-score", "0", "--index-dir", index_dir]).stdout)["results"]
            assert {h["heading"] for h in hits if h["source"].endswith(".docx")} == {"安装 › 离线安装"}, index_dir
