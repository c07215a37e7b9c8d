"""Whether a path lies in a folder: the one test behind every "only the user's chosen folders" rule.
A leaf: it imports nothing of fsearch's."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def is_under(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it, after both are resolved (a symlink cannot smuggle it out)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def source_under(source: str, roots: Iterable[str]) -> bool:
    """Whether a source name is one of ``roots`` or inside one of them (by name: sources are absolute)."""
    return any(source == root or source.startswith(root.rstrip(os.sep) + os.sep) for root in roots)
