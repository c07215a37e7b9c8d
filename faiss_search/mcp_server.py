"""`fsearch mcp`: the index as Model Context Protocol tools (stdio), for coding agents and desktop assistants.

Built on the official ``mcp`` SDK. The tools return the same objects as ``--json``; ``read``
serves only files the index holds, so an agent cannot use it to read anything else on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .config import Settings
from .errors import FsearchError
from .relevance import MIN_RELEVANCE
from .search import Searcher

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
    def search(query: str, k: int = 5, mode: str | None = None, min_score: float = MIN_RELEVANCE) -> dict[str, Any]:
        """Find the passages of the indexed documents closest in meaning to a question.

        mode: hybrid (default: keywords and meaning), dense (meaning only) or keyword.
        min_score: leave out results below this relevance (0-1; 0.5 is as high as noise gets).
        """
        if not 1 <= k <= 100:
            raise ToolError(f"k must be between 1 and 100, got {k}")
        try:
            return searcher.search(query, k, mode, min_score).to_dict()
        except FsearchError as exc:
            raise ToolError(exc.message) from None

    @server.tool()
    def read(source: str, line: int | None = None, context_lines: int = DEFAULT_CONTEXT_LINES) -> dict[str, Any]:
        """Read an indexed file: the lines around `line` (a search result's line), or the whole file.

        source: a search result's `source` (only files in the index can be read).
        """
        return read_indexed(searcher, source, line, context_lines)

    @server.tool()
    def status() -> dict[str, Any]:
        """What the index holds: its folder (or Milvus store), model, files and chunks, and when it was last updated."""
        with searcher.reader.snapshot():
            manifest = searcher.reader.manifest
        where = {"store": str(settings.store_address)} if settings.store else \
            {"index_dir": str(settings.index_path.resolve()), "chosen_by": settings.index_origin}
        return {**where, "model": manifest.model["name"], "files": manifest.counts.files,
                "chunks": manifest.counts.chunks, "updated_at": manifest.updated_at}

    return server


def read_indexed(searcher: Searcher, source: str, line: int | None, context_lines: int) -> dict[str, Any]:
    """Lines of an indexed file (re-read from disk: the file may have changed since it was indexed)."""
    from .documents import NotText, read_document

    with searcher.reader.snapshot():
        indexed = source in searcher.reader.file_states(source)
    if not indexed:
        raise ToolError(f"not an indexed file: {source} (use a search result's source)")
    try:
        text = read_document(Path(source), MAX_READ_CHARS * 4).text
    except (OSError, NotText) as exc:
        raise ToolError(f"cannot read {source} now: {exc}") from None
    lines = text.split("\n")
    if line is None and len(text) <= MAX_READ_CHARS:
        first, last = 1, len(lines)
    else:
        centre = min(max(1, line or 1), len(lines))
        context = max(0, min(context_lines, 500))
        first, last = max(1, centre - context), min(len(lines), centre + context)
    return {"source": source, "first_line": first, "last_line": last, "total_lines": len(lines),
            "text": "\n".join(lines[first - 1:last])}
