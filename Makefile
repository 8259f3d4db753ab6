# Concilium: `make run` sets everything up and serves the demo; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages: to build and run, then what the tests drive as real peers.
DEBIAN_RUN := python3 python3-venv python3-dev build-essential libpq5 janus janus-tools ffmpeg
DEBIAN_TEST := chromium fonts-dejavu-core dcmtk dicom3tools
# Front-end packages from npm, pinned by frontend/package-lock.json.
FRONTEND := frontend/node_modules/.installed
# The prebuilt OHIF Viewer served at /ohif, pinned (version and integrity) in tools/install-ohif.
OHIF := frontend/ohif/.installed
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

.PHONY: run test setup ohif system-packages test-system-packages lint typecheck pytest demo serve clean

run: setup
	$(BIN)/concilium migrate
	$(BIN)/concilium demo load
	$(BIN)/concilium serve

test: setup test-system-packages lint typecheck pytest

setup: system-packages $(VENV)/.installed $(FRONTEND) $(OHIF)

system-packages:
	@tools/install-debian-packages $(DEBIAN_RUN)

test-system-packages:
	@tools/install-debian-packages $(DEBIAN_TEST)

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(FRONTEND): frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || tools/install-debian-packages npm
	npm ci --prefix frontend --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

ohif: $(OHIF)

$(OHIF): tools/install-ohif
	tools/install-ohif
	touch $@

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: setup
	$(BIN)/mypy

# Two workers for everything but the tests that measure time, which then run alone so that
# nothing else competes for the CPU while they judge latency, jitter or deadlines. (Exit
# status 5 is "no test selected", when PYTEST_ARGS picks tests of one kind only.)
pytest: setup
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not timing" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/pytest -m timing $(PYTEST_ARGS) || [ $$? -eq 5 ]

demo: setup
	$(BIN)/concilium demo load

serve: setup
	$(BIN)/concilium serve

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache test-artifacts frontend/node_modules frontend/ohif
