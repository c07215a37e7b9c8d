"""One settings object, read at call time: defaults < fsearch.toml < FSEARCH_* environment < flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_FILE_NAME = "fsearch.toml"
ENV_PREFIX = "FSEARCH_"
DEFAULT_MODEL = "multilingual-e5-small-q4"
MAX_TOP_K = 10_000


def default_home() -> Path:
    """Where models, caches and the default index live unless FSEARCH_HOME says otherwise."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fsearch"


@dataclass(frozen=True)
class Settings:
    """Every user-facing setting, in one place. ``index_dir`` None means ``<home>/index``."""

    home: Path
    #: None: the model of the existing index, else DEFAULT_MODEL
    model: str | None = None
    index_dir: Path | None = None
    chunk_size: int = 500
    chunk_overlap: int = 50
    top_k: int = 3
    batch_size: int = 16
    #: larger files are skipped (and counted) without being read
    max_file_mb: int = 20
    #: the settings given by a file, the environment or a flag (the rest are defaults)
    explicit: frozenset[str] = frozenset()

    @property
    def index_path(self) -> Path:
        return self.index_dir if self.index_dir is not None else self.home / "index"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def validate(self) -> "Settings":
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunk_overlap must be between 0 and chunk_size - 1 ({self.chunk_size - 1}), "
                f"got {self.chunk_overlap}"
            )
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise ConfigError(f"top_k must be at least 1 and at most {MAX_TOP_K}, got {self.top_k}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_file_mb < 1:
            raise ConfigError(f"max_file_mb must be at least 1, got {self.max_file_mb}")
        if self.model is not None and not self.model.strip():
            raise ConfigError("model must not be empty")
        if self.index_path.exists() and not self.index_path.is_dir():
            raise ConfigError(f"the index folder {self.index_path} is a file", hint="point it at a folder")
        return self

    def for_index(self, manifest: dict | None) -> "Settings":
        """An existing index's own chunking is the default for that index (a flag, env or file still wins)."""
        chunking = (manifest or {}).get("chunking") or {}
        own = {name: chunking[name] for name in ("chunk_size", "chunk_overlap")
               if name in chunking and name not in self.explicit}
        return replace(self, **own).validate()


_FIELD_TYPES = {f.name: f.type for f in fields(Settings) if f.name != "explicit"}


def _coerce(name: str, value: Any, origin: str) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind.startswith("Path"):
            return Path(os.path.expanduser(str(value)))
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {name} must be {kind.split(' ')[0].lower()}, got {value!r}") from None


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("fsearch", data)
    unknown = sorted(set(section) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}",
            hint=f"known settings: {', '.join(_FIELD_TYPES)}",
        )
    return {k: _coerce(k, v, str(path)) for k, v in section.items()}


def _from_env() -> dict[str, Any]:
    values = {}
    for name in _FIELD_TYPES:
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw not in (None, ""):
            values[name] = _coerce(name, raw, ENV_PREFIX + name.upper())
    return values


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Merge the four layers; flags that are None were not given and do not override."""
    values: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        values.update(_from_file(config_file))
    elif Path(CONFIG_FILE_NAME).is_file():
        values.update(_from_file(Path(CONFIG_FILE_NAME)))
    values.update(_from_env())
    values.update({k: _coerce(k, v, "option") for k, v in flags.items() if v is not None})
    settings = Settings(home=values.pop("home", None) or default_home(), explicit=frozenset(values))
    return replace(settings, **values).validate()
