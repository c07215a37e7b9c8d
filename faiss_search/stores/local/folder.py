"""The index folder itself: the names fsearch writes there, its marker, and claiming a folder.

fsearch writes only into a folder that is new, empty or its own, and deletes only files of its own names.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from ...errors import ConfigError, IndexNotFoundError
from ...fileio import fsync_dir

SIDECAR = "chunks.sqlite"
MANIFEST = "manifest.json"
REPAIR_HINT = "`fsearch doctor --repair` rebuilds it from the sidecar (or re-index with --rebuild)"
REBUILD_HINT = "rebuild it with `fsearch index PATH --rebuild`"
SIDECAR_FILES = (SIDECAR, SIDECAR + "-wal", SIDECAR + "-shm", SIDECAR + "-journal")
#: the file that says a folder is an fsearch index, with a random id that the trust list records (trust.py)
MARKER = "fsearch-index.json"
#: what fsearch itself writes into an index folder: nothing else there is ever deleted
_OWN_NAMES = re.compile(r"(vectors-\d+\.faiss|manifest\.json|fsearch-index\.json(\.[0-9a-f]{32})?"
                        r"|chunks\.sqlite(-wal|-shm|-journal)?"
                        r"|writer\.lock|\.gitignore)(\.tmp)?")
#: what a folder holds that a writer locked (or `fsearch init` made) before anything was committed
_EMPTY_INDEX_NAMES = {"writer.lock", ".gitignore"}
_MARKER_STAGED = re.compile(r"fsearch-index\.json\.[0-9a-f]{32}\.tmp")  # ensure_marker's file before it is linked
STALE_VECTORS = re.compile(r"vectors-(\d+)\.faiss(\.tmp)?")


def own_file(name: str) -> bool:
    """Whether fsearch writes files of this name into an index folder (and so may delete or replace them)."""
    return _OWN_NAMES.fullmatch(name) is not None


def own_leftovers(folder: Path, keep: Path | None = None) -> list[Path]:
    """Files an interrupted update left: temp files and older generations' vectors, by names fsearch writes."""
    return sorted(p for p in folder.iterdir() if p != keep and (
        (p.name.endswith(".tmp") and own_file(p.name)) or STALE_VECTORS.fullmatch(p.name)))


def marker_id(folder: Path) -> str | None:
    """The id in an index folder's marker, or None where there is none (not fsearch's, or made before markers)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def ensure_marker(folder: Path) -> str:
    """The folder's marker id, written (with a new random id) where there is none.

    Linked into place, never renamed over: of two runs that claim a new folder at once, one
    writes the marker and both take its id (a damaged marker is replaced)."""
    current = marker_id(folder)
    if current is not None:
        return current
    new = secrets.token_hex(16)
    staged = folder / f"{MARKER}.{new}.tmp"  # this run's alone
    try:
        with open(staged, "xb") as fh:
            fh.write(json.dumps({"fsearch_index": 1, "id": new}).encode())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(staged, folder / MARKER)
        except FileExistsError:
            if marker_id(folder) is None:
                os.replace(staged, folder / MARKER)
        fsync_dir(folder)
    finally:
        staged.unlink(missing_ok=True)
    return marker_id(folder) or new


def claim_index_folder(folder: Path) -> None:
    """Make ``folder`` an index folder, or refuse: fsearch writes only into a folder that is new, empty, or its own.

    Its own: one with fsearch's marker, or (made before markers) a sidecar beside nothing but fsearch's files.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"the index folder {folder} is a file", hint="point --index-dir at a folder")
    if folder.is_dir():
        # not counting a marker being written: another run may be claiming the folder this moment
        names = sorted(p.name for p in folder.iterdir() if not _MARKER_STAGED.fullmatch(p.name))
        if names and marker_id(folder) is None:
            foreign = [n for n in names if not own_file(n)]
            if foreign or (SIDECAR not in names and not set(names) <= _EMPTY_INDEX_NAMES):
                shown = ", ".join((foreign or names)[:3]) + (", ..." if len(foreign or names) > 3 else "")
                raise ConfigError(f"{folder} is not an fsearch index and not empty (it holds {shown}); "
                                  "fsearch writes an index only into a new or empty folder, or one it made",
                                  hint="choose another folder with --index-dir (a new one is made for you)")
    folder.mkdir(parents=True, exist_ok=True)
    ensure_marker(folder)


def vectors_file(folder: Path, generation: int) -> Path:
    return folder / f"vectors-{generation}.faiss"


def no_index(folder: Path) -> IndexNotFoundError:
    """No sidecar at all: the one message for every command that needs an index."""
    return IndexNotFoundError(f"no index at {folder}",
                              hint="run `fsearch index PATH` first, or point --index-dir at an index folder")


def nothing_committed(folder: Path) -> IndexNotFoundError:
    """A sidecar no build has committed to: one stopped before its first commit, or that found nothing to index."""
    return IndexNotFoundError(f"nothing is indexed at {folder} yet: no build there has committed anything",
                              hint="run `fsearch index PATH`")


def last_known(folder: Path, key: str) -> int:
    """A number from manifest.json, for a rebuild whose sidecar is gone: generations and ids keep rising."""
    try:
        return int(json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get(key, 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0
