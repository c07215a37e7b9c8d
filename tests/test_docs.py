"""Every command has working --help and a section in the README; the README's commands exist."""

import re
from pathlib import Path

import pytest

from faiss_search.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_and_readme_section(runner, command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout
    assert f"### `fsearch {command}" in README


def test_readme_uses_only_existing_commands():
    used = set(re.findall(r"^fsearch ([a-z]+)", README, flags=re.M))
    assert used and used <= set(COMMANDS), used - set(COMMANDS)


def test_readme_quick_start_is_two_make_commands():
    quick = README.split("## Quick start")[1].split("##")[0]
    assert "make demo" in quick and "make test" in quick
