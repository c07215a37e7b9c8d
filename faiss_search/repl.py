"""The interactive prompt: the model and index stay loaded while the user asks question after question."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .errors import FsearchError
from .render import out, print_error, print_result
from .search import MODES, Searcher

HELP = """Type a question (Chinese or English) and press Enter.
  :k N        show N results per query
  :mode M     hybrid, dense or keyword (:mode alone shows the current one)
  :explain    show (or hide) each result's dense and keyword rank and the fusion weights
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
    elif name == "explain":
        state["explain"] = not state["explain"]
        out.print(f"explain {'on' if state['explain'] else 'off'}")
    elif name == "k":
        if arg.strip().isdigit() and int(arg) >= 1:
            state["k"] = int(arg)
            out.print(f"showing {state['k']} results")
        else:
            print_error(f"`:k` needs a whole number of at least 1, got {arg.strip() or 'nothing'}")
    else:
        print_error(f"unknown command :{name}", hint="type :help")
    return True


def run_repl(searcher: Searcher, k: int, mode: str | None = None, explain: bool = False,
             read_line: Callable[[str], str] = input, history_file: Path | None = None) -> None:
    """Read queries until :quit or end of input, answering each with the top-k chunks."""
    save_history = _enable_history(history_file)
    state: dict = {"k": k, "mode": mode or searcher.default_mode, "explain": explain}
    out.print(f"[bold]fsearch[/] - {searcher.size} chunks, model {searcher.model_name}, {state['mode']} search. "
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
                print_result(searcher.search(line, state["k"], state["mode"]), explain=state["explain"])
            except FsearchError as exc:
                print_error(exc.message, exc.hint)
    finally:
        save_history()
