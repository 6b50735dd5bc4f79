# Two commands matter: `make run` and `make test`. Both install what they need themselves.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# uv from PATH, or bootstrapped from PyPI into .tools/ on a machine that has only Python 3.11.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
PYTHON ?= python3

# The official AsyncAPI validator, from the npm registry, for the contract test that uses it.
ASYNCAPI_CLI := $(CURDIR)/.tools/asyncapi/node_modules/.bin/asyncapi
ASYNCAPI_CLI_VERSION := 6.2.0

.PHONY: help setup run test lint format bench asyncapi-cli

help:
	@echo "make run    - bring up Lotse locally (Ctrl-C stops everything)"
	@echo "make test   - lint, contract check and all tests"
	@echo "make lint   - ruff, mypy, contract compatibility and import rules only"
	@echo "make bench  - benchmarks, with ratios to baselines measured in the same run"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

setup: $(UV)
	$(UV) sync --frozen

run: setup
	$(UV) run lotse up --demo

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lotse contracts check
	$(UV) run lint-imports
	$(UV) run lotse deploy check

asyncapi-cli:
	@if [ -x "$(ASYNCAPI_CLI)" ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "Installing the AsyncAPI CLI into .tools/asyncapi (once, about 1.5 minutes)"; \
	  npm install --silent --no-audit --no-fund --prefix .tools/asyncapi @asyncapi/cli@$(ASYNCAPI_CLI_VERSION); \
	else echo "npm not found: the AsyncAPI validator test will be skipped"; fi

# The suite mostly waits (consumer groups joining, services starting), so three workers share two
# cores well; a file stays on one worker, so its module fixtures start once.
TEST_WORKERS ?= 3

test: lint asyncapi-cli
	LOTSE_ASYNCAPI_BIN="$$([ -x "$(ASYNCAPI_CLI)" ] && echo "$(ASYNCAPI_CLI)")" $(UV) run pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

format: setup
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

bench: setup
	$(UV) run python -m bench
