"""What the user said fsearch may obey: settings files and index folders it did not make itself.

A cloned repository can carry an ``fsearch.toml`` and a ``.fsearch/`` index. Both are data until
the user trusts them (as direnv's ``allow``, mise's ``trust`` and git's ``safe.directory`` do):

- a settings file is trusted by its path and the sha256 of its content, so an edit withdraws it;
- an index folder is trusted by its path and the random id in its marker file (store.MARKER),
  written when fsearch makes the folder; a copied or cloned index carries another id, or none.

Trust lives in ``$FSEARCH_HOME/trust.json`` (the environment's home, never one a settings file
names: a file must not choose who vouches for it). Index folders under that home are the user's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .paths import is_under, source_under

TRUST_FILE = "trust.json"


def trust_home() -> Path:
    """Where the trust list lives: $FSEARCH_HOME, else the default home (never a settings file's ``home``)."""
    from .config import default_home

    return Path(os.environ["FSEARCH_HOME"]) if os.environ.get("FSEARCH_HOME") else default_home()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _key(path: Path) -> str:
    return str(path.resolve())


@dataclass(frozen=True)
class Entry:
    """One trusted thing: a settings file (with its content hash) or an index folder (with its marker id)."""

    kind: str
    path: str
    fingerprint: str
    trusted_at: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "fingerprint": self.fingerprint, "trusted_at": self.trusted_at}


class TrustList:
    """The trust file, read whole and written atomically (it is small)."""

    def __init__(self, home: Path | None = None) -> None:
        self.path = (home or trust_home()) / TRUST_FILE
        self.entries: dict[tuple[str, str], Entry] = {}
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
            for row in data.get("trusted", []):
                entry = Entry(str(row["kind"]), str(row["path"]), str(row["fingerprint"]), str(row["trusted_at"]))
                self.entries[(entry.kind, entry.path)] = entry
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot read the trust list {self.path}: {exc}",
                              hint="fix or delete it (then trust your projects again)") from None

    def fingerprint(self, kind: str, path: Path) -> str | None:
        entry = self.entries.get((kind, _key(path)))
        return entry.fingerprint if entry else None

    def add(self, kind: str, path: Path, fingerprint: str) -> Entry:
        import time

        entry = Entry(kind, _key(path), fingerprint, time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.entries[(kind, entry.path)] = entry
        self._save()
        return entry

    def remove(self, path: Path) -> list[Entry]:

        gone = [e for e in self.entries.values() if source_under(e.path, [_key(path)])]
        for entry in gone:
            del self.entries[(entry.kind, entry.path)]
        if gone:
            self._save()
        return gone

    def _save(self) -> None:
        from .fileio import atomic_write_bytes

        rows = [e.to_dict() for e in sorted(self.entries.values(), key=lambda e: (e.path, e.kind))]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps({"trusted": rows}, ensure_ascii=False, indent=2).encode())
        except OSError as exc:
            raise ConfigError(f"cannot write the trust list {self.path}: {exc.strerror or exc}") from None


CONFIG = "config"
INDEX = "index"


# --- settings files -------------------------------------------------------------------------------

def config_trusted(path: Path) -> bool:
    """A settings file is trusted while its content is what the user trusted."""
    recorded = TrustList().fingerprint(CONFIG, path)
    return recorded is not None and recorded == _sha256(path)


def config_changed_since_trusted(path: Path) -> bool:
    recorded = TrustList().fingerprint(CONFIG, path)
    return recorded is not None and recorded != _sha256(path)


def foreign_owner(path: Path) -> int | None:
    """The owner's uid when a file belongs to another user (git's safe.directory rule), else None."""
    try:
        owner = path.stat().st_uid
    except OSError:
        return None
    return owner if owner != os.geteuid() else None


def trust_config(path: Path) -> Entry:
    return TrustList().add(CONFIG, path, _sha256(path))


# --- index folders --------------------------------------------------------------------------------

def index_trusted(folder: Path) -> bool:
    """An index folder fsearch made here (its marker id is on the trust list), or one under the home."""
    from .stores import marker_id

    home = trust_home()
    if is_under(folder, home):
        return True
    current = marker_id(folder)
    return current is not None and TrustList(home).fingerprint(INDEX, folder) == current


def trust_index(folder: Path) -> Entry:
    """Record ``folder``'s marker as the user's (a new index, a rebuild here, or `fsearch trust`)."""
    from .stores import ensure_marker

    return TrustList().add(INDEX, folder, ensure_marker(folder))


def untrusted_index_error(folder: Path, wants: str) -> ConfigError:
    """One line for an index fsearch did not make on this machine, saying what it asked for and the way out."""
    return ConfigError(
        f"the index at {folder} was not made by fsearch on this machine (cloned, copied, or older than trust): "
        f"{wants}",
        hint=f"if it is yours, `fsearch trust --index-dir {folder}`; or start it afresh with `--rebuild`")


def check_update(folder: Path, rebuild: bool) -> None:
    """Before a writer opens ``folder``: an index made elsewhere is added to only once trusted, or rebuilt here."""
    from .stores import committed_manifest

    if not rebuild and committed_manifest(folder) is not None and not index_trusted(folder):
        raise untrusted_index_error(folder, "fsearch does not add your files to an index someone else made")


def adopt(folder: Path) -> None:
    """An index this machine has just built (or rebuilt) is the user's own from now on."""
    if not index_trusted(folder):
        trust_index(folder)


def grant(path: Path, index_dir: Path | None = None) -> list[dict[str, Any]]:
    """`fsearch trust`: the settings file and project index at ``path``, or the index folder ``index_dir``."""
    from .config import CONFIG_FILE_NAME, PROJECT_INDEX_NAME, reaching_settings, read_config_file
    from .errors import InputError

    if index_dir is not None:
        return [_grant_index(index_dir, required=True)]
    if not path.exists():
        raise InputError(f"path not found: {path}")
    config = path if path.is_file() else path / CONFIG_FILE_NAME
    granted = []
    if config.is_file():
        asks = reaching_settings(read_config_file(config), config.parent.resolve())
        granted.append({**trust_config(config).to_dict(), "asks": asks})
    if path.is_dir() and (path / PROJECT_INDEX_NAME).is_dir():
        granted.append(_grant_index(path / PROJECT_INDEX_NAME, required=False))
    granted = [g for g in granted if g]
    if not granted:
        raise InputError(f"nothing to trust at {path}: no {CONFIG_FILE_NAME} and no {PROJECT_INDEX_NAME} index",
                         hint="name a project folder, a settings file, or an index with --index-dir")
    return granted


def _grant_index(folder: Path, required: bool) -> dict[str, Any]:
    from .errors import InputError
    from .stores import committed_manifest, marker_id

    if marker_id(folder) is None and committed_manifest(folder) is None:
        if not required:
            return {}
        raise InputError(f"{folder} is not an fsearch index", hint="`fsearch status -i FOLDER` tells what is there")
    return trust_index(folder).to_dict()


def listing() -> list[dict[str, Any]]:
    """Every trusted entry, and whether it still holds (a file edited since, an index replaced, one gone)."""
    from .stores import marker_id

    rows = []
    for entry in TrustList().entries.values():
        path = Path(entry.path)
        if entry.kind == CONFIG:
            state = "ok" if path.is_file() and _sha256(path) == entry.fingerprint else \
                "changed since trusted" if path.is_file() else "gone"
        else:
            current = marker_id(path)
            state = "ok" if current == entry.fingerprint else "replaced since trusted" if current else "gone"
        rows.append({**entry.to_dict(), "state": state})
    return sorted(rows, key=lambda r: r["path"])
