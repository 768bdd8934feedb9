# Tidegate developer entry points. `make demo` runs the main job, `make test` runs the tests;
# both set up everything they need (venv, dependencies, a local Kafka) on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TIDEGATE_HOME ?= $(CURDIR)/.cache
# Tools the setup installs locally (helm) come first on PATH.
export PATH := $(TIDEGATE_HOME)/bin:$(PATH)

.PHONY: deps venv test test-unit test-integration lint typecheck demo demo-down kafka-up kafka-down topics clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# System parts (Prometheus, Alertmanager, PostgreSQL, Chromium, Helm, playwright-core), idempotent.
deps:
	bash deploy/setup.sh

kafka-up: venv
	$(BIN)/python -m deploy.local.kafka up

kafka-down: venv
	$(BIN)/python -m deploy.local.kafka down

topics: venv
	$(BIN)/tidegate topics create

test: venv deps
	$(BIN)/python -m pytest -q -raR

test-unit: venv
	$(BIN)/python -m pytest -q -raR tests/unit

test-integration: venv deps
	$(BIN)/python -m pytest -q -raR tests/integration

HOMES := schemas streams agents qualitygate connectors gateway bridge cli readside
# mypy cannot follow setuptools' editable import hook, so it reads the homes through a tree of links
# laid out as they are installed (tidegate/<home> -> <home>).
TYPECHECK := $(TIDEGATE_HOME)/typecheck

lint: venv
	$(BIN)/ruff check $(HOMES) tests deploy benchmarks
	mkdir -p $(TYPECHECK)/tidegate
	for home in $(HOMES); do ln -sfn $(CURDIR)/$$home $(TYPECHECK)/tidegate/$$home; done
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml \
	  -p tidegate.schemas -p tidegate.agents -p tidegate.qualitygate

# The demo installs only what it uses (Prometheus and Alertmanager through their launchers, Kafka from Maven).
demo: venv
	$(BIN)/python -m deploy.demo

demo-down: venv
	$(BIN)/python -m deploy.demo down

bench: venv
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .cache .pytest_cache
