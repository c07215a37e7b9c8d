"""Crash safety, one writer at a time, and `fsearch doctor`."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faiss_search.cli import app
from faiss_search.retrieval.search import open_searcher
from faiss_search.stores.faults import WRITE_POINTS
from faiss_search.stores.local.locking import WriterLock
from faiss_search.stores.local.reader import IndexReader

from .conftest import FSEARCH_CLI, built_once

FSEARCH = FSEARCH_CLI
TOPICS = ["火车", "茶叶", "熊猫", "长城", "信用卡", "跑步", "面包", "咖啡", "电脑", "医院", "足球", "钢琴", "雨伞"]


def make_folder(root: Path, n: int = 260) -> Path:
    folder = root / "docs"
    folder.mkdir()
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        (folder / f"doc{i:03d}.txt").write_text(f"第{i}篇：关于{topic}的笔记，编号{i}。\n", encoding="utf-8")
    return folder


def update_folder(folder: Path, n: int = 20) -> None:
    """Appends to n files and adds n: every old chunk's text stays in its source file."""
    for i in range(n):
        with (folder / f"doc{i:03d}.txt").open("a", encoding="utf-8") as fh:
            fh.write(f"补充：第{i}篇新增了一行关于{TOPICS[(i + 3) % len(TOPICS)]}的内容。\n")
        (folder / f"new{i:03d}.txt").write_text(f"新文件{i}讲的是{TOPICS[(i + 5) % len(TOPICS)]}。\n", encoding="utf-8")


def cli(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*FSEARCH, *args], env=env, capture_output=True, text=True, **kwargs)


def assert_consistent(index_dir: Path, home: Path) -> int:
    """Counts agree everywhere, and every hit's text is in its source file, in every mode."""
    reader = IndexReader(index_dir)
    chunks = reader.manifest.counts.chunks
    conn = sqlite3.connect(index_dir / "chunks.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == chunks == reader.index.ntotal
    assert conn.execute("SELECT COUNT(*) FROM chunk_terms").fetchone()[0] == chunks
    assert json.loads((index_dir / "manifest.json").read_text())["generation"] <= reader.manifest.generation
    searcher = open_searcher(index_dir, home / "models")
    for mode in ("hybrid", "dense", "keyword"):
        for query in ("熊猫的笔记", "新增了一行关于咖啡的内容", "新文件讲的是钢琴"):
            for hit in searcher.search(query, 5, mode).hits:
                assert hit.text in Path(hit.source).read_text(encoding="utf-8"), (mode, hit)
    return chunks


@pytest.fixture
def env(home):
    return {**os.environ, "FSEARCH_HOME": str(home)}


def test_the_shipped_program_has_no_kill_switch(tmp_path, env):
    """FSEARCH_CRASH_AT stops only the tests' own entry point: faults.py's points do nothing by themselves."""
    folder = make_folder(tmp_path, 3)
    code = ("import os, sys; from pathlib import Path; from tests.conftest import FakeEmbedder; "
            "from faiss_search.config import load_settings; from faiss_search.stores.faults import WRITE_POINTS; "
            "from faiss_search.indexing.pipeline import index_path\n"
            "for step in WRITE_POINTS:\n"
            "    os.environ['FSEARCH_CRASH_AT'] = step\n"
            "    settings = load_settings(index_dir=Path(sys.argv[2]) / step)\n"
            "    print(index_path(Path(sys.argv[1]), settings, FakeEmbedder()).total_chunks)")
    built = subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "indexes")], env=env,
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert built.returncode == 0 and built.stdout.split() == ["3"] * len(WRITE_POINTS), built.stderr


def test_kill_at_every_write_step_leaves_the_old_or_the_new_index(home, tmp_path, env):
    folder = make_folder(tmp_path, 12)  # small, to keep the run short: the steps are the point
    assert cli(env, "index", str(folder)).returncode == 0
    index_dir = home / "index"
    snapshot = tmp_path / "snapshot"
    shutil.copytree(index_dir, snapshot)
    old = assert_consistent(index_dir, home)
    update_folder(folder, 5)
    added = 10
    for step in WRITE_POINTS:
        shutil.rmtree(index_dir)
        shutil.copytree(snapshot, index_dir)
        killed = cli({**env, "FSEARCH_CRASH_AT": step}, "index", str(folder))
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr)
        chunks = assert_consistent(index_dir, home)
        assert chunks in (old, old + added), step
        assert (chunks == old + added) == (step in ("after-commit", "after-manifest")), step
        finished = cli(env, "index", str(folder), "--json")
        assert finished.returncode == 0, finished.stderr
        assert assert_consistent(index_dir, home) == old + added
        live = IndexReader(index_dir).manifest.generation
        assert sorted(p.name for p in index_dir.glob("vectors-*")) == [f"vectors-{live}.faiss"]
    fresh = cli(env, "index", str(folder), "--index-dir", str(tmp_path / "fresh"), "--json")
    assert json.loads(fresh.stdout)["total_chunks"] == old + added


@pytest.mark.slow
def test_kill_at_random_moments(home, tmp_path, env):
    folder = make_folder(tmp_path)
    assert cli(env, "index", str(folder)).returncode == 0
    for i in range(12):
        update_folder(folder) if i == 0 else (folder / f"late{i}.txt").write_text(f"后来加的第{i}个文件。\n")
        process = subprocess.Popen([*FSEARCH, "index", str(folder)], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(0.3 + 0.35 * i)
        process.kill()
        process.wait()
        assert_consistent(home / "index", home)
    assert cli(env, "index", str(folder)).returncode == 0
    assert_consistent(home / "index", home)


def test_two_writers_at_once(home, tmp_path, env):
    folder = make_folder(tmp_path, 60)
    processes = [subprocess.Popen([*FSEARCH, "index", str(folder), "--json"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in processes]
    for _, err, code in results:
        assert code == 0 and "Traceback" not in err, err
    reports = [json.loads(out) for out, _, _ in results]
    assert sorted(r["files_added"] for r in reports) == [0, 60]  # the second one waited, then found it done
    assert assert_consistent(home / "index", home) == 60


def test_a_busy_index_waits_or_fails_with_no_wait(home, tmp_path, env):
    folder = make_folder(tmp_path, 5)
    index_dir = home / "index"
    with WriterLock(index_dir):
        refused = cli(env, "index", str(folder), "--no-wait")
        assert refused.returncode == 2 and f"another fsearch (pid {os.getpid()}) is updating" in refused.stderr
        waiting = subprocess.Popen([*FSEARCH, "index", str(folder)], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert waiting.poll() is None
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and f"waiting for fsearch pid {os.getpid()}" in err


def test_a_stale_lock_of_a_dead_process_is_taken_over(home, tmp_path, runner):
    folder = make_folder(tmp_path, 5)
    (home / "index").mkdir(parents=True)
    (home / "index" / "writer.lock").write_text("999999")
    assert runner.invoke(app, ["index", str(folder)]).exit_code == 0
    assert (home / "index" / "writer.lock").read_text() == ""


def test_readers_never_wait_for_a_writer(home, tmp_path, runner):
    folder = make_folder(tmp_path, 5)
    assert runner.invoke(app, ["index", str(folder)]).exit_code == 0
    with WriterLock(home / "index"):
        result = runner.invoke(app, ["search", "熊猫", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["results"]


# -- doctor ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def thirty_documents_index(tmp_path_factory):
    return built_once(tmp_path_factory, "thirty", str(make_folder(tmp_path_factory.mktemp("docs"), 30)))


@pytest.fixture
def indexed(home, thirty_documents_index):
    """30 documents indexed (embedded once per module; each test gets its own copy)."""
    shutil.copytree(thirty_documents_index, home / "index")
    return home / "index"


def doctor(runner, *args):
    result = runner.invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def test_doctor_on_a_healthy_index(indexed, runner):
    code, report = doctor(runner)
    assert code == 0 and report["healthy"] and report["chunks"] == 30
    assert "is consistent" in runner.invoke(app, ["doctor"]).stdout


def test_doctor_repairs_the_keyword_index(indexed, runner):
    conn = sqlite3.connect(indexed / "chunks.sqlite")
    conn.execute("DELETE FROM chunk_terms WHERE rowid IN (SELECT rowid FROM chunk_terms LIMIT 7)")
    conn.commit()
    conn.close()
    code, report = doctor(runner)
    assert code == 1 and any("misses 7 chunk(s)" in p for p in report["problems"])
    code, report = doctor(runner, "--repair")
    assert code == 0 and report["healthy"] and any("keyword index" in a for a in report["repaired"])
    assert len(json.loads(runner.invoke(app, ["search", "熊猫", "--mode", "keyword", "--json", "-k", "30"])
                          .stdout)["results"]) == 3


def test_doctor_rebuilds_damaged_vectors(indexed, runner):
    vectors = next(indexed.glob("vectors-*.faiss"))
    data = bytearray(vectors.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte: readable, but no longer what was written
    vectors.write_bytes(bytes(data))
    code, report = doctor(runner)
    assert code == 1 and any("checksum" in p for p in report["problems"])
    vectors.write_bytes(bytes(data[:200]))  # and now truncated: search refuses it cleanly
    result = runner.invoke(app, ["search", "熊猫"])
    assert result.exit_code == 2 and "doctor --repair" in result.stderr
    code, report = doctor(runner, "--repair")
    assert code == 0 and any("rebuilt the damaged vectors file from 30 chunk texts" in a for a in report["repaired"])
    top = json.loads(runner.invoke(app, ["search", "关于熊猫的笔记", "--mode", "dense", "--json"]).stdout)
    assert "熊猫" in top["results"][0]["text"]


def test_doctor_cleans_leftovers_and_a_stale_manifest(indexed, runner):
    (indexed / "vectors-99.faiss.tmp").write_bytes(b"half")
    manifest = json.loads((indexed / "manifest.json").read_text())
    (indexed / "manifest.json").write_text(json.dumps({**manifest, "generation": 0}))
    code, report = doctor(runner)
    assert code == 1 and len(report["problems"]) == 2
    code, report = doctor(runner, "--repair")
    assert code == 0 and not (indexed / "vectors-99.faiss.tmp").exists()


def test_doctor_on_a_damaged_sidecar_says_rebuild(indexed, runner):
    (indexed / "chunks.sqlite").write_bytes(b"garbage" * 1000)
    for name in ("chunks.sqlite-wal", "chunks.sqlite-shm"):
        (indexed / name).unlink(missing_ok=True)
    result = runner.invoke(app, ["doctor", "--repair"])
    assert result.exit_code == 2 and "--rebuild" in result.stderr and "Traceback" not in result.output
