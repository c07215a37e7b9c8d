"""Hostile input: every case is indexed correctly or skipped with a count, never a crash."""

import json
import os
from collections import Counter
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from faiss_search import documents
from faiss_search.chunking import chunk_text
from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.errors import NotText
from faiss_search.formats.text import decode
from faiss_search.indexing import candidates, pipeline
from faiss_search.indexing.discovery import discover
from faiss_search.indexing.pipeline import index_path
from faiss_search.retrieval.search import MAX_QUERY_CHARS, clean_query


def index_json(runner, path, *extra):
    result = runner.invoke(app, ["index", str(path), "--json", *extra])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return json.loads(result.stdout)


def texts(runner, query="x", k=50, mode="keyword"):
    out = runner.invoke(app, ["search", query, "--json", "-k", str(k), "--mode", mode]).stdout
    return [hit["text"] for hit in json.loads(out)["results"]]


def test_invalid_utf8_in_the_middle_keeps_the_rest(home, runner, tmp_path):
    good = "中文内容很好，后面还有更多文字。".encode()
    (tmp_path / "bad.txt").write_bytes(good * 10 + b"\xff\xfe\xfa" + "坏字节之后的熊猫段落。".encode() * 10)
    report = index_json(runner, tmp_path / "bad.txt")
    assert report["files_added"] == 1
    assert any("坏字节之后的熊猫段落" in t for t in texts(runner, "熊猫段落"))


def test_mixed_encodings_in_one_file(home, runner, tmp_path):
    data = "第一行是UTF-8的熊猫。\n".encode() + "第二行是GBK的长城。\n".encode("gbk")
    (tmp_path / "mixed.txt").write_bytes(data)
    index_json(runner, tmp_path / "mixed.txt")
    assert texts(runner, "长城") == ["第二行是GBK的长城。"]


def test_nul_bytes_mean_binary_and_are_counted(home, runner, tmp_path):
    (tmp_path / "ok.txt").write_text("fine text\n")
    (tmp_path / "nul.txt").write_bytes(b"text\x00with\x00nuls" * 100)
    report = index_json(runner, tmp_path)
    assert report["skipped"] == {"binary": 1} and report["total_files"] == 1


def test_a_huge_file_is_skipped_without_reading_it(home, runner, tmp_path, monkeypatch):
    monkeypatch.setenv("FSEARCH_MAX_FILE_MB", "1")
    (tmp_path / "small.txt").write_text("small\n")
    with (tmp_path / "huge.txt").open("wb") as fh:  # a 3 MB single line
        fh.write(b"a" * (3 * 1024 * 1024))
    reads = []
    original = candidates.read_document
    monkeypatch.setattr(candidates, "read_document", lambda p, *a: reads.append(p.name) or original(p, *a))
    report = index_json(runner, tmp_path)
    assert report["skipped"] == {"larger than 1 MB": 1} and reads == ["small.txt"]


def test_a_very_long_line_is_split_within_the_chunk_size(home, tmp_path, fake_embedder):
    line = "".join(f"第{i}句话讲一件事。" for i in range(20000))  # ~180,000 characters, no newline
    (tmp_path / "long.txt").write_text(line, encoding="utf-8")
    report = index_path(tmp_path / "long.txt", load_settings(), fake_embedder)
    assert report.total_chunks > 300
    assert all(len(c.text) <= 500 for c in chunk_text(line, 500, 50))


def test_deep_trees_symlink_loops_and_odd_names(home, runner, tmp_path):
    root = tmp_path / "tree"
    deep = root
    for level in range(150):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("在最深处的熊猫文件。\n", encoding="utf-8")
    os.symlink(root, root / "loop")  # a folder that contains itself
    os.symlink(root / "self.txt", root / "self.txt")  # a file that points at itself
    os.symlink(root / "missing.txt", root / "dangling.txt")
    for name in ("with space.txt", "中文 文件名.md", "odd#$%&'()[]{}!.txt", "-dash.txt"):
        (root / name).write_text(f"内容：{name}\n", encoding="utf-8")
    report = index_json(runner, root)
    assert report["total_files"] == 5
    assert report["skipped"] == {"not a regular file": 2, "symlinked folder": 1}  # the self-link and the dangling one
    sources = json.loads(runner.invoke(app, ["search", "内容", "--json", "-k", "10", "--mode", "keyword"])
                         .stdout)["results"]
    assert {Path(hit["source"]).name for hit in sources} >= {"with space.txt", "中文 文件名.md"}


def test_unreadable_and_vanishing_files_are_counted(home, tmp_path, fake_embedder, monkeypatch):
    for name in ("a.txt", "locked.txt", "gone.txt"):
        (tmp_path / name).write_text(f"{name} text\n")
    original_read = documents.read_regular_file

    def read_regular_file(path, *args):
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return original_read(path, *args)

    monkeypatch.setattr(documents, "read_regular_file", read_regular_file)
    original_discover = pipeline.discover

    def discover_then_delete(path, filters):
        found = original_discover(path, filters)
        (tmp_path / "gone.txt").unlink()  # vanishes between the folder walk and reading
        return found

    monkeypatch.setattr(pipeline, "discover", discover_then_delete)
    report = index_path(tmp_path, load_settings(), fake_embedder)
    assert report.total_files == 1 and report.skipped.counts == Counter({"unreadable": 2})


def test_a_file_that_changes_during_indexing_is_picked_up_next_time(home, tmp_path, fake_embedder, monkeypatch):
    target = tmp_path / "moving.txt"
    target.write_text("first version\n")
    original = candidates.read_document

    def read_after_change(path, *args):
        doc = original(path, *args)
        path.write_text("second version, written while indexing\n")
        return doc

    monkeypatch.setattr(candidates, "read_document", read_after_change)
    index_path(tmp_path, load_settings(), fake_embedder)
    monkeypatch.setattr(candidates, "read_document", original)
    report = index_path(tmp_path, load_settings(), fake_embedder)
    assert report.files_changed == 1


def test_hostile_queries(sample_indexed, runner):
    long = runner.invoke(app, ["search", "熊猫" * 5000, "--json"])
    assert long.exit_code == 0 and json.loads(long.stdout)["results"]
    assert len(clean_query("字" * 10000)) == MAX_QUERY_CHARS
    controls = runner.invoke(app, ["search", "熊猫\x00\x1b[31m\x07吃什么\r\n", "--json"])
    assert controls.exit_code == 0 and json.loads(controls.stdout)["query"] == "熊猫 [31m 吃什么"
    empty = runner.invoke(app, ["search", "\x00\x01 \t"])
    assert empty.exit_code == 2 and "empty query" in empty.stderr
    repl = runner.invoke(app, ["search"], input="\x00\x01\n" + "长" * 20000 + "\n:quit\n")
    assert repl.exit_code == 0 and "Traceback" not in repl.output


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
@example(b"\x00\x01" * 64)  # looked like UTF-16 without a BOM: binary, not text
@example("中文".encode() + b"\xff" + "中文".encode())  # one corrupt byte in UTF-8 Chinese
@example(b"\xef\xbb\xbf")  # a BOM and nothing else
def test_decode_never_fails_unexpectedly(data):
    try:
        text, encoding = decode(data)
    except NotText:
        return
    assert isinstance(text, str) and encoding
    chunks = chunk_text(text.replace("\r\n", "\n"), 50, 10)
    assert all(0 < len(c.text) <= 50 for c in chunks)


def test_discover_on_a_file_and_on_missing_paths(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00")
    assert discover(tmp_path / "x.bin").files == [tmp_path / "x.bin"]
