"""Reading the user's files: which ones to index, and decoding them (UTF-8, GBK/GB18030, UTF-16)."""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from . import formats
from .errors import InputError, NotText

if TYPE_CHECKING:
    import pathspec

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst", ".text"})
#: every file type ``fsearch index`` reads: plain text, and the formats of formats.py
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | frozenset(formats.READERS)
_SNIFF_BYTES = 8192
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Document:
    """One decoded file (or record). ``text`` has its line endings normalized to ``\\n``.

    ``source`` is what the index stores and shows: the absolute path of a file, or a
    record's id for documents that come from a data set rather than the disk.
    """

    source: str
    text: str
    encoding: str
    sha256: str
    size: int
    mtime: float
    #: where pages or headings begin (formats.py); none for plain text
    sections: tuple[formats.Section, ...] = ()


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


def source_name(path: Path) -> str:
    """What the index stores and shows for a file: its absolute path as text.

    The folder is resolved (one project, one name) but a symlinked file keeps the name it has
    in the folder. A name that is not valid UTF-8 (GBK names from Windows zips) is shown with
    replacement characters; it is the same text on every run, so updates still find it.
    """
    absolute = Path(os.path.abspath(path))
    try:
        absolute = absolute.parent.resolve() / absolute.name
    except OSError:
        pass
    return os.fsencode(absolute).decode("utf-8", errors="replace")


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


def _utf16_without_bom(head: bytes) -> str | None:
    """ASCII-heavy UTF-16 has a NUL in every other byte; the side it falls on gives the byte order."""
    even, odd = head[0::2], head[1::2]
    if len(head) >= 4 and odd.count(0) > 0.4 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if len(head) >= 4 and even.count(0) > 0.4 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _cjk_utf16_without_bom(head: bytes) -> str | None:
    """Chinese UTF-16 has no NUL pattern, but decodes to CJK text; GBK or binary read as UTF-16 does not.

    Pairs of ASCII bytes also read as CJK characters, so bytes that are nearly all ASCII (or NUL)
    are not taken for Chinese UTF-16 (whose high bytes are mostly 0x4E to 0x9F).
    """
    even = head[:len(head) // 2 * 2]
    if sum(1 for b in even if b < 0x7F) > 0.9 * len(even):
        return None
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = even.decode(encoding)
        except UnicodeDecodeError:
            continue
        letters = [c for c in text if not c.isspace()]
        plain = sum(1 for c in letters if _is_cjk(c) or " " <= c <= "~")
        if len(letters) >= 2 and plain >= 0.95 * len(letters) and sum(map(_is_cjk, letters)) >= 0.3 * len(letters):
            return encoding
    return None


def _is_cjk(c: str) -> bool:
    """Chinese characters, CJK punctuation and full-width forms."""
    return "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef"


def _cjk_share(text: str) -> float:
    """Among non-ASCII characters, the share that is Chinese: a GB18030 decoding that makes sense."""
    letters = [c for c in text if not c.isspace() and not c.isascii()]
    return sum(map(_is_cjk, letters)) / len(letters) if letters else 1.0


def _looks_binary(text: str) -> bool:
    """Control characters (other than line breaks and tabs) in more than 5% of a sample: not text."""
    sample = text[:_SNIFF_BYTES]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f\v")
    return controls > 0.05 * max(1, len(sample))


def decode(data: bytes, sniff_binary: bool = True) -> tuple[str, str]:
    """Return (text, encoding). Raises NotText for binary data (a NUL, or many control characters when sniffing)."""
    text, encoding = _decode(data)
    if sniff_binary and _looks_binary(text):
        raise NotText("binary")
    return text, encoding


def _decode(data: bytes) -> tuple[str, str]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), encoding
    head = data[:_SNIFF_BYTES]
    utf16 = _utf16_without_bom(head)
    if utf16:
        return data.decode(utf16, errors="replace"), utf16
    if b"\x00" not in head:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    utf16 = _cjk_utf16_without_bom(head)  # after UTF-8: ASCII read as UTF-16 looks like CJK
    if utf16:
        return data.decode(utf16, errors="replace"), utf16
    if b"\x00" in head:
        raise NotText("binary")
    try:
        text = data.decode("gb18030")
        if _cjk_share(text) > 0.6:
            return text, "gb18030"
    except UnicodeDecodeError:
        pass
    mixed = _decode_lines(data)
    if mixed is not None:
        return mixed, "mixed"
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise NotText("undecodable")
    return str(best), best.encoding


def _decode_line(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = line.decode("gb18030")
        return text if _cjk_share(text) > 0.6 else None
    except UnicodeDecodeError:
        return None


def _decode_lines(data: bytes) -> str | None:
    """Files pasted together from UTF-8 and GBK parts, or with a few corrupt bytes: decode line by line.

    Lines that decode neither way keep their readable parts (U+FFFD for the bad bytes); if
    that replaces more than 1 % of the characters (and more than 8), the guess is wrong and
    None is returned.
    """
    decoded = []
    for line in data.split(b"\n"):
        text = _decode_line(line)
        decoded.append(text if text is not None else line.decode("utf-8", errors="replace"))
    text = "\n".join(decoded)
    return text if text.count("\ufffd") <= max(8, 0.01 * len(text)) else None


def read_regular_file(path: Path, max_bytes: int | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file (at most ``max_bytes``) and its stat, taken *before* reading.

    Stat first: an edit saved while we read then shows as a newer mtime next time, instead
    of the new mtime being stored with the old text. O_NONBLOCK: a FIFO must not hang us.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotText("not a regular file")
        return read_open_file(fh, info, max_bytes)


def read_open_file(fh: BinaryIO, info: os.stat_result, max_bytes: int | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file already open (at most ``max_bytes``), and the stat given."""
    if max_bytes is not None and info.st_size > max_bytes:
        raise NotText(f"larger than {_megabytes(max_bytes)}")
    data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise NotText(f"larger than {_megabytes(max_bytes)}")  # it grew while we read it
    return data, info


def _megabytes(size: int) -> str:
    mb = size / (1024 * 1024)
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def read_document(path: Path, max_bytes: int | None = None) -> Document:
    """Read one file: decode text, or extract a PDF, Word, HTML or EPUB document's text with its sections.

    Raises NotText (with a reason) for what yields no text, OSError when unreadable.
    """
    data, info = read_regular_file(path, max_bytes)
    return document_from(path, data, info)


def document_from(path: Path, data: bytes, info: os.stat_result) -> Document:
    """A file's bytes as a document: ``path`` names it and its suffix picks the reader."""
    suffix = path.suffix.lower()
    reader = formats.READERS.get(suffix)
    if reader is not None:
        try:
            extracted = reader(data)
        except NotText:
            raise
        except Exception as exc:  # a parser meeting a hostile file raises its own types; it must not stop the run
            raise NotText(f"unreadable {suffix.lstrip('.').upper()} ({type(exc).__name__})") from None
        text, encoding, sections = extracted.text, suffix.lstrip("."), extracted.sections
    else:
        text, encoding = decode(data)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        sections = formats.markdown_sections(text) if suffix in formats.MARKDOWN_SUFFIXES else ()
    return Document(
        source=source_name(path),
        text=text,
        encoding=encoding,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mtime=info.st_mtime,
        sections=sections,
    )


UNREADABLE = "unreadable"


def load_text(load: Callable[[], Document]) -> tuple[Document | None, str]:
    """Run a document loader: the document, or None and why it was skipped (binary, unreadable, empty ...)."""
    try:
        doc = load()
    except NotText as exc:
        return None, exc.reason
    except OSError:
        return None, UNREADABLE
    if not doc.text.strip():
        return None, "empty"
    return doc, ""
