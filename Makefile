# One task runner for people and CI.  `make test` is the README's test command.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: install dev demo test lint typecheck unit integration e2e bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Installed once, again only when pyproject.toml or a shipped file changed (a stamp, like dev).
SOURCES := $(shell find chatpulse collector scorer detector clipper grafana analytics topics forecast bus sql -type f -not -path '*/__pycache__/*' 2>/dev/null)

$(VENV)/.installed: pyproject.toml $(SOURCES) | $(BIN)/python
	$(PIP) install .
	touch $@

install: $(VENV)/.installed

# torch: the CPU build.  A local wheel (find-links) is used when pip is configured with one;
# otherwise PyTorch's CPU index, so that pip never pulls the multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX   ?= $(if $(wildcard /opt/wheels/torch-*),,--index-url https://download.pytorch.org/whl/cpu)

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) install torch==$(TORCH_VERSION) $(TORCH_INDEX)
	$(PIP) install -e '.[dev,ml]'
	touch $@

dev: $(VENV)/.dev-installed

demo: $(VENV)/.installed
	$(BIN)/chatpulse demo

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: dev
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/chatpulse grafana build --check
	$(BIN)/pytest -q -p no:cacheprovider tests

unit: dev
	$(BIN)/pytest -q tests/unit

integration: dev
	$(BIN)/pytest -q tests/integration

e2e: dev
	$(BIN)/pytest -q tests/e2e

clean:
	rm -rf $(VENV) build *.egg-info
