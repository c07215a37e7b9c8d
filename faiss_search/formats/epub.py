"""EPUB: the container read with zipfile (ebooklib is AGPL), each chapter in spine order through the HTML reader."""

from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from ..errors import NotText
from .extracted import Block, Extracted, open_zip
from .html import html_blocks
from .sections import from_blocks

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"


def read_epub(data: bytes) -> Extracted:
    """The chapters in reading order (the package's spine), each read as HTML."""
    import xml.etree.ElementTree as ET

    archive = open_zip(data, "EPUB")
    with archive:
        try:
            container = ET.fromstring(archive.read("META-INF/container.xml"))
            rootfile = container.find(f".//{_CONTAINER}rootfile")
            package_path = rootfile.get("full-path") if rootfile is not None else None
            package = ET.fromstring(archive.read(package_path or ""))
            base = PurePosixPath(package_path or "").parent
            hrefs = {item.get("id"): item.get("href", "") for item in package.iter(f"{_OPF}item")}
            blocks: list[Block] = []
            for ref in package.iter(f"{_OPF}itemref"):
                href = hrefs.get(ref.get("idref"))
                if href:
                    blocks += html_blocks(archive.read(str(base / href.split("#")[0])))
        except (KeyError, ET.ParseError, zipfile.BadZipFile, OSError):
            raise NotText("damaged EPUB") from None
    return from_blocks(blocks)
