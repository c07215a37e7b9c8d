"""Plain text: decoding bytes (UTF-8, GBK/GB18030, UTF-16 with or without a BOM); telling binary from text."""

from __future__ import annotations

import codecs

from ..errors import NotText

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst", ".text"})
_SNIFF_BYTES = 8192
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


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
