"""Read-only media and a full disk, for real: a private mount namespace with a read-only bind mount and a tiny tmpfs.

Needs root and `unshare` (as on this project's machines and CI); elsewhere the tests skip.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faiss_search.config import load_settings
from faiss_search.indexing.pipeline import index_path
from faiss_search.stores import committed_manifest
from faiss_search.stores.local import writer as store

from .conftest import FSEARCH_CLI

FSEARCH = shlex.join(FSEARCH_CLI)


def namespace_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not namespace_available(), reason="needs root and mount namespaces")


def in_namespace(script: str, env: dict) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace: its mounts vanish with it."""
    return subprocess.run(["unshare", "-m", "bash", "-euc", script], env=env, capture_output=True, text=True,
                          timeout=300)


def write_docs(folder: Path, names: range) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in names:
        (folder / f"d{i}.txt").write_text(f"第{i}篇：熊猫、长城和高铁的笔记，编号{i}。" * 6 + "\n", encoding="utf-8")


@pytest.fixture
def env(home):
    return {**os.environ, "FSEARCH_HOME": str(home)}


def test_an_index_on_read_only_media_is_searched_and_checked(home, tmp_path, env):
    docs, index_dir, mounted = tmp_path / "docs", tmp_path / "idx", tmp_path / "ro"
    write_docs(docs, range(3))
    mounted.mkdir()
    assert subprocess.run([*FSEARCH.split(), "index", str(docs), "--index-dir", str(index_dir)], env=env,
                          capture_output=True).returncode == 0
    result = in_namespace(f"""
        mount --bind -o ro '{index_dir}' '{mounted}'
        {FSEARCH} search 熊猫 --json --index-dir '{mounted}' > '{tmp_path}/search.json'
        {FSEARCH} doctor --json --index-dir '{mounted}' > '{tmp_path}/doctor.json'
        {FSEARCH} trust --index-dir '{mounted}' > /dev/null
        {FSEARCH} index '{docs}' --index-dir '{mounted}' 2> '{tmp_path}/index.err' || echo "index exit $?"
    """, env)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "search.json").read_text())["results"]
    assert json.loads((tmp_path / "doctor.json").read_text())["healthy"]
    assert "index exit 2" in result.stdout
    error = (tmp_path / "index.err").read_text()
    assert error.startswith("error:") and "read-only" in error and "unchanged (generation 1)" in error
    assert "unexpected" not in error and "Traceback" not in error


def test_a_full_disk_at_any_moment_is_one_true_line(home, tmp_path, env):
    """An update runs out of space at different moments; each says so in one line, naming the live generation."""
    write_docs(tmp_path / "more", range(6))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    update = f"{FSEARCH} index '{mnt}/kb' --index-dir '{mnt}/idx' --chunk-size 200 > /dev/null"
    live = (f"{sys.executable} -c \"import json, sqlite3; print(json.loads(sqlite3.connect('{mnt}/idx/chunks.sqlite')"
            f".execute('SELECT value FROM meta').fetchone()[0])['generation'])\"")
    result = in_namespace(f"""
        mount -t tmpfs -o size=1m tmpfs '{mnt}'
        mkdir '{mnt}/kb' && cp '{tmp_path}'/more/d[0-2].txt '{mnt}/kb/'
        {update}
        cp '{tmp_path}'/more/d[3-5].txt '{mnt}/kb/'
        for free in 8 40 72 400; do
            avail=$(df -k --output=avail '{mnt}' | tail -1)
            dd if=/dev/zero of='{mnt}/filler' bs=1k count=$((avail - free)) 2> /dev/null || true
            code=0
            {update} 2> '{tmp_path}/err' || code=$?
            rm -f '{mnt}/filler'
            generation=$({live})
            echo "$free $code $generation $(head -1 '{tmp_path}/err')" >> '{tmp_path}/runs'
            echo "$(wc -l < '{tmp_path}/err')" >> '{tmp_path}/lines'
        done
    """, env)
    assert result.returncode == 0, result.stderr
    runs = [line.split(" ", 3) for line in (tmp_path / "runs").read_text().splitlines()]
    assert [code for _, code, _, _ in runs][-1] == "0" and runs[-1][2] == "2"  # with room, the update lands
    failed = [run for run in runs if run[1] != "0"]
    assert failed, runs
    for free, code, generation, message in failed:
        assert code == "2" and "no space left on the device" in message, (free, message)
        assert f"the previous index is unchanged (generation {generation})" in message, (free, message)
    assert all(int(n) <= 2 for n in (tmp_path / "lines").read_text().split())  # the error line and a hint


def test_a_failure_after_the_commit_is_a_warning_not_a_lie(home, tmp_path, fake_embedder, monkeypatch):
    (tmp_path / "a.txt").write_text("first\n")
    index_path(tmp_path / "a.txt", load_settings(), fake_embedder)
    (tmp_path / "a.txt").write_text("second\n")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "atomic_write_bytes", full)
    report = index_path(tmp_path / "a.txt", load_settings(), fake_embedder)
    assert committed_manifest(home / "index").generation == 2
    assert report.warnings and "generation 2 is committed" in report.warnings[0]
    assert "no space left" in report.warnings[0]
