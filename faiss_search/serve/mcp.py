"""`fsearch mcp`: the index as Model Context Protocol tools (stdio), for coding agents and desktop assistants.

Built on the official ``mcp`` SDK. The tools return the same objects as ``--json``; ``read``
serves only files the index holds, under the folders it was built from, reached without a
symlink and unchanged since indexing, so an agent cannot use it to read anything else on disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from ..config import Settings
from ..errors import FsearchError
from ..retrieval.relevance import MIN_RELEVANCE
from ..retrieval.search import Searcher

#: a whole file is returned only up to this size; larger ones are read around a line
MAX_READ_CHARS = 200_000
DEFAULT_CONTEXT_LINES = 20

INSTRUCTIONS = ("Searches the user's own documents (Chinese and English) by meaning. Use `search` with a question; "
                "each result has a relevance score (0-1, below 0.5 is noise), a source file and line, and a "
                "snippet. Use `read` with a result's source and line to see the text around it.")


def build_server(searcher: Searcher, settings: Settings) -> MCPServer:
    """An MCP server whose tools answer from ``searcher`` (one index, its model loaded once)."""
    server = MCPServer("fsearch", instructions=INSTRUCTIONS)

    @server.tool()
    def search(query: str, k: int = 5, mode: str | None = None, min_score: float = MIN_RELEVANCE,
               rerank: bool | None = None) -> dict[str, Any]:
        """Find the passages of the indexed documents closest in meaning to a question.

        mode: hybrid (default: keywords and meaning), dense (meaning only) or keyword.
        min_score: leave out results below this relevance (0-1; 0.5 is as high as noise gets).
        rerank: re-score the first hits with the server's cross-encoder (slower, better order) [default: on
        where the server was started with a reranker].
        """
        if not 1 <= k <= 100:
            raise ToolError(f"k must be between 1 and 100, got {k}")
        if rerank and searcher.reranker is None:
            raise ToolError("this server has no reranker (start fsearch mcp with --reranker MODEL or --rerank-url URL)")
        try:
            return searcher.search(query, k, mode, min_score,
                                   rerank=searcher.reranker is not None if rerank is None else rerank).to_dict()
        except FsearchError as exc:
            raise ToolError(exc.message) from None

    @server.tool()
    def read(source: str, line: int | None = None, context_lines: int = DEFAULT_CONTEXT_LINES) -> dict[str, Any]:
        """Read an indexed file: the lines around `line` (a search result's line), or the whole file.

        source: a search result's `source` (only files in the index can be read).
        """
        try:
            roots = readable_roots(searcher, settings)  # per call: the index may be rebuilt under a running server
            return read_indexed(searcher, source, line, context_lines, roots, settings.max_file_mb * 1024 * 1024)
        except FsearchError as exc:
            raise ToolError(exc.message) from None

    @server.tool()
    def status() -> dict[str, Any]:
        """What the index holds: its folder (or Milvus store), model, files and chunks, and when it was last updated."""
        try:
            with searcher.reader.snapshot():
                manifest = searcher.reader.manifest
        except FsearchError as exc:
            raise ToolError(exc.message) from None
        return {**settings.where(), "model": manifest.model["name"], "files": manifest.counts.files,
                "chunks": manifest.counts.chunks, "updated_at": manifest.updated_at}

    return server


def readable_roots(searcher: Searcher, settings: Settings) -> list[str]:
    """The folders ``read`` may serve from: the ones the index was built from, as its manifest records them.

    An index fsearch did not make here (a clone's) names them itself, so of those only the ones in its
    own project (the folder that holds the index) count, and none where it names none.
    """
    from ..paths import is_under
    from ..trust import index_trusted

    with searcher.reader.snapshot():
        roots = list(searcher.reader.manifest.roots)
    if settings.store or index_trusted(settings.index_folder):
        return roots or [os.sep]  # the user's own index, built before roots were recorded: its files table
    project = settings.index_folder.resolve().parent
    return [root for root in roots if is_under(Path(root), project)]


def read_indexed(searcher: Searcher, source: str, line: int | None, context_lines: int,
                 roots: Sequence[str], max_bytes: int) -> dict[str, Any]:
    """Lines of an indexed file, re-read from disk: only a regular file under ``roots``, reached without
    a symlink anywhere on its path, and still the file that was indexed (its content hash)."""
    from ..documents import NotText, document_from, read_open_file
    from ..paths import source_under

    with searcher.reader.snapshot():
        state = searcher.reader.file_states(source).get(source)
    if state is None:
        raise ToolError(f"not an indexed file: {source} (use a search result's source)")
    if not source_under(source, roots):
        raise ToolError(f"{source} is not under the folders this index was built from; it is not served")
    try:
        fh, info = _open_without_links(source)
        with fh:
            data, _ = read_open_file(fh, info, max_bytes)
    except NotText as exc:
        raise ToolError(f"cannot read {source} now: {exc.reason}") from None
    except OSError as exc:
        why = "a symlink is on its path now" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror or exc
        raise ToolError(f"cannot read {source} now: {why}") from None
    if hashlib.sha256(data).hexdigest() != state.sha256:
        raise ToolError(f"{source} changed since it was indexed; run `fsearch index` on it, then read it again")
    try:
        text = document_from(Path(source), data, info).text
    except NotText as exc:
        raise ToolError(f"cannot read {source} now: {exc.reason}") from None
    lines = text.split("\n")
    if line is None and len(text) <= MAX_READ_CHARS:
        first, last = 1, len(lines)
    else:
        centre = min(max(1, line or 1), len(lines))
        context = max(0, min(context_lines, 500))
        first, last = max(1, centre - context), min(len(lines), centre + context)
    return {"source": source, "first_line": first, "last_line": last, "total_lines": len(lines),
            "text": "\n".join(lines[first - 1:last])[:MAX_READ_CHARS]}


def _open_without_links(source: str) -> tuple[BinaryIO, os.stat_result]:
    """Open an absolute path one component at a time, refusing a symlink at any of them (O_NOFOLLOW)."""
    parts = Path(source).parts
    if not Path(source).is_absolute() or ".." in parts:
        raise OSError(errno.ENOENT, "not an absolute path")
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[1:-1]:
            next_fd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(file_fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return os.fdopen(file_fd, "rb"), info
