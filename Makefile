# tradeplane — every target sets up .venv first when it is missing or stale.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# The distribution's CPython 3.11 when it can make a venv (Debian builds it with PGO and LTO:
# measured 16-20 % faster than a plain source build on the backtest bench, 4 % on the suite),
# else python3.11 or python3 on PATH. `make setup PYTHON=...` picks another.
FOUND_PYTHON := $(shell for p in /usr/bin/python3.11 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import ensurepip, venv' >/dev/null 2>&1 \
	&& { command -v $$p; break; }; done)
PYTHON ?= $(or $(FOUND_PYTHON),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_SECONDS ?= 60
PYTEST_ARGS ?=
# make test's pytest processes (pytest-xdist). The tests on the shared Ray stay together on one,
# in order (tests/conftest.py schedules them so); the pure tests and those that start a Ray
# cluster of their own run on the other. TEST_WORKERS=0: everything in one process.
TEST_WORKERS ?= 2

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export RAY_worker_niceness := 0

.PHONY: backtest help setup browser promtool run report test test-unit test-integration bench lint fmt clean distclean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) browser promtool ## Create .venv and install tradeplane with its dev tools

# The report's browser test drives the distribution's chromium (playwright's own browser download
# cannot be fetched here). Installed only where apt-get runs as root; elsewhere, or if the
# install fails, the browser test skips and says why: this never fails a target.
browser: ## Install the distribution's chromium for the report's browser test (root + apt only)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt-get) for the report's browser test"; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ) \
			>/tmp/tradeplane-chromium-install.log 2>&1 \
		|| echo "warning: chromium did not install (see /tmp/tradeplane-chromium-install.log): the report's browser test will skip"; \
	else \
		echo "note: no chromium, and no apt-get as root to install it: the report's browser test will skip"; \
	fi

# The alert rules' test (ops/prometheus) runs promtool, taken from the distribution's prometheus
# package: the .deb is downloaded and only its promtool (a static binary) unpacked into .venv/bin.
# Installing the package would also install and, under systemd, start a Prometheus server on
# 0.0.0.0:9090. Needs apt's package lists (refreshed as root); elsewhere the test skips.
promtool: $(STAMP) ## Put the distribution's promtool in .venv/bin for the alert rules' test
	@if command -v promtool >/dev/null 2>&1 || [ -x $(BIN)/promtool ]; then \
		:; \
	elif command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then \
		echo "unpacking promtool from the distribution's prometheus package into $(BIN)"; \
		d=$$(mktemp -d) && ( cd $$d \
			&& { apt-get download prometheus || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get download prometheus; }; } \
			&& dpkg-deb -x prometheus_*.deb x && install -m 0755 x/usr/bin/promtool $(CURDIR)/$(BIN)/promtool ) \
			>/tmp/tradeplane-promtool-install.log 2>&1 \
		|| echo "warning: promtool not unpacked (see /tmp/tradeplane-promtool-install.log): the alert rules' test will skip"; \
		rm -rf $$d; \
	else \
		echo "note: no promtool, and no apt-get to fetch it: the alert rules' test will skip"; \
	fi

run: $(STAMP) ## Run the offline demo (sim venue, two strategies, paper) for RUN_SECONDS
	$(BIN)/tradeplane run config/demo.toml --duration $(RUN_SECONDS)

backtest: $(STAMP) ## Backtest the demo's strategies over a day of the sim market into backtests/demo
	$(BIN)/tradeplane backtest config/demo.toml --out backtests/demo

report: $(STAMP) ## Write the demo's report (after `make run`) and print its path
	@test -f .tradeplane/demo/journal.db || { echo "no demo journal in .tradeplane/demo yet: run \`make run\` first"; exit 1; }
	@$(BIN)/tradeplane report demo --config config/demo.toml --out .tradeplane/demo/report.html

test: lint browser promtool ## Lint, then the whole test suite (unit, integration on real Ray, chaos)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

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
	$(BIN)/python bench/garbage_flood.py
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
	rm -rf .tradeplane backtests .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

distclean: clean ## Also remove .venv
	rm -rf $(VENV)
