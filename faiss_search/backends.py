"""Which embedder serves an index: a local model (bundled or a folder) or OpenAI-compatible servers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config import DEFAULT_MODEL
from .embedding import Embedder, load_embedder
from .errors import ConfigError, ModelMismatchError, ModelNotFoundError
from .models.registry import resolve_model
from .remote import BACKEND as REMOTE
from .remote import OpenAIEmbedder, base_urls_from_source

EMBEDDERS = ("local", REMOTE)


def choose_embedder(recorded: dict | None, models_dir: Path, model: str | None = None, embedder: str | None = None,
                    base_urls: Sequence[str] = (), api_key: str | None = None, may_change: bool = False,
                    engine: str = "auto", untrusted: Path | None = None, threads: int = 0) -> Embedder:
    """The embedder for an index whose manifest model is ``recorded`` (None: a new index).

    Without options, an existing index keeps the model it was built with; remote servers are
    the ones it recorded unless ``base_urls`` are given. Another model is refused unless
    ``may_change`` (a rebuild). ``engine`` is where the bundled model embeds passages.
    ``untrusted``: the folder of an index fsearch did not make here; what its manifest names
    (servers, model folders) is data, never followed (trust.py).
    """
    if untrusted is not None and recorded is not None:
        _refuse_recorded(recorded, untrusted, model, embedder, base_urls)
    if embedder not in (None, *EMBEDDERS):
        raise ConfigError(f"unknown embedder '{embedder}'", hint=f"use {' or '.join(EMBEDDERS)}")
    remote = embedder == REMOTE or (embedder is None and recorded is not None and recorded.get("backend") == REMOTE)
    if remote:
        name = model or (recorded["name"].removeprefix(REMOTE + ":") if recorded else None)
        if not name:
            raise ConfigError("--embedder openai needs --model NAME (the name the servers know the model by)")
        urls = list(base_urls) or (base_urls_from_source(recorded.get("source", "")) if recorded else [])
        return OpenAIEmbedder(name, urls, api_key=api_key)
    if base_urls:
        raise ConfigError("--base-url goes with --embedder openai")
    name = model or (recorded["name"] if recorded else DEFAULT_MODEL)
    #: the model the index was built with, when --model must match it
    kept = recorded["name"] if recorded is not None and model is not None and not may_change else None
    try:
        resolved = resolve_model(name, models_dir)
    except ModelNotFoundError:
        if kept is not None and name != kept:  # say which model the index uses, not how to download another
            raise _other_model(kept, name) from None
        raise
    if kept is not None and resolved.name != kept:
        raise _other_model(kept, resolved.name)
    return load_embedder(resolved, engine, threads)


def _refuse_recorded(recorded: dict, folder: Path, model: str | None, embedder: str | None,
                     base_urls: Sequence[str]) -> None:
    """An untrusted index's own servers or model folder are never used; the user's own flags are."""
    from .models.registry import looks_like_path
    from .trust import untrusted_index_error

    if recorded.get("backend") == REMOTE and not base_urls and embedder in (None, REMOTE):
        urls = ", ".join(base_urls_from_source(recorded.get("source", ""))) or "a remote server"
        raise untrusted_index_error(folder, f"it asks fsearch to send your text to {urls}; nothing was sent "
                                            "(give --base-url yourself to use a server of your own)")
    if model is None and recorded.get("backend") != REMOTE and looks_like_path(str(recorded.get("name", ""))):
        raise untrusted_index_error(folder, f"it asks fsearch to load the model folder {recorded['name']} "
                                            "(give --model yourself to choose one)")


def _other_model(recorded: str, asked: str) -> ModelMismatchError:
    return ModelMismatchError(
        f"the index was built with model {recorded!r}, not {asked!r}",
        hint="drop --model to use the index's own model, or start afresh with `fsearch index PATH --rebuild`")
