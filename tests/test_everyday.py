"""Small comforts of everyday use: unquoted queries, files only, the prompt's `:mode`."""

import json

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
