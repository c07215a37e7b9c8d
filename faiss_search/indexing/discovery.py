"""Which files a folder holds for indexing: .gitignore/.ignore rules, --exclude, symlinks kept inside the tree."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..documents import SUPPORTED_SUFFIXES, source_name
from ..errors import InputError

if TYPE_CHECKING:
    import pathspec


class Skips:
    """What was passed over: counted by reason for the summary, and named for ``-v``."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.named: list[tuple[str, str]] = []

    def add(self, reason: str, path: str | Path) -> None:
        self.counts[reason] += 1
        self.named.append((str(path), reason))

    def __getitem__(self, reason: str) -> int:
        return self.counts[reason]

    def summary(self) -> str:
        return ", ".join(f"{n} {why}" for why, n in sorted(self.counts.items()))


@dataclass(frozen=True)
class Filters:
    """Which files of a walked folder to take: ignore files (.gitignore, .ignore) and the user's globs.

    Globs use .gitignore syntax relative to the indexed folder (``*.log``, ``drafts/``, ``/top.md``).
    """

    ignore_files: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: follow symlinks that leave the folder, and symlinked folders (``--follow``, as rg and fd)
    follow: bool = False


@dataclass
class Discovery:
    """The files to read under a path, what was passed over, and folders that could not be read."""

    files: list[Path] = field(default_factory=list)
    skipped: Skips = field(default_factory=Skips)
    unreadable_folders: list[str] = field(default_factory=list)


IGNORE_FILES = (".gitignore", ".ignore")
#: a folder's ignore rules: (the folder they are relative to, the spec, the file they came from)
_Rules = tuple[tuple[Path, "pathspec.PathSpec", str], ...]


def discover(path: Path, filters: Filters = Filters()) -> Discovery:
    """A file is taken as given; a folder is walked (hidden entries skipped).

    Symlinks stay inside the folder, as rg and fd keep them: a link to a file outside it is passed
    over, and a symlinked folder is not entered, unless ``filters.follow`` (then each real folder
    is walked once, so a loop ends).

    Only regular files are taken: a FIFO would block the reader, a link to a device never ends.
    Ignore files apply as git applies them (a deeper one wins; those above the folder up to the
    repository's root too); ``--exclude`` and ``--include`` globs are relative to the folder.
    """
    if not os.path.lexists(path):
        raise InputError(f"path not found: {path}")
    found = Discovery()
    if not path.is_dir():
        if not path.is_file():
            raise InputError(f"not a regular file or folder: {path}")
        found.files.append(path)
        return found
    root = path.resolve()
    exclude, include = _spec(filters.exclude), _spec(filters.include) if filters.include else None
    stack = [(root, _inherited_rules(root) if filters.ignore_files else ())]
    walked = {_identity(root)}
    while stack:  # iterative: a very deep tree must not exhaust Python's recursion limit
        folder, rules = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            found.skipped.add("unreadable folder", folder)
            found.unreadable_folders.append(source_name(folder))
            continue
        if filters.ignore_files:
            rules = rules + _folder_rules(folder)
        subfolders = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                linked_dir = not is_dir and entry.is_symlink() and entry.is_dir()
            except OSError:
                is_dir = linked_dir = False
            reason = _passed_over(Path(entry.path), is_dir, root, rules, exclude, include)
            if reason:
                found.skipped.add(reason, entry.path)
            elif is_dir:
                subfolders.append((Path(entry.path), rules))
            elif linked_dir and filters.follow:
                if _identity(Path(entry.path)) not in walked:  # a loop, or a folder walked already
                    walked.add(_identity(Path(entry.path)))
                    subfolders.append((Path(entry.path), rules))
            elif linked_dir:
                found.skipped.add("symlinked folder", entry.path)  # not followed: no loops, no double counting
            elif Path(entry.name).suffix.lower() not in SUPPORTED_SUFFIXES:
                found.skipped.add("unsupported type", entry.path)
            elif not filters.follow and entry.is_symlink() and not _inside(Path(entry.path), root):
                found.skipped.add("symlink out of the folder", entry.path)  # --follow reads it
            elif _is_regular(entry):
                found.files.append(Path(entry.path))
            else:
                found.skipped.add("not a regular file", entry.path)
        stack.extend(reversed(subfolders))
    return found


def _spec(lines: tuple[str, ...] | list[str]) -> pathspec.PathSpec:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _relative(path: Path, base: Path, is_dir: bool) -> str:
    return path.relative_to(base).as_posix() + ("/" if is_dir else "")


def _passed_over(path: Path, is_dir: bool, root: Path, rules: _Rules, exclude: pathspec.PathSpec,
                 include: pathspec.PathSpec | None) -> str | None:
    """Why an entry of a walked folder is not taken, or None."""
    if path.name.startswith("."):
        return "hidden"
    if exclude.match_file(_relative(path, root, is_dir)):
        return "excluded by --exclude"
    for base, spec, origin in reversed(rules):  # the deepest ignore file that has a say wins
        verdict = spec.check_file(_relative(path, base, is_dir)).include
        if verdict:
            return f"ignored by {origin}"
        if verdict is not None:
            break  # re-included by a "!pattern"
    if include is not None and not is_dir and not include.match_file(_relative(path, root, False)):
        return "not matched by --include"
    return None


def _folder_rules(folder: Path) -> _Rules:
    rules = []
    for name in IGNORE_FILES:
        try:
            lines = (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        rules.append((folder, _spec(lines), name))
    return tuple(rules)


def _inherited_rules(root: Path) -> _Rules:
    """The ignore files of the folders above ``root``, up to its git repository's root (none outside one)."""
    above = list(root.parents)
    top = next((i for i, folder in enumerate(above) if (folder / ".git").exists()), None)
    if (root / ".git").exists() or top is None:
        return ()
    return tuple(rule for folder in reversed(above[:top + 1]) for rule in _folder_rules(folder))


def _identity(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_dev, info.st_ino


def _inside(link: Path, root: Path) -> bool:
    """Whether a symlink's final target lies in ``root`` (the resolved folder being indexed)."""
    try:
        link.resolve().relative_to(root)
    except ValueError:
        return False
    except (OSError, RuntimeError):
        return True  # a link loop leads nowhere, not out: it is refused as not a regular file
    return True


def _is_regular(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()  # follows a symlinked file; False for FIFOs, sockets and devices
    except OSError:
        return False
