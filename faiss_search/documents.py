"""A user's file read as a document: its bytes read safely, its suffix picking the reader (``formats/``)."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import formats
from .errors import NotText
from .formats.extracted import Section
from .formats.sections import MARKDOWN_SUFFIXES, markdown_sections
from .formats.text import TEXT_SUFFIXES, decode

#: every file type ``fsearch index`` reads: plain text, and the formats of formats/
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | frozenset(formats.READERS)


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
    #: where pages or headings begin (formats/); none for plain text
    sections: tuple[Section, ...] = ()


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


def read_regular_file(path: Path, max_bytes: int | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file (at most ``max_bytes``) and its stat, taken *before* reading.

    Stat first: an edit saved while we read then shows as a newer mtime next time, instead
    of the new mtime being stored with the old text. O_NONBLOCK: a FIFO must not hang us.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotText("not a regular file" + (" (a device)" if stat.S_ISCHR(info.st_mode) or
                                                   stat.S_ISBLK(info.st_mode) else ""))
        return read_open_file(fh, info, max_bytes)


def read_open_file(fh: BinaryIO, info: os.stat_result, max_bytes: int | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file already open (at most ``max_bytes``), and the stat given."""
    if max_bytes is not None and info.st_size > max_bytes:
        raise NotText(f"larger than {_megabytes(max_bytes)}")
    data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise NotText(f"larger than {_megabytes(max_bytes)}")  # it grew while we read it
    return data, info


def read_input(path: Path, max_bytes: int) -> bytes:
    """What a user gave as input: a regular file, a pipe (``<(...)``, a FIFO) or ``-`` for standard input.

    A pipe is read to its end, blocking (the user named it); a device or a folder is refused.
    """
    if str(path) == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
    elif stat.S_ISFIFO(os.stat(path).st_mode):
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    else:
        return read_regular_file(path, max_bytes)[0]
    if len(data) > max_bytes:
        raise NotText(f"larger than {_megabytes(max_bytes)}")
    return data


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
        sections = markdown_sections(text) if suffix in MARKDOWN_SUFFIXES else ()
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
