# tradeplane — every target sets up .venv first when it is missing or stale.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_SECONDS ?= 60
PYTEST_ARGS ?=

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export RAY_worker_niceness := 0

.PHONY: help setup run test test-unit test-integration bench lint fmt clean distclean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install tradeplane with its dev tools

run: $(STAMP) ## Run the offline demo (sim venue, two strategies, paper) for RUN_SECONDS
	$(BIN)/tradeplane run config/demo.toml --duration $(RUN_SECONDS)

test: lint ## Lint, then the whole test suite (unit, integration on real Ray, chaos)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run only the pure unit tests (no Ray)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP) ## Run only the integration tests (real Ray on loopback)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

bench: $(STAMP) ## Run the benchmarks (several minutes); JSON lines on stdout
	$(BIN)/python bench/sim.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/journal.py
	$(BIN)/python bench/recovery.py
	$(BIN)/python bench/telemetry.py
	$(BIN)/python bench/venues.py
	$(BIN)/python bench/promptness.py
	$(BIN)/python bench/idle.py
	$(BIN)/python bench/nodes.py
	$(BIN)/python bench/backtest.py

lint: $(STAMP) ## ruff, ruff format --check, mypy and the import contracts (layers)
	$(BIN)/ruff check tradeplane tests bench examples
	$(BIN)/ruff format --check tradeplane tests bench examples
	$(BIN)/mypy tradeplane
	$(BIN)/lint-imports

fmt: $(STAMP) ## Format and auto-fix
	$(BIN)/ruff format tradeplane tests bench examples
	$(BIN)/ruff check --fix tradeplane tests bench examples

clean: ## Remove state dirs, caches and build output (keeps .venv)
	rm -rf .tradeplane .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

distclean: clean ## Also remove .venv
	rm -rf $(VENV)
