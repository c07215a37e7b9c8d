# The two commands of the README: `make demo` (install, index the sample, answer a query) and `make test`;
# `make test-slow` runs the slow tier.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-slow check bench

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned to the local CPU build: any other torch pulls GBs of CUDA wheels
	$(BIN)/python -m pip install -q -c constraints.txt torch
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/fsearch index data/docs.txt
	$(BIN)/fsearch search "坐火车去别的城市"

# the fast tier: the bundled model's stand-in (tests/fast_model.py) unless a test is marked real_model
test: install
	$(BIN)/python -m pytest -q

# lint, types and layers: ruff (E, F, W, I, B, UP) over the code, tests and benches; mypy over the
# package; import-linter's contract (pyproject.toml) on which module may import which
check: install
	$(BIN)/ruff check faiss_search tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# the slow tier: benchmark-style checks, big builds, random-moment kills (minutes; CI runs both)
test-slow: install
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python bench/retrieval.py ../shared/data/cmrc2018-dev
