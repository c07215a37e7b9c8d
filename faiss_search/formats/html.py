"""HTML: the page's main content with its headings, without the furniture a site puts around it.

Two steps, each with rules taken from the markup site generators and sites really emit (pages of
each are built in ``tests/sitepages.py``):

1. **Find the content.** The page's one ``<article>`` (Furo, MkDocs Material, Docusaurus, Hugo),
   else ``role="main"`` or ``<main>`` (Sphinx, mdBook, VitePress, Javadoc, rustdoc), each only where
   it holds the densest text; else (CMS pages, old news sites) the element whose own paragraphs hold
   the most text outside menus and footers, widened to the parts beside it where the document comes
   in parts (DocBook's ``div.section``s, Asciidoctor's ``div.paragraph``s), and to the page's ``<h1>``
   when that sits just above it.
2. **Drop the furniture inside it**: scripts and forms' widgets everywhere; navigation, asides,
   footers, and blocks whose role, class or id names a sidebar, table of contents, breadcrumbs,
   pager, banner, cookie notice, share bar or advert. A name never removes the content root, a
   wrapper that holds most of its text (Sphinx's ``wy-grid-for-nav``), what holds the page's ``<h1>``
   (Javadoc's ``div.header``, Docusaurus's ``<header>``), or anything inside a heading (mdBook's
   ``<a class="header">``).

Headings become sections (``§`` paths), without their permalink marks (``¶``, ``#``, ``§``).
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from .extracted import Block, Extracted, tidy
from .sections import from_blocks

#: never text, wherever they are
_JUNK = ("script", "style", "noscript", "template", "iframe", "svg", "select", "head", "button", "input",
         "textarea", "object", "canvas")
#: furniture by element name (a <header> that holds a heading is the document's own header)
_FURNITURE_TAGS = ("nav", "aside", "footer", "header", "dialog")
_FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar", "dialog",
                    "alertdialog", "toolbar"}
#: furniture by a word of its class or id (words split at '-', '_', ' ' and camelCase)
_FURNITURE_WORDS = {"nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "sidebar", "footer", "header",
                    "toc", "comment", "comments", "share", "social", "cookie", "cookies", "consent", "gdpr",
                    "banner", "advert", "ads", "ad", "newsletter", "subscribe", "pager", "paginav", "pagination",
                    "related", "popup", "modal", "skip", "toolbar", "masthead", "copyright", "sidebars", "drawer",
                    "outline", "topnav", "paginator"}
#: furniture when a whole class or the id is this (as words they are too common: "top-doc", "next-steps")
_FURNITURE_NAMES = {"top", "foot", "prev", "next", "previous", "position"}
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: inline elements: a class name on one never makes it furniture (a link's or a code span's class says how
#: it looks, not where it stands)
_INLINE = {"a", "span", "code", "em", "strong", "b", "i", "small", "abbr", "sub", "sup", "kbd", "mark", "wbr",
           "label", "time", "q", "cite", "u", "s", "var", "samp", "img"}
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "pre", "blockquote",
               "table", "tr", "figure", "figcaption", "address", "center", "body", "caption", "hr", "details",
               "summary", "form", "header", "footer"}
#: a heading's permalink marks: ¶ (Sphinx, MkDocs), § (rustdoc), #, and the zero-width space (Docusaurus, VitePress)
_PERMALINK = re.compile(r"[\s¶§#\u200b\ufeff🔗]+$")
#: text shorter than this says nothing about where the content is (a date, a link, a button)
_MEANINGFUL = 20


def read_html(data: bytes) -> Extracted:
    """The page's main text with its headings; no furniture."""
    return from_blocks(html_blocks(data))


def html_blocks(data: bytes) -> list[Block]:
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    # XHTML (DocBook's, EPUB's) reads right as HTML; bs4 would print a screenful suggesting an XML parser. Set
    # on each page, not once: a filter reset between pages (pytest's, a caller's) would bring the warning back
    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for element in [*soup.find_all(_JUNK), *soup.find_all(hidden=True)]:
        if not element.decomposed:
            element.decompose()
    root = _content_root(soup, title)
    _drop_furniture(root)
    blocks: list[Block] = []
    _walk(root, blocks, [])
    heading = _title_outside(soup, root, title)
    if blocks and heading:
        blocks.insert(0, Block(heading, 1))
    elif title and not any(b.level for b in blocks) and blocks:
        blocks.insert(0, Block(title, 1))
    return blocks


def _title_outside(soup: Any, root: Any, title: str) -> str:
    """The document's title where the content lacks it (Asciidoctor's <h1> sits in div#header beside the table
    of contents): the page's one <h1>, when it is the page's title."""
    headings = soup.find_all("h1")
    if root.find("h1") is not None or len(headings) != 1 or not title or not _titles(headings[0], title):
        return ""
    return _heading_text(headings[0])


def _titles(heading: Any, title: str) -> bool:
    """Whether an <h1> is the page's title: the <title> begins with it ("Council approves … - Daily News"),
    where a site's or a book's name in a logo heading ends it, if anywhere."""
    text = _heading_text(heading)
    return bool(text) and (not title or title.startswith(text))


def _heading_text(heading: Any) -> str:
    return _PERMALINK.sub("", tidy(heading.get_text(" ")))


def _content_root(soup: Any, title: str) -> Any:
    """The element that holds the document (see the module's docstring), or the body.

    An <article> or <main> counts only where it holds the page's densest text: a card in a sidebar
    that happens to be the page's one <article> is not the document."""
    body = soup.body or soup
    densest = _densest(body, title)
    articles = [a for a in soup.find_all("article") if _text_length(a) >= _MEANINGFUL]
    candidates = [articles[0]] if len(articles) == 1 else []
    candidates += [soup.find(attrs={"role": "main"}), soup.find("main")]
    for found in candidates:
        if found is not None and _text_length(found) >= _MEANINGFUL and _holds(found, densest):
            return found
    return densest if densest is not None else body


def _holds(element: Any, inner: Any | None) -> bool:
    """Whether ``element`` is ``inner`` or an ancestor of it (anything holds nothing)."""
    return inner is None or inner is element or any(parent is element for parent in inner.parents)


def _densest(body: Any, title: str) -> Any | None:
    """The element whose own paragraphs (and loose text) hold the most characters, widened to the title's <h1>
    above (a book's name in mdBook's menu bar is not the page's title)."""
    from bs4 import NavigableString
    from bs4.element import Comment

    credit: dict[int, int] = {}
    elements: dict[int, Any] = {}
    for string in body.find_all(string=True):
        if isinstance(string, Comment) or not isinstance(string, NavigableString):
            continue
        length = len(string.strip())
        if length < _MEANINGFUL:
            continue
        holder = string.parent
        while holder is not None and holder.name in _INLINE:
            holder = holder.parent
        if holder is not None and holder.name in ("p", "li", "blockquote", "pre", "dd", "td"):
            holder = holder.parent
        if holder is None or holder.name in _HEADINGS or _is_furniture(holder) or \
                any(_furniture_by_kind(parent) for parent in holder.parents if parent.name):
            continue  # a long menu or footer is not where the document is
        credit[id(holder)] = credit.get(id(holder), 0) + length
        elements[id(holder)] = holder
    if not credit:
        return None
    best = elements[max(credit, key=lambda key: credit[key])]
    holding = {id(node) for holder in elements.values() for node in (holder, *holder.parents)}  # credited text
    parts = [node for node in (best, *best.parents) if node is not body and node.name not in ("body", "html", "form")
             and node.parent is not None and _has_twin(node, holding)]
    if parts:  # a document in parts (DocBook's and Asciidoctor's sections): the element that holds them all
        best = parts[-1].parent
    own = _text_length(best)
    for ancestor in best.parents:
        if ancestor is body or ancestor.name in ("body", "html", "form") or _text_length(ancestor) > 2 * own + 200:
            break
        heading = ancestor.find("h1")
        if heading is not None and _titles(heading, title):
            return ancestor
    return best


def _has_twin(element: Any, holding: set[int]) -> bool:
    """Whether a sibling of the same kind (tag and classes) holds text too (its id in ``holding``): ``element`` is
    one part of many."""
    return any(sibling is not element and sibling.get("class") == element.get("class") and id(sibling) in holding
               for sibling in element.parent.find_all(element.name, recursive=False))


def _drop_furniture(root: Any) -> None:
    whole = _text_length(root)
    for element in root.find_all(True):
        if element.decomposed or not _is_furniture(element):
            continue
        if element.find_parent(_HEADINGS) is not None or element.find("h1") is not None:
            continue
        if element.name == "header" and element.find(_HEADINGS) is not None:
            continue  # the document's own header: its title
        if not _furniture_by_kind(element) and _text_length(element) * 2 > whole:
            continue  # named like furniture, but it holds most of the page: a wrapper (wy-grid-for-nav)
        element.decompose()


def _is_furniture(element: Any) -> bool:
    if _furniture_by_kind(element):
        return True
    if element.name in _INLINE or element.name in _HEADINGS or element.name in ("body", "html", "main", "article"):
        return False
    names = [*(element.get("class") or []), element.get("id") or ""]
    return any(name.lower() in _FURNITURE_NAMES for name in names) or \
        any(word.lower() in _FURNITURE_WORDS for word in _WORD.findall(" ".join(names)))


def _furniture_by_kind(element: Any) -> bool:
    """Furniture by what the element is (its tag or role), not by what it is named."""
    return element.name in _FURNITURE_TAGS or element.get("role") in _FURNITURE_ROLES


def _text_length(element: Any) -> int:
    return len(element.get_text(" ", strip=True))


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
            if name in _HEADINGS:
                _flush(blocks, words)
                blocks.append(Block(_heading_text(child), int(name[1])))
            elif name == "br":
                words.append(_BREAK)
            elif name in ("td", "th"):
                words.append(" | " if words and "".join(words).strip() else "")
                _walk(child, blocks, words)
            elif name == "pre":
                _flush(blocks, words)
                blocks.append(Block(child.get_text(), code=True))
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
