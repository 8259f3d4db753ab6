# Concilium: `make run` sets everything up and serves the demo; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages: to build and run, then what the tests drive as real peers.
DEBIAN_RUN := python3 python3-venv python3-dev build-essential libpq5 janus janus-tools ffmpeg fonts-dejavu-core
DEBIAN_TEST := chromium dcmtk dicom3tools poppler-utils
# Front-end packages from npm, pinned by frontend/package-lock.json.
FRONTEND := frontend/node_modules/.installed
# The prebuilt OHIF Viewer served at /ohif, pinned (version and integrity) in tools/install-ohif.
OHIF := frontend/ohif/.installed
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
LOCKS := requirements-pip.lock requirements.lock requirements-dev.lock
PIP_INSTALL := $(BIN)/python -m pip install --quiet --require-hashes --no-deps --no-build-isolation
UPGRADE ?=
PIP_COMPILE := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= $(BIN)/pip-compile --quiet \
	--generate-hashes --strip-extras --index-url https://pypi.org/simple --no-emit-index-url $(UPGRADE)
# Fuzzing: seconds per harness for `make fuzz` (`make test` runs each for a few seconds).
FUZZ_SECONDS ?= 300

.PHONY: run test setup lock fuzz ohif system-packages test-system-packages lint typecheck pytest demo serve clean

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

# Every Python package is pinned with its hashes: pip itself and the build back-end first
# (requirements-pip.lock), then the application's packages (requirements.lock) and the
# development tools (requirements-dev.lock). No build runs in an isolated environment, whose
# packages pip would fetch unhashed; Concilium itself is built by the pinned setuptools.
$(VENV)/.installed: pyproject.toml $(LOCKS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements-pip.lock
	$(PIP_INSTALL) -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Recompute the locks from pyproject.toml and the .in files, against PyPI only, keeping the
# versions pinned today where they still fit; `make lock UPGRADE=--upgrade` moves them on.
lock: setup
	$(PIP_COMPILE) --allow-unsafe -o requirements-pip.lock requirements-pip.in
	$(PIP_COMPILE) -o requirements.lock pyproject.toml
	$(PIP_COMPILE) --allow-unsafe -o requirements-dev.lock requirements-dev.in

$(FRONTEND): frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || tools/install-debian-packages npm
	npm ci --prefix frontend --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

ohif: $(OHIF)

$(OHIF): tools/install-ohif
	tools/install-ohif
	touch $@

lint: setup
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz
	$(BIN)/lint-imports --no-cache

typecheck: setup
	$(BIN)/mypy

# Two workers for everything but the tests that measure time, which then run alone so that
# nothing else competes for the CPU while they judge latency, jitter or deadlines. (Exit
# status 5 is "no test selected", when PYTEST_ARGS picks tests of one kind only.)
pytest: setup
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not timing" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/pytest -m timing $(PYTEST_ARGS) || [ $$? -eq 5 ]

# Each harness in fuzz/ for FUZZ_SECONDS, from its seeds and what earlier runs found
# (fuzz/corpus/, not kept in git); a crash leaves its input in fuzz/crashes/.
fuzz: setup
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS) --corpus fuzz/corpus --crashes fuzz/crashes

demo: setup
	$(BIN)/concilium demo load

serve: setup
	$(BIN)/concilium serve

clean:
	rm -rf $(VENV) fuzz/corpus .mypy_cache .ruff_cache .pytest_cache .import_linter_cache test-artifacts frontend/node_modules frontend/ohif
