# One task runner for people and CI.  `make test` is the README's test command.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: install dev demo test lint typecheck unit integration e2e bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

install: $(BIN)/python
	$(PIP) install .

dev: $(BIN)/python
	$(PIP) install -e '.[dev]'

demo: install
	$(BIN)/chatpulse demo

lint: dev
	$(BIN)/ruff check .

typecheck: dev
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider tests

unit: dev
	$(BIN)/pytest -q tests/unit

integration: dev
	$(BIN)/pytest -q tests/integration

e2e: dev
	$(BIN)/pytest -q tests/e2e

clean:
	rm -rf $(VENV) build *.egg-info
