"""Where the index lives (project indexes found from any subfolder), what it holds (ls), taking files
out (rm), and which files a folder walk takes (.gitignore, .ignore, --exclude, --include, -v)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faiss_search.cli import app
from faiss_search.config import load_settings
from faiss_search.indexing.discovery import Filters, discover
from faiss_search.stores import committed_manifest


def _project(root: Path, name: str, text: str) -> Path:
    folder = root / name
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "README.md").write_text(text, encoding="utf-8")
    return folder


def test_each_project_has_its_own_index_found_from_any_subfolder(home, runner, tmp_path, monkeypatch):
    one = _project(tmp_path, "项目 #1", "熊猫每天吃竹子。\n")
    two = _project(tmp_path, "proj2", "The Great Wall is very long.\n")
    for project in (one, two):
        assert runner.invoke(app, ["init", str(project)]).exit_code == 0
        monkeypatch.chdir(project / "docs")  # index from a subfolder: the project's index is found upwards
        assert runner.invoke(app, ["index", "."]).exit_code == 0
    assert (one / ".fsearch" / ".gitignore").read_text().strip().endswith("*")
    monkeypatch.chdir(one / "docs")
    hits = json.loads(runner.invoke(app, ["search", "great wall", "--json", "--min-score", "0"]).stdout)["results"]
    assert {Path(h["source"]).parent.parent for h in hits} == {one}  # project two is not mixed in
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["index_dir"] == str(one / ".fsearch") and "project index of" in status["chosen_by"]
    assert status["files"] == 1
    assert not (home / "index").exists()  # the global index was never touched

    monkeypatch.chdir(tmp_path)  # outside every project: the global index, and status says so
    outside = runner.invoke(app, ["status", "--json"])
    assert outside.exit_code == 1 and json.loads(outside.stdout)["chosen_by"].startswith("the global index")


def test_fsearch_toml_found_upwards_and_its_paths_are_relative_to_it(home, tmp_path, monkeypatch):
    (tmp_path / "kb" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "kb" / "fsearch.toml").write_text('index_dir = "my-index"\ntop_k = 7\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path / "kb" / "deep" / "er")
    settings = load_settings()
    assert settings.top_k == 7 and settings.index_folder == (tmp_path / "kb" / "my-index").resolve()
    assert settings.index_origin == f"index_dir in {(tmp_path / 'kb' / 'fsearch.toml').resolve()}"
    monkeypatch.setenv("FSEARCH_INDEX_DIR", str(tmp_path / "env-index"))
    assert load_settings().index_origin == "FSEARCH_INDEX_DIR"
    assert load_settings(index_dir=tmp_path / "flag").index_origin == "--index-dir"


def test_rebuild_of_one_folder_says_what_it_dropped(home, runner, tmp_path):
    one, two = _project(tmp_path, "a", "熊猫吃竹子。\n"), _project(tmp_path, "b", "长城很长。\n")
    for project in (one, two):
        assert runner.invoke(app, ["index", str(project)]).exit_code == 0
    rebuilt = runner.invoke(app, ["index", str(one), "--rebuild"])
    assert rebuilt.exit_code == 0 and "--rebuild dropped 1 file(s) of other folders" in rebuilt.stderr
    assert "fsearch init" in rebuilt.stderr


def test_ls_lists_folders_and_files_and_rm_takes_them_out(home, runner, tmp_path):
    kb = tmp_path / "kb"
    (kb / "sub").mkdir(parents=True)
    (kb / "a.txt").write_text("熊猫每天吃竹子。\n\n大熊猫生活在四川。\n", encoding="utf-8")
    (kb / "b.md").write_text("Great Wall.\n", encoding="utf-8")
    (kb / "sub" / "c.txt").write_text("高铁很快。\n", encoding="utf-8")
    assert runner.invoke(app, ["index", str(kb), "--chunk-size", "12", "--chunk-overlap", "0"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["ls", "--json"]).stdout)["files"]
    assert [(Path(f["path"]).name, f["chunks"]) for f in listed] == [("a.txt", 2), ("b.md", 1), ("c.txt", 1)]
    assert all(f["indexed_at"] for f in listed)
    human = runner.invoke(app, ["ls", "--folders"]).stdout
    assert "2 file(s), 3 chunk(s)" in human and "1 file(s), 1 chunk(s)" in human and "a.txt" not in human

    typo = runner.invoke(app, ["rm", str(kb / "nope.txt"), str(kb / "b.md")])
    assert typo.exit_code == 2 and "not in the index" in typo.stderr and "nothing was removed" in typo.stderr
    assert committed_manifest(home / "index").counts.files == 3
    removed = json.loads(runner.invoke(app, ["rm", str(kb / "sub"), str(kb / "b.md"), "--json"]).stdout)
    assert (removed["files_removed"], removed["chunks_removed"], removed["total_files"]) == (2, 2, 1)
    assert [Path(f["path"]).name for f in json.loads(runner.invoke(app, ["ls", "--json"]).stdout)["files"]] == \
        ["a.txt"]
    assert (kb / "b.md").exists()  # the file itself is untouched
    hits = json.loads(runner.invoke(app, ["search", "great wall", "--json", "--min-score", "0"]).stdout)
    assert all(Path(h["source"]).name == "a.txt" for h in hits["results"])
    assert runner.invoke(app, ["doctor"]).exit_code == 0
    said = runner.invoke(app, ["rm", str(kb / "a.txt")])
    assert said.exit_code == 0 and "adds them back" in said.stdout and ".ignore" in said.stdout
    (kb / ".ignore").write_text("a.txt\n", encoding="utf-8")  # as the message says: kept out from now on
    assert runner.invoke(app, ["index", str(kb), "--chunk-size", "12", "--chunk-overlap", "0"]).exit_code == 0
    assert sorted(Path(f["path"]).name for f in json.loads(runner.invoke(app, ["ls", "--json"]).stdout)["files"]) == \
        ["b.md", "c.txt"]


def _walked(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("notes/a.md", "notes/draft.md", "build/out.txt", "logs/x.log.txt", ".hidden/h.txt",
                 "keep/important.txt", "keep/other.txt", "top.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"text of {name}\n", encoding="utf-8")
    (root / ".gitignore").write_text("build/\n*.log.txt\nkeep/*\n!keep/important.txt\n", encoding="utf-8")
    (root / "notes" / ".ignore").write_text("draft.md\n", encoding="utf-8")
    return root


def test_ignore_files_globs_and_hidden_entries(tmp_path):
    root = _walked(tmp_path)
    names = lambda found: sorted(p.relative_to(root).as_posix() for p in found.files)  # noqa: E731
    found = discover(root)
    assert names(found) == ["keep/important.txt", "notes/a.md", "top.txt"]
    assert found.skipped["ignored by .gitignore"] == 3 and found.skipped["ignored by .ignore"] == 1
    assert found.skipped["hidden"] == 3  # the .hidden folder and the two ignore files themselves
    assert names(discover(root, Filters(ignore_files=False))) == [
        "build/out.txt", "keep/important.txt", "keep/other.txt", "logs/x.log.txt", "notes/a.md", "notes/draft.md",
        "top.txt"]
    assert names(discover(root, Filters(exclude=("notes/",)))) == ["keep/important.txt", "top.txt"]
    assert names(discover(root, Filters(include=("*.md",)))) == ["notes/a.md"]
    assert names(discover(root, Filters(include=("/top.txt",)))) == ["top.txt"]


def test_ignore_files_above_the_folder_apply_inside_a_git_repository(tmp_path):
    root = _walked(tmp_path)
    (root / ".git").mkdir()
    assert sorted(p.name for p in discover(root / "keep").files) == ["important.txt"]
    (root / ".git").rmdir()  # outside a repository, only the folder's own ignore files count
    assert sorted(p.name for p in discover(root / "keep").files) == ["important.txt", "other.txt"]


def test_verbose_names_what_was_skipped_and_newly_ignored_files_leave_the_index(home, runner, tmp_path):
    root = _walked(tmp_path)
    first = runner.invoke(app, ["index", str(root), "--no-ignore"])
    assert first.exit_code == 0 and "7 added" in first.stdout
    verbose = runner.invoke(app, ["index", str(root), "-v", "--exclude", "top.txt"])
    assert verbose.exit_code == 0, verbose.output
    assert "5 removed" in verbose.stdout  # build/, the log, keep/other.txt, the draft (ignored) and top.txt
    skipped = {line.strip() for line in verbose.stdout.splitlines() if line.strip().startswith("skipped ")}
    assert any(s.endswith("build: ignored by .gitignore") for s in skipped), skipped
    assert any("draft.md: ignored by .ignore" in s for s in skipped)
    assert any("top.txt: excluded by --exclude" in s for s in skipped)
    report = json.loads(runner.invoke(app, ["index", str(root), "--json"]).stdout)
    assert {"path": str(root / ".hidden"), "reason": "hidden"} in report["skipped_files"]


@pytest.mark.parametrize("args", [["init", "missing-folder"]])
def test_init_refuses_what_is_not_a_folder(home, runner, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "not a folder" in result.stderr
