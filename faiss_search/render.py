"""Everything users see: rich output for people, JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text

from .formats import cites_lines
from .indexing.reports import IndexReport
from .retrieval.search import SearchResult

if TYPE_CHECKING:
    from rich.table import Table

    from .stores import PushReport

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)



def print_json(data: Any) -> None:
    """One JSON document (or JSON Lines record) on stdout, UTF-8, Chinese kept readable."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_error(message: str, hint: str | None = None) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"[dim]hint: {escape(hint)}[/]")


def display_path(source: str) -> str:
    """Paths under the working folder are shown relative to it."""
    try:
        return os.path.relpath(source) if Path(source).resolve().is_relative_to(Path.cwd()) else source
    except ValueError:
        return source


def query_terms(query: str) -> list[str]:
    """The query's words as keyword search sees them (jieba for Chinese), longest first for highlighting."""
    from .lexical import segment

    return sorted(set(segment(query)), key=lambda word: (-len(word), word))


def _leg(rank: int | None, score: float | None) -> str:
    return f"#{rank} ({score:.3f})" if rank is not None and score is not None else "-"


def _location(hit) -> str:
    """FILE:LINE, FILE.pdf:pPAGE, or FILE for a document without lines a person could open at (Word, HTML),
    a terminal hyperlink to the file where the terminal supports them; then the heading path, if any."""
    place = f":p{hit.page}" if hit.page else (f":{hit.line}" if cites_lines(hit.source) else "")
    where = escape(display_path(hit.source) + place)
    if out.is_terminal and hit.source.startswith("/"):
        where = f"[link={Path(hit.source).as_uri()}]{where}[/link]"
    return where + (f"  [dim]§ {escape(hit.heading)}[/]" if hit.heading else "")


def print_result(result: SearchResult, explain: bool = False, show_time: bool = True, full: bool = False,
                 cut: str = "--min-score", since_start: float | None = None) -> None:
    """One answer for people; ``cut`` is how the user moves the relevance cut where they are (":min" in the prompt),
    ``since_start`` the seconds the command has taken (a one-shot search pays for loading the model)."""
    if not result.hits:
        out.print("[yellow]no good match[/]" + (f" [dim]({result.below_min_score} hit(s) left out by {cut} "
                                                 f"{result.min_score:g}; {escape(cut)} 0 shows them)[/]"
                                                 if result.below_min_score else ""))
    if explain and result.weights:
        out.print(f"[dim]{result.mode}: weights dense {result.weights['dense']:.2f}, "
                  f"keyword {result.weights['keyword']:.2f}[/]")
    terms = query_terms(result.query)
    for hit in result.hits:
        score = f"{hit.score:.2f}" if result.calibrated or result.reranker else \
            f"{hit.raw_score:.3f} ({result.mode} score)"
        out.print(f"[bold cyan]{hit.rank}.[/] [green]{score}[/]  [magenta]{_location(hit)}[/]")
        if explain:
            out.print(f"   [dim]{result.mode} score {hit.raw_score:.3f} · dense {_leg(hit.dense_rank, hit.dense_score)}"
                      f" · keyword {_leg(hit.keyword_rank, hit.keyword_score)}"
                      + (f" · before reranking #{hit.rank_before_rerank} {hit.score_before_rerank:.2f}"
                         if hit.rank_before_rerank is not None and hit.score_before_rerank is not None else "")
                      + "[/]")
        body = Text(hit.text.strip() if full else hit.snippet)
        body.highlight_words(terms, style="bold yellow", case_sensitive=False)
        _print_indented(body)
    if show_time:
        hidden = f", {result.below_min_score} left out by {cut}" if result.hits and result.below_min_score else ""
        command = f"; {since_start:.1f} s with starting up and loading the model" if since_start is not None else ""
        reranked = f", reranked by {escape(result.reranker)} in {result.rerank_seconds * 1000:.0f} ms" \
            if result.reranker else ""
        out.print(f"[dim]{len(result.hits)} results in {result.seconds * 1000:.0f} ms ({result.mode}{reranked}"
                  f"{hidden}{command})[/]")


def _print_indented(body: Text) -> None:
    """Three columns in: wrapped to a terminal's width, but never wrapped or padded for a pipe."""
    if out.is_terminal:
        out.print(Padding(body, (0, 0, 0, 3), expand=False), soft_wrap=False)
    else:
        out.print(Text("   ") + Text("\n   ").join(body.split("\n")), soft_wrap=True)


def print_files(result: SearchResult) -> None:
    """Matching files, one per line and plain (no markup), for other programs."""
    for source in result.files():
        sys.stdout.write(display_path(source) + "\n")
    sys.stdout.flush()


def print_index_report(report: IndexReport, verbose: bool = False) -> None:
    seconds = report.embed_seconds or float("inf")
    out.print(
        f"Files: {report.files_added} added, {report.files_changed} changed, {report.files_removed} removed, "
        f"{report.files_unchanged} unchanged. Chunks: {report.chunks_embedded} embedded"
        + (f" ({report.chunks_embedded / seconds:.1f} chunks/s, {report.characters_embedded / seconds:,.0f} "
           "characters/s)" if report.chunks_embedded else "")
        + (f", {report.chunks_reused} reused" if report.chunks_reused else "")
        + (f", {report.chunks_removed} removed" if report.chunks_removed else "")
        + f". {report.seconds:.1f} s."
    )
    if report.skipped.counts:
        out.print("Skipped: " + report.skipped.summary() + ("" if verbose else " (-v names them)"))
    if verbose:
        for path, why in report.skipped.named:
            out.print(f"  skipped {escape(display_path(path))}: {escape(why)}", soft_wrap=True)
    if report.files_kept_unreadable:
        err.print(f"[yellow]warning:[/] {report.files_kept_unreadable} indexed file(s) could not be read now "
                  "(or sit in a folder that could not be listed); their indexed versions are kept")
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if report.chunks_over_token_limit:
        err.print(
            f"[yellow]warning:[/] {report.chunks_over_token_limit} chunk(s) exceed the model's "
            f"{report.max_tokens}-token limit and were {report.long_input_policy}; "
            "a smaller --chunk-size keeps them whole"
        )
    out.print(f"Index {escape(report.index_dir)}: {report.total_files} file(s), "
              f"{report.total_chunks} chunk(s), model {escape(report.model)}, {report.vectors.get('type', 'flat')}"
              + (" (the index is now empty)" if not report.total_chunks else ""))


def _when(timestamp: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "-"


def print_listing(files: list, folders: bool) -> None:
    """What ``fsearch ls`` shows: per folder a summary line, then (unless ``folders``) its files."""
    groups: dict[str, list] = {}
    for f in files:
        groups.setdefault(os.path.dirname(f.path), []).append(f)
    for folder, members in groups.items():
        latest = max((f.indexed_at or 0 for f in members), default=0) or None
        out.print(f"[bold]{escape(display_path(folder) + os.sep)}[/]  {len(members)} file(s), "
                  f"{sum(f.chunks for f in members)} chunk(s), last indexed {_when(latest)}", soft_wrap=True)
        if not folders:
            for f in members:
                out.print(f"  {f.chunks:>6}  {_when(f.indexed_at)}  {escape(os.path.basename(f.path))}",
                          soft_wrap=True)
    out.print(f"[dim]{len(files)} file(s), {sum(f.chunks for f in files)} chunk(s) in {len(groups)} folder(s)[/]")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def print_push(pushed: PushReport) -> None:
    out.print(f"{escape(pushed.store)}: {pushed.chunks_added} chunk(s) sent, {pushed.chunks_removed} removed"
              + (" (finishing an interrupted push)" if pushed.finished_earlier else "")
              + (f"; {pushed.chunks_resent} sent again with new keyword words" if pushed.chunks_resent else "")
              + f"; it holds {pushed.files} file(s), {pushed.chunks} chunk(s). {pushed.seconds:.1f} s.")


def print_status(status: dict) -> None:
    rows = [("store", status["store"])] if "store" in status else \
        [("index", status["index_dir"]), ("chosen by", status["chosen_by"])]
    if not status["exists"]:
        rows.append(("holds", "nothing yet: fsearch index PATH fills it"))
    else:
        rows += [
            ("model", f"{status['model']} ({status['source']})"),
            ("dim", str(status["dim"])),
            ("files", str(status["files"])),
            ("chunks", str(status["chunks"])),
            ("chunking", f"size {status['chunk_size']}, overlap {status['chunk_overlap']}"),
            ("size on disk", human_size(status["size_bytes"]) if status["size_bytes"] is not None else
             "(on the Milvus server)"),
            ("built", status["created_at"]),
            ("updated", status["updated_at"]),
        ]
        if status.get("trusted") is False:
            rows.append(("trusted", "no: not made by fsearch here; searched as data, not updated "
                                    "(`fsearch trust -i FOLDER` if it is yours)"))
        if status["build"] != "complete":
            rows.append(("build", {"in progress": "in progress: these are the files committed so far",
                                   "interrupted": "interrupted: run the same `fsearch index` again to finish it",
                                   "push unfinished": "a push was interrupted: what was published is searchable; "
                                                      "`fsearch export` (or the index run) again finishes it"
                                   }[status["build"]]))
    for key, value in rows:
        out.print(f"[bold]{key:>12}[/]  {escape(value)}")


def _table(title: str) -> Table:
    """A compact table: one line per row (cells are cut with … rather than wrapped into tall columns)."""
    from rich.table import Table

    return Table(title=title, title_justify="left", box=None, padding=(0, 1), pad_edge=False,
                 header_style="bold")


def _print_table(table: Table) -> None:
    """At a terminal the table fits its width; piped, rows are never cut or wrapped (grep, awk, less -S)."""
    if out.is_terminal:
        out.print(table)
    else:
        Console(file=sys.stdout, highlight=False, width=1000, no_color=True).print(table, crop=False)


def print_models(rows: list[dict], models_dir: Path) -> None:
    default = next((row["alias"] for row in rows if row.get("default")), None)
    table = _table(f"models in {models_dir}" + (f" (default: {default})" if default else ""))
    table.add_column("model", no_wrap=True, overflow="ellipsis", max_width=26)
    for column, width in (("for", 6), ("dim", 4), ("languages", 9), ("size", 7), ("tokens", 6), ("downloaded", 10)):
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=width)
    for row in rows:
        where = "[green]bundled[/]" if row["path"] == "bundled" else (
            "[green]yes[/]" if row["downloaded"] else "[dim]no[/]")
        reranker = row["kind"] == "reranker"
        table.add_row(escape(row["alias"]), "rerank" if reranker else "embed",
                      "-" if reranker else str(row["dim"] or "?"), ",".join(row["languages"]) or "?",
                      f"{row['size_mb']} MB", str(row["max_tokens"] or "?"), where)
    _print_table(table)


class DownloadBar:
    """The download progress display: bytes, speed and files, fed from the hub libraries' threads."""

    def __init__(self, disable: bool) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TextColumn("{task.fields[files]} files"),
                                 TimeRemainingColumn(), console=err, transient=True, disable=disable)
        self.task = self.progress.add_task("downloading", total=None, files=0)
        self.files = 0

    def add_total(self, nbytes: int) -> None:
        """A hub that does not say how big its files are leaves the total unknown (not 0 bytes)."""
        if nbytes > 0:
            total = self.progress.tasks[0].total or 0
            self.progress.update(self.task, total=total + nbytes)

    def phase(self, name: str) -> None:
        self.progress.update(self.task, description=name)

    def advance(self, nbytes: int) -> None:
        self.progress.update(self.task, advance=nbytes)

    def file_done(self) -> None:
        self.files += 1
        self.progress.update(self.task, files=self.files)

    def __enter__(self) -> DownloadBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def print_eval(dataset: str, rows: list) -> None:
    table = _table(f"{dataset}: {rows[0].queries} queries, {rows[0].documents} documents (MRR and nDCG at 10)"
                   if rows else dataset)
    reranked = any(row.reranker for row in rows)  # "hybrid+rerank" is a wider mode: the model's name gives way
    table.add_column("model", no_wrap=True, overflow="ellipsis", max_width=14 if reranked else 20)
    table.add_column("mode", no_wrap=True, min_width=13 if reranked else 7)
    for column in ("R@1", "R@5", "R@10", "MRR", "nDCG", "index s", "q/s"):
        table.add_column(column, justify="right", no_wrap=True, min_width=5)
    for row in rows:
        m = row.metrics
        table.add_row(row.model, row.mode, *(f"{m[k]:.2f}" for k in ("recall@1", "recall@5", "recall@10", "MRR@10",
                                                                    "nDCG@10")),
                      "reused" if row.reused_index else f"{row.index_seconds:.1f}", f"{row.queries_per_second:.0f}")
    _print_table(table)
    for row in rows:
        if row.rerank_ms:
            out.print(f"{row.mode}: {escape(row.reranker)} added {row.rerank_ms['p50']:.0f} ms to a query "
                      f"(p50), {row.rerank_ms['p95']:.0f} ms (p95)", soft_wrap=True)


def print_source_failure(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}; trying the next source")


def print_download(result) -> None:
    if result.already_present:
        out.print(f"{result.name} is already downloaded ({result.repo_id}@{result.revision[:12]}, {result.files} "
                  f"files, {human_size(result.bytes)}, verified): {escape(str(result.path))}\n"
                  "--force fetches it again")
        return
    reranker = result.kind == "reranker"
    what = "a reranker" if reranker else f"{result.dim} dimensions"
    use = f"fsearch search --reranker {result.name} QUESTION" if reranker else \
        f"fsearch index PATH --model {result.name} --rebuild"
    out.print(f"Downloaded {result.name} from {result.source} ({result.repo_id}@{result.revision[:12]}): "
              f"{result.files} files, {human_size(result.bytes)}, {what}, {result.seconds:.1f} s\n"
              f"{escape(str(result.path))}\nUse it: {use}")


def print_doctor(report, repaired: bool) -> None:
    for action in report.repaired:
        out.print(f"[green]repaired:[/] {escape(action)}")
    for problem in report.problems:
        out.print(f"[red]problem:[/] {escape(problem)}")
    if report.writer_active:
        out.print("[dim]an update is running: its files in progress were not counted as leftovers[/]")
    if report.healthy:
        out.print(f"ok: {escape(report.index_dir)} is consistent (generation {report.generation}, "
                  f"{report.chunks} chunks)")
    elif not repaired:
        out.print("run `fsearch doctor --repair` to fix what can be fixed")


def print_trust_list(rows: list[dict]) -> None:
    """`fsearch trust --list`: one line per trusted settings file or index folder."""
    if not rows:
        out.print("nothing is trusted yet (`fsearch trust PATH` trusts a project)")
        return
    for row in rows:
        flag = "" if row["state"] == "ok" else f"  [yellow]({row['state']})[/]"
        out.print(f"{row['kind']:<6} {escape(row['path'])}  {row['trusted_at']}{flag}")
