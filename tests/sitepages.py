"""HTML pages as real site generators and sites write them, for the HTML reader's tests and bench/html_pages.py.

Each page wraps the same kind of document (a title, sections with paragraphs, a list and a code
block) in its generator's real furniture: the root and wrapper classes, sidebars, tables of
contents, breadcrumbs, prev/next links, edit links, footers and cookie banners, with the element
names, roles and classes those tools emit (mdBook's index.hbs, Sphinx's Read the Docs and Furo
themes, MkDocs Material, Docusaurus, VitePress, a Hugo theme, Javadoc 17, rustdoc, DocBook XSL,
Asciidoctor), plus a saved news article and a Chinese CMS page (no <main> or <article>, the whole
page inside an ASP.NET form).

A ``Page`` says what must come out (``content``, ``headings``) and what must not (``furniture``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    name: str
    html: str
    #: sentences of the document: every one must be in the text read
    content: tuple[str, ...]
    #: sentences of the furniture: none may be
    furniture: tuple[str, ...]
    #: the headings, in order, that sections must be named by (the last part of each § path)
    headings: tuple[str, ...]


TITLE = "安装与配置"
INTRO = "本章介绍如何在离线环境中安装 fsearch 并完成第一次索引。"
SECTION_1 = "离线安装"
PARA_1 = "先在能联网的机器上下载全部依赖的 wheel 文件，再拷贝到目标机器上安装。"
ITEM = "确认 Python 版本不低于 3.11。"
CODE = "pip install --no-index --find-links wheels fsearch"
SECTION_2 = "Configuration"
PARA_2 = "The settings file fsearch.toml is read from the project folder upwards."

CONTENT = (INTRO, PARA_1, ITEM, CODE, PARA_2)
HEADINGS = (TITLE, SECTION_1, SECTION_2)

SIDEBAR = "第一章 快速开始"  # a chapter list entry
TOC = "本页目录之配置项"  # an "on this page" entry
PREV = "上一篇：项目简介"
NEXT = "下一篇：常见问题解答"
FOOTER = "版权所有 © 2024 示例团队"
EDIT = "Edit this page on GitHub"
BREADCRUMB = "文档首页导航"
SEARCH = "Search the docs (Ctrl+K)"
COOKIE = "We use cookies to improve your experience"
HOT = "热门文章推荐列表"

FURNITURE = (SIDEBAR, TOC, PREV, NEXT, FOOTER, EDIT, BREADCRUMB)


def _body(h1: str = "<h1>{}</h1>", anchor: str = "") -> str:
    """The document itself, headings written as ``h1`` (a format with {} for the text) and h2 with ``anchor``."""
    return (h1.format(TITLE) + f"\n<p>{INTRO}</p>\n"
            f'<h2 id="offline">{SECTION_1}{anchor}</h2>\n<p>{PARA_1}</p>\n<ul><li>{ITEM}</li></ul>\n'
            f'<pre><code class="language-bash">{CODE}</code></pre>\n'
            f'<h2 id="config">{SECTION_2}{anchor}</h2>\n<p>{PARA_2}</p>\n')


def mdbook() -> Page:
    html = f"""<!DOCTYPE HTML>
<html lang="zh" class="light sidebar-visible" dir="ltr">
<head><!-- Book generated using mdBook --><meta charset="UTF-8"><title>{TITLE} - 手册</title></head>
<body>
<div id="body-container">
  <script>var path_to_root = "";</script>
  <nav id="sidebar" class="sidebar" aria-label="Table of contents">
    <div class="sidebar-scrollbox"><ol class="chapter"><li class="chapter-item expanded">
      <a href="intro.html"><strong aria-hidden="true">1.</strong> {SIDEBAR}</a></li></ol></div>
    <div id="sidebar-resize-handle" class="sidebar-resize-handle"></div>
  </nav>
  <div id="page-wrapper" class="page-wrapper">
    <div class="page">
      <div id="menu-bar-hover-placeholder"></div>
      <div id="menu-bar" class="menu-bar sticky">
        <div class="left-buttons"><label id="sidebar-toggle" class="icon-button" title="Toggle Table of Contents">
          <i class="fa fa-bars"></i></label></div>
        <h1 class="menu-title">手册</h1>
        <div class="right-buttons"><a href="print.html" title="Print this book"><i class="fa fa-print"></i></a></div>
      </div>
      <div id="search-wrapper" class="hidden"><form id="searchbar-outer" class="searchbar-outer">
        <input type="search" id="searchbar" placeholder="{SEARCH}"></form></div>
      <div id="content" class="content">
        <main>
{_body('<h1 id="title"><a class="header" href="#title">{}</a></h1>',
       '').replace('<h2 id="offline">', '<h2 id="offline"><a class="header" href="#offline">')
   .replace(f'{SECTION_1}</h2>', f'{SECTION_1}</a></h2>')
   .replace('<h2 id="config">', '<h2 id="config"><a class="header" href="#config">')
   .replace(f'{SECTION_2}</h2>', f'{SECTION_2}</a></h2>')}
        </main>
        <nav class="nav-wrapper" aria-label="Page navigation">
          <a rel="prev" href="intro.html" class="mobile-nav-chapters previous" title="{PREV}">{PREV}</a>
          <a rel="next prefetch" href="faq.html" class="mobile-nav-chapters next" title="{NEXT}">{NEXT}</a>
        </nav>
      </div>
    </div>
    <nav class="nav-wide-wrapper" aria-label="Page navigation">
      <a rel="prev" href="intro.html" class="nav-chapters previous">{PREV}</a>
      <a rel="next prefetch" href="faq.html" class="nav-chapters next">{NEXT}</a>
    </nav>
  </div>
</div>
</body></html>"""
    return Page("mdbook", html, CONTENT, (SIDEBAR, PREV, NEXT, SEARCH), HEADINGS)


def sphinx_rtd() -> Page:
    anchor = '<a class="headerlink" href="#offline" title="Link to this heading">¶</a>'
    html = f"""<!DOCTYPE html>
<html class="writer-html5" lang="zh-CN" data-content_root="./">
<head><meta charset="utf-8"><title>{TITLE} &mdash; 手册 1.0 文档</title></head>
<body class="wy-body-for-nav">
  <div class="wy-grid-for-nav">
    <nav data-toggle="wy-nav-shift" class="wy-nav-side">
      <div class="wy-side-scroll">
        <div class="wy-side-nav-search"><a href="index.html" class="icon icon-home">手册</a>
          <div role="search"><form id="rtd-search-form" class="wy-form" action="search.html" method="get">
            <input type="text" name="q" placeholder="{SEARCH}"></form></div></div>
        <div class="wy-menu wy-menu-vertical" data-spy="affix" role="navigation" aria-label="Navigation menu">
          <ul class="current"><li class="toctree-l1"><a class="reference internal" href="intro.html">{SIDEBAR}</a>
          </li></ul></div>
      </div>
    </nav>
    <section data-toggle="wy-nav-shift" class="wy-nav-content-wrap">
      <nav class="wy-nav-top" aria-label="Mobile navigation menu"><a href="index.html">手册</a></nav>
      <div class="wy-nav-content">
        <div class="rst-content">
          <div role="navigation" aria-label="Page navigation"><ul class="wy-breadcrumbs">
            <li><a href="index.html" class="icon icon-home" aria-label="Home"></a></li>
            <li class="breadcrumb-item active">{BREADCRUMB}</li></ul><hr/></div>
          <div role="main" class="document" itemscope="itemscope" itemtype="http://schema.org/Article">
            <div itemprop="articleBody">
              <section id="install">
{_body('<h1>{}<a class="headerlink" href="#install" title="Link to this heading">¶</a></h1>', anchor)}
              </section>
            </div>
          </div>
          <footer>
            <div class="rst-footer-buttons" role="navigation" aria-label="Footer">
              <a href="intro.html" class="btn btn-neutral float-left" rel="prev">{PREV}</a>
              <a href="faq.html" class="btn btn-neutral float-right" rel="next">{NEXT}</a></div>
            <hr/><div role="contentinfo"><p>{FOOTER}</p></div>
            Built with <a href="https://www.sphinx-doc.org/">Sphinx</a> using a theme provided by Read the Docs.
          </footer>
        </div>
      </div>
    </section>
  </div>
</body></html>"""
    return Page("sphinx-rtd", html, CONTENT, (SIDEBAR, BREADCRUMB, PREV, NEXT, FOOTER, SEARCH), HEADINGS)


def furo() -> Page:
    anchor = '<a class="headerlink" href="#offline" title="Link to this heading">¶</a>'
    html = f"""<!doctype html>
<html class="no-js" lang="zh-CN" data-content_root="./">
<head><meta charset="utf-8"/><title>{TITLE} - 手册 1.0</title></head>
<body>
<input type="checkbox" class="sidebar-toggle" name="__navigation" id="__navigation">
<input type="checkbox" class="sidebar-toggle" name="__toc" id="__toc">
<div class="page">
  <header class="mobile-header"><div class="header-left"><label class="nav-overlay-icon" for="__navigation">
    </label></div><div class="header-center"><a href="index.html"><div class="brand">手册</div></a></div></header>
  <aside class="sidebar-drawer"><div class="sidebar-container"><div class="sidebar-sticky">
    <form class="sidebar-search-container" method="get" action="search.html" role="search">
      <input class="sidebar-search" placeholder="{SEARCH}" name="q"></form>
    <div class="sidebar-scroll"><div class="sidebar-tree"><ul><li class="toctree-l1">
      <a class="reference internal" href="intro.html">{SIDEBAR}</a></li></ul></div></div>
  </div></div></aside>
  <div class="main">
    <div class="content">
      <div class="article-container">
        <a href="#" class="back-to-top muted-link">Back to top</a>
        <div class="content-icon-container"><div class="edit-this-page">
          <a class="muted-link" href="https://github.com/x/y/edit/main/install.rst" title="{EDIT}">{EDIT}</a>
        </div></div>
        <article role="main" id="furo-main-content">
          <section id="install">
{_body('<h1>{}<a class="headerlink" href="#install" title="Link to this heading">¶</a></h1>', anchor)}
          </section>
        </article>
      </div>
      <footer>
        <div class="related-pages">
          <a class="next-page" href="faq.html"><div class="page-info"><div class="context"><span>Next</span></div>
            <div class="title">{NEXT}</div></div></a>
          <a class="prev-page" href="intro.html"><div class="page-info"><div class="context"><span>Previous</span>
            </div><div class="title">{PREV}</div></div></a>
        </div>
        <div class="bottom-of-page"><div class="left-details"><div class="copyright">{FOOTER}</div></div></div>
      </footer>
    </div>
    <aside class="toc-drawer"><div class="toc-sticky toc-scroll"><div class="toc-title-container">
      <span class="toc-title">On this page</span></div><div class="toc-tree-container"><div class="toc-tree">
      <ul><li><a class="reference internal" href="#config">{TOC}</a></li></ul></div></div></div></aside>
  </div>
</div>
</body></html>"""
    return Page("furo", html, CONTENT, (SIDEBAR, TOC, PREV, NEXT, FOOTER, EDIT, SEARCH), HEADINGS)


def mkdocs_material() -> Page:
    anchor = '<a class="headerlink" href="#offline" title="Permanent link">&para;</a>'
    html = f"""<!doctype html>
<html lang="zh" class="no-js">
<head><meta charset="utf-8"><title>{TITLE} - 手册</title></head>
<body dir="ltr" data-md-color-scheme="default">
<input class="md-toggle" data-md-toggle="drawer" type="checkbox" id="__drawer" autocomplete="off">
<input class="md-toggle" data-md-toggle="search" type="checkbox" id="__search" autocomplete="off">
<label class="md-overlay" for="__drawer"></label>
<div data-md-component="skip"><a href="#offline" class="md-skip">Skip to content</a></div>
<header class="md-header md-header--shadow" data-md-component="header">
  <nav class="md-header__inner md-grid" aria-label="页眉"><div class="md-header__title">手册</div>
    <div class="md-search" data-md-component="search" role="dialog"><form class="md-search__form" name="search">
      <input type="text" class="md-search__input" name="query" placeholder="{SEARCH}"></form></div></nav>
</header>
<div class="md-container" data-md-component="container">
  <main class="md-main" data-md-component="main">
    <div class="md-main__inner md-grid">
      <div class="md-sidebar md-sidebar--primary" data-md-component="sidebar" data-md-type="navigation">
        <div class="md-sidebar__scrollwrap"><div class="md-sidebar__inner">
          <nav class="md-nav md-nav--primary" aria-label="导航栏" data-md-level="0"><ul class="md-nav__list">
            <li class="md-nav__item"><a href="intro/" class="md-nav__link">{SIDEBAR}</a></li></ul></nav>
        </div></div></div>
      <div class="md-sidebar md-sidebar--secondary" data-md-component="sidebar" data-md-type="toc">
        <div class="md-sidebar__scrollwrap"><div class="md-sidebar__inner">
          <nav class="md-nav md-nav--secondary" aria-label="目录"><label class="md-nav__title" for="__toc">目录</label>
            <ul class="md-nav__list" data-md-component="toc" data-md-scrollfix>
              <li class="md-nav__item"><a href="#config" class="md-nav__link">{TOC}</a></li></ul></nav>
        </div></div></div>
      <div class="md-content" data-md-component="content">
        <article class="md-content__inner md-typeset">
          <a href="https://github.com/x/y/edit/main/docs/install.md" title="{EDIT}" class="md-content__button md-icon">
            <svg viewBox="0 0 24 24"><path d="M10 20H6V4h7v5h5v3.1l2-2V8l-6-6H6"></path></svg></a>
{_body('<h1 id="install">{}</h1>', anchor)}
        </article>
      </div>
    </div>
  </main>
  <footer class="md-footer">
    <nav class="md-footer__inner md-grid" aria-label="页脚">
      <a href="intro/" class="md-footer__link md-footer__link--prev" aria-label="上一页: {PREV}">
        <div class="md-footer__title"><span class="md-footer__direction">上一页</span>
        <div class="md-ellipsis">{PREV}</div></div></a>
      <a href="faq/" class="md-footer__link md-footer__link--next" aria-label="下一页: {NEXT}">
        <div class="md-footer__title"><span class="md-footer__direction">下一页</span>
        <div class="md-ellipsis">{NEXT}</div></div></a>
    </nav>
    <div class="md-footer-meta md-typeset"><div class="md-footer-meta__inner md-grid">
      <div class="md-copyright"><div class="md-copyright__highlight">{FOOTER}</div>
        Made with <a href="https://squidfunk.github.io/mkdocs-material/">Material for MkDocs</a></div></div></div>
  </footer>
</div>
</body></html>"""
    return Page("mkdocs-material", html, CONTENT, (SIDEBAR, TOC, PREV, NEXT, FOOTER, SEARCH), HEADINGS)


def docusaurus() -> Page:
    anchor = '<a href="#offline" class="hash-link" aria-label="Direct link to heading" title="Direct link">\u200b</a>'
    html = f"""<!doctype html>
<html lang="zh-Hans" dir="ltr" class="docs-wrapper plugin-docs plugin-id-default docs-version-current
 docs-doc-page docs-doc-id-install" data-has-hydrated="false">
<head><meta charset="UTF-8"><title data-rh="true">{TITLE} | 手册</title></head>
<body class="navigation-with-keyboard">
<div id="__docusaurus"><div role="region" aria-label="跳到主要内容"><a class="skipToContent_fXgn"
  href="#__docusaurus_skipToContent_fallback">跳到主要内容</a></div>
<nav aria-label="主导航" class="navbar navbar--fixed-top"><div class="navbar__inner"><div class="navbar__items">
  <a class="navbar__brand" href="/"><b class="navbar__title text--truncate">手册</b></a></div></div></nav>
<div id="__docusaurus_skipToContent_fallback" class="main-wrapper mainWrapper_z2l0">
  <div class="docsWrapper_hBAB"><div class="docRoot_UBD9">
    <aside class="theme-doc-sidebar-container docSidebarContainer_YfHR"><div class="sidebarViewport_aRkj">
      <div class="sidebar_njMd"><nav aria-label="文档侧边栏" class="menu thin-scrollbar menu_SIkG">
        <ul class="theme-doc-sidebar-menu menu__list"><li class="theme-doc-sidebar-item-link menu__list-item">
          <a class="menu__link" href="/docs/intro">{SIDEBAR}</a></li></ul></nav></div></div></aside>
    <main class="docMainContainer_TBSr"><div class="container padding-top--md padding-bottom--lg">
      <div class="row"><div class="col docItemCol_VOVn"><div class="docItemContainer_Djhp">
        <article>
          <nav class="theme-doc-breadcrumbs breadcrumbsContainer_Z_bl" aria-label="页面路径">
            <ul class="breadcrumbs"><li class="breadcrumbs__item"><span class="breadcrumbs__link">{BREADCRUMB}</span>
            </li></ul></nav>
          <div class="tocCollapsible_ETCw theme-doc-toc-mobile tocMobile_ITEo"><button type="button"
            class="clean-btn tocCollapsibleButton_TO0P">本页总览</button></div>
          <div class="theme-doc-markdown markdown">
{_body('<header><h1>{}</h1></header>', anchor)}
          </div>
          <footer class="theme-doc-footer docusaurus-mt-lg"><div class="theme-doc-footer-edit-meta-row row">
            <div class="col"><a href="https://github.com/x/y/edit/main/docs/install.md" target="_blank"
              class="theme-edit-this-page">{EDIT}</a></div></div></footer>
        </article>
        <nav class="pagination-nav docusaurus-mt-lg" aria-label="文件选项卡">
          <a class="pagination-nav__link pagination-nav__link--prev" href="/docs/intro">
            <div class="pagination-nav__sublabel">上一页</div><div class="pagination-nav__label">{PREV}</div></a>
          <a class="pagination-nav__link pagination-nav__link--next" href="/docs/faq">
            <div class="pagination-nav__sublabel">下一页</div><div class="pagination-nav__label">{NEXT}</div></a>
        </nav>
      </div></div>
      <div class="col col--3"><div class="tableOfContents_bqdL thin-scrollbar theme-doc-toc-desktop">
        <ul class="table-of-contents table-of-contents__left-border"><li>
          <a href="#config" class="table-of-contents__link toc-highlight">{TOC}</a></li></ul></div></div>
      </div></div></main>
  </div></div>
</div>
<footer class="footer footer--dark"><div class="container container-fluid"><div class="footer__bottom text--center">
  <div class="footer__copyright">{FOOTER}</div></div></div></footer>
</div>
</body></html>"""
    return Page("docusaurus", html, CONTENT, (SIDEBAR, TOC, PREV, NEXT, FOOTER, EDIT, BREADCRUMB), HEADINGS)


def vitepress() -> Page:
    anchor = '<a class="header-anchor" href="#offline" aria-label="Permalink to &quot;offline&quot;">\u200b</a>'
    html = f"""<!DOCTYPE html>
<html lang="zh-CN" dir="ltr">
<head><meta charset="utf-8"><title>{TITLE} | 手册</title></head>
<body>
<div id="app"><div class="Layout" data-v-5d98c3a5>
  <div class="VPNav" data-v-5d98c3a5><header class="VPNavBar has-sidebar top"><div class="wrapper">
    <div class="container"><div class="title"><a class="title" href="/"><span>手册</span></a></div>
    <div class="content"><div class="content-body"><div class="VPNavBarSearch search">
      <button type="button" class="DocSearch DocSearch-Button" aria-label="Search">
      <span class="DocSearch-Button-Placeholder">{SEARCH}</span></button></div></div></div></div></div>
  </header></div>
  <aside class="VPSidebar" data-v-5d98c3a5><nav class="nav" id="VPSidebarNav" aria-labelledby="sidebar-aria-label"
    tabindex="-1"><div class="group"><section class="VPSidebarItem level-0"><div class="items">
    <div class="VPSidebarItem level-1 is-link"><div class="item"><a class="VPLink link link" href="/guide/intro">
      <p class="text">{SIDEBAR}</p></a></div></div></div></section></div></nav></aside>
  <div class="VPContent has-sidebar" id="VPContent" data-v-5d98c3a5>
    <div class="VPDoc has-sidebar has-aside"><div class="container">
      <div class="aside"><div class="aside-container"><div class="aside-content"><div class="VPDocAside">
        <nav aria-labelledby="doc-outline-aria-label" class="VPDocAsideOutline has-outline">
          <div class="content"><div class="outline-title" role="heading" aria-level="2">本页目录</div>
          <ul class="VPDocOutlineItem root"><li><a class="outline-link" href="#config">{TOC}</a></li></ul></div>
        </nav></div></div></div></div>
      <div class="content"><div class="content-container">
        <main class="main"><div style="position:relative;" class="vp-doc _guide_install"><div>
{_body('<h1 id="install" tabindex="-1">{}' + anchor.replace('#offline', '#install') + '</h1>', anchor)}
        </div></div></main>
        <footer class="VPDocFooter"><div class="edit-info"><div class="edit-link">
          <a class="VPLink link vp-external-link-icon edit-link-button" href="https://github.com/x/y/edit/main/install.md">
          {EDIT}</a></div></div>
          <nav class="prev-next" aria-labelledby="doc-footer-aria-label"><div class="pager">
            <a class="VPLink link pager-link prev" href="/guide/intro"><span class="desc">上一页</span>
            <span class="title">{PREV}</span></a></div><div class="pager">
            <a class="VPLink link pager-link next" href="/guide/faq"><span class="desc">下一页</span>
            <span class="title">{NEXT}</span></a></div></nav></footer>
      </div></div>
    </div></div>
  </div>
  <footer class="VPFooter has-sidebar"><div class="container"><p class="copyright">{FOOTER}</p></div></footer>
</div></div>
</body></html>"""
    return Page("vitepress", html, CONTENT, (SIDEBAR, TOC, PREV, NEXT, FOOTER, EDIT, SEARCH), HEADINGS)


def hugo() -> Page:
    html = f"""<!DOCTYPE html>
<html lang="zh-cn" dir="auto">
<head><meta charset="utf-8"><title>{TITLE} | 示例博客</title></head>
<body class="list" id="top">
<header class="header"><nav class="nav"><div class="logo"><a href="/" accesskey="h" title="示例博客">示例博客</a></div>
  <ul id="menu"><li><a href="/posts/" title="文章"><span>{SIDEBAR}</span></a></li></ul></nav></header>
<main class="main">
  <article class="post-single">
    <header class="post-header">
      <div class="breadcrumbs"><a href="/">{BREADCRUMB}</a>&nbsp;»&nbsp;<a href="/posts/">文章</a></div>
      <h1 class="post-title entry-hint-parent">{TITLE}</h1>
      <div class="post-meta"><span title="2024-05-01">2024年5月1日</span></div>
    </header>
    <div class="toc"><details><summary accesskey="c" title="(Alt + C)"><span class="details">目录</span></summary>
      <div class="inner"><ul><li><a href="#config" aria-label="config">{TOC}</a></li></ul></div></details></div>
    <div class="post-content">
{_body('', '').replace(f'<p>{INTRO}</p>', f'<p>{INTRO}</p>', 1)}
    </div>
    <footer class="post-footer"><ul class="post-tags"><li><a href="/tags/install/">install</a></li></ul>
      <nav class="paginav"><a class="prev" href="/posts/intro/"><span class="title">« 上一页</span><br>
        <span>{PREV}</span></a><a class="next" href="/posts/faq/"><span class="title">下一页 »</span><br>
        <span>{NEXT}</span></a></nav></footer>
  </article>
</main>
<footer class="footer"><span>{FOOTER}</span> · <span>Powered by <a href="https://gohugo.io/">Hugo</a></span></footer>
</body></html>"""
    return Page("hugo", html, CONTENT, (SIDEBAR, TOC, PREV, NEXT, FOOTER, BREADCRUMB), HEADINGS)


def javadoc() -> Page:
    content = ("Returns the number of chunks committed to the index.", "The count never includes unpublished chunks.")
    html = f"""<!DOCTYPE HTML>
<html lang="en">
<head><title>Index (fsearch 1.0 API)</title></head>
<body class="class-declaration-page">
<script type="text/javascript">var pathtoroot = "../";</script>
<div class="flex-box">
<header role="banner" class="flex-header"><nav role="navigation">
  <div class="top-nav" id="navbar-top"><ul id="navbar-top-firstrow" class="nav-list" title="Navigation">
    <li><a href="package-summary.html">{SIDEBAR}</a></li><li class="nav-bar-cell1-rev">Class</li></ul></div>
  <div class="sub-nav"><div id="navbar-sub-list"><ul class="sub-nav-list"><li>Summary:&nbsp;</li></ul></div>
    <div class="nav-list-search"><input type="text" id="search-input" value="search" placeholder="{SEARCH}">
    </div></div></nav></header>
<div class="flex-content">
<main role="main">
<div class="header">
<div class="sub-title"><span class="package-label-in-type">Package</span>&nbsp;<a href="package-summary.html">org.fsearch</a></div>
<h1 title="Class Index" class="title">Class Index</h1>
</div>
<section class="class-description" id="class-description">
<div class="block">{content[0]}</div>
</section>
<section class="method-details" id="method-detail">
<h2>Method Details</h2>
<section class="detail" id="size()"><h3>size</h3>
<div class="member-signature"><span class="modifiers">public</span>&nbsp;<span class="return-type">int</span>&nbsp;<span class="element-name">size</span>()</div>
<div class="block">{content[1]}</div>
</section></section>
</main>
<footer role="contentinfo"><hr><p class="legal-copy"><small>{FOOTER}</small></p></footer>
</div></div>
</body></html>"""
    return Page("javadoc", html, content, (SIDEBAR, FOOTER, SEARCH), ("Class Index", "Method Details", "size"))


def rustdoc() -> Page:
    content = ("A store of chunks and their vectors.", "Opens the index read-only, following every commit.")
    html = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Index in fsearch::store - Rust</title></head>
<body class="rustdoc struct"><!--[if lte IE 11]><div class="warning">This old browser is unsupported.</div><![endif]-->
<nav class="mobile-topbar"><button class="sidebar-menu-toggle" title="show sidebar"></button></nav>
<nav class="sidebar"><div class="sidebar-crate"><h2><a href="../index.html">fsearch</a></h2></div>
  <div class="sidebar-elems"><section id="rustdoc-toc"><h2 class="location"><a href="#">Index</a></h2>
  <h3><a href="#implementations">Methods</a></h3><ul class="block method"><li><a href="#method.open">{TOC}</a></li>
  </ul></section><div id="rustdoc-modnav"><h2><a href="index.html">In fsearch::store</a></h2>
  <ul class="block struct"><li><a href="struct.Writer.html">{SIDEBAR}</a></li></ul></div></div></nav>
<div class="sidebar-resizer"></div>
<main><div class="width-limiter"><rustdoc-search></rustdoc-search>
<section id="main-content" class="content">
<div class="main-heading"><div class="rustdoc-breadcrumbs"><a href="../index.html">fsearch</a>::<wbr><a href="index.html">store</a></div>
<h1>Struct <span class="struct">Index</span><button id="copy-path" title="Copy item path to clipboard">Copy item path</button></h1>
<rustdoc-toolbar></rustdoc-toolbar><span class="sub-heading"><a class="src" href="../../src/fsearch/store.rs.html#12">Source</a></span></div>
<pre class="rust item-decl"><code>pub struct Index {{ /* private fields */ }}</code></pre>
<details class="toggle top-doc" open><summary class="hideme"><span>Expand description</span></summary>
<div class="docblock"><p>{content[0]}</p></div></details>
<h2 id="implementations" class="section-header">Implementations<a href="#implementations" class="anchor">§</a></h2>
<details class="toggle method-toggle" open><summary><section id="method.open" class="method">
<h4 class="code-header">pub fn <a href="#method.open" class="fn">open</a>(path: &amp;Path) -&gt; Result&lt;Self&gt;</h4></section></summary>
<div class="docblock"><p>{content[1]}</p></div></details>
</section></div></main>
</body></html>"""
    return Page("rustdoc", html, content, (SIDEBAR, TOC), ("Struct Index", "Implementations"))


def news() -> Page:
    content = ("The city council approved the new library budget on Tuesday evening.",
               "Construction is expected to begin next spring and take two years.",
               "市议会周二晚间批准了新图书馆的预算。")
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Council approves library budget - Daily News</title></head>
<body>
<div id="onetrust-consent-sdk"><div id="onetrust-banner-sdk" class="otFlat" role="region" aria-label="Cookie banner">
  <div class="ot-sdk-container"><p id="onetrust-policy-text">{COOKIE}. <a href="/privacy">Privacy policy</a></p>
  <button id="onetrust-accept-btn-handler">Accept all</button></div></div></div>
<div class="site-header"><a class="logo" href="/">Daily News</a><ul class="primary-menu"><li><a href="/local">{SIDEBAR}</a>
  </li></ul></div>
<div class="container"><div class="row">
  <div class="col-md-8">
    <div class="story">
      <div class="breadcrumb"><a href="/">{BREADCRUMB}</a></div>
      <h1 class="headline">Council approves library budget</h1>
      <div class="byline">By A. Reporter · May 1, 2024</div>
      <div class="story-body">
        <p>{content[0]}</p>
        <div class="ad-slot advert"><p>Advertisement: buy one get one free at the mall</p></div>
        <p>{content[1]}</p>
        <p>{content[2]}</p>
      </div>
      <div class="share-tools social"><a href="#">Share on Twitter</a></div>
      <div class="newsletter-signup"><p>Sign up for our newsletter today</p></div>
    </div>
  </div>
  <div class="col-md-4 sidebar"><h3>Most read</h3><ul><li>{HOT}</li></ul></div>
</div></div>
<div class="site-footer"><p>{FOOTER}</p></div>
</body></html>"""
    return Page("news", html, content,
                (COOKIE, SIDEBAR, BREADCRUMB, HOT, FOOTER, "Advertisement: buy one get one free at the mall",
                 "Share on Twitter", "Sign up for our newsletter today"), ("Council approves library budget",))


def cms_cn() -> Page:
    content = ("为进一步规范本地知识库的建设，现将有关事项通知如下。",
               "各部门应于本月底前完成文档的整理和上传工作。",
               "联系人：张三，电话：010-12345678。")
    html = f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
<title>关于规范知识库建设的通知_通知公告_示例单位</title></head>
<body>
<form name="form1" method="post" action="./show.aspx?id=123" id="form1">
<div class="aspNetHidden"><input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE" value="abc" /></div>
<div class="top"><div class="logo"><img src="/images/logo.png" alt="示例单位" /></div>
  <div class="topnav"><a href="/">首页</a> | <a href="/news/">{SIDEBAR}</a></div></div>
<div class="wrap">
  <div class="position">当前位置：<a href="/">{BREADCRUMB}</a> &gt; <a href="/tzgg/">通知公告</a></div>
  <div class="left_box">
    <div class="art_title"><h1>关于规范知识库建设的通知</h1></div>
    <div class="art_info">发布时间：2024-05-01 来源：办公室 浏览次数：<span id="hits">128</span></div>
    <div class="art_con" id="zoom">
      <p style="text-indent:2em;">{content[0]}</p>
      <p style="text-indent:2em;">{content[1]}</p>
      <p style="text-indent:2em;">{content[2]}</p>
    </div>
    <div class="art_page"><div class="prev">{PREV}</div><div class="next">{NEXT}</div></div>
  </div>
  <div class="right_box"><div class="rtitle">热点新闻</div><ul class="rlist"><li><a href="/a/1">{HOT}</a></li></ul></div>
</div>
<div class="foot"><p>{FOOTER} 备案号：京ICP备00000000号</p></div>
</form>
</body></html>"""
    return Page("cms-cn", html, content, (SIDEBAR, BREADCRUMB, PREV, NEXT, HOT, FOOTER), ("关于规范知识库建设的通知",))


#: a manual's chapter comes in many sections of similar length, and each is part of the document
MORE_SECTIONS = tuple((f"1.{n} 第 {n} 个主题", f"第 {n} 节说明：索引建好以后，可以用自然语言提问，fsearch 会按照语义找出最相关的段落，"
                       f"并给出它们所在的文件、行号和章节标题，这一节介绍第 {n} 种常见的用法和它的注意事项。") for n in range(3, 9))


def docbook() -> Page:
    """DocBook XSL's XHTML (the Debian Reference, many GNU and Linux manuals): no <main> or <article>, the chapter
    a div.chapter of div.section parts, its table of contents inside it, navigation tables above and below."""
    more = "".join(f'<div class="section"><div class="titlepage"><div><div><h2 class="title" style="clear: both">'
                   f'<a id="_s{n}"/>{title}</h2></div></div></div><p>{text}</p></div>\n'
                   for n, (title, text) in enumerate(MORE_SECTIONS))
    html = f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>第 1 章 {TITLE}</title>
<link rel="stylesheet" type="text/css" href="debian-reference.css"/>
<meta name="generator" content="DocBook XSL Stylesheets Vsnapshot"/>
<link rel="prev" href="pr01.html" title="序言"/><link rel="next" href="ch02.html" title="第 2 章 常见问题"/></head>
<body>
<div class="navheader"><table width="100%" summary="Navigation header"><tr><th colspan="3" align="center">第 1 章 {TITLE}</th></tr>
<tr><td align="left"><a accesskey="p" href="pr01.html"><img src="images/prev.png" alt="上一页"/></a> </td>
<th width="60%" align="center"> </th><td align="right"> <a accesskey="n" href="ch02.html"><img src="images/next.png" alt="下一页"/></a></td>
</tr></table><hr/></div>
<div class="chapter"><div class="titlepage"><div><div><h1 class="title"><a id="_install"/>{TITLE}</h1></div></div></div>
<div class="toc"><p><strong>目录</strong></p><dl class="toc"><dt><span class="section"><a href="#_offline">1.1. {SECTION_1}</a>
</span></dt><dt><span class="section"><a href="#_config">{TOC}</a></span></dt></dl></div>
<p>{INTRO}</p>
<div class="section"><div class="titlepage"><div><div><h2 class="title" style="clear: both"><a id="_offline"/>{SECTION_1}</h2>
</div></div></div><p>{PARA_1}</p>
<div class="itemizedlist"><ul class="itemizedlist" style="list-style-type: disc; "><li class="listitem"><p>{ITEM}</p></li></ul></div>
<pre class="screen">{CODE}</pre></div>
<div class="section"><div class="titlepage"><div><div><h2 class="title" style="clear: both"><a id="_config"/>{SECTION_2}</h2>
</div></div></div><p>{PARA_2}</p></div>
{more}</div>
<div class="navfooter"><hr/><table width="100%" summary="Navigation footer"><tr><td align="left"><a accesskey="p" href="pr01.html">
<img src="images/prev.png" alt="上一页"/></a> </td><td align="center"> </td><td align="right"> <a accesskey="n" href="ch02.html">
<img src="images/next.png" alt="下一页"/></a></td></tr><tr><td align="left" valign="top">{PREV} </td><td align="center">
<a accesskey="h" href="index.html"><img src="images/home.png" alt="起始页"/></a></td><td align="right" valign="top"> {NEXT}</td>
</tr></table></div>
</body></html>"""
    return Page("docbook", html, CONTENT + tuple(text for _, text in MORE_SECTIONS), (TOC, PREV, NEXT),
                HEADINGS + tuple(title for title, _ in MORE_SECTIONS))


def asciidoctor() -> Page:
    """Asciidoctor's HTML5 (many project manuals): the title in div#header beside the table of contents, the
    document in div#content as div.sect1 sections of div.paragraph blocks, one paragraph each."""
    more = "".join(f'<div class="sect1"><h2 id="_s{n}">{title}</h2><div class="sectionbody"><div class="paragraph">'
                   f'<p>{text}</p></div></div></div>\n' for n, (title, text) in enumerate(MORE_SECTIONS))
    html = f"""<!DOCTYPE html>
<html lang="zh"><head><meta charset="UTF-8"><meta name="generator" content="Asciidoctor 2.0.20">
<title>{TITLE}</title></head>
<body class="book toc2 toc-left">
<div id="header"><h1>{TITLE}</h1>
<div class="details"><span id="author" class="author">示例团队</span><br></div>
<div id="toc" class="toc2"><div id="toctitle">Table of Contents</div><ul class="sectlevel1">
<li><a href="#_offline">{SECTION_1}</a></li><li><a href="#_config">{TOC}</a></li></ul></div></div>
<div id="content">
<div id="preamble"><div class="sectionbody"><div class="paragraph"><p>{INTRO}</p></div></div></div>
<div class="sect1"><h2 id="_offline">{SECTION_1}</h2><div class="sectionbody"><div class="paragraph"><p>{PARA_1}</p></div>
<div class="ulist"><ul><li><p>{ITEM}</p></li></ul></div>
<div class="listingblock"><div class="content"><pre class="highlight"><code class="language-bash" data-lang="bash">{CODE}</code>
</pre></div></div></div></div>
<div class="sect1"><h2 id="_config">{SECTION_2}</h2><div class="sectionbody"><div class="paragraph"><p>{PARA_2}</p></div>
</div></div>
{more}</div>
<div id="footer"><div id="footer-text">Version 2.0<br>{FOOTER}</div></div>
</body></html>"""
    return Page("asciidoctor", html, CONTENT + tuple(text for _, text in MORE_SECTIONS), (TOC, FOOTER),
                HEADINGS + tuple(title for title, _ in MORE_SECTIONS))


PAGES = (mdbook, sphinx_rtd, furo, mkdocs_material, docusaurus, vitepress, hugo, javadoc, rustdoc, news, cms_cn,
         docbook, asciidoctor)
