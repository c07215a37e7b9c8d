"""`fsearch download` against a fake hub on 127.0.0.1 that speaks both hub protocols."""

import json
import shutil
import socket
import threading
import time

import pytest

from faiss_search.cli import app
from faiss_search.models import download as download_module

from .conftest import shared_path
from .fake_hub import FakeHub
from .tiny_model import build_tiny_model, build_tiny_reranker

REPO = "BAAI/bge-small-zh-v1.5"


@pytest.fixture(scope="session")
def hub_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    model = root / REPO
    model.mkdir(parents=True)
    build_tiny_model(shared_path("fixtures", "bge-small-zh-v1.5-layout"), model)
    (model / "pytorch_model.bin").write_bytes(b"\0" * 1000)  # must be skipped: safetensors exist
    (model / "onnx").mkdir()
    (model / "onnx" / "model.onnx").write_bytes(b"\0" * 1000)  # other frameworks: skipped
    reranker = root / "BAAI" / "bge-reranker-base"
    reranker.mkdir(parents=True)
    build_tiny_reranker(shared_path("fixtures", "bge-small-zh-v1.5-layout"), reranker)
    shutil.copytree(model, root / "BAAI" / "bge-reranker-large")  # a repository that holds no reranker
    return root


@pytest.fixture
def hub(hub_root, home, tmp_path, monkeypatch):
    for var, sub in (("HF_HOME", "hf"), ("MODELSCOPE_CACHE", "ms-cache"), ("MODELSCOPE_HOME", "ms-home")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("MODELSCOPE_ENDPOINT", raising=False)
    with FakeHub(hub_root) as server:
        yield server


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def invoke(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def corpus(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("高铁很快\n绿茶不发酵\nbread needs yeast\n", encoding="utf-8")
    return path


def assert_clean_failure(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_hf_download_then_offline_index_and_search(hub, home, runner, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    result = invoke(runner, "download", "bge-small-zh", "--source", "hf", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    folder = home / "models" / "bge-small-zh"
    assert info["source"] == "hf" and info["dim"] == 512 and info["path"] == str(folder)
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"} <= files
    assert "pytorch_model.bin" not in files and not any(f.startswith(("onnx/", ".cache")) for f in files)
    meta = json.loads((folder / "fsearch-model.json").read_text())
    assert meta["repo_id"] == REPO and len(meta["commit"]) == 40 and meta["endpoint"] == hub.url
    assert len(meta["files"]["model.safetensors"]) == 64
    assert meta["metadata_version"] == 1
    assert any(m == "GET" and "/resolve/" in p for m, p, _ in hub.log)

    hub.__exit__()  # the network is gone from here on
    docs = corpus(tmp_path)
    assert invoke(runner, "index", docs, "--model", "bge-small-zh").exit_code == 0
    found = json.loads(invoke(runner, "search", "绿茶不发酵", "--json", "-k", "3").stdout)
    # random weights: which line wins is noise, but every line comes back from the offline model
    assert sorted(r["text"] for r in found["results"]) == sorted(docs.read_text(encoding="utf-8").splitlines())
    status = json.loads(invoke(runner, "status", "--json").stdout)
    assert status["model"] == "bge-small-zh" and status["dim"] == 512 and REPO in status["source"]
    models = json.loads(invoke(runner, "models", "--json").stdout)["models"]
    entry = next(m for m in models if m["alias"] == "bge-small-zh")
    assert entry["downloaded"] and entry["path"] == str(folder)
    assert "bge-small-zh" in invoke(runner, "models").stdout


@pytest.mark.parametrize("source, variable", [("hf", "HF_ENDPOINT"), ("modelscope", "MODELSCOPE_ENDPOINT")])
def test_rerankers_download_by_alias_through_both_protocols(hub, home, runner, monkeypatch, sample_indexed, source,
                                                           variable):
    monkeypatch.setenv(variable, hub.url)
    result = invoke(runner, "download", "bge-reranker-base", "--source", source)
    assert result.exit_code == 0, result.output
    assert "a reranker" in result.stdout and "--reranker bge-reranker-base" in result.stdout
    assert json.loads(invoke(runner, "download", "bge-reranker-base", "--json").stdout)["kind"] == "reranker"
    hub.__exit__()  # offline from here on
    found = json.loads(invoke(runner, "search", "火车", "--json", "--reranker", "bge-reranker-base").stdout)
    assert found["reranker"] == "bge-reranker-base" and found["results"][0]["rerank_score"] is not None
    models = json.loads(invoke(runner, "models", "--json").stdout)["models"]
    entry = next(m for m in models if m["alias"] == "bge-reranker-base")
    assert entry["kind"] == "reranker" and entry["downloaded"]
    assert "rerank" in invoke(runner, "models").stdout


def test_a_reranker_alias_whose_repository_holds_no_reranker_is_refused(hub, home, runner, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    result = invoke(runner, "download", "bge-reranker-large", "--source", "hf")
    assert_clean_failure(result, "has no cross-encoder head")
    assert not (home / "models" / "bge-reranker-large").exists()


def test_modelscope_download_through_the_environment(hub, home, runner, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", hub.url)
    result = invoke(runner, "download", "bge-small-zh", "--source", "modelscope")
    assert result.exit_code == 0, result.output
    assert "Downloaded bge-small-zh from modelscope" in result.stdout
    requests = len(hub.log)
    again = invoke(runner, "download", "bge-small-zh", "--source", "modelscope")
    assert again.exit_code == 0 and "already downloaded" in again.stdout and "--force" in again.stdout
    assert len(hub.log) == requests  # verified on disk, nothing fetched
    assert json.loads(invoke(runner, "download", "bge-small-zh", "--json").stdout)["already_present"]
    (home / "models" / "bge-small-zh" / "config.json").write_text("{}")  # damaged: fetched again
    repaired = invoke(runner, "download", "bge-small-zh", "--source", "modelscope")
    assert "Downloaded bge-small-zh" in repaired.stdout and len(hub.log) > requests
    requests = len(hub.log)
    forced = invoke(runner, "download", "bge-small-zh", "--source", "modelscope", "--force")
    assert forced.exit_code == 0 and "Downloaded bge-small-zh" in forced.stdout and len(hub.log) > requests
    assert any("/api/v1/models/BAAI/bge-small-zh-v1.5/repo?" in p for _, p, _ in hub.log)
    assert not any("pytorch_model.bin" in p or "onnx" in p for _, p, _ in hub.log if "FilePath" in p)
    assert json.loads((home / "models" / "bge-small-zh" / "fsearch-model.json").read_text())["source"] == "modelscope"


def test_auto_says_why_modelscope_failed_and_uses_the_mirror(hub, home, runner, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.faults["/api/v1/"] = "404"
    result = invoke(runner, "download", "bge-small-zh")
    assert result.exit_code == 0, result.output
    assert "modelscope" in result.stderr and "not found" in result.stderr and "trying the next source" in result.stderr
    assert json.loads((home / "models" / "bge-small-zh" / "fsearch-model.json").read_text())["source"] == "hf-mirror"


@pytest.mark.parametrize("source", ["modelscope", "hf"])
def test_resume_after_a_cut_connection(hub, home, runner, source):
    hub.faults["model.safetensors"] = "once:truncate:3000000"
    result = invoke(runner, "download", "bge-small-zh", "--source", source, "--endpoint", hub.url, "--quiet")
    assert result.exit_code == 0, result.output
    weights = [e for e in hub.log if "model.safetensors" in e[1] and e[0] == "GET"]
    assert len(weights) >= 2  # cut once, then fetched again
    assert source == "hf" or 206 in [status for _, _, status in weights]  # ModelScope resumes with Range
    assert (home / "models" / "bge-small-zh" / "model.safetensors").stat().st_size == \
        (hub.root / REPO / "model.safetensors").stat().st_size


def test_unknown_repository_is_a_fast_clean_error(hub, runner):
    started = time.monotonic()
    result = invoke(runner, "download", "nobody/nothing", "--source", "hf", "--endpoint", hub.url)
    assert_clean_failure(result, "repository nobody/nothing not found")
    result = invoke(runner, "download", "nobody/nothing", "--source", "modelscope", "--endpoint", hub.url)
    assert_clean_failure(result, "modelscope", "not found")
    assert time.monotonic() - started < 10


def test_server_error(hub, runner):
    hub.faults["/api/models/"] = "500"
    result = invoke(runner, "download", "bge-small-zh", "--source", "hf", "--endpoint", hub.url)
    assert_clean_failure(result, "HTTP 500")


def test_hub_that_never_answers_is_bounded(hub, home, runner):
    hub.faults["/api/models/"] = "hang"
    started = time.monotonic()
    result = invoke(runner, "download", "bge-small-zh", "--source", "hf", "--endpoint", hub.url, "--timeout", "2")
    assert_clean_failure(result, "timed out")
    assert time.monotonic() - started < 15
    assert not (home / "models" / "bge-small-zh").exists()


def test_stall_mid_file_leaves_no_half_model_and_a_rerun_completes(hub, home, runner, tmp_path):
    hub.faults["model.safetensors"] = "hang"
    result = invoke(runner, "download", "bge-small-zh", "--source", "modelscope", "--endpoint", hub.url,
                    "--timeout", "2")
    assert_clean_failure(result)
    assert not (home / "models" / "bge-small-zh").exists()
    assert_clean_failure(invoke(runner, "index", corpus(tmp_path), "--model", "bge-small-zh"),
                         "fsearch download bge-small-zh")
    del hub.faults["model.safetensors"]
    # the CLI's process would be gone by now, and with it the abandoned download thread and its file locks
    hub.release_hung()
    for thread in threading.enumerate():
        if thread.name == "fsearch-download":
            thread.join(30)
    result = invoke(runner, "download", "bge-small-zh", "--source", "modelscope", "--endpoint", hub.url)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("source, message", [("hf", "revision 'v9' of BAAI/bge-small-zh-v1.5 not found"),
                                             ("modelscope", "no files at revision 'v9'")])
def test_bad_revision(hub, runner, source, message):
    result = invoke(runner, "download", "bge-small-zh", "--source", source, "--endpoint", hub.url, "--revision", "v9")
    assert_clean_failure(result, message)


def test_dead_hub(home, runner):
    started = time.monotonic()
    result = invoke(runner, "download", "bge-small-zh", "--source", "hf", "--endpoint", dead_endpoint())
    assert_clean_failure(result, "hub unreachable")
    assert time.monotonic() - started < 10


def test_the_hint_names_the_variable_of_the_source_that_failed(home, runner):
    result = invoke(runner, "download", "bge-small-zh", "--source", "modelscope", "--endpoint", dead_endpoint())
    assert_clean_failure(result, "hub unreachable", "MODELSCOPE_ENDPOINT")
    assert "HF_ENDPOINT" not in result.stderr


def test_unknown_alias_suggests_names(home, runner):
    assert_clean_failure(invoke(runner, "download", "bge-bsae-zh"), "unknown model 'bge-bsae-zh'", "bge-base-zh")


def test_bundled_model_needs_no_download(home, runner):
    assert_clean_failure(invoke(runner, "download", "multilingual-e5-small-q4"), "bundled")


def test_endpoint_needs_a_source(home, runner):
    assert_clean_failure(invoke(runner, "download", "bge-small-zh", "--endpoint", "http://127.0.0.1:1"),
                         "--endpoint needs an explicit --source")


@pytest.mark.parametrize("error, message", [(OSError(28, "No space left on device"), "disk full"),
                                            (PermissionError(13, "Permission denied"), "permission denied")])
def test_disk_full_and_permission_stop_without_trying_other_sources(hub, home, runner, monkeypatch, error, message):
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)

    def fail(staging):
        raise error

    monkeypatch.setattr(download_module, "_tidy", fail)  # stands in for a write that fails
    assert_clean_failure(invoke(runner, "download", "bge-small-zh"), message)
    assert not any("/api/models/" in p for _, p, _ in hub.log)  # no pointless fallback to the mirror
    assert not (home / "models" / "bge-small-zh").exists()


def test_a_copied_model_folder_works_without_download(home, runner, hub_root, tmp_path):
    copied = tmp_path / "from-another-machine"
    shutil.copytree(hub_root / REPO, copied)
    assert invoke(runner, "index", corpus(tmp_path), "--model", copied).exit_code == 0
    status = json.loads(invoke(runner, "status", "--json").stdout)
    assert status["dim"] == 512
