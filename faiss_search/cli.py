"""The `fsearch` command: parses options, calls the library, renders. No business logic here."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from . import __version__
from .config import DEFAULT_MODEL, DEFAULT_RERANKER, MAX_TOP_K, Settings, load_settings
from .errors import FsearchError, InputError
from .render import (
    DownloadBar,
    err,
    out,
    print_doctor,
    print_download,
    print_error,
    print_eval,
    print_files,
    print_index_report,
    print_json,
    print_listing,
    print_models,
    print_push,
    print_result,
    print_source_failure,
    print_status,
    print_trust_list,
)
from .retrieval.relevance import MIN_RELEVANCE

if TYPE_CHECKING:
    from .indexing.reports import IndexProgress
    from .locations import StoreAddress
    from .reranking import Reranker
    from .stores import PushReport

def _usage_name(argument: typer.core.TyperArgument) -> str:
    """PATH and [PATH], as git and rg write them: typer 0.29's {PATH} reads as a template left unfilled."""
    name = argument.display_name_raw if argument.required else f"[{argument.display_name_raw}]"
    return name + ("..." if argument.nargs != 1 else "")


typer.core.TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign,assignment]

app = typer.Typer(
    help="Search your own documents by meaning, offline. Chinese and English.\n\n"
    "Quick start:  fsearch index ~/notes  then  fsearch search",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich markup would eat "[default: …]" and "fsearch[serve]"
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

IndexDirOpt = Annotated[Path | None, typer.Option(
    "--index-dir", "-i", help="Index folder [default: the project's .fsearch found from here up (see `fsearch "
    "init`), else $FSEARCH_HOME/index; env FSEARCH_INDEX_DIR].", show_default=False)]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help=f"Model alias, repo id or model folder [default: the index's model, else {DEFAULT_MODEL}].",
    show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Settings file [default: the nearest fsearch.toml from here up].", show_default=False)]
ChunkSizeOpt = Annotated[int | None, typer.Option(help="Characters per chunk [default: 500].",
                                                     show_default=False)]
ChunkOverlapOpt = Annotated[int | None, typer.Option(help="Characters shared by neighbouring chunks "
                                                        "[default: 50].", show_default=False)]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Fail at once if another fsearch is updating this "
                                          "index, instead of waiting for it.")]
StoreOpt = Annotated[str | None, typer.Option(
    "--store", help="Use a Milvus collection instead of the local index: milvus:///path/kb.db (Milvus Lite) or "
    "http://host:19530 (a server; its token from $FSEARCH_MILVUS_TOKEN) [env FSEARCH_STORE].", show_default=False)]
CollectionOpt = Annotated[str | None, typer.Option(
    "--collection", help="The Milvus collection [default: fsearch; env FSEARCH_MILVUS_COLLECTION].",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
EmbedderOpt = Annotated[str | None, typer.Option(
    "--embedder", help="local (a model on this machine) or openai (OpenAI-compatible servers: vLLM, SGLang, TEI, "
    "fsearch serve) [default: the index's, else local].", show_default=False)]
BaseUrlOpt = Annotated[list[str] | None, typer.Option(
    "--base-url", help="An OpenAI-compatible server, e.g. http://gpu1:8000 (repeat for round-robin).",
    show_default=False)]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=0, help="Threads the model may use; 0: as many CPUs as are available and free, re-decided as "
    "the load changes [default: 0; env FSEARCH_THREADS].", show_default=False)]
ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", help="Bearer token for the servers [default: $FSEARCH_API_KEY; $OPENAI_API_KEY is never sent].",
    show_default=False)]
RerankOpt = Annotated[bool | None, typer.Option(
    "--rerank/--no-rerank", help="Re-score the first hits with a cross-encoder; --rerank=MODEL names it [default: "
    "on where the settings name a reranker (rerank, rerank_url)].", show_default=False)]
RerankerOpt = Annotated[str | None, typer.Option(
    "--reranker", help="The reranker: alias, repo id or cross-encoder folder (with --rerank-url: the model name "
    f"the server knows) [default: {DEFAULT_RERANKER}; env FSEARCH_RERANK]. Implies --rerank.", show_default=False)]
RerankUrlOpt = Annotated[str | None, typer.Option(
    "--rerank-url", help="A reranking server instead: TEI, or Jina/Cohere-shaped (vLLM, Infinity, Xinference, "
    "fsearch serve); its key from $FSEARCH_RERANK_API_KEY. Implies --rerank.", show_default=False)]
RerankApiOpt = Annotated[str | None, typer.Option(
    "--rerank-api", help="The server's shape: auto (Jina/Cohere's /v1/rerank, else TEI's /rerank), tei or jina "
    "[default: auto].", show_default=False)]
RerankCandidatesOpt = Annotated[int | None, typer.Option(
    "--rerank-candidates", min=1, max=MAX_TOP_K, help="First-stage hits the reranker re-scores [default: 10].",
    show_default=False)]


#: like grep and diff: 0 done (something found), 1 a verdict (nothing relevant found, doctor found problems),
#: 2 an error (bad input, missing index, failed model); 130 interrupted
ERROR_EXIT = 2
#: when this process began to run fsearch (before typer, the settings and the model): what a command costs
STARTED = time.perf_counter()
#: a --queries file or pipe larger than this is refused (a million short questions fit)
MAX_QUERIES_BYTES = 64 * 1024 * 1024


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into one clean line and exit 2; a traceback only with FSEARCH_DEBUG=1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fail = functools.partial(_fail, json_output=kwargs.get("json_output", False))
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise  # a verdict (doctor found problems), not an error
        except FsearchError as exc:
            fail(exc.message, exc.hint, ERROR_EXIT)
        except KeyboardInterrupt:
            fail("interrupted", None, 130)
        except Exception as exc:
            if os.environ.get("FSEARCH_DEBUG"):
                raise
            fail(f"unexpected {type(exc).__name__}: {exc}",
                 "this is a bug; set FSEARCH_DEBUG=1 to see the traceback and report it", ERROR_EXIT)

    return wrapper


def _fail(message: str, hint: str | None, code: int, json_output: bool) -> None:
    """One error line on stderr, or with --json one JSON object on stdout; then the exit code."""
    if json_output:
        _print_json_error(message, hint, code)
    else:
        print_error(message, hint)
    raise typer.Exit(code)


def _print_json_error(message: str, hint: str | None, code: int) -> None:
    print_json({"error": {"message": message, "hint": hint, "exit_code": code}})


def _say_waiting(message: str) -> None:
    """Another fsearch holds the index's writer lock: say so while waiting for it."""
    err.print(f"[yellow]{escape(message)}[/]")


def _version(value: bool) -> None:
    if value:
        out.print(f"fsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """Search your own documents by meaning, offline."""


@app.command()
@handle_errors
def index(
    path: Annotated[Path, typer.Argument(
        metavar="PATH", help="A file or a folder, read recursively: text, Markdown, PDF, Word, HTML, EPUB.",
        show_default=False)],
    index_dir: IndexDirOpt = None,
    model: ModelOpt = None,
    chunk_size: ChunkSizeOpt = None,
    chunk_overlap: ChunkOverlapOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start the index afresh (needed to change "
                                          "model, chunking or index type).")] = False,
    index_type: Annotated[str, typer.Option("--index-type", help="Vector index: auto (flat up to 1M chunks, "
                                            "then IVF), flat (exact), ivf or hnsw (approximate).")] = "auto",
    no_wait: NoWaitOpt = False,
    no_ignore: Annotated[bool, typer.Option("--no-ignore", help="Read files that .gitignore or .ignore "
                                            "files exclude.")] = False,
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Only files matching this glob (.gitignore syntax, relative to PATH; repeatable).",
        show_default=False)] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Leave out files or folders matching this glob (e.g. '*.log', 'drafts/'; repeatable).",
        show_default=False)] = None,
    follow: Annotated[bool, typer.Option("--follow", "-L", help="Follow symlinks out of PATH and into "
                                         "symlinked folders (by default, as rg and fd, they are passed over).")
                      ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Name every file passed over, and why.")] = False,
    threads: ThreadsOpt = None,
    embedder: EmbedderOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Read, chunk and embed documents into the index. Re-running updates only what changed.

    With --store a local working copy (under $FSEARCH_HOME/stores, or --index-dir) keeps what is
    embedded, and the Milvus collection is sent what changed.

    Hidden files and folders, and what .gitignore/.ignore files exclude, are passed over (and counted).
    Files that leave a folder (deleted, now ignored or excluded) leave the index on the next run.

    Example: fsearch index notes/ --chunk-size 300 --exclude 'drafts/'
    """
    from .backends import choose_embedder
    from .indexing.discovery import Filters
    from .indexing.pipeline import index_path
    from .stores import committed_manifest
    from .trust import check_update, index_trusted

    settings = load_settings(config, index_dir=index_dir, model=model, chunk_size=chunk_size,
                             chunk_overlap=chunk_overlap, store=store, milvus_collection=collection,
                             threads=threads).with_store_copy()
    check_update(settings.index_folder, rebuild)
    address = settings.store_address
    if address:
        from .stores import open_publisher

        open_publisher(address).ping()  # an unreachable store fails before any embedding
    manifest = committed_manifest(settings.index_folder)
    if manifest is not None and not index_trusted(settings.index_folder):
        manifest = None  # a rebuild here of an index made elsewhere: nothing of its manifest is followed
    settings = settings.for_index(manifest)
    chosen = choose_embedder(manifest.model if manifest else None, settings.models_dir, settings.model, embedder,
                             base_url or (), api_key, may_change=rebuild, engine=settings.engine,
                             threads=settings.threads)
    with _progress("embedding", disable=json_output) as progress:
        report = index_path(path, settings, chosen, rebuild=rebuild, progress=progress, index_type=index_type,
                            wait=not no_wait, on_wait=_say_waiting,
                            filters=Filters(not no_ignore, tuple(include or ()), tuple(exclude or ()), follow),
                            on_phase=progress.phase, processes=True)
    pushed = _push(settings.index_folder, address, replace_other=rebuild, quiet=json_output) if address else None
    if json_output:
        print_json(report.to_dict() | ({"store": pushed.to_dict()} if pushed else {}))
    else:
        print_index_report(report, verbose=verbose)
        if pushed:
            print_push(pushed)


def _push(index_dir: Path, address: StoreAddress, replace_other: bool, quiet: bool) -> PushReport:
    """Send the local index to the Milvus store, with a progress bar."""
    from .stores import open_publisher

    with _progress("sending to Milvus", disable=quiet) as progress:
        return open_publisher(address).push(index_dir, replace_other=replace_other, on_progress=progress.count)


@app.command()
@handle_errors
def search(
    words: Annotated[list[str] | None, typer.Argument(
        metavar="QUERY", help="The question (quotes optional: the words are joined). Without it: an interactive "
        "prompt.", show_default=False)] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=MAX_TOP_K,
                                                 help="Results per query [default: 3].", show_default=False)] = None,
    queries: Annotated[Path | None, typer.Option("--queries", help="A file of queries, one per line; - reads "
                                                    "standard input, and a pipe works (<(...), a FIFO). With "
                                                    "--json: JSON Lines, one object per query, with its line "
                                                    "number; a bad line gets an error object and exit 2.",
                                                    show_default=False)] = None,
    mode: ModeOpt = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show each result's dense and keyword rank "
                                          "and score, and the fusion weights.")] = False,
    files_only: Annotated[bool, typer.Option("--files-only", "-l", help="Print each matching file once, best "
                                             "first (for xargs, vim, fzf).")] = False,
    full: Annotated[bool, typer.Option("--full", help="Print each hit's whole chunk, not a snippet around its "
                                       "best-matching line.")] = False,
    min_score: Annotated[float, typer.Option(
        "--min-score", min=0.0, max=1.0, help="Leave out hits below this relevance. Scores are 0-1 in every mode: "
        "0.5 is as high as questions the index cannot answer get (measured when indexing), 0.9 is typical of a "
        "real answer. 0 shows everything.")] = MIN_RELEVANCE,
    instruction: InstructionOpt = "auto",
    rerank: RerankOpt = None,
    reranker: RerankerOpt = None,
    rerank_url: RerankUrlOpt = None,
    rerank_api: RerankApiOpt = None,
    rerank_candidates: RerankCandidatesOpt = None,
    index_dir: IndexDirOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Find the chunks closest in meaning to a question.

    Each hit shows its relevance (0-1), FILE:LINE of its best-matching line (for vim +LINE) and a
    snippet. Exit status as grep: 0 something relevant found, 1 nothing above --min-score, 2 error.

    Examples: fsearch search 坐火车去别的城市 --json ;  fsearch search how to bake bread -l ;
    fsearch search -k 5 --mode keyword ;  fsearch search --rerank=bge-reranker-base 坐火车
    """
    from .retrieval.search import clean_query, open_searcher, quoted_phrases

    query = " ".join(words) if words else None
    settings = load_settings(config, index_dir=index_dir, model=model, top_k=top_k, store=store,
                             milvus_collection=collection, rerank=reranker, rerank_url=rerank_url,
                             rerank_api=rerank_api, rerank_candidates=rerank_candidates)
    if query is not None and queries is not None:
        raise InputError("give either a QUERY or --queries FILE, not both")
    batch = _read_queries(queries) if queries is not None else None
    if json_output and query is None and batch is None:
        raise InputError("--json needs a QUERY or --queries FILE", hint='fsearch search "question" --json')
    if query is not None:
        clean_query(query)  # an empty query fails before the model loads
    interactive = query is None and batch is None
    on, chosen = _reranking(settings, rerank, interactive)
    searcher = open_searcher(settings.index_folder, settings.models_dir, settings.model,
                             query_instruction=_query_instruction(instruction), base_urls=base_url or (),
                             api_key=api_key, store=settings.store_address, threads=settings.threads,
                             reranker=chosen, rerank_candidates=settings.rerank_candidates)
    if interactive:
        from .repl import run_repl

        run_repl(searcher, settings.top_k, mode=mode, explain=explain, history_file=settings.home / "history",
                 min_score=min_score, full=full, rerank=on)
        return
    show = functools.partial(_show, json_output=json_output, explain=explain, files_only=files_only, full=full)
    asked = [query] if query is not None else [text for _, text, _ in batch or []]
    # -l with a quoted phrase: every file that holds it, as grep -l lists them (best first)
    k = MAX_TOP_K if files_only and any(quoted_phrases(text) for text in asked) else settings.top_k
    if query is not None:
        result = searcher.search(query, k, mode, min_score, rerank=on)
        show(result)
        if not result.hits:
            raise typer.Exit(1)  # like grep: nothing relevant found
        return
    assert batch is not None  # neither a query nor a file opened the prompt above
    good = [(line, text) for line, text, problem in batch if problem is None]
    found = searcher.search_many([text for _, text in good], k, mode, min_score, rerank=on)
    answers = dict(zip((line for line, _ in good), found, strict=True))
    for line, text, problem in batch:
        if problem is not None and json_output:
            print_json({"line": line, "query": text, "error": problem})
        elif problem is not None:
            print_error(f"{queries}:{line}: {problem}")
        else:
            show(answers[line], line=line)
    if len(good) < len(batch):
        raise typer.Exit(ERROR_EXIT)
    if not any(answer.hits for answer in answers.values()):
        raise typer.Exit(1)


def _reranking(settings: Settings, flag: bool | None, interactive: bool = False) -> tuple[bool, Reranker | None]:
    """Whether to rerank (``--rerank/--no-rerank``, else the settings) and the reranker the settings name
    (nothing is loaded yet). One that cannot be had is an error where reranking is on; a prompt, which may
    turn it on later, gets None instead."""
    from .reranking import reranker_from

    on = flag if flag is not None else settings.reranks
    if not on and not interactive:
        return False, None
    try:
        return on, reranker_from(settings)
    except FsearchError:
        if on:
            raise
        return False, None


def _show(result: Any, json_output: bool, explain: bool, files_only: bool, full: bool,
          line: int | None = None) -> None:
    """One answer as JSON, as matching files, or for people; ``line`` is its line in a --queries file."""
    where = {"line": line} if line is not None else {}
    if json_output:
        # took_ms is the search; command_ms the command so far, with starting up and loading the model
        print_json({**where, "query": result.query, "files": result.files()} if files_only
                   else {**where, **result.to_dict(), "command_ms": round(1000 * (time.perf_counter() - STARTED))})
    elif files_only:
        print_files(result)
    else:
        if line is not None:
            out.print(f"[bold]query {line}:[/] {escape(result.query)}")
        print_result(result, explain=explain, full=full, since_start=time.perf_counter() - STARTED)


def _read_queries(path: Path) -> list[tuple[int, str, str | None]]:
    """(line number, query, problem or None) for each non-blank line: one bad line does not spoil the rest."""
    from .documents import read_input
    from .errors import NotText
    from .formats.text import decode
    from .retrieval.search import clean_query

    try:
        text, _ = decode(read_input(path, MAX_QUERIES_BYTES), sniff_binary=False)
    except NotText as exc:
        raise InputError(f"cannot read queries from {path}: {exc.reason}") from None
    except OSError as exc:
        raise InputError(f"cannot read queries from {path}: {exc.strerror or exc}") from None
    batch: list[tuple[int, str, str | None]] = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        if not line.strip():
            continue
        try:
            batch.append((number, clean_query(line), None))
        except FsearchError as exc:
            batch.append((number, line, exc.message))
    if not batch:
        raise InputError(f"queries file {path} has no queries")
    return batch


@app.command()
@handle_errors
def init(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="The project folder.")] = Path("."),
    json_output: JsonOpt = False,
) -> None:
    """Give a folder its own index (FOLDER/.fsearch, git-ignored), used from that folder and every one below.

    Without a project index, commands use the global index in $FSEARCH_HOME/index.
    """
    from .config import init_project

    index_dir, created = init_project(folder)
    if json_output:
        print_json({"index_dir": str(index_dir), "created": created})
    else:
        out.print(f"{'Project index' if created else 'Already a project'}: {escape(str(index_dir))}\n"
                  f"fsearch commands run in {escape(str(index_dir.parent))} or below use it. "
                  f"Next: fsearch index {escape(str(folder))}")


@app.command()
@handle_errors
def trust(
    path: Annotated[Path, typer.Argument(
        metavar="PATH", help="A project folder (its fsearch.toml and .fsearch index) or a settings file.")] = Path("."),
    index_dir: Annotated[Path | None, typer.Option(
        "--index-dir", "-i", help="Trust this index folder (one copied from elsewhere, or made by an older "
        "fsearch).", show_default=False)] = None,
    list_all: Annotated[bool, typer.Option("--list", help="List what is trusted, and whether it still is.")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the trust in PATH (and everything under "
                                         "it).")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Let fsearch obey a project's fsearch.toml and use its .fsearch index as your own.

    Until then, a settings file found from here up may change only harmless settings (chunking,
    top_k, engine ...): an index folder outside its project, a store, a token, home or a model
    folder stop the command with one line. An index fsearch did not make on this machine is
    searched as data: its servers and model folders are never used, and it is not updated.
    Editing a trusted file withdraws the trust. The list lives in $FSEARCH_HOME/trust.json.
    """
    from . import trust as trusting

    if list_all:
        rows = trusting.listing()
        if json_output:
            print_json({"trust_file": str(trusting.TrustList().path), "trusted": rows})
        else:
            print_trust_list(rows)
        return
    if revoke:
        gone = trusting.TrustList().remove(index_dir or path)
        if not gone:
            raise InputError(f"nothing is trusted at {index_dir or path}", hint="`fsearch trust --list` shows what is")
        if json_output:
            print_json({"revoked": [e.to_dict() for e in gone]})
        else:
            for entry in gone:
                out.print(f"no longer trusted: {escape(entry.path)}")
        return
    granted = trusting.grant(path, index_dir)
    if json_output:
        print_json({"trusted": granted})
    else:
        for row in granted:
            asked = f" (it may now set {escape('; '.join(row['asks']))})" if row.get("asks") else ""
            out.print(f"trusted {row['kind']} {escape(row['path'])}{asked}")


@app.command()
@handle_errors
def status(index_dir: IndexDirOpt = None, store: StoreOpt = None, collection: CollectionOpt = None,
           config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Show which index is in use and why, and what it holds: model, files, chunks, size, when built."""
    from .stores import has_index, open_reader
    from .trust import index_trusted

    settings = load_settings(config, index_dir=index_dir, store=store, milvus_collection=collection)
    address = settings.store_address
    info: dict[str, Any] = {**settings.where(), "exists": has_index(settings.index_folder, address)}
    if info["exists"]:
        reader = open_reader(settings.index_folder, address)
        manifest = reader.manifest
        info.update({
            "model": manifest.model["name"],
            "source": manifest.model.get("source", ""),
            "dim": manifest.model["dim"],
            "files": manifest.counts.files,
            "chunks": manifest.counts.chunks,
            "chunk_size": manifest.chunking["chunk_size"],
            "chunk_overlap": manifest.chunking["chunk_overlap"],
            "size_bytes": reader.size_on_disk(),
            "created_at": manifest.created_at,
            "updated_at": manifest.updated_at,
            "generation": manifest.generation,
            "format_version": manifest.format_version,
            "build": reader.build_state(),
        })
        if not address:
            info["trusted"] = index_trusted(settings.index_folder)
        reader.close()
    if json_output:
        print_json(info)
    else:
        print_status(info)
    if not info["exists"]:
        raise typer.Exit(1)  # a verdict, like doctor's: there is no index here yet


@app.command(name="ls")
@handle_errors
def list_files(
    paths: Annotated[list[Path] | None, typer.Argument(
        metavar="PATH", help="Only these files or folders [default: all].", show_default=False)] = None,
    folders: Annotated[bool, typer.Option("--folders", "-d", help="One line per folder, not per file.")] = False,
    index_dir: IndexDirOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List what the index holds: files (or --folders) with their chunks and when they were indexed."""
    from .documents import source_name
    from .stores import open_reader

    settings = load_settings(config, index_dir=index_dir, store=store, milvus_collection=collection)
    address = settings.store_address
    reader = open_reader(settings.index_folder, address)
    with reader.snapshot():
        files = [f for under in ([source_name(p) for p in paths] if paths else [None])
                 for f in reader.indexed_files(under)]
    reader.close()
    if json_output:
        print_json({"index_dir": settings.index_location, "files": [vars(f) for f in files]})
    else:
        print_listing(files, folders)


@app.command()
@handle_errors
def rm(
    paths: Annotated[list[Path], typer.Argument(
        metavar="PATH", help="Files or folders to take out of the index (the files themselves are not touched).",
        show_default=False)],
    no_wait: NoWaitOpt = False,
    index_dir: IndexDirOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Remove files or folders from the index without a rebuild (nothing is re-embedded).

    Every PATH must be in the index, or nothing is removed. With --store: from the store's working
    copy, then from the Milvus collection. Example: fsearch rm old-notes/ draft.md
    """
    from .indexing.pipeline import remove_paths

    settings = load_settings(config, index_dir=index_dir, store=store, milvus_collection=collection).with_store_copy()
    address = settings.store_address
    removal = remove_paths(paths, settings, wait=not no_wait,
                           on_wait=_say_waiting)
    pushed = _push(settings.index_folder, address, replace_other=False, quiet=json_output) if address else None
    if json_output:
        print_json(removal.to_dict() | ({"store": pushed.to_dict()} if pushed else {}))
    else:
        out.print(f"Removed {removal.files_removed} file(s), {removal.chunks_removed} chunk(s). Index "
                  f"{escape(removal.index_dir)}: {removal.total_files} file(s), {removal.total_chunks} chunk(s).")
        out.print("[dim]The files themselves are untouched, and the next `fsearch index` of a folder that holds "
                  "them adds them back: list them in that folder's .ignore (or pass --exclude) to keep them out.[/]")
        if pushed:
            print_push(pushed)


@app.command()
@handle_errors
def export(
    to: Annotated[str, typer.Option("--to", help="The Milvus store: milvus:///path/kb.db or http://host:19530.",
                                    show_default=False)],
    collection: CollectionOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="If the collection holds another index (or another "
                                          "model's), drop it first.")] = False,
    index_dir: IndexDirOpt = None,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Send the local index to a Milvus collection, without re-embedding; again later, only what changed.

    Any machine can then search it with --store. Example: fsearch export --to http://milvus:19530 --collection kb
    """
    from .stores import open_reader

    settings = load_settings(config, index_dir=index_dir, store=to, milvus_collection=collection)
    open_reader(settings.index_folder).close()  # no local index: that line, before connecting anywhere
    address = settings.store_address
    assert address is not None  # --to is required
    pushed = _push(settings.index_folder, address, replace_other=replace, quiet=json_output)
    if json_output:
        print_json(pushed.to_dict())
    else:
        print_push(pushed)


class _progress:
    """A rich progress bar on stderr that the indexer drives: chunks done / total, files, chunks/s, ETA."""

    def __init__(self, label: str, disable: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("chunks · {task.fields[files]} · {task.fields[rate]}"),
                            TimeElapsedColumn(), console=err, transient=True,
                            disable=disable or not err.is_terminal)
        self.task = self.bar.add_task(label, total=None, files="", rate="")

    def phase(self, name: str) -> None:
        """Name the long step under way, so a silent stretch does not look like a hang."""
        self.bar.update(self.task, description=f"{name}…")

    def __call__(self, done: IndexProgress) -> None:
        rate, eta = done.chunks_per_second, done.eta_seconds
        speed = f"{rate:.1f} chunks/s" if rate else ""
        if eta is not None:
            speed += f" · ETA {_clock(eta)}"
        self.bar.update(self.task, completed=done.chunks_done, total=done.chunks_total or None,
                        files=f"files {done.files_done:,}/{done.files_total:,}", rate=speed)

    def count(self, done: int, total: int) -> None:
        """Plain progress: ``done`` of ``total`` chunks (sending to Milvus)."""
        self.bar.update(self.task, completed=done, total=total)

    def __enter__(self) -> _progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


ModeOpt = Annotated[str | None, typer.Option(
    "--mode", help="hybrid (keyword + semantic), dense or keyword [default: hybrid].", show_default=False)]
InstructionOpt = Annotated[str, typer.Option(
    "--instruction", help="Query instruction of models that have one (bge-*-zh): auto (on), on or off.")]


def _query_instruction(value: str) -> bool:
    if value not in ("auto", "on", "off"):
        raise InputError(f"--instruction takes auto, on or off, not '{value}'")
    return value != "off"


@app.command()
@handle_errors
def models(config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """List the known models (embedders and rerankers): dimension, languages, size, and whether and where they
    are downloaded."""
    from .models.registry import EMBEDDING, downloaded_by_repo_id, folder_kind, known_models, resolve_model

    settings = load_settings(config)
    rows = []
    for spec in known_models():
        try:
            resolved = resolve_model(spec.alias, settings.models_dir, kind=None)
            where = str(resolved.path) if resolved.path else "bundled"
        except FsearchError:
            where = None
        rows.append({"alias": spec.alias, "kind": spec.kind, "dim": spec.dim, "languages": list(spec.languages),
                     "size_mb": spec.size_mb, "max_tokens": spec.max_tokens, "hf_id": spec.hf_id,
                     "modelscope_id": spec.modelscope_id, "downloaded": where is not None, "path": where,
                     "default": spec.alias == DEFAULT_MODEL})
    for folder, metadata in downloaded_by_repo_id(settings.models_dir):
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        rows.append({"alias": metadata["repo_id"], "kind": folder_kind(folder) or EMBEDDING,
                     "dim": metadata.get("dim"), "languages": [],
                     "size_mb": round(size / 1e6), "max_tokens": None, "hf_id": metadata["repo_id"],
                     "modelscope_id": metadata["repo_id"], "downloaded": True, "path": str(folder),
                     "default": False})
    if json_output:
        print_json({"models_dir": str(settings.models_dir), "models": rows})
    else:
        print_models(rows, settings.models_dir)


@app.command()
@handle_errors
def download(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A model alias (see `fsearch models`) or a repo id like "
                                        "BAAI/bge-base-zh-v1.5.", show_default=False)],
    source: Annotated[str, typer.Option(help="auto (ModelScope, then the HF mirror, then Hugging Face), "
                                        "modelscope, hf-mirror or hf.")] = "auto",
    endpoint: Annotated[str | None, typer.Option(help="Hub address for the chosen --source [default: "
                                                    "MODELSCOPE_ENDPOINT / HF_ENDPOINT, else the public hub].",
                                                    show_default=False)] = None,
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit [default: the hub's main "
                                                    "branch].", show_default=False)] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds without data from the hub before giving "
                                           "up.")] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if the model is already downloaded "
                                        "and intact.")] = False,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Download an embedding model (for --model) or a reranker (for --reranker) into $FSEARCH_HOME/models, verified.

    Examples: fsearch download bge-base-zh ;  fsearch download bge-m3 --source hf-mirror ;
    fsearch download bge-reranker-base
    """
    from .models.download import download_model

    settings = load_settings(config)

    with DownloadBar(disable=quiet or json_output) as bar:
        result = download_model(name, settings.models_dir, source=source, endpoint=endpoint, revision=revision,
                                progress=bar, on_failure=None if quiet else print_source_failure,
                                stall_seconds=timeout, force=force)
    if json_output:
        print_json({**vars(result), "path": str(result.path)})
    elif not quiet:
        print_download(result)


@app.command(name="eval")
@handle_errors
def eval_command(
    dataset: Annotated[Path, typer.Argument(
        metavar="DATASET", help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.",
        show_default=False)],
    split: Annotated[str | None, typer.Option(help="qrels split [default: dev, else test].",
                                                 show_default=False)] = None,
    mode: Annotated[list[str] | None, typer.Option("--mode", help="Modes to compare (repeatable) "
                                                      "[default: hybrid, dense and keyword].",
                                                      show_default=False)] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Models to compare (repeatable) "
                                                       f"[default: {DEFAULT_MODEL}].", show_default=False)] = None,
    chunk_size: ChunkSizeOpt = None,
    chunk_overlap: ChunkOverlapOpt = None,
    instruction: InstructionOpt = "auto",
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Re-index the corpus even if an index of it "
                                          "with these settings exists.")] = False,
    rerank: RerankOpt = None,
    reranker: RerankerOpt = None,
    rerank_url: RerankUrlOpt = None,
    rerank_api: RerankApiOpt = None,
    rerank_candidates: RerankCandidatesOpt = None,
    index_dir: IndexDirOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Measure retrieval quality on a BEIR data set: recall@1/5/10, MRR@10, nDCG@10, index time, queries/s.

    The corpus is indexed once per model under $FSEARCH_HOME/eval and reused by later runs. With a
    reranker, each mode is measured with and without it, with the time it adds to a query (p50, p95).
    Example: fsearch eval ../shared/data/cmrc2018-dev --mode hybrid --mode dense
    """
    from .evaluation import evaluate

    settings = load_settings(config, index_dir=index_dir, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                             store=store, milvus_collection=collection, rerank=reranker, rerank_url=rerank_url,
                             rerank_api=rerank_api, rerank_candidates=rerank_candidates)
    models = model or [settings.model or DEFAULT_MODEL]
    _, chosen = _reranking(settings, rerank)
    with _progress("embedding", disable=json_output) as progress:
        rows = evaluate(dataset, settings, models, mode or ["hybrid", "dense", "keyword"], split=split,
                        rebuild=rebuild, query_instruction=_query_instruction(instruction),
                        progress=progress, store=settings.store_address, reranker=chosen)
    if json_output:
        print_json({"dataset": dataset.name, "results": [row.to_dict() for row in rows]})
    else:
        print_eval(dataset.name, rows)


@app.command()
@handle_errors
def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed: rebuild the keyword index or "
                                         "the vectors from the sidecar, drop orphans, remove leftovers; with "
                                         "--store: push the local index it mirrors again.")] = False,
    index_dir: IndexDirOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    config: ConfigOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Check that an index is whole and consistent (exit 1 if it is not); --repair fixes it.

    Checks row counts, chunk texts against their hashes, the vectors file against its checksum
    and ids, the keyword index, manifest.json and leftovers. Safe while an update runs. With --store:
    the Milvus collection against its ledger (unpublished or undeleted chunks, counts, file rows).
    """
    from . import doctor as doctor_module

    settings = load_settings(config, index_dir=index_dir, store=store, milvus_collection=collection)
    if repair:
        report = doctor_module.repair(settings.index_folder, settings.store_address, settings.models_dir,
                                      base_urls=base_url or (), api_key=api_key)
    else:
        report = doctor_module.check(settings.index_folder, settings.store_address)
    if json_output:
        print_json(report.to_dict())
    else:
        print_doctor(report, repaired=repair)
    if not report.healthy:
        raise typer.Exit(1)


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    index_dir: IndexDirOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    model: ModelOpt = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", help="Require 'Authorization: Bearer KEY' on every route but /health and /ready "
        "[default: $FSEARCH_SERVE_API_KEY, else no key].", show_default=False)] = None,
    request_seconds: Annotated[float, typer.Option(
        "--request-timeout", min=1, help="Seconds a request may take before it is answered with a 504.")] = 120.0,
    shutdown_seconds: Annotated[float, typer.Option(
        "--shutdown-timeout", min=0, help="On SIGTERM or Ctrl-C: seconds to finish work in progress.")] = 10.0,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log",
                                             help="One JSON line per request on stderr.")] = True,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="Another Host name to answer to (repeatable). Bound to loopback, the server "
        "answers only localhost, 127.0.0.1, [::1] and --host, so a web page cannot reach it by DNS rebinding.",
        show_default=False)] = None,
    threads: ThreadsOpt = None,
    rerank: RerankOpt = None,
    reranker: RerankerOpt = None,
    rerank_url: RerankUrlOpt = None,
    rerank_api: RerankApiOpt = None,
    rerank_candidates: RerankCandidatesOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the model as an OpenAI-compatible /v1/embeddings API (and the index as /v1/search).

    With a reranker, also POST /v1/rerank in the Jina/Cohere shape (and TEI's /rerank). Also /health
    (liveness), /ready (readiness) and /metrics (Prometheus). Needs the serve extra:
    pip install 'fsearch[serve]'. Example: fsearch serve --port 8000 --reranker bge-reranker-base
    """
    _require_extra("serve", ("fastapi", "uvicorn", "prometheus_client"), "fsearch serve needs FastAPI, uvicorn and "
                   "prometheus-client")
    from .backends import choose_embedder
    from .retrieval.search import open_searcher
    from .serve.app import create_app
    from .serve.edge import run
    from .stores import has_index

    key = _serve_key(api_key)
    settings = load_settings(config, index_dir=index_dir, model=model, store=store, milvus_collection=collection,
                             threads=threads, rerank=reranker, rerank_url=rerank_url, rerank_api=rerank_api,
                             rerank_candidates=rerank_candidates)
    address = settings.store_address
    on, chosen = _reranking(settings, rerank)
    listener = _listen(host, port)  # before anything says "serving": a busy port is one clear line
    searcher = None
    if has_index(settings.index_folder, address):
        searcher = open_searcher(settings.index_folder, settings.models_dir, settings.model,
                                 engine=settings.engine, store=address, threads=settings.threads,
                                 rerank_candidates=settings.rerank_candidates)
        embedder = searcher.embedder
    else:
        embedder = choose_embedder(None, settings.models_dir, settings.model, engine=settings.engine,
                                   threads=settings.threads)
    application = create_app(embedder, searcher, api_key=key, request_seconds=request_seconds,
                             allowed_hosts=_allowed_hosts(host, allowed_host or []), reranker=chosen,
                             rerank_searches=on)
    if access_log:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        logging.getLogger("fsearch.access").addHandler(handler)
        logging.getLogger("fsearch.access").setLevel(logging.INFO)
    err.print(f"serving {embedder.info.name} ({embedder.info.dim} dimensions)"
              + (f" and the index {settings.index_location} ({searcher.size} chunks)"
                 if searcher else "")
              + (f", reranking with {chosen.name}" if chosen else "")
              + f" on http://{host}:{port}/v1" + (" (API key required)" if key else ""))
    run(application, listener, shutdown_seconds)


@app.command(name="mcp")
@handle_errors
def mcp_command(
    index_dir: IndexDirOpt = None,
    store: StoreOpt = None,
    collection: CollectionOpt = None,
    model: ModelOpt = None,
    rerank: RerankOpt = None,
    reranker: RerankerOpt = None,
    rerank_url: RerankUrlOpt = None,
    rerank_api: RerankApiOpt = None,
    rerank_candidates: RerankCandidatesOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the index to AI agents over the Model Context Protocol (stdio): tools search, read and status.

    Add to a client's configuration (Claude Desktop, Cursor, Cline ...) as
    {"mcpServers": {"fsearch": {"command": "fsearch", "args": ["mcp", "--index-dir", "/path/to/index"]}}}.
    Needs the mcp extra: pip install 'fsearch[mcp]'.
    """
    _require_extra("mcp", ("mcp",), "fsearch mcp needs the official MCP SDK")
    from .retrieval.search import open_searcher
    from .serve.mcp import build_server

    settings = load_settings(config, index_dir=index_dir, model=model, store=store, milvus_collection=collection,
                             rerank=reranker, rerank_url=rerank_url, rerank_api=rerank_api,
                             rerank_candidates=rerank_candidates)
    _, chosen = _reranking(settings, rerank)
    searcher = open_searcher(settings.index_folder, settings.models_dir, settings.model,
                             store=settings.store_address, threads=settings.threads, reranker=chosen,
                             rerank_candidates=settings.rerank_candidates)
    build_server(searcher, settings).run()


def _require_extra(extra: str, modules: tuple[str, ...], message: str) -> None:
    """One line naming the pip command when an optional extra is not installed (before anything is imported)."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"{message} ({', '.join(missing)} not installed)",
                         hint=f"pip install 'fsearch[{extra}]'")


def _serve_key(flag: str | None) -> str | None:
    """The API key from --api-key or $FSEARCH_SERVE_API_KEY; an empty one (an unset variable) is refused,
    never taken as "no key"."""
    for given, name in ((flag, "--api-key"), (os.environ.get("FSEARCH_SERVE_API_KEY"), "FSEARCH_SERVE_API_KEY")):
        if given is not None:
            if not given.strip():
                raise InputError(f"{name} is empty (an unset variable?); the server would run without a key",
                                 hint="give the key, or leave the option out to serve without one")
            return given.strip()
    return None


def _allowed_hosts(host: str, extra: list[str]) -> frozenset[str] | None:
    """The Host names a server answers: bound to loopback, its own names and --allowed-host; else any,
    unless --allowed-host names some."""
    import ipaddress

    from .serve.edge import LOOPBACK_HOSTS, host_name

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    names = {host_name(name.encode()) for name in extra}
    if loopback:
        return frozenset({*LOOPBACK_HOSTS, host_name(host.encode()), *names})
    return frozenset({host_name(host.encode()), *names}) if names else None


def _listen(host: str, port: int):
    """A listening socket, or one line saying why not (port in use, address not on this machine)."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         hint="is another server on that port? choose another with --port") from None
    return listener


def main() -> None:
    """Console-script entry point; usage errors exit 2, as JSON too when --json was given."""
    try:
        code = app(args=_optional_values(sys.argv[1:]), prog_name="fsearch", standalone_mode=False)
    except typer.TyperException as exc:  # a usage error: unknown option, bad value, missing argument
        exit_code = getattr(exc, "exit_code", ERROR_EXIT)
        if "--json" in sys.argv[1:]:
            _print_json_error(exc.format_message() if hasattr(exc, "format_message") else str(exc), None, exit_code)
        elif hasattr(exc, "show"):
            exc.show()
        else:
            print_error(str(exc))
        _exit(exit_code)
    except typer.Abort:
        print_error("interrupted")
        _exit(130)
    _exit(code if isinstance(code, int) else 0)


def _exit(code: int) -> NoReturn:
    """End the process with ``code``. Where torch was loaded, the interpreter's teardown of its modules took
    0.6 s after the command's work was done (8 % of indexing 1,000 notes): the streams are flushed and the
    exit handlers run (threads joined, temporary files removed), then the process ends without it."""
    if "torch" not in sys.modules:
        sys.exit(code)
    import atexit
    import threading

    sys.stdout.flush()
    sys.stderr.flush()
    threading._shutdown()  # type: ignore[attr-defined]  # what Python's exit does first: join non-daemon threads
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _optional_values(args: list[str]) -> list[str]:
    """``--rerank=MODEL`` is ``--reranker MODEL``: git's spelling of an option whose value may be left out
    (``--rerank`` alone takes the configured reranker), which typer cannot declare."""
    if "--" in args:
        cut = args.index("--")
        return _optional_values(args[:cut]) + args[cut:]
    return [part for arg in args
            for part in (["--reranker", arg.partition("=")[2]] if arg.startswith("--rerank=") else [arg])]


if __name__ == "__main__":  # pragma: no cover
    main()
