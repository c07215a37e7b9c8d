from pathlib import Path

import pytest

from faiss_search.config import load_settings
from faiss_search.errors import ConfigError


def test_defaults(home):
    s = load_settings()
    assert (s.chunk_size, s.chunk_overlap, s.top_k, s.model) == (500, 50, 3, None)
    assert s.home == home
    assert s.index_folder == home / "index"
    assert s.models_dir == home / "models"


def test_layers_file_then_env_then_flags(home, monkeypatch):
    Path("fsearch.toml").write_text('chunk_size = 300\ntop_k = 7\nmodel = "bge-small-zh"\nindex_dir = "idx"\n')
    s = load_settings()
    assert (s.chunk_size, s.top_k, s.model, s.index_folder) == (300, 7, "bge-small-zh", Path.cwd().resolve() / "idx")
    monkeypatch.setenv("FSEARCH_TOP_K", "9")
    monkeypatch.setenv("FSEARCH_INDEX_DIR", "/tmp/other")
    s = load_settings()
    assert (s.chunk_size, s.top_k, s.index_folder) == (300, 9, Path("/tmp/other"))
    s = load_settings(top_k=2, chunk_size=None)
    assert (s.chunk_size, s.top_k) == (300, 2)


def test_explicit_config_file_and_section(home, tmp_path):
    cfg = tmp_path / "my.toml"
    cfg.write_text("[fsearch]\nchunk_overlap = 10\n")
    assert load_settings(cfg).chunk_overlap == 10
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "content, message",
    [
        ("chunk_size = 'big'", "chunk_size must be a whole number"),
        ("chunk_sise = 100", "unknown setting"),
        ("chunk_size = 100\nchunk_overlap = 100", "chunk_overlap must be between"),
        ("top_k = 0", "top_k must be at least 1"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(home, content, message):
    Path("fsearch.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_bad_env_value(home, monkeypatch):
    monkeypatch.setenv("FSEARCH_CHUNK_SIZE", "lots")
    with pytest.raises(ConfigError, match="FSEARCH_CHUNK_SIZE"):
        load_settings()
