"""HTML with BeautifulSoup and lxml: the page's blocks, without navigation, headers, footers and other furniture."""

from __future__ import annotations

import re
from typing import Any

from .extracted import Block, Extracted, tidy
from .sections import from_blocks

#: elements that are page furniture, not the document
_BOILERPLATE = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "button",
                "iframe", "svg", "select", "head")


_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu"}
_BOILERPLATE_NAMES = re.compile(r"(^|[-_ ])(nav|navbar|menu|breadcrumbs?|sidebar|footer|header|toc|comments?|"
                                r"share|social|cookie|advert|ads)([-_ ]|$)", re.IGNORECASE)


_BLOCK_TAGS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote",
               "table", "tr", "figure", "figcaption", "address", "center", "body", "caption", "hr"}


def read_html(data: bytes) -> Extracted:
    """The page's main text (``<main>`` or ``<article>`` when there is one) with its headings; no furniture."""
    return from_blocks(html_blocks(data))


def html_blocks(data: bytes) -> list[Block]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for element in soup.find_all(_is_boilerplate):
        if not element.decomposed:
            element.decompose()
    main = soup.find("main") or soup.find("article")
    root = main if main is not None and main.get_text(strip=True) else (soup.body or soup)
    blocks: list[Block] = []
    _walk(root, blocks, [])
    if title and not any(b.level for b in blocks) and blocks:
        blocks.insert(0, Block(title, 1))
    return blocks


def _is_boilerplate(element: Any) -> bool:
    if element.name in _BOILERPLATE or element.get("role") in _BOILERPLATE_ROLES or element.get("hidden") is not None:
        return True
    names = " ".join(element.get("class") or []) + " " + (element.get("id") or "")
    return element.name not in ("body", "main", "article") and bool(_BOILERPLATE_NAMES.search(names))


def _walk(node: Any, blocks: list[Block], words: list[str]) -> None:
    """Depth first: text gathers into ``words`` until a block element ends it; headings are blocks of their own."""
    from bs4 import NavigableString, Tag
    from bs4.element import Comment

    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            words.append(str(child))
        elif isinstance(child, Tag):
            name = child.name
            if len(name) == 2 and name[0] == "h" and name[1] in "123456":
                _flush(blocks, words)
                blocks.append(Block(child.get_text(" "), int(name[1])))
            elif name == "br":
                words.append(_BREAK)
            elif name in ("td", "th"):
                words.append(" | " if words and "".join(words).strip() else "")
                _walk(child, blocks, words)
            elif name == "pre":
                _flush(blocks, words)
                blocks.append(Block(child.get_text()))
            elif name in _BLOCK_TAGS:
                _flush(blocks, words)
                _walk(child, blocks, words)
                _flush(blocks, words)
            else:
                _walk(child, blocks, words)


_BREAK = "\x00"  # where a <br> was, among the page's text (whose own newlines are only whitespace)


def _flush(blocks: list[Block], words: list[str]) -> None:
    text = "\n".join(line for line in (tidy(part).strip(" |") for part in "".join(words).split(_BREAK)) if line)
    if text:
        blocks.append(Block(text))
    words.clear()
