"""The HTML reader on pages as site generators and sites write them (tests/sitepages.py): the content in,
with its headings as § paths; the furniture (sidebars, tables of contents, pagers, footers, banners) out."""

import json
import re

import pytest

from faiss_search.cli import app
from faiss_search.formats.html import read_html

from .sitepages import PAGES, TITLE, Page, mdbook


def _heading_parts(page: Page) -> list[str]:
    extracted = read_html(page.html.encode("utf-8"))
    return [part for section in extracted.sections if section.heading for part in section.heading.split(" › ")]


@pytest.mark.parametrize("make", PAGES, ids=lambda make: make.__name__)
def test_the_content_is_read_and_the_furniture_is_not(make):
    page = make()
    text = read_html(page.html.encode("utf-8")).text
    assert [c for c in page.content if c not in text] == [], page.name
    assert [f for f in page.furniture if f in text] == [], page.name


@pytest.mark.parametrize("make", PAGES, ids=lambda make: make.__name__)
def test_headings_name_the_sections_without_their_permalink_marks(make):
    page = make()
    parts = _heading_parts(page)
    assert [h for h in page.headings if h not in parts] == [], (page.name, parts)
    assert not any(mark in part for part in parts for mark in "¶§\u200b"), parts


def test_a_class_name_on_the_root_or_a_wrapper_never_drops_the_page():
    """mdBook's <html class="sidebar-visible">, Sphinx's <div class="wy-grid-for-nav"> around everything."""
    html = ('<html class="light sidebar-visible"><body><div class="wy-grid-for-nav"><div class="nav-content-wrap">'
            "<p>The whole document is inside wrappers named for navigation.</p></div></div></body></html>")
    assert "The whole document is inside wrappers" in read_html(html.encode()).text


def test_a_page_wrapped_in_a_form_is_read():
    """ASP.NET pages put everything inside one <form>."""
    html = ("<html><body><form id='form1'><div class='content'><h1>通知</h1>"
            "<p>各部门应于本月底前完成文档的整理和上传工作。</p></div></form></body></html>")
    extracted = read_html(html.encode())
    assert "各部门应于本月底前完成" in extracted.text and extracted.sections[0].heading == "通知"


def test_an_mdbook_page_is_indexed_and_its_hits_cite_their_section(runner, home, tmp_path):
    pages = {make.__name__: make() for make in PAGES}
    book = tmp_path / "book"
    book.mkdir()
    (book / "install.html").write_text(pages["mdbook"].html, encoding="utf-8")
    indexed = runner.invoke(app, ["index", str(book), "--json"])
    assert indexed.exit_code == 0, indexed.output
    assert json.loads(indexed.stdout)["total_files"] == 1
    found = runner.invoke(app, ["search", "下载全部依赖的 wheel 文件", "--json", "--mode", "keyword", "-k", "1"])
    hit = json.loads(found.stdout)["results"][0]
    assert "wheel" in hit["text"] and hit["heading"] == "安装与配置 › 离线安装"


def test_code_in_a_pre_block_keeps_its_lines_in_snippets():
    from faiss_search.lexical import segment
    from faiss_search.retrieval.snippets import locate

    html = ("<html><body><main><h1>API</h1><p>Iterate over an object with a loop.</p>"
            "<pre><code>for (const x of obj) {\n  console.log(x);\n}</code></pre></main></body></html>")
    text = read_html(html.encode()).text
    assert "for (const x of obj) {\n  console.log(x);\n}" in text  # the chunk keeps the lines
    assert locate(segment("console.log"), "console.log", text, 1).snippet.split("\n") == ["  console.log(x);", "}"]


def test_a_book_name_in_the_menu_bar_is_not_the_pages_title():
    """The Rust book's mdBook pages: a sub-chapter's heading is an <h2>, and the page's one <h1> is the book's name
    in the menu bar; the <title> ("Defining an Enum - The Rust Programming Language") tells which is the title."""
    page = mdbook().html.replace('<h1 id="title"><a class="header" href="#title">', '<h2 id="title"><a class="header" '
                                 'href="#title">').replace("</a></h1>", "</a></h2>", 1)
    page = re.sub(r"<title>[^<]*</title>", f"<title>{TITLE} - 手册</title>", page)
    extracted = read_html(page.encode())
    assert [s.heading for s in extracted.sections][0] == TITLE  # not "手册 › 安装与配置"
    assert not any(s.heading.startswith("手册") for s in extracted.sections)


def test_xhtml_is_read_without_a_warning_about_xml():
    """DocBook's pages start with <?xml …?>; bs4 would warn (a screenful on stderr) on each run's first one."""
    import warnings

    from .sitepages import docbook

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert TITLE in read_html(docbook().html.encode()).text
    assert [str(w.message)[:60] for w in caught] == []


def test_a_lone_article_or_a_long_menu_elsewhere_is_not_taken_for_the_document():
    menu = "".join(f"<li><a href='/p{n}'>A rather long menu entry that links to page number {n}</a></li>"
                   for n in range(30))
    html = ("<html><body><nav><ul>" + menu + "</ul></nav>"
            "<div id='content'><h1>Release notes</h1><p>Version two reads PDF outlines and keeps code blocks.</p>"
            "<p>Quoted phrases now have to occur in every hit.</p></div>"
            "<div class='widget-area'><article class='card'><p>Card: our other product, described at length.</p>"
            "</article></div></body></html>")
    text = read_html(html.encode()).text
    assert "Version two reads PDF outlines" in text and "Quoted phrases now" in text
    assert "menu entry" not in text and "Card:" not in text
