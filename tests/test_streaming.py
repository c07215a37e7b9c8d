"""Big first builds: the pipeline streams, commits as it goes, and a killed or interrupted build resumes."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from faiss_search.config import load_settings
from faiss_search.indexing import encoding, reading, stream
from faiss_search.indexing.pipeline import index_path
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import committed_manifest
from faiss_search.stores.local import vectors
from faiss_search.stores.local.reader import IndexReader

from .conftest import FakeEmbedder
from .stream_driver import text_hash

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["火车", "茶叶", "熊猫", "长城", "信用卡", "跑步", "面包", "咖啡", "电脑", "医院", "足球", "钢琴"]


def make_corpus(root: Path, files: int = 30, lines: int = 4) -> Path:
    """Files of unique paragraphs; with chunk_size 40, each paragraph is one chunk."""
    folder = root / "kb"
    folder.mkdir(parents=True)
    for f in range(files):
        text = "".join(f"第{f}篇第{i}段讲{TOPICS[(f + i) % len(TOPICS)]}的事情，每一段的内容都不一样。\n\n"
                       for i in range(lines))
        (folder / f"doc{f:03d}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def small_windows(monkeypatch):
    """Windows of 8 chunks, and commits as often as asked however cheap the build."""
    monkeypatch.setattr(encoding, "EMBED_WINDOW", 8)
    monkeypatch.setattr(stream, "COMMIT_TIME_SHARE", 1e9)


def settings_for(index_dir: Path, **changes):
    return replace(load_settings(index_dir=index_dir), chunk_size=40, chunk_overlap=0, **changes)


class Interrupting(FakeEmbedder):
    """Ctrl-C after ``calls`` encode calls; counts every text it embeds."""

    def __init__(self, calls: int | None = None) -> None:
        super().__init__()
        self.calls, self.embedded = calls, []

    def encode_passages(self, texts):
        if self.calls is not None:
            if self.calls == 0:
                raise KeyboardInterrupt
            self.calls -= 1
        self.embedded += texts
        return super().encode_passages(texts)

    def encode_queries(self, texts):  # the calibration's probes: not chunks
        return FakeEmbedder.encode_passages(self, texts)


def contents(index_dir: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(index_dir / "chunks.sqlite")
    try:
        return set(conn.execute("SELECT f.path, c.text FROM chunks c JOIN files f ON f.id = c.file_id"))
    finally:
        conn.close()


def hits(index_dir: Path) -> list:
    searcher = Searcher(IndexReader(index_dir), FakeEmbedder())
    return [[(h.source, h.text) for h in searcher.search(q, 5, mode).hits]
            for q in ("熊猫的事情", "第3篇第1段", "咖啡") for mode in ("dense", "keyword")]


def assert_consistent(index_dir: Path) -> int:
    """The committed rows, keyword rows and vectors agree, and every chunk's text is in its file."""
    reader = IndexReader(index_dir)
    with reader.snapshot():
        count = reader.manifest.counts.chunks
        assert reader.index.ntotal == count
        assert reader._conn.execute("SELECT COUNT(*) FROM chunk_terms").fetchone()[0] == count
    reader.close()
    for source, text in contents(index_dir):
        if Path(source).exists():  # a deleted file leaves the index at the end of the next complete run
            assert text in Path(source).read_text(encoding="utf-8")
    return count


def test_a_long_build_commits_as_it_goes_and_a_reader_follows(home, tmp_path, small_windows):
    folder = make_corpus(tmp_path)
    index_dir = tmp_path / "index"
    seen: list[tuple[int, int]] = []
    reader: list[IndexReader] = []

    def watch(progress):
        manifest = committed_manifest(index_dir)
        if manifest is None:
            return
        if not reader:
            reader.append(IndexReader(index_dir))  # opened mid-build, on the first commit
        with reader[0].snapshot() as view:
            seen.append((view.manifest.generation, view.index.ntotal))
            assert view.index.ntotal == view.manifest.counts.chunks
            assert view.manifest.build is not None  # unfinished: the next run would resume it

    report = index_path(folder, settings_for(index_dir, commit_every_chunks=20), FakeEmbedder(), progress=watch)
    assert report.commits >= 5 and report.total_chunks == 120
    generations = sorted(set(seen))
    assert len(generations) >= 4 and generations == sorted(generations, key=lambda g: g[1])  # growing
    assert sum(0 < chunks < 120 for _, chunks in generations) >= 4
    assert committed_manifest(index_dir).build is None
    with reader[0].snapshot() as view:  # the reader left open sees the finished index
        assert view.index.ntotal == 120 and view.manifest.build is None


def test_progress_counts_files_and_chunks_with_a_total_and_a_rate(home, tmp_path, small_windows):
    folder = make_corpus(tmp_path)
    updates = []
    index_path(folder, settings_for(tmp_path / "index"), FakeEmbedder(),
               progress=lambda p: updates.append((p.files_done, p.files_total, p.chunks_done, p.chunks_total,
                                                  p.eta_seconds)))
    assert updates[-1][:4] == (30, 30, 120, 120)
    assert all(done <= total for _, _, done, total, _ in updates)
    assert [u[2] for u in updates] == sorted(u[2] for u in updates)  # never goes back
    assert any(eta is not None and eta >= 0 for *_, eta in updates[:-1])


@pytest.mark.parametrize("rebuild", [False, True])
def test_an_interrupted_build_resumes_and_embeds_only_the_rest(home, tmp_path, small_windows, rebuild):
    folder = make_corpus(tmp_path)
    index_dir = tmp_path / "index"
    settings = settings_for(index_dir, commit_every_chunks=16)
    first = Interrupting(calls=7)
    with pytest.raises(KeyboardInterrupt):
        index_path(folder, settings, first, rebuild=rebuild)
    committed = assert_consistent(index_dir)
    assert 0 < committed < 120
    kept = {text for _, text in contents(index_dir)}
    second = Interrupting()
    report = index_path(folder, settings, second, rebuild=rebuild)
    assert report.resumed and report.files_unchanged == committed // 4
    assert not kept & set(second.embedded)  # nothing committed was embedded again
    assert len(second.embedded) == 120 - committed
    clean = tmp_path / "clean"
    index_path(folder, settings_for(clean), FakeEmbedder())
    assert contents(index_dir) == contents(clean) and hits(index_dir) == hits(clean)
    again = index_path(folder, settings, Interrupting(), rebuild=True)  # a finished index: --rebuild starts afresh
    assert not again.resumed and again.files_added == 30


def test_an_interrupted_update_keeps_files_it_has_not_reached_and_removes_gone_ones_at_the_end(
        home, tmp_path, small_windows):
    folder = make_corpus(tmp_path)
    index_dir = tmp_path / "index"
    settings = settings_for(index_dir, commit_every_chunks=8)
    index_path(folder, settings, FakeEmbedder())
    (folder / "doc029.txt").unlink()
    for f in range(20):
        path = folder / f"doc{f:03d}.txt"
        path.write_text(path.read_text(encoding="utf-8") + "补充的一段新内容。\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        index_path(folder, settings, Interrupting(calls=3))
    assert assert_consistent(index_dir) > 0
    sources = {Path(s).name for s, _ in contents(index_dir)}
    assert "doc029.txt" in sources and len(sources) == 30  # every file whole, in its old or new version
    report = index_path(folder, settings, FakeEmbedder())
    assert report.files_removed == 1
    clean = tmp_path / "clean"
    index_path(folder, settings_for(clean), FakeEmbedder())
    assert assert_consistent(index_dir) == assert_consistent(clean) and contents(index_dir) == contents(clean)


def test_ivf_is_trained_when_the_build_is_complete(home, tmp_path, small_windows, monkeypatch):
    monkeypatch.setattr(vectors, "IVF_MIN_CHUNKS", 600)
    folder = make_corpus(tmp_path, files=200, lines=4)
    index_dir = tmp_path / "index"
    settings = settings_for(index_dir, commit_every_chunks=200)
    with pytest.raises(KeyboardInterrupt):
        index_path(folder, settings, Interrupting(calls=60), index_type="ivf")
    manifest = committed_manifest(index_dir)
    assert manifest.vectors["type"] == "flat" and manifest.build == {"index_type": "ivf"}
    report = index_path(folder, settings, FakeEmbedder())  # resumed with the default index type
    assert report.resumed and report.vectors["type"] == "ivf" and report.total_chunks == 800
    assert assert_consistent(index_dir) == 800
    reader = IndexReader(index_dir)
    text = "第5篇第2段讲咖啡的事情，每一段的内容都不一样。"
    best = reader.dense_search(FakeEmbedder().encode_passages([text]), 1)[0][0][0]
    assert reader.fetch([best])[best].text == text


def test_auto_becomes_ivf_only_past_the_threshold(home, tmp_path, small_windows, monkeypatch):
    monkeypatch.setattr(vectors, "AUTO_IVF_ABOVE", 700)
    monkeypatch.setattr(vectors, "IVF_MIN_CHUNKS", 600)
    big, small = make_corpus(tmp_path / "a", files=200), make_corpus(tmp_path / "b", files=100)
    assert index_path(big, settings_for(tmp_path / "big", commit_every_chunks=100),
                      FakeEmbedder()).vectors["type"] == "ivf"
    assert index_path(small, settings_for(tmp_path / "small"), FakeEmbedder()).vectors["type"] == "flat"


def driver(folder: Path, index_dir: Path, log: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.stream_driver", str(folder), str(index_dir),
                             "--log", str(log), "--window", "8", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def embedded(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_killed_build_resumes_from_its_last_commit(home, tmp_path):
    folder = make_corpus(tmp_path)
    index_dir, log = tmp_path / "index", tmp_path / "embedded.log"
    env = {**os.environ, "FSEARCH_HOME": str(home), "FSEARCH_CHUNK_SIZE": "40", "FSEARCH_CHUNK_OVERLAP": "0",
           "FSEARCH_COMMIT_EVERY_CHUNKS": "16"}
    killed = driver(folder, index_dir, log, {**env, "FSEARCH_CRASH_AT": "after-commit"})
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    committed = {text_hash(t) for _, t in contents(index_dir)}
    assert 0 < assert_consistent(index_dir) < 120
    log.write_text("")
    finished = driver(folder, index_dir, log, env)
    out, err = finished.communicate()
    assert finished.returncode == 0, err
    assert json.loads(out)["resumed"]
    assert not committed & set(embedded(log)) and len(embedded(log)) == 120 - len(committed)
    clean = tmp_path / "clean"
    index_path(folder, settings_for(clean), FakeEmbedder())
    assert contents(index_dir) == contents(clean) and hits(index_dir) == hits(clean)


def test_status_names_an_interrupted_build(home, tmp_path, small_windows, runner):
    from faiss_search.cli import app

    folder = make_corpus(tmp_path)
    settings = settings_for(home / "index", commit_every_chunks=16)
    with pytest.raises(KeyboardInterrupt):
        index_path(folder, settings, Interrupting(calls=7))
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0 and json.loads(status.stdout)["build"] == "interrupted"
    assert "run the same `fsearch index` again" in runner.invoke(app, ["status"]).stdout
    index_path(folder, settings, FakeEmbedder())
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout)["build"] == "complete"


@pytest.mark.slow
def test_kills_at_random_moments_always_resume_to_the_clean_build(home, tmp_path):
    """12 builds killed at random moments: each re-run resumes, embeds nothing already committed,
    and the finished index equals a clean build."""
    import random

    folder = make_corpus(tmp_path, files=120)
    index_dir, log = tmp_path / "index", tmp_path / "embedded.log"
    env = {**os.environ, "FSEARCH_HOME": str(home), "FSEARCH_CHUNK_SIZE": "40", "FSEARCH_CHUNK_OVERLAP": "0",
           "FSEARCH_COMMIT_EVERY_CHUNKS": "24"}
    rng = random.Random(7)
    committed: set[str] = set()
    kills = 0
    for trial in range(12):
        log.write_text("")
        process = driver(folder, index_dir, log, env, "--delay", "0.3")  # 60 windows: 18 s of embedding
        try:
            process.communicate(timeout=rng.uniform(1.5, 4.0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            kills += 1
        assert not committed & set(embedded(log)), trial  # what was committed before is never embedded again
        if (index_dir / "chunks.sqlite").exists() and committed_manifest(index_dir):
            assert_consistent(index_dir)
            committed = {text_hash(t) for _, t in contents(index_dir)}
        if process.returncode == 0:
            break
    assert kills >= 10
    finished = driver(folder, index_dir, log, env)
    assert finished.communicate()[0] and finished.returncode == 0
    clean = tmp_path / "clean"
    index_path(folder, settings_for(clean), FakeEmbedder())
    assert contents(index_dir) == contents(clean) and hits(index_dir) == hits(clean)


def _processes_of(home: Path) -> list[int]:
    """Processes still running with this test's FSEARCH_HOME (a build's reading processes inherit it)."""
    mark = f"FSEARCH_HOME={home}".encode() + b"\0"
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark in (proc / "environ").read_bytes() + b"\0":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_files_read_in_processes_give_the_same_index(home, tmp_path, monkeypatch):
    """A big run reads and segments in processes of their own; the index is the one a thread builds."""
    started = []

    class Recorded(reading.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            started.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    folder = make_corpus(tmp_path, files=40)
    threaded, in_processes = tmp_path / "threaded", tmp_path / "processes"
    index_path(folder, settings_for(threaded), FakeEmbedder())
    assert not started
    monkeypatch.setattr(reading, "ProcessPoolExecutor", Recorded)
    monkeypatch.setattr(reading, "READ_IN_PROCESSES_ABOVE", 0)
    index_path(folder, settings_for(tmp_path / "not allowed"), FakeEmbedder())
    assert not started  # a library caller's main module may not be safe to import: threads unless allowed
    index_path(folder, settings_for(in_processes), FakeEmbedder(), processes=True)
    assert started == [os.cpu_count()]
    assert contents(in_processes) == contents(threaded) and hits(in_processes) == hits(threaded)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_a_killed_build_leaves_no_reading_process_behind(home, tmp_path):
    folder = make_corpus(tmp_path, files=120)
    index_dir, log = tmp_path / "index", tmp_path / "embedded.log"
    env = {**os.environ, "FSEARCH_HOME": str(home), "FSEARCH_CHUNK_SIZE": "40", "FSEARCH_CHUNK_OVERLAP": "0",
           "FSEARCH_COMMIT_EVERY_CHUNKS": "24", "FSEARCH_CRASH_AT": "after-commit"}
    killed = driver(folder, index_dir, log, env, "--read-in-processes")
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL and 0 < assert_consistent(index_dir) < 480
    import time

    deadline = time.monotonic() + 10
    while _processes_of(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_of(home)
    env.pop("FSEARCH_CRASH_AT")
    finished = driver(folder, index_dir, log, env, "--read-in-processes")
    out, err = finished.communicate(timeout=60)
    assert finished.returncode == 0 and json.loads(out)["resumed"], err
    assert assert_consistent(index_dir) == 480


def keyword_corpus(root: Path) -> Path:
    """Every chunk shares the common words; a few rarer words single some out."""
    folder = root / "kw"
    folder.mkdir()
    rare = ["熊猫", "竹子", "长城", "咖啡"]
    for f in range(40):
        words = ["城市", "发展", "数据"] * (1 + f % 3) + [rare[f % 4]] * (f % 5 == 0) + [f"note{f}"]
        (folder / f"k{f:02d}.txt").write_text(" ".join(words) + "\n", encoding="utf-8")
    return folder


def test_a_keyword_query_over_budget_scores_its_candidates_as_fts5_does(home, tmp_path, monkeypatch):
    from faiss_search import lexical
    from faiss_search.stores.local import keyword as store

    folder = keyword_corpus(tmp_path)
    monkeypatch.setattr(store, "TERM_FREQUENCIES_ABOVE", 10)
    monkeypatch.setattr(store, "COMMON_TERM_CHUNKS", 20)
    index_path(folder, load_settings(index_dir=tmp_path / "index"), FakeEmbedder())
    reader = IndexReader(tmp_path / "index")
    with reader.snapshot():
        common = dict(reader._conn.execute("SELECT term, chunks FROM term_frequencies"))
        assert common == {"城市": 40, "发展": 40, "数据": 40}  # the rarer words are not kept
        terms = lexical.query_terms("城市 发展 数据 熊猫 咖啡")
        exact = reader.keyword_search(terms, 40)
        monkeypatch.setattr(store, "KEYWORD_POSTINGS_BUDGET", 20)  # the three common words no longer fit
        bounded = reader.keyword_search(terms, 40)
        candidates = {i for (i,) in reader._conn.execute(
            "SELECT rowid FROM chunk_terms WHERE chunk_terms MATCH '\"熊猫\" OR \"咖啡\"'")}
    assert {i for i, _ in bounded} == candidates and len(candidates) == 4  # only chunks with a rare word
    assert [i for i, _ in bounded] == [i for i, _ in exact if i in candidates]  # same order
    assert [s for _, s in bounded] == pytest.approx([s for i, s in exact if i in candidates], abs=1e-9)


@pytest.mark.slow
def test_a_builds_memory_stays_flat_while_its_vectors_grow(home, tmp_path):
    """2048-d vectors, 8 KB a chunk: the writer keeps them on disk, so memory at the end of the build
    is about what it was a quarter of the way in (holding them would add three quarters of ~100 MB)."""
    folder = make_corpus(tmp_path, files=150, lines=80)
    env = {**os.environ, "FSEARCH_HOME": str(home), "FSEARCH_CHUNK_SIZE": "40", "FSEARCH_CHUNK_OVERLAP": "0",
           "FSEARCH_COMMIT_EVERY_CHUNKS": "4000"}
    size = sum(p.stat().st_size for p in folder.iterdir())
    run = subprocess.run([sys.executable, "-m", "tests.stream_driver", str(folder), str(tmp_path / "index"),
                          "--dim", "2048", "--sample-mb", str(size / 4 / 2**20)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    vector_mb = report["total_chunks"] * 2048 * 4 / 2**20
    assert report["total_chunks"] == 12_000 and report["commits"] >= 2 and vector_mb > 90
    quarter = report["samples"][0]
    assert quarter["chunks_done"] < 0.4 * 12_000
    # high-water mark against high-water mark: the resident size can dip below an earlier peak (freed memory
    # handed back to the system; 16 MB at the quarter since jieba-rs), and a sample may catch the dip
    assert report["peak_rss_mb"] - quarter["peak_rss_mb"] < 0.35 * vector_mb, report["samples"]
    assert (tmp_path / "index" / f"vectors-{committed_manifest(tmp_path / 'index').generation}.faiss"
            ).stat().st_size > vector_mb * 2**20
