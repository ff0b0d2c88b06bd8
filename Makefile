# The two commands of the README: `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint format install clean-db

$(BIN)/python:
	./scripts/bootstrap-venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

## Set up, migrate the embedded SQLite database, load the demo once, serve on :8000.
run: $(VENV)/.installed
	$(BIN)/tuike migrate
	$(BIN)/tuike demo --if-empty
	$(BIN)/tuike serve --host $(HOST) --port $(PORT)

## Install the dev extras and run the whole test suite.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-db:
	rm -f var/tuike.db var/tuike.db-wal var/tuike.db-shm var/demo-keys.txt
