"""Fetching models from ModelScope or a Hugging Face mirror with the hubs' own libraries.

A download goes to a staging folder (``<models>/.partial/<name>-<source>``, kept between
runs so an interrupted download resumes), is verified (config, tokenizer, weights; the
model loads and has the registry's dimension), gets a metadata file with file hashes, and
only then is renamed to ``<models>/<name>``. A half model is never where ``--model`` looks.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import DownloadError, FsearchError, ModelNotFoundError
from ..fileio import file_sha256
from .registry import (
    EMBEDDING,
    METADATA_FILE,
    METADATA_VERSION,
    RERANKER,
    ST_BACKEND,
    ModelSpec,
    ResolvedModel,
    close_names,
    find_model,
    folder_kind,
    local_folder_name,
)

SOURCES = ("modelscope", "hf-mirror", "hf")
DEFAULT_ENDPOINTS = {
    "modelscope": "https://www.modelscope.cn",
    "hf-mirror": "https://hf-mirror.com",
    "hf": "https://huggingface.co",
}
DEFAULT_BRANCH = {"modelscope": "master", "hf": "main"}
#: the environment variable that moves each protocol's hub (named in hints)
ENDPOINT_VARIABLES = {"modelscope": "MODELSCOPE_ENDPOINT", "hf": "HF_ENDPOINT"}
#: weights of other frameworks and exports that sentence-transformers does not read
IGNORE_ALWAYS = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite", "tf_model*",
                 "flax_model*", "rust_model*", "coreml/*", "imgs/*", "*.png", "*.jpg", ".gitattributes"]
DEFAULT_STALL_SECONDS = 60.0


class DownloadProgress(Protocol):
    """What the CLI's progress display implements; called from download threads."""

    def add_total(self, nbytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self) -> None: ...

    def phase(self, name: str) -> None: ...


class _Silent:
    def add_total(self, nbytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass

    def phase(self, name: str) -> None:
        pass


@dataclass
class DownloadResult:
    name: str
    path: Path
    source: str
    repo_id: str
    revision: str
    dim: int
    files: int
    bytes: int
    seconds: float
    failures: list[str] = field(default_factory=list)
    #: nothing was fetched: the model was already there, whole (its files match their recorded hashes)
    already_present: bool = False
    #: EMBEDDING, or RERANKER for a cross-encoder (its ``dim`` is its one score)
    kind: str = EMBEDDING


class _Fatal(DownloadError):
    """A failure no other source can fix (disk full, permission denied)."""


@dataclass(frozen=True)
class _Plan:
    """One attempt: which hub, which repo, where."""

    source: str
    repo_id: str
    endpoint: str
    revision: str


def _hf_endpoint(source: str, endpoint: str | None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINTS[source]).rstrip("/")


def _hub(source: str) -> str:
    """Which protocol a source speaks."""
    return "modelscope" if source == "modelscope" else "hf"


def plan_sources(name: str, spec: ModelSpec | None, source: str, endpoint: str | None,
                 revision: str | None) -> list[_Plan]:
    """The sources to try, in order (auto: ModelScope, then the mirror, then Hugging Face)."""
    if source not in ("auto", *SOURCES):
        raise DownloadError(f"unknown source '{source}'", hint=f"use auto, {', '.join(SOURCES)}")
    if endpoint and source == "auto":
        raise DownloadError("--endpoint needs an explicit --source (modelscope, hf-mirror or hf)")
    plans: list[_Plan] = []
    for candidate in SOURCES if source == "auto" else (source,):
        hub = _hub(candidate)
        repo_id = (spec.modelscope_id if hub == "modelscope" else spec.hf_id) if spec else name
        if not repo_id:
            continue
        if hub == "modelscope":
            url = (endpoint or os.environ.get("MODELSCOPE_ENDPOINT") or DEFAULT_ENDPOINTS[candidate]).rstrip("/")
        else:
            url = _hf_endpoint(candidate, endpoint)
        wanted = revision if revision not in (None, "main", "master") else DEFAULT_BRANCH[hub]
        plan = _Plan(candidate, repo_id, url, wanted)
        # with HF_ENDPOINT set, the mirror and Hugging Face itself are one and the same place
        if all((_hub(p.source), p.endpoint, p.repo_id) != (hub, url, repo_id) for p in plans):
            plans.append(plan)
    if not plans:
        raise DownloadError(f"model '{name}' is not published on {source}")
    return plans


def ignore_patterns(files: list[str]) -> list[str]:
    """Skip other frameworks' weights, and pytorch_model.bin when safetensors weights exist."""
    patterns = list(IGNORE_ALWAYS)
    if any(f.endswith(".safetensors") for f in files):
        patterns.append("*.bin")
    return patterns


# -- failure messages ------------------------------------------------------------------------

def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in seen:
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status_code(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def explain(exc: BaseException, plan: _Plan, target: Path) -> DownloadError:
    """Turn whatever the hub libraries raised into one line a user can act on."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return _Fatal(f"disk full while writing {target}", hint="free some space and run the command again")
        if isinstance(e, PermissionError):
            return _Fatal(f"permission denied writing {e.filename or target}",
                          hint="choose a writable FSEARCH_HOME")
    names = set().union(*(_names(e) for e in chain))
    where = f"{plan.source} ({plan.endpoint})"
    codes = [c for c in (_status_code(e) for e in chain) if c]
    if "GatedRepoError" in names:
        return DownloadError(f"{where}: {plan.repo_id} is gated and needs an access token")
    if "RevisionNotFoundError" in names:
        return DownloadError(f"{where}: revision '{plan.revision}' of {plan.repo_id} not found")
    if names & {"RepositoryNotFoundError", "NotExistError"} or 404 in codes:
        return DownloadError(f"{where}: repository {plan.repo_id} not found")
    if names & {"ConnectError", "ConnectionRefusedError", "NetworkError", "ConnectionError", "NameResolutionError"}:
        return DownloadError(f"{where}: hub unreachable ({_first_line(chain[-1])})")
    if names & {"TimeoutException", "ReadTimeout", "Timeout", "RequestTimeoutError", "TimeoutError"}:
        return DownloadError(f"{where}: the hub timed out")
    if codes:
        return DownloadError(f"{where}: the hub answered HTTP {codes[0]}")
    if "FileDownloadError" in names:
        failed = getattr(next(e for e in chain if "FileDownloadError" in _names(e)), "failed_files", {}) or {}
        return DownloadError(f"{where}: {len(failed)} file(s) failed: {', '.join(sorted(failed)) or '?'}")
    return DownloadError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# -- the two hubs --------------------------------------------------------------------------------

def _hf_tqdm(progress: DownloadProgress, touch: Callable[[], None]) -> type:
    from huggingface_hub.utils import tqdm as hf_tqdm

    class Forward(hf_tqdm):  # type: ignore[misc, valid-type]
        """Byte counts from the download threads go to our display; tqdm itself stays silent."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._unit = kwargs.get("unit", "it")
            self._bytes = self._unit == "B" and str(kwargs.get("desc", "")).startswith("Reconstructing")
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> None:
            touch()
            if self._bytes:
                progress.advance(int(n or 0))
            elif self._unit != "B":
                progress.file_done()

    return Forward


def _fetch_hf(plan: _Plan, staging: Path, cache: Path, progress: DownloadProgress,
              touch: Callable[[], None], timeout: float) -> str:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
    from huggingface_hub import HfApi, snapshot_download

    # model_info takes a timeout; snapshot_download's own first call does not (it can wait forever).
    info = HfApi(endpoint=plan.endpoint).model_info(plan.repo_id, revision=plan.revision, timeout=timeout,
                                                    files_metadata=True)
    touch()
    siblings = info.siblings or []
    patterns = ignore_patterns([s.rfilename for s in siblings])
    import fnmatch

    wanted = [s for s in siblings if not any(fnmatch.fnmatch(s.rfilename, p) for p in patterns)]
    progress.add_total(sum(s.size or 0 for s in wanted))
    snapshot_download(plan.repo_id, revision=info.sha, endpoint=plan.endpoint, local_dir=staging,
                      cache_dir=cache, ignore_patterns=patterns, tqdm_class=_hf_tqdm(progress, touch),
                      etag_timeout=timeout, max_workers=4)
    return info.sha or plan.revision


def _fetch_modelscope(plan: _Plan, staging: Path, cache: Path, progress: DownloadProgress,
                      touch: Callable[[], None], timeout: float) -> str:
    import logging

    os.environ.setdefault("MODELSCOPE_DOWNLOAD_INTRA_CLOUD", "false")
    from modelscope import snapshot_download
    from modelscope.hub.api import HubApi
    from modelscope.hub.callback import ProgressCallback

    # modelscope logs every step at INFO with handlers of its own; our progress display says it better.
    for logger_name in list(logging.root.manager.loggerDict):
        if logger_name.startswith("modelscope"):
            logging.getLogger(logger_name).setLevel(logging.ERROR)

    listing = HubApi(endpoint=plan.endpoint, timeout=int(timeout)).get_model_files(
        plan.repo_id, revision=plan.revision, recursive=True)
    touch()
    files = [f for f in listing or [] if f.get("Type", "blob") != "tree"]
    if not files:
        raise DownloadError(f"modelscope ({plan.endpoint}): {plan.repo_id} has no files at revision "
                            f"'{plan.revision}' (unknown revision?)")
    patterns = ignore_patterns([f["Path"] for f in files])
    import fnmatch

    progress.add_total(sum(int(f.get("Size") or 0) for f in files
                           if not any(fnmatch.fnmatch(f["Path"], p) for p in patterns)))

    class Forward(ProgressCallback):
        def update(self, size: int) -> None:
            touch()
            progress.advance(size)

        def end(self) -> None:
            progress.file_done()

    _silence_modelscope_bars()
    snapshot_download(plan.repo_id, revision=plan.revision, endpoint=plan.endpoint, local_dir=str(staging),
                      cache_dir=str(cache), ignore_patterns=patterns, progress_callbacks=[Forward],
                      max_workers=4)
    return str(files[0].get("Revision") or plan.revision)


def _silence_modelscope_bars() -> None:
    """modelscope draws its own tqdm bars with no switch to turn them off; ours replace them."""
    import functools

    try:
        from modelscope_hub import _download
    except ImportError:  # older modelscope without the modelscope_hub package
        return
    if hasattr(_download, "tqdm") and not isinstance(_download.tqdm, functools.partial):
        _download.tqdm = functools.partial(_download.tqdm, disable=True)


_FETCHERS = {"modelscope": _fetch_modelscope, "hf-mirror": _fetch_hf, "hf": _fetch_hf}


def _run_bounded(fetch: Callable[[Callable[[], None]], str], stall_seconds: float) -> str:
    """Run a fetch in a worker thread; give up when nothing arrives for ``stall_seconds``.

    The hub libraries can wait forever on a silent server; a daemon thread that never returns
    is abandoned (it dies with the process) rather than hanging the user's terminal.
    """
    last = [time.monotonic()]
    outcome: dict[str, Any] = {}

    def touch() -> None:
        last[0] = time.monotonic()

    def work() -> None:
        try:
            outcome["value"] = fetch(touch)
        except BaseException as exc:  # handed over to the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True, name="fsearch-download")
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if worker.is_alive() and time.monotonic() - last[0] > stall_seconds:
            raise TimeoutError(f"no data from the hub for {stall_seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- verification and publishing ----------------------------------------------------------------

def _tidy(staging: Path) -> None:
    """Drop the hub libraries' bookkeeping (.cache/, ._____temp/, .msc ...) from a finished download."""
    for entry in staging.iterdir():
        if entry.name.startswith(".") and entry.name != METADATA_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def verify_folder(folder: Path, spec: ModelSpec | None, name: str) -> int:
    """Config, tokenizer and weights are there, and the model loads with the expected dimension."""
    from ..embedding import load_embedder

    present = {p.name for p in folder.rglob("*") if p.is_file()}
    if not present:
        raise DownloadError("the hub returned no files (unknown revision, or nothing matched)")
    missing = []
    if "config.json" not in present:
        missing.append("config.json")
    if not present & {"tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "tokenizer.model", "spiece.model"}:
        missing.append("tokenizer")
    if not any(p.endswith((".safetensors", ".bin")) for p in present):
        missing.append("weights")
    if missing:
        raise DownloadError(f"the download is incomplete: no {', '.join(missing)}")
    if _kind(spec, folder) == RERANKER:
        return _verify_reranker(folder, name)
    info = load_embedder(ResolvedModel(name, ST_BACKEND, folder, spec)).info
    if spec and info.dim != spec.dim:
        raise DownloadError(f"the model has {info.dim} dimensions, the registry says {spec.dim} for {spec.alias}",
                            hint="the registry entry may point at the wrong repository")
    return info.dim


def _kind(spec: ModelSpec | None, folder: Path) -> str:
    return spec.kind if spec else folder_kind(folder) or EMBEDDING


def _verify_reranker(folder: Path, name: str) -> int:
    """A reranker loads as a one-label cross-encoder and scores a pair; its "dimension" is that one score."""
    from ..reranking import CrossEncoderReranker

    if folder_kind(folder) != RERANKER:
        raise DownloadError(f"{name} has no cross-encoder head: it is not a reranker",
                            hint="the registry entry may point at the wrong repository")
    CrossEncoderReranker(folder, name, precision="fp32").score("verify", ["the download"])
    return 1


def _publish(staging: Path, target: Path, metadata: dict) -> None:
    files = {str(p.relative_to(staging)): file_sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    metadata.update(metadata_version=METADATA_VERSION, files=files)
    (staging / METADATA_FILE).write_text(json.dumps(metadata, ensure_ascii=False, indent=2), encoding="utf-8")
    if target.exists():
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


def _intact(target: Path) -> dict | None:
    """The metadata of a downloaded model whose files all match their recorded hashes, else None."""
    try:
        metadata = json.loads((target / METADATA_FILE).read_text(encoding="utf-8"))
        files = metadata["files"]
        if files and all(file_sha256(target / name) == digest for name, digest in files.items()):
            return metadata
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def download_model(name: str, models_dir: Path, source: str = "auto", endpoint: str | None = None,
                   revision: str | None = None, progress: DownloadProgress | None = None,
                   on_failure: Callable[[str], None] | None = None,
                   stall_seconds: float = DEFAULT_STALL_SECONDS, force: bool = False) -> DownloadResult:
    """Download ``name`` (alias or repo id) into ``models_dir/<alias>``, trying sources in order.

    A model already there, with every file matching its recorded hash, is not fetched again
    unless ``force``; a damaged one is.
    """
    spec = find_model(name)
    if spec is None and "/" not in name:
        suggestions = close_names(name)
        raise ModelNotFoundError(f"unknown model '{name}'",
                                 hint=(f"did you mean {', '.join(suggestions)}? " if suggestions else "")
                                 + "`fsearch models` lists the aliases; a full repo id (owner/name) works too")
    if spec is not None and spec.bundled:
        raise DownloadError(f"{spec.alias} is bundled with fsearch; there is nothing to download")
    plans = plan_sources(name, spec, source, endpoint, revision)
    folder_name = local_folder_name(name)
    target = models_dir / folder_name
    present = None if force else _intact(target)
    if present is not None:
        files = present.get("files", {})
        return DownloadResult(spec.alias if spec else name, target, present.get("source", ""),
                              present.get("repo_id", name), present.get("commit") or "", present.get("dim", 0),
                              len(files), sum((target / f).stat().st_size for f in files), 0.0,
                              already_present=True, kind=_kind(spec, target))
    failures: list[str] = []
    started = time.perf_counter()
    for plan in plans:
        staging = models_dir / ".partial" / f"{folder_name}-{plan.source}"
        try:
            staging.mkdir(parents=True, exist_ok=True)
            cache = models_dir / ".cache" / ("modelscope" if plan.source == "modelscope" else "huggingface")
            shown = progress or _Silent()
            shown.phase(f"downloading from {plan.source}")
            fetch = functools.partial(_FETCHERS[plan.source], plan, staging, cache, shown, timeout=stall_seconds)
            commit = _run_bounded(fetch, stall_seconds)
            _tidy(staging)
            shown.phase("verifying download (loading the model)")
            dim = verify_folder(staging, spec, spec.alias if spec else name)
        except FsearchError as exc:
            error = exc if isinstance(exc, DownloadError) and exc.message.startswith(plan.source) else \
                DownloadError(f"{plan.source} ({plan.endpoint}): {exc.message}", exc.hint)
        except KeyboardInterrupt:
            raise DownloadError(f"interrupted; run the same command again to resume ({staging})") from None
        except Exception as exc:  # the hub libraries raise many unrelated types
            error = explain(exc, plan, staging)
        else:
            size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
            count = sum(1 for p in staging.rglob("*") if p.is_file())
            _publish(staging, target, {
                "alias": spec.alias if spec else None, "repo_id": plan.repo_id, "source": plan.source,
                "endpoint": plan.endpoint, "revision": plan.revision, "commit": commit, "dim": dim,
                "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            })
            return DownloadResult(spec.alias if spec else name, target, plan.source, plan.repo_id,
                                  commit, dim, count, size, time.perf_counter() - started, failures,
                                  kind=_kind(spec, target))
        if isinstance(error, _Fatal):
            raise DownloadError(error.message, error.hint)
        failures.append(error.message)
        if on_failure and plan is not plans[-1]:
            on_failure(error.message)
    variables = " / ".join(dict.fromkeys(ENDPOINT_VARIABLES[_hub(plan.source)] for plan in plans))
    if len(failures) == 1:
        raise DownloadError(failures[0], hint=f"check the name, --source and --endpoint (or {variables})")
    raise DownloadError("every source failed: " + "; ".join(failures),
                        hint=f"check your network, or set --source and --endpoint / {variables}")
