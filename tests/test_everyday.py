"""Small comforts of everyday use: unquoted queries, files only, the prompt's `:mode`."""

import json
from pathlib import Path

from faiss_search.cli import app


def make_kb(tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "bread.md").write_text("How to bake bread: flour, water, yeast and an oven.\n"
                                     "\nBread dough must rise for an hour.\n", encoding="utf-8")
    (folder / "panda.txt").write_text("熊猫每天吃很多竹子。\n", encoding="utf-8")
    (folder / "train.txt").write_text("高铁是城市之间最快的交通工具。\n", encoding="utf-8")
    return folder


def test_unquoted_words_are_one_query(home, runner, tmp_path):
    assert runner.invoke(app, ["index", str(make_kb(tmp_path))]).exit_code == 0
    unquoted = runner.invoke(app, ["search", "how", "to", "bake", "bread", "--json", "-k", "2"])
    quoted = runner.invoke(app, ["search", "how to bake bread", "--json", "-k", "2"])
    assert unquoted.exit_code == 0, unquoted.output
    assert json.loads(unquoted.stdout)["query"] == "how to bake bread"
    assert json.loads(unquoted.stdout)["results"] == json.loads(quoted.stdout)["results"]


def test_files_only_lists_each_matching_file_once(home, runner, tmp_path):
    folder = make_kb(tmp_path)
    assert runner.invoke(app, ["index", str(folder), "--chunk-size", "60", "--chunk-overlap", "0"]).exit_code == 0
    hits = json.loads(runner.invoke(app, ["search", "bread", "--json", "-k", "3", "--mode", "keyword"]).stdout)
    assert len(hits["results"]) == 2  # two chunks of one file
    listed = runner.invoke(app, ["search", "bread", "-l", "-k", "3", "--mode", "keyword"])
    assert listed.exit_code == 0 and listed.stdout.splitlines() == [str(folder / "bread.md")]
    many = runner.invoke(app, ["search", "熊猫 高铁 bread", "-l", "-k", "10", "--json"])
    files = json.loads(many.stdout)["files"]
    assert len(files) == len(set(files)) == 3 and files[0].endswith((".md", ".txt"))


def test_mode_alone_shows_the_current_mode(home, runner, tmp_path):
    assert runner.invoke(app, ["index", str(make_kb(tmp_path))]).exit_code == 0
    result = runner.invoke(app, ["search", "--mode", "keyword"], input=":mode\n:mode dense\n:mode\n:quit\n")
    assert result.exit_code == 0
    assert "mode keyword (one of hybrid, dense, keyword)" in result.stdout
    assert "mode dense (one of" in result.stdout


# -- what a hit shows, exit codes, scores ---------------------------------------------------------

ANSWER_ON_LINE_8 = ("# 熊猫\n大熊猫是中国特有的动物，被称为国宝，全世界都很喜欢。\n"
                    "它们主要生活在四川、陕西和甘肃的山区和竹林里。\n"
                    "野生大熊猫的数量这些年一直在慢慢增加。\n保护区里有专门的研究人员长期观察它们。\n"
                    "动物园里的熊猫常常吸引很多游客排队参观。\n它们的性格大多比较温和，喜欢独自活动。\n"
                    "大熊猫每天要花十几个小时吃竹子，一天能吃十几公斤。\n幼崽出生时只有一百克左右。\n\n"
                    "另一段：别的内容。\n")


def test_a_hit_points_at_its_best_line_with_a_short_snippet(home, runner, tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "panda.md").write_text(ANSWER_ON_LINE_8, encoding="utf-8")
    (folder / "bread.md").write_text("How to bake bread: flour, water, yeast.\n", encoding="utf-8")
    assert runner.invoke(app, ["index", str(folder)]).exit_code == 0
    found = runner.invoke(app, ["search", "熊猫一天吃多少竹子", "--json", "-k", "1"])
    hit = json.loads(found.stdout)["results"][0]
    assert (hit["line"], hit["chunk_line"]) == (8, 1)  # vim +8 opens the answer, not the chunk's heading
    assert "大熊猫每天要花十几个小时吃竹子" in hit["snippet"] and "国宝" not in hit["snippet"]
    human = runner.invoke(app, ["search", "熊猫一天吃多少竹子", "-k", "1"]).stdout
    assert f"{folder / 'panda.md'}:8" in human and "幼崽" in human and "国宝" not in human
    full = runner.invoke(app, ["search", "熊猫一天吃多少竹子", "-k", "1", "--full"]).stdout
    assert "国宝" in full and "幼崽" in full


SUBJECTS = ["大熊猫", "长城", "高铁", "绿茶", "故宫", "京剧", "围棋", "太极拳", "饺子", "月饼", "丝绸", "瓷器"]
FACTS = ["的历史可以追溯到两千多年前。", "每年吸引数百万游客前来参观。", "在南方和北方有不同的做法。",
         "需要多年的练习才能真正掌握。", "常常出现在古代的诗歌和绘画里。", "如今已经成为世界文化遗产的一部分。"]


def make_big_kb(tmp_path):
    """Enough chunks (24 lines, one chunk each, and the 4 of make_kb) for the index to fit its relevance curves."""
    folder = make_kb(tmp_path)
    lines = [f"{subject}{fact}" for subject in SUBJECTS for fact in FACTS[:2]]
    (folder / "notes.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_exit_codes_like_grep_and_a_relevance_scale_shared_by_every_mode(home, runner, tmp_path):
    assert runner.invoke(app, ["index", str(make_big_kb(tmp_path))]).exit_code == 0
    for mode in ("hybrid", "dense", "keyword"):
        found = runner.invoke(app, ["search", "how to bake bread", "--json", "--mode", mode, "--min-score", "0"])
        top = json.loads(found.stdout)["results"][0]
        assert found.exit_code == 0 and top["source"].endswith("bread.md"), mode
        assert 0.5 < top["score"] <= 1 and top["raw_score"] != top["score"], (mode, top)
    junk = runner.invoke(app, ["search", "xqzvk wplmt", "--json"])
    assert junk.exit_code == 1 and json.loads(junk.stdout)["results"] == []
    assert json.loads(junk.stdout)["below_min_score"] > 0
    said = runner.invoke(app, ["search", "xqzvk wplmt"])
    assert said.exit_code == 1 and "no good match" in said.stdout and "--min-score 0 shows them" in said.stdout
    prompt = runner.invoke(app, ["search"], input="xqzvk wplmt\n:min 0\nxqzvk wplmt\n")
    assert ":min 0 shows them" in prompt.stdout and "--min-score" not in prompt.stdout  # the prompt's own words
    assert "1. " in prompt.stdout.split("shows them")[1]  # after :min 0 the same words show their hits
    everything = runner.invoke(app, ["search", "xqzvk wplmt", "--min-score", "0", "--json"])
    assert everything.exit_code == 0 and json.loads(everything.stdout)["results"]
    assert runner.invoke(app, ["search", "bread", "--min-score", "2"]).exit_code == 2  # a usage error
    missing = runner.invoke(app, ["search", "bread", "--index-dir", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no index at" in missing.stderr


def test_a_tiny_index_shows_raw_scores_and_cuts_nothing(home, runner, tmp_path):
    assert runner.invoke(app, ["index", str(make_kb(tmp_path))]).exit_code == 0  # 4 chunks: too few to calibrate
    result = runner.invoke(app, ["search", "xqzvk wplmt", "--json"])
    answer = json.loads(result.stdout)
    assert result.exit_code == 0 and answer["results"] and not answer["calibrated"] and answer["min_score"] == 0
    assert "(hybrid score)" in runner.invoke(app, ["search", "bread"]).stdout


def test_each_line_of_a_queries_file_has_its_own_time(home, runner, tmp_path):
    assert runner.invoke(app, ["index", str(make_kb(tmp_path))]).exit_code == 0
    queries = tmp_path / "q.txt"
    queries.write_text("bread\n" + "熊猫 " * 300 + "\nxqzvk\n", encoding="utf-8")
    lines = [json.loads(line) for line in
             runner.invoke(app, ["search", "--queries", str(queries), "--json"]).stdout.splitlines()]
    took = [line["took_ms"] for line in lines]
    assert len(set(took)) == 3 and all(t > 0 for t in took)
    assert took[1] > took[0]  # the long query took longer: the times are not one average repeated


# -- the terminal: help, completion, JSON errors, tables -------------------------------------------

def test_help_shows_defaults_and_square_brackets(runner):
    def shown(*args):
        return " ".join(runner.invoke(app, [*args, "--help"]).stdout.split())

    assert "[default: 500]" in shown("index") and "[default: auto]" in shown("index")
    assert "fsearch[serve]" in shown("serve")
    assert "[default: 0.5; 0.0<=x<=1.0]" in shown("search")


def test_shell_completion_script_and_completions(tmp_path):
    import os
    import subprocess
    import sys

    # typer finds the shell from the process tree (shellingham), which a test cannot count on: named here
    script = subprocess.run([sys.executable, "-m", "faiss_search.cli", "--show-completion", "bash"],
                            capture_output=True, text=True,
                            env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.returncode == 0 and "_FSEARCH_COMPLETE" in script.stdout.upper()
    completed = subprocess.run([sys.executable, "-m", "faiss_search.cli"], capture_output=True, text=True,
                               env={**os.environ, "_FSEARCH_COMPLETE": "complete_bash", "COMP_WORDS": "fsearch se",
                                    "COMP_CWORD": "1"})
    assert {"search", "serve"} <= set(completed.stdout.split()), completed


def test_errors_are_json_with_json_and_usage_errors_exit_2(home, tmp_path):
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "faiss_search.cli", *args], capture_output=True, text=True)

    missing = run("search", "bread", "--json", "--index-dir", str(tmp_path / "none"))
    error = json.loads(missing.stdout)["error"]
    assert missing.returncode == 2 and "no index at" in error["message"] and error["hint"]
    usage = run("search", "bread", "--json", "-k", "0")
    assert usage.returncode == 2 and "-k" in json.loads(usage.stdout)["error"]["message"]
    plain = run("search", "bread", "-k", "0")
    assert plain.returncode == 2 and "Usage:" in plain.stderr and not plain.stdout


def test_tables_keep_one_line_per_row_piped_and_at_80_columns(home, runner, monkeypatch):
    from rich.console import Console
    from rich.text import Text

    from faiss_search import render
    from faiss_search.evaluation import EvalRow

    piped = runner.invoke(app, ["models"]).stdout.splitlines()
    rows = [line for line in piped if line.startswith(("multilingual-e5-small-q4 ", "bge-m3 ", "all-MiniLM"))]
    assert len(rows) == 3 and "bundled" in rows[0] and "8192" in rows[1]
    narrow = Console(width=80, force_terminal=True, highlight=False, soft_wrap=True)
    monkeypatch.setattr(render, "out", narrow)
    with narrow.capture() as captured:
        render.print_models([{"alias": "BAAI/bge-large-zh-v1.5-and-a-long-name", "kind": "embedding", "dim": 1024,
                              "languages": ["zh"], "size_mb": 1300, "max_tokens": 512, "downloaded": True,
                              "path": "/x"}] * 2, Path("/m"))
    lines = [Text.from_ansi(line).plain for line in captured.get().splitlines()]
    rows = [line for line in lines if "1024" in line]
    assert len(rows) == 2 and "1300 MB" in rows[0] and all(len(line) <= 80 for line in lines)
    metrics = {"recall@1": 97.79, "recall@5": 99.84, "recall@10": 99.94, "MRR@10": 98.75, "nDCG@10": 99.05}
    with narrow.capture() as captured:
        render.print_eval("cmrc2018-dev", [EvalRow("multilingual-e5-small-q4", "keyword", metrics, 3219, 848, 2700,
                                                   364.2, 120.0, False)])
    lines = [Text.from_ansi(line).plain for line in captured.get().splitlines()]
    assert "97.79  99.84  99.94  98.75  99.05    364.2    120" in lines[-1] and all(len(line) <= 80 for line in lines)
    reranked = EvalRow("multilingual-e5-small-q4", "hybrid+rerank", metrics, 3219, 848, 2700, 364.2, 0.3, True,
                       reranker="bge-reranker-base", rerank_ms={"p50": 3093.0, "p95": 3410.0})
    with narrow.capture() as captured:
        render.print_eval("cmrc2018-dev", [reranked])
    lines = [Text.from_ansi(line).plain for line in captured.get().splitlines()]
    rows = [line for line in lines if "hybrid+rerank " in line]
    assert len(rows) == 1 and "97.79" in rows[0] and all(len(line) <= 80 for line in lines), lines
    assert lines[-1] == "hybrid+rerank: bge-reranker-base added 3093 ms to a query (p50), 3410 ms (p95)"


def test_download_bar_leaves_an_unknown_total_unknown():
    from faiss_search.render import DownloadBar

    bar = DownloadBar(disable=True)
    bar.add_total(0)  # a hub that does not report sizes
    bar.advance(58_568_453)
    assert bar.progress.tasks[0].total is None
    bar.add_total(100)
    assert bar.progress.tasks[0].total == 100


def test_models_lists_a_model_downloaded_by_repo_id(home, runner):
    folder = home / "models" / "someone--tiny-zh"
    folder.mkdir(parents=True)
    (folder / "fsearch-model.json").write_text(json.dumps({"alias": None, "repo_id": "someone/tiny-zh", "dim": 64,
                                                           "files": {}}), encoding="utf-8")
    rows = json.loads(runner.invoke(app, ["models", "--json"]).stdout)["models"]
    mine = [row for row in rows if row["alias"] == "someone/tiny-zh"]
    assert mine and mine[0]["downloaded"] and mine[0]["dim"] == 64 and mine[0]["path"] == str(folder)
    assert "someone/tiny-zh" in runner.invoke(app, ["models"]).stdout


def test_indexing_names_its_phases(home, tmp_path, fake_embedder):
    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_path

    phases = []
    index_path(make_kb(tmp_path), load_settings(), fake_embedder, on_phase=phases.append)
    assert phases == ["reading files", "loading model", "embedding", "calibrating", "saving"]


# -- the prompt: Ctrl-C cancels the query, not the session ---------------------------------------

def test_ctrl_c_during_a_query_cancels_only_that_query(home, runner, tmp_path, fake_embedder, capsys):
    from faiss_search.config import load_settings
    from faiss_search.indexing.pipeline import index_path
    from faiss_search.repl import run_repl
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores import open_reader as open_index

    index_path(make_kb(tmp_path), load_settings(), fake_embedder)
    searcher = Searcher(open_index(home / "index"), fake_embedder)
    real_rank, calls = searcher._rank, []

    def interrupted_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise KeyboardInterrupt  # the user pressed Ctrl-C while the first query ran
        return real_rank(*args)

    searcher._rank = interrupted_once
    lines = iter(["熊猫", "bread", ":quit"])
    run_repl(searcher, 2, read_line=lambda prompt: next(lines))
    shown = capsys.readouterr().out
    assert "query cancelled" in shown and "bread.md" in shown and len(calls) == 2


def test_ctrl_c_in_a_real_terminal_keeps_the_prompt(home, tmp_path):
    """Through a pty: a query waiting on a slow embedding server is cancelled by Ctrl-C; the next one answers."""
    import fcntl
    import hashlib
    import os
    import pty
    import select
    import signal
    import subprocess
    import sys
    import termios
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from .servers import free_port

    asked_slowly, finished = threading.Event(), threading.Event()

    class Embeddings(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            if any("slow" in text for text in texts):
                asked_slowly.set()
                finished.wait(30)  # an answer nobody waits for any more: the prompt cancelled it
            data = [{"object": "embedding", "index": i,
                     "embedding": [b / 255 + 0.01 for b in hashlib.sha256(t.encode()).digest()[:8]]}
                    for i, t in enumerate(texts)]
            payload = json.dumps({"object": "list", "data": data, "model": "m"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # the cancelled query's client is gone; a traceback here would land in a later test's output

    server = Server(("127.0.0.1", free_port()), Embeddings)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {**os.environ, "FSEARCH_HOME": str(home)}
    base = [sys.executable, "-m", "faiss_search.cli"]
    assert subprocess.run([*base, "index", str(make_kb(tmp_path)), "--embedder", "openai", "--model", "m",
                           "--base-url", url], env=env, capture_output=True).returncode == 0
    leader, follower = pty.openpty()
    def own_terminal():  # a session whose controlling terminal is the pty, so ^C becomes SIGINT
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a shell starts it, whatever the test runner ignores

    process = subprocess.Popen([*base, "search", "--base-url", url, "--mode", "dense"], stdin=follower,
                               stdout=follower, stderr=follower, env=env, preexec_fn=own_terminal)
    os.close(follower)
    seen = b""

    def read_until(marker: bytes, seconds: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + seconds
        while marker not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                seen += os.read(leader, 4096)
        assert marker in seen, seen.decode(errors="replace")

    try:
        read_until(b"fsearch> ")
        os.write(leader, b"a slow question\n")
        assert asked_slowly.wait(30)  # the query is waiting on the server now
        time.sleep(0.2)
        os.write(leader, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the prompt
        read_until(b"query cancelled", 10)  # at once, not when the server finally answers
        os.write(leader, b"bread\n")
        read_until(b"results in")
        os.write(leader, b":quit\n")
        assert process.wait(20) == 0
    finally:
        finished.set()
        process.kill()
        os.close(leader)
        server.shutdown()
