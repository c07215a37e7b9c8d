"""The interactive prompt: the model and index stay loaded while the user asks question after question."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .errors import FsearchError
from .render import out, print_error, print_result
from .retrieval.search import MODES, Searcher

HELP = """Type a question (Chinese or English) and press Enter.
  :k N        show N results per query
  :mode M     hybrid, dense or keyword (:mode alone shows the current one)
  :min S      leave out hits below relevance S (0-1; 0 shows everything)
  :full       show (or hide) whole chunks instead of snippets
  :explain    show (or hide) each result's dense and keyword rank and the fusion weights
  :rerank on|off  re-score the first hits with the reranker (:rerank alone shows which)
  Ctrl-C      cancel the query that is running (the prompt stays)
  :help       this help
  :quit       leave (Ctrl-D works too)"""

PROMPT = "fsearch> "


def _enable_history(history_file: Path | None) -> Callable[[], None]:
    """Line editing and history through readline, where the platform has it; returns a saver."""
    try:
        import readline
    except ImportError:
        return lambda: None
    if history_file is None:
        return lambda: None
    try:
        readline.read_history_file(history_file)
    except OSError:
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            history_file.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(history_file)
        except OSError:
            pass

    return save


def _command(line: str, state: dict) -> bool:
    """Handle a ``:`` command; returns False when the user wants to leave."""
    name, _, arg = line[1:].strip().partition(" ")
    if name in ("q", "quit", "exit"):
        return False
    if name in ("h", "help", "?"):
        out.print(HELP)
    elif name == "mode" and not arg.strip():
        out.print(f"mode {state['mode']} (one of {', '.join(MODES)})")
    elif name == "mode":
        if arg.strip() in MODES:
            state["mode"] = arg.strip()
            out.print(f"mode {state['mode']}")
        else:
            print_error(f"`:mode` takes one of {', '.join(MODES)}, got {arg.strip() or 'nothing'}")
    elif name == "rerank":
        _rerank_command(arg.strip(), state)
    elif name in ("explain", "full"):
        state[name] = not state[name]
        out.print(f"{name} {'on' if state[name] else 'off'}")
    elif name == "min":
        try:
            value = float(arg)
        except ValueError:
            value = -1.0
        if 0.0 <= value <= 1.0:
            state["min_score"] = value
            out.print(f"leaving out hits below {value:g}")
        else:
            print_error(f"`:min` needs a relevance between 0 and 1, got {arg.strip() or 'nothing'}")
    elif name == "k":
        if arg.strip().isdigit() and int(arg) >= 1:
            state["k"] = int(arg)
            out.print(f"showing {state['k']} results")
        else:
            print_error(f"`:k` needs a whole number of at least 1, got {arg.strip() or 'nothing'}")
    else:
        print_error(f"unknown command :{name}", hint="type :help")
    return True


def _rerank_command(arg: str, state: dict) -> None:
    reranker = state["reranker"]
    if arg not in ("", "on", "off"):
        print_error(f"`:rerank` takes on or off, got {arg}")
    elif arg == "on" and reranker is None:
        print_error("no reranker here", hint="download one (fsearch download bge-reranker-base), or start the "
                                             "prompt with --reranker MODEL or --rerank-url URL")
    else:
        state["rerank"] = state["rerank"] if not arg else arg == "on"
        which = f" ({reranker.name})" if reranker is not None else ""
        out.print(f"rerank {'on' if state['rerank'] else 'off'}{which}")


def run_repl(searcher: Searcher, k: int, mode: str | None = None, explain: bool = False,
             read_line: Callable[[str], str] = input, history_file: Path | None = None,
             min_score: float = 0.0, full: bool = False, rerank: bool = False) -> None:
    """Read queries until :quit or end of input, answering each with the top-k chunks.

    Ctrl-C at the prompt clears the line; during a query it cancels that query only (the model stays loaded).
    """
    save_history = _enable_history(history_file)
    state: dict = {"k": k, "mode": mode or searcher.default_mode, "explain": explain, "min_score": min_score,
                   "full": full, "rerank": rerank and searcher.reranker is not None, "reranker": searcher.reranker}
    reranked = f", reranked by {state['reranker'].name}" if state["rerank"] else ""
    out.print(f"[bold]fsearch[/] - {searcher.size} chunks, model {searcher.model_name}, {state['mode']} search"
              f"{reranked}. "
              "Type a question; :help for commands, :quit or Ctrl-D to leave.")
    try:
        while True:
            try:
                line = read_line(PROMPT).strip()
            except EOFError:
                out.print()
                break
            except KeyboardInterrupt:
                out.print()
                continue
            if not line:
                continue
            if line.startswith(":"):
                if not _command(line, state):
                    break
                continue
            try:
                print_result(searcher.search(line, state["k"], state["mode"], state["min_score"], state["rerank"]),
                             explain=state["explain"], full=state["full"], cut=":min")
            except FsearchError as exc:
                print_error(exc.message, exc.hint)
            except KeyboardInterrupt:
                out.print("\n[yellow]query cancelled[/]")
    finally:
        save_history()
