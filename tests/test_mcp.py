"""`fsearch mcp`, driven by the official MCP SDK's own client over stdio."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from faiss_search.cli import app

from .conftest import FSEARCH_CLI
from .test_everyday import FACTS, SUBJECTS

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402


def _call(env: dict, calls: list[tuple[str, dict]]) -> tuple[list[str], list]:
    """Start `fsearch mcp`, list its tools and make ``calls``; returns the tool names and the results."""

    async def session() -> tuple[list[str], list]:
        params = StdioServerParameters(command=FSEARCH_CLI[0], args=[*FSEARCH_CLI[1:], "mcp"], env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            tools = [tool.name for tool in (await client.list_tools()).tools]
            return tools, [await client.call_tool(name, arguments) for name, arguments in calls]

    return asyncio.run(session())


def _json(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content if result.structured_content else json.loads(result.content[0].text)


def test_an_agent_searches_reads_and_checks_status_over_stdio(home, runner, tmp_path):
    notes = tmp_path / "笔记 #1"
    notes.mkdir()
    (notes / "熊猫.md").write_text("# 熊猫\n\n大熊猫生活在四川的山林里。\n\n大熊猫每天要吃十几公斤竹子。\n",
                                  encoding="utf-8")
    (notes / "bread.txt").write_text("To bake bread you need flour, water, salt and yeast.\n", encoding="utf-8")
    (notes / "more.txt").write_text("\n".join(f"{s}{f}" for s in SUBJECTS for f in FACTS[:2]) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["index", str(notes)]).exit_code == 0
    env = {**os.environ, "FSEARCH_HOME": str(home)}
    tools, (found, gibberish, around, whole, status, outside) = _call(env, [
        ("search", {"query": "熊猫每天吃多少竹子", "k": 2}),
        ("search", {"query": "qwzx plokm vbnrt"}),
        ("read", {"source": str(notes / "熊猫.md"), "line": 5, "context_lines": 1}),
        ("read", {"source": str(notes / "bread.txt")}),
        ("status", {}),
        ("read", {"source": "/etc/passwd"}),
    ])
    assert set(tools) == {"search", "read", "status"}
    hits = _json(found)["results"]
    assert hits[0]["source"].endswith("熊猫.md") and hits[0]["line"] == 5 and "竹子" in hits[0]["snippet"]
    assert 0 < hits[0]["score"] <= 1
    assert _json(gibberish)["results"] == [] and _json(gibberish)["below_min_score"] > 0
    assert _json(around) == {"source": str(notes / "熊猫.md"), "first_line": 4, "last_line": 6, "total_lines": 6,
                             "text": "\n大熊猫每天要吃十几公斤竹子。\n"}
    assert "yeast" in _json(whole)["text"]
    assert _json(status)["files"] == 3 and _json(status)["index_dir"] == str((home / "index").resolve())
    assert outside.is_error and "not an indexed file" in outside.content[0].text
