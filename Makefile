# opsbench: two commands on a fresh machine (python3, make, git).
#   make demo   creates .venv, installs, replays the default scenario: scaling and spot policies
#   make test   creates .venv, installs, runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

# Torch first: the pinned CPU build lies on this machine's disk; an unpinned torch pulled in by
# stable-baselines3 would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/opsbench demo

test: install
	$(BIN)/python -m pytest -q -n auto --dist loadscope

bench: install
	$(BIN)/python -m pytest bench/benchmarks -q --benchmark-enable -s

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
