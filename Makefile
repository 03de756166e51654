# Set-up and test entry points; everything installs into .venv (and Chromium from Debian) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := $(shell command -v chromium 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install test run bench chromium clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The browser tests drive Debian's Chromium; nothing downloads a browser build of its own.
chromium:
ifeq ($(CHROMIUM),)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null
endif

test: $(STAMP) chromium
	$(BIN)/python -m mypy src tests
	$(BIN)/python -m pytest

run: $(STAMP)
	$(BIN)/durabot run

# Figures, never assertions: the relay claim first (its figure joins the suite's table), then the interleaved suite.
# `make bench QUICK=1` is the one-minute version; BENCH_ARGS passes options to bench/suite.py (see --help).
bench: $(STAMP)
	@out=$$(mktemp); \
	$(BIN)/python bench/relay_claim.py $(if $(QUICK),--quick) | tee $$out; \
	$(BIN)/python bench/suite.py $(if $(QUICK),--quick) --relay-claim-output $$out $(BENCH_ARGS); \
	status=$$?; rm -f $$out; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache
