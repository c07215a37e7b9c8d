"""Nothing leaves the machine, and nothing outside the user's folders is read, written or deleted, unless
the user said so: each attack a cloned repository can make, tried as the attacker would (trust.py)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from faiss_search import trust
from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.errors import ConfigError
from faiss_search.indexing.discovery import Filters, discover
from faiss_search.indexing.pipeline import index_path
from faiss_search.retrieval.search import Searcher
from faiss_search.stores import open_reader as open_index
from faiss_search.stores.local.folder import MARKER, SIDECAR

from .conftest import FakeEmbedder
from .servers import json_server

SECRET = "BEGIN OPENSSH PRIVATE KEY the victim's secret"


def error_line(result) -> str:
    """The command failed cleanly: exit 2, and one `error:` line (a hint may follow), never a traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("hint: ")), result.stderr
    assert "Traceback" not in result.output and "bug" not in result.stderr
    return lines[0]


# --- what the attacker runs: an embedding server that records what it is sent, a raw TCP store -----------

@pytest.fixture
def attacker():
    """An OpenAI-compatible embedding server on loopback that keeps every text it is sent."""
    received: list[str] = []

    def embeddings(path, headers, body):
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        received.extend(texts)
        data = [{"index": i, "embedding": FakeEmbedder()._vector(t).tolist()} for i, t in enumerate(texts)]
        return 200, {"data": data, "model": body.get("model")}

    with json_server(embeddings) as url:
        yield url, received


@pytest.fixture
def raw_store():
    """A raw TCP listener standing in for a Milvus server: it counts who connects."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    connections: list[tuple] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, peer = listener.accept()
                connections.append(peer)
                conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", connections
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.fixture
def fake_model(monkeypatch):
    """The CLI embeds with the fake embedder (the local backend is the point here, not the model)."""
    monkeypatch.setattr("faiss_search.backends.load_embedder",
                        lambda resolved, engine="auto", threads=0: FakeEmbedder(name=resolved.name))


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside every project: what the attacker is after."""
    folder = tmp_path / "dotssh"
    folder.mkdir()
    (folder / "id_rsa.txt").write_text(SECRET, encoding="utf-8")
    return folder / "id_rsa.txt"


@pytest.fixture
def cloned_repo(home, tmp_path, attacker, secret, monkeypatch, runner) -> Path:
    """A repository as the attacker commits it, cloned by the victim: a .fsearch index built through the
    attacker's server on the attacker's machine, and a symlink to the victim's secret."""
    url, received = attacker
    origin = tmp_path / "attacker" / "repo"
    (origin / "docs").mkdir(parents=True)
    (origin / "docs" / "readme.md").write_text("# 项目说明\n\n这个项目用来测试本地搜索。\n", encoding="utf-8")
    with monkeypatch.context() as attackers_machine:
        attackers_machine.setenv("FSEARCH_HOME", str(tmp_path / "attacker" / "home"))
        attackers_machine.chdir(origin)
        assert runner.invoke(app, ["init"]).exit_code == 0
        built = runner.invoke(app, ["index", ".", "--embedder", "openai", "--base-url", url, "--model", "evil"])
        assert built.exit_code == 0, built.output
    os.symlink(secret, origin / "notes.txt")
    clone = tmp_path / "work" / "repo"
    shutil.copytree(origin, clone, symlinks=True)
    received.clear()
    monkeypatch.chdir(clone)
    return clone


# --- 1. a committed .fsearch/ index --------------------------------------------------------------------

def test_a_cloned_index_never_sends_text_to_its_server(cloned_repo, attacker, runner):
    url, received = attacker
    (cloned_repo / ".fsearch" / "manifest.json").unlink()  # something for doctor --repair to do
    for args in (["index", "."], ["search", "项目"], ["search", "项目", "--json"], ["doctor", "--repair"]):
        result = runner.invoke(app, args)
        if "--json" in args:
            assert result.exit_code == 2 and "not made by fsearch" in json.loads(result.stdout)["error"]["message"]
            continue
        line = error_line(result)
        assert "not made by fsearch on this machine" in line, args
    assert "send your text to " + url in error_line(runner.invoke(app, ["search", "项目"]))
    assert received == []  # not one request: no document, no query, no dimension probe


def test_trusting_a_cloned_index_obeys_it_and_an_own_base_url_needs_no_trust(cloned_repo, attacker, runner):
    url, received = attacker
    own = runner.invoke(app, ["search", "项目", "--base-url", url, "--json"])  # the user's own word
    assert own.exit_code in (0, 1), own.output
    assert received[-1] == "项目"
    trusted = runner.invoke(app, ["trust"])
    assert trusted.exit_code == 0 and ".fsearch" in trusted.stdout
    sent = len(received)
    assert runner.invoke(app, ["search", "长城", "--json"]).exit_code in (0, 1)
    assert received[-1] == "长城" and len(received) > sent  # trusted: the index's own server is used
    revoked = runner.invoke(app, ["trust", "--revoke", "-i", ".fsearch"])
    assert revoked.exit_code == 0
    sent = len(received)
    assert "not made by fsearch" in error_line(runner.invoke(app, ["search", "项目"]))
    assert len(received) == sent


def test_a_rebuild_of_a_cloned_index_is_local_and_drops_the_attackers_rows(cloned_repo, attacker, runner,
                                                                            fake_model, secret):
    url, received = attacker
    result = runner.invoke(app, ["index", ".", "--rebuild", "--json", "-v"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert not report["model"].startswith("openai")  # the local model, not the index's server
    listed = json.loads(runner.invoke(app, ["ls", "--json"]).stdout)["files"]
    assert [Path(f["path"]).name for f in listed] == ["readme.md"]  # notes.txt -> the secret was not read
    assert received == []
    hits = runner.invoke(app, ["search", "openssh private key", "--json", "--min-score", "0"]).stdout
    assert SECRET not in hits and "id_rsa" not in hits
    again = runner.invoke(app, ["index", "."])
    assert again.exit_code == 0, again.output  # rebuilt here: the user's own now


# --- 2. fsearch.toml from a parent folder -------------------------------------------------------------

@pytest.fixture
def project(home, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "work" / "proj"
    (folder / "sub").mkdir(parents=True)
    (folder / "doc.md").write_text("熊猫吃竹子。\n", encoding="utf-8")
    monkeypatch.chdir(folder / "sub")
    return folder


@pytest.mark.parametrize("index_dir", ["/ABS/elsewhere", "../..", "~/stolen-index"])
def test_an_untrusted_index_dir_outside_the_project_is_refused(project, runner, tmp_path, monkeypatch, index_dir,
                                                               fake_model):
    monkeypatch.setenv("HOME", str(tmp_path / "victim-home"))
    value = index_dir.replace("/ABS", str(tmp_path))
    (project / "fsearch.toml").write_text(f'index_dir = "{value}"\n', encoding="utf-8")
    before = sorted(p for p in tmp_path.rglob("*") if "home" not in p.parts)
    for args in (["index", str(project)], ["status"], ["search", "熊猫"], ["doctor"]):
        line = error_line(runner.invoke(app, args))
        assert "not trusted" in line and "index_dir" in line and "outside" in line, args
    assert sorted(p for p in tmp_path.rglob("*") if "home" not in p.parts) == before  # nothing written


def test_an_index_dir_inside_the_project_and_harmless_settings_apply_before_trust(project, runner, fake_model):
    (project / "fsearch.toml").write_text('index_dir = "idx"\ntop_k = 7\nchunk_size = 123\n', encoding="utf-8")
    settings = load_settings()
    assert (settings.index_folder, settings.top_k, settings.chunk_size) == (project / "idx", 7, 123)
    assert runner.invoke(app, ["index", str(project)]).exit_code == 0
    assert (project / "idx" / SIDECAR).is_file()


def test_a_store_in_an_untrusted_file_is_never_contacted(project, runner, raw_store, fake_model):
    url, connections = raw_store
    (project / "fsearch.toml").write_text(f'store = "{url}"\n', encoding="utf-8")
    for args in (["index", str(project)], ["status"], ["ls"], ["search", "熊猫"], ["doctor"]):
        assert f"store = {url}" in error_line(runner.invoke(app, args)), args
    assert connections == []


@pytest.mark.parametrize("setting", ['milvus_token = "root:Milvus"', 'home = "/tmp/elsewhere"',
                                     'model = "../models/evil"', 'model = "/opt/evil-model"'])
def test_credentials_home_and_model_folders_need_trust(project, runner, setting):
    (project / "fsearch.toml").write_text(setting + "\n", encoding="utf-8")
    line = error_line(runner.invoke(app, ["status"]))
    assert "not trusted" in line and setting.split(" ")[0] in line
    assert "root:Milvus" not in line  # a token is never echoed


def test_a_file_owned_by_another_user_is_refused_until_trusted(project, runner):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    config = project / "fsearch.toml"
    config.write_text("top_k = 5\n", encoding="utf-8")
    os.chown(config, 4242, 4242)
    assert "belongs to another user (uid 4242)" in error_line(runner.invoke(app, ["status"]))
    assert runner.invoke(app, ["trust", str(project)]).exit_code == 0
    assert load_settings().top_k == 5


def test_trust_then_obeyed_edit_then_asked_again(project, runner, tmp_path, fake_model):
    outside = tmp_path / "my-indexes" / "proj"
    config = project / "fsearch.toml"
    config.write_text(f'index_dir = "{outside}"\n', encoding="utf-8")
    assert "not trusted" in error_line(runner.invoke(app, ["index", str(project)]))
    granted = runner.invoke(app, ["trust", str(project), "--json"])
    assert granted.exit_code == 0
    assert json.loads(granted.stdout)["trusted"][0]["asks"] == [f"index_dir = {outside} (outside {project})"]
    assert runner.invoke(app, ["index", str(project)]).exit_code == 0
    assert (outside / SIDECAR).is_file()
    config.write_text(f'index_dir = "{outside}"\nstore = "http://127.0.0.1:9"\n', encoding="utf-8")
    assert "changed since you trusted it" in error_line(runner.invoke(app, ["status"]))
    listed = json.loads(runner.invoke(app, ["trust", "--list", "--json"]).stdout)["trusted"]
    assert {row["kind"]: row["state"] for row in listed}["config"] == "changed since trusted"
    assert runner.invoke(app, ["trust", "--revoke", str(project)]).exit_code == 0
    config.write_text(f'index_dir = "{outside}"\n', encoding="utf-8")
    assert "is not trusted" in error_line(runner.invoke(app, ["status"]))


def test_a_file_named_with_config_is_the_users_word(project, runner, tmp_path, fake_model):
    outside = tmp_path / "chosen"
    config = project / "fsearch.toml"
    config.write_text(f'index_dir = "{outside}"\n', encoding="utf-8")
    assert runner.invoke(app, ["index", str(project), "--config", str(config)]).exit_code == 0
    assert (outside / SIDECAR).is_file()


def test_the_trust_list_lives_in_the_environments_home_not_one_a_file_names(project, runner, tmp_path):
    planted = tmp_path / "planted-home"
    planted.mkdir()
    (project / "fsearch.toml").write_text(f'home = "{planted}"\n', encoding="utf-8")
    (planted / trust.TRUST_FILE).write_text(json.dumps({"trusted": [{
        "kind": "config", "path": str((project / "fsearch.toml").resolve()), "trusted_at": "",
        "fingerprint": hashlib.sha256((project / "fsearch.toml").read_bytes()).hexdigest()}]}))
    assert "home = " in error_line(runner.invoke(app, ["status"]))


# --- 3. symlinks out of the folder -------------------------------------------------------------------

def test_symlinks_out_of_the_folder_are_passed_over_unless_follow(tmp_path, secret):
    tree = tmp_path / "tree"
    (tree / "inner").mkdir(parents=True)
    (tree / "a.md").write_text("a", encoding="utf-8")
    os.symlink(tree / "a.md", tree / "inner" / "same-a.md")  # inside the tree: taken, as before
    os.symlink(secret, tree / "notes.txt")
    os.symlink(secret.parent, tree / "ssh")
    os.symlink(tree, tree / "inner" / "loop")
    found = discover(tree)
    assert sorted(p.name for p in found.files) == ["a.md", "same-a.md"]
    assert found.skipped["symlink out of the folder"] == 1 and found.skipped["symlinked folder"] == 2
    followed = discover(tree, Filters(follow=True))
    assert sorted(p.relative_to(tree).as_posix() for p in followed.files) == [
        "a.md", "inner/same-a.md", "notes.txt", "ssh/id_rsa.txt"]  # the loop is walked once


# --- 4. fsearch owns only what it made ----------------------------------------------------------------

def test_a_users_folder_is_never_taken_over_as_an_index(home, runner, tmp_path, fake_model):
    folder = tmp_path / "somefolder"
    folder.mkdir()
    mine = {"manifest.json": '{"my": "own"}', "vectors-2024.faiss.bak": "backup", "draft.tmp": "draft"}
    for name, text in mine.items():
        (folder / name).write_text(text)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("熊猫", encoding="utf-8")
    for args in (["index", str(docs), "-i", str(folder)], ["index", str(docs), "-i", str(folder), "--rebuild"],
                 ["doctor", "--repair", "-i", str(folder)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args
    assert "not an fsearch index and not empty" in error_line(runner.invoke(app, ["index", str(docs), "-i",
                                                                                  str(folder)]))
    assert {p.name: p.read_text() for p in folder.iterdir()} == mine


def test_commits_and_repair_delete_only_the_files_fsearch_wrote(home, runner, tmp_path, fake_embedder, monkeypatch):
    monkeypatch.setattr("faiss_search.backends.choose_embedder", lambda *a, **k: FakeEmbedder())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("熊猫吃竹子", encoding="utf-8")
    index_path(docs, load_settings(), fake_embedder)
    folder = load_settings().index_folder
    users = ["vectors-2024.faiss.bak", "notes.tmp", "vectors-old.faiss"]
    for name in users:
        (folder / name).write_text("the user's")
    (folder / "vectors-99.faiss.tmp").write_text("an interrupted update's")
    (docs / "b.md").write_text("长城很长", encoding="utf-8")
    index_path(docs, load_settings(), fake_embedder)  # a commit tidies up
    report = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    assert report["healthy"] is True and not (folder / "vectors-99.faiss.tmp").exists()
    (folder / "manifest.json.tmp").write_text("ours, left by a crash")
    assert runner.invoke(app, ["doctor", "--repair"]).exit_code == 0
    assert not (folder / "manifest.json.tmp").exists()
    assert all((folder / name).read_text() == "the user's" for name in users)


# --- 5. MCP read ---------------------------------------------------------------------------------------

@pytest.fixture
def indexed(home, tmp_path, fake_embedder):
    """A folder of the user's indexed into the global index; a searcher over it as `fsearch mcp` has one."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("第一行\n熊猫吃竹子\n", encoding="utf-8")
    (docs / "sub" / "b.md").write_text("长城很长\n", encoding="utf-8")
    big = "\n".join(f"第{i}行" for i in range(1, 3001)) + "\n" + " " * 900_000 + "\n最后一行"  # > 800 kB
    (docs / "big.txt").write_text(big, encoding="utf-8")
    index_path(docs, load_settings(), fake_embedder)
    return docs


def mcp_read(source: str, line: int | None = None, index_dir: Path | None = None):
    pytest.importorskip("mcp")
    from faiss_search.serve.mcp import read_indexed, readable_roots

    settings = load_settings(index_dir=index_dir)
    searcher = Searcher(open_index(settings.index_folder), FakeEmbedder(), True)
    try:
        return read_indexed(searcher, source, line, 2, readable_roots(searcher, settings), 20 << 20)
    finally:
        searcher.reader.close()


def test_mcp_read_serves_indexed_files_and_reads_a_big_one_around_the_line(indexed):
    assert mcp_read(str(indexed / "a.md"))["text"] == "第一行\n熊猫吃竹子\n"
    big = mcp_read(str(indexed / "big.txt"), line=2_000)
    assert (big["first_line"], big["last_line"], big["total_lines"]) == (1_998, 2_002, 3_002)
    assert big["text"].splitlines() == ["第1998行", "第1999行", "第2000行", "第2001行", "第2002行"]
    whole = mcp_read(str(indexed / "big.txt"))  # no line: too big to return whole, so read around line 1
    assert (whole["first_line"], whole["last_line"]) == (1, 3)


def test_mcp_read_refuses_a_planted_path_and_doctor_reports_it(indexed, runner):
    from mcp.server.mcpserver.exceptions import ToolError

    folder = load_settings().index_folder
    with contextlib.closing(sqlite3.connect(folder / SIDECAR)) as conn, conn:
        conn.execute("UPDATE files SET path = '/etc/passwd' WHERE path LIKE '%b.md'")
    with pytest.raises(ToolError, match="not under the folders this index was built from"):
        mcp_read("/etc/passwd")
    report = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    assert not report["healthy"] and any("outside the folders" in p and "/etc/passwd" in p
                                         for p in report["problems"])


def test_mcp_read_refuses_a_file_or_folder_swapped_for_a_symlink_and_a_changed_file(indexed, secret):
    from mcp.server.mcpserver.exceptions import ToolError

    (indexed / "a.md").unlink()
    os.symlink(secret, indexed / "a.md")
    with pytest.raises(ToolError, match="a symlink is on its path now"):
        mcp_read(str(indexed / "a.md"))
    shutil.rmtree(indexed / "sub")
    os.symlink(secret.parent, indexed / "sub")
    (secret.parent / "b.md").write_text("长城很长\n", encoding="utf-8")  # even the same content
    with pytest.raises(ToolError, match="a symlink is on its path now"):
        mcp_read(str(indexed / "sub" / "b.md"))
    (indexed / "big.txt").write_text("changed", encoding="utf-8")
    with pytest.raises(ToolError, match="changed since it was indexed"):
        mcp_read(str(indexed / "big.txt"))


def test_mcp_read_of_a_cloned_index_serves_only_its_own_project(home, tmp_path, fake_embedder, monkeypatch):
    from mcp.server.mcpserver.exceptions import ToolError

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.md").write_text("熊猫\n", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.md").write_text("长城\n", encoding="utf-8")
    with monkeypatch.context() as attackers_machine:
        attackers_machine.setenv("FSEARCH_HOME", str(tmp_path / "attacker-home"))
        settings = load_settings(index_dir=repo / ".fsearch")
        index_path(repo, settings, fake_embedder)
        index_path(outside, settings, fake_embedder)  # the manifest now names a root outside the repo
    assert not trust.index_trusted(repo / ".fsearch")
    assert mcp_read(str(repo / "a.md"), index_dir=repo / ".fsearch")["text"] == "熊猫\n"
    with pytest.raises(ToolError, match="not under the folders"):
        mcp_read(str(outside / "b.md"), index_dir=repo / ".fsearch")


# --- 6. serve ------------------------------------------------------------------------------------------

@pytest.fixture
def client_for():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from faiss_search.serve.app import create_app

    def make(**options):
        return TestClient(create_app(FakeEmbedder(), **options))

    return make


def test_a_loopback_server_answers_only_its_own_host_names(client_for):
    from faiss_search.cli import _allowed_hosts

    allowed = _allowed_hosts("127.0.0.1", ["kb.internal"])
    assert allowed == {"localhost", "127.0.0.1", "::1", "kb.internal"}
    assert _allowed_hosts("0.0.0.0", []) is None and _allowed_hosts("::1", []) == {"localhost", "127.0.0.1", "::1"}
    client = client_for(allowed_hosts=allowed)
    body = {"input": ["熊猫"], "model": "fake"}
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST.", "kb.internal"):
        assert client.post("/v1/embeddings", json=body, headers={"Host": host}).status_code == 200, host
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example", ""):
        answer = client.post("/v1/embeddings", json=body, headers={"Host": host})
        assert answer.status_code == 421 and "Host" in answer.json()["error"]["message"], host


def test_a_non_ascii_api_key_matches_as_utf8(client_for):
    client = client_for(api_key="密钥-ключ")
    body = {"input": ["熊猫"], "model": "fake"}
    assert client.post("/v1/embeddings", json=body).status_code == 401
    good = {"Authorization": "Bearer 密钥-ключ".encode()}
    assert client.post("/v1/embeddings", json=body, headers=good).status_code == 200
    bad = {"Authorization": "Bearer 密钥-ключx".encode()}
    assert client.post("/v1/embeddings", json=body, headers=bad).status_code == 401


def test_an_empty_api_key_is_refused(home, runner, monkeypatch):
    assert "--api-key is empty" in error_line(runner.invoke(app, ["serve", "--api-key", ""]))
    monkeypatch.setenv("FSEARCH_SERVE_API_KEY", " ")
    assert "FSEARCH_SERVE_API_KEY is empty" in error_line(runner.invoke(app, ["serve"]))


def test_a_missing_extra_names_the_pip_command(home, runner, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("uvicorn", "mcp") else real(name, *a))
    assert "pip install 'fsearch[serve]'" in runner.invoke(app, ["serve"]).stderr
    assert "uvicorn not installed" in error_line(runner.invoke(app, ["serve"]))
    assert "pip install 'fsearch[mcp]'" in runner.invoke(app, ["mcp"]).stderr


# --- 7. every fsearch.toml value checked -------------------------------------------------------------

@pytest.mark.parametrize(("text", "named"), [
    ("top_k = 1e400", "top_k must be a whole number"),
    ("top_k = 2.5", "top_k must be a whole number"),
    ("top_k = true", "top_k must be a whole number"),
    ("fsearch = 5", "[fsearch] must be a table"),
    ('index_dir = "a\\u0000b"', "index_dir must be a path without NUL"),
    ("model = 3", "model must be text"),
    ('chunk_size = "big"', "chunk_size must be a whole number"),
    ("[fsearch]\ntop_k = 0", "top_k must be at least 1"),
    ("colour = 1", "unknown setting(s) colour"),
])
def test_bad_values_in_fsearch_toml_are_one_line_naming_the_key(project, runner, text, named):
    (project / "fsearch.toml").write_text(text + "\n", encoding="utf-8")
    assert named in error_line(runner.invoke(app, ["status"]))
    with pytest.raises(ConfigError):
        load_settings()


def test_a_bad_value_in_the_environment_is_one_line(home, runner, monkeypatch):
    monkeypatch.setenv("FSEARCH_TOP_K", "1e400")
    assert "FSEARCH_TOP_K: top_k must be a whole number" in error_line(runner.invoke(app, ["status"]))


def test_the_index_marker_is_written_and_its_id_recorded(home, tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("熊猫", encoding="utf-8")
    folder = tmp_path / "elsewhere" / "idx"
    index_path(docs, load_settings(index_dir=folder), fake_embedder)
    assert trust.index_trusted(folder)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert not trust.index_trusted(copy)  # same marker, another place
    (folder / MARKER).write_text(json.dumps({"fsearch_index": 1, "id": "0" * 32}))
    assert not trust.index_trusted(folder)  # replaced


# --- every backend still works for a trusted project ---------------------------------------------------

def trusted_project(project: Path, runner, toml: str) -> None:
    """``toml`` is refused until trusted, then obeyed."""
    (project / "fsearch.toml").write_text(toml, encoding="utf-8")
    assert "not trusted" in error_line(runner.invoke(app, ["index", str(project)]))
    assert runner.invoke(app, ["trust", str(project)]).exit_code == 0
    built = runner.invoke(app, ["index", str(project), "--json"])
    assert built.exit_code == 0, built.output


def test_a_trusted_project_with_the_bundled_model_and_an_index_outside_it(project, runner, tmp_path):
    trusted_project(project, runner, f'index_dir = "{tmp_path / "indexes" / "proj"}"\n')
    found = json.loads(runner.invoke(app, ["search", "熊猫吃什么", "--json"]).stdout)
    assert found["results"][0]["source"] == str(project / "doc.md")


def test_a_trusted_project_with_a_sentence_transformers_folder(project, runner, tiny_model):
    trusted_project(project, runner, f'model = "{tiny_model}"\n')
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["model"] == str(tiny_model.resolve()) and status["files"] == 1


def test_a_trusted_project_with_a_milvus_lite_store(project, runner, fake_model):
    pytest.importorskip("milvus_lite")
    trusted_project(project, runner, f'store = "milvus://{project}/kb.db"\n')
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["store"].startswith("Milvus Lite " + str(project)) and status["chunks"] == 1
    found = json.loads(runner.invoke(app, ["search", "熊猫", "--json", "--min-score", "0"]).stdout)
    assert found["results"][0]["source"] == str(project / "doc.md")
