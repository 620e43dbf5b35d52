# Two commands for a fresh clone: `make run` and `make test`. Both create .venv on first use only.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rebuilt only when the dependency list changes, so a second run installs nothing.
INSTALLED := $(VENV)/.installed

.PHONY: run test venv clean-venv chromium

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch lies on this machine's disk; pin it exactly before anything can pull a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/fusevis serve

test: $(INSTALLED) chromium
	$(BIN)/python -m pytest -q

# The browser tests drive Debian's chromium (never a downloaded browser). Installed once, as root;
# where that is impossible they skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then echo "installed chromium"; \
	  else echo "chromium is not installed and could not be (apt-get install chromium needs root): browser tests will be skipped"; fi; }
