# opsbench: two commands on a fresh machine (python3, make, git).
#   make demo   creates .venv, installs, replays the default scenario, writes the quick report
#   make test   creates .venv, installs, runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench browser clean

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

test: install browser
	$(BIN)/python -m pytest -q -n auto --dist loadscope

# Headless Chromium for tests/bench/test_report_browser.py: Debian's package, installed only when
# no chromium is found and only when apt-get is usable (root, or passwordless sudo). Best-effort:
# when it cannot install, it says why and `make test` goes on (that test then skips, saying why).
CHROMIUM_FOUND := command -v chromium || command -v chromium-browser || test -x /usr/bin/chromium
browser:
	@if { $(CHROMIUM_FOUND); } >/dev/null 2>&1; then exit 0; fi; \
	skip="tests/bench/test_report_browser.py will skip"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser: no chromium and no apt-get; $$skip"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "browser: apt-get needs root or passwordless sudo; $$skip"; exit 0; fi; \
	echo "browser: installing Debian's chromium with apt-get (a minute or two)"; \
	{ $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		$$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
		|| echo "browser: apt-get could not install chromium (see above); $$skip"

bench: install
	$(BIN)/python -m pytest bench/benchmarks -q --benchmark-enable -s

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
