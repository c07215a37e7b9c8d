"""The README is a front door and docs/ the manual: every command has working --help and a section in
docs/commands.md, the commands the pages show exist, and every relative link resolves."""

import re
from pathlib import Path

import pytest

from faiss_search.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS_PAGE = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_and_its_section_in_the_manual(runner, command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout
    assert re.search(rf"^## `fsearch {command}\b", COMMANDS_PAGE, flags=re.M), command


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_use_only_existing_commands(page):
    code = "\n".join(re.findall(r"^```.*?^```", page.read_text(encoding="utf-8"), flags=re.M | re.S))
    used = set(re.findall(r"^\$? ?fsearch ([a-z]+)", code, flags=re.M))
    assert used <= set(COMMANDS), used - set(COMMANDS)


def _anchors(page: Path) -> set[str]:
    """GitHub's ids for a page's headings."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target}"


def test_readme_is_a_front_door():
    """What it is, the two commands, a tour, exit codes, numbers and the manual, in at most 250 lines."""
    assert len(README.splitlines()) <= 250
    quick = README.split("## Quick start")[1].split("\n## ")[0]
    assert "make demo" in quick and "make test" in quick
    for section in ("## A five-minute tour", "## Exit codes", "## Headline numbers", "## The manual"):
        assert section in README
