# Two commands matter: `make run` and `make test`. Both install what they need themselves.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# uv from PATH, or bootstrapped from PyPI into .tools/ on a machine that has only Python 3.11.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
PYTHON ?= python3

# The official AsyncAPI validator, from the npm registry, for the contract test that uses it.
ASYNCAPI_CLI := $(CURDIR)/.tools/asyncapi/node_modules/.bin/asyncapi
ASYNCAPI_CLI_VERSION := 6.2.0

# The browser tests drive a real Chromium with Playwright and check pages with axe-core (npm).
AXE_CORE_VERSION := 4.14.1
AXE_JS := $(CURDIR)/.tools/axe/node_modules/axe-core/axe.min.js

.PHONY: help setup run test lint format bench asyncapi-cli browser idp

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

run: setup idp
	$(UV) run lotse up --demo

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lotse contracts check
	$(UV) run lint-imports
	$(UV) run lotse deploy check

# The local OpenID provider (panva's oidc-provider, pinned in deploy/devstack/idp/package-lock.json)
# for `make run` and the sign-in tests; installed once, again when the lock file changes.
IDP_DIR := $(CURDIR)/deploy/devstack/idp
idp: $(IDP_DIR)/node_modules/.package-lock.json

$(IDP_DIR)/node_modules/.package-lock.json: $(IDP_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "Installing the local OpenID provider into deploy/devstack/idp (once)"; \
	  npm ci --silent --no-audit --no-fund --prefix $(IDP_DIR); \
	else echo "npm not found: install Node.js 20.19 or later (sign-in needs the local OpenID provider)"; exit 1; fi

asyncapi-cli:
	@if [ -x "$(ASYNCAPI_CLI)" ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "Installing the AsyncAPI CLI into .tools/asyncapi (once, about 1.5 minutes)"; \
	  npm install --silent --no-audit --no-fund --prefix .tools/asyncapi @asyncapi/cli@$(ASYNCAPI_CLI_VERSION); \
	else echo "npm not found: the AsyncAPI validator test will be skipped"; fi

# A Chromium for the browser tests: LOTSE_CHROMIUM, one Playwright installed, or the system's. Playwright's
# own download needs its CDN, so on Debian/Ubuntu the distribution's package is installed instead;
# elsewhere `uv run playwright install chromium` (the README says so). axe-core comes from npm.
browser: setup
	@if [ -n "$$LOTSE_CHROMIUM" ] && [ -x "$$LOTSE_CHROMIUM" ]; then :; \
	elif ls $${PLAYWRIGHT_BROWSERS_PATH:-$$HOME/.cache/ms-playwright}/chromium-*/chrome-linux*/chrome >/dev/null 2>&1; then :; \
	elif [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; }; then \
	  echo "Installing Chromium from the distribution's packages (once)"; \
	  SUDO="$$([ "$$(id -u)" = 0 ] || echo sudo)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	else echo "No Chromium found: run 'uv run playwright install chromium' (or set LOTSE_CHROMIUM)"; exit 1; fi
	@if [ -f "$(AXE_JS)" ] && grep -q '"version": "$(AXE_CORE_VERSION)"' .tools/axe/node_modules/axe-core/package.json; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "Installing axe-core $(AXE_CORE_VERSION) into .tools/axe (once)"; \
	  npm install --silent --no-audit --no-fund --prefix .tools/axe axe-core@$(AXE_CORE_VERSION); \
	else echo "npm not found: the accessibility checks need axe-core (npm install --prefix .tools/axe axe-core@$(AXE_CORE_VERSION))"; exit 1; fi

# The suite mostly waits (consumer groups joining, services starting), so three workers share two
# cores well; a file stays on one worker, so its module fixtures start once.
TEST_WORKERS ?= 3

# The checks and the installs run side by side (npm mostly waits for the network), then the tests.
test:
	$(MAKE) --no-print-directory -j 4 --output-sync=target lint asyncapi-cli browser idp
	LOTSE_ASYNCAPI_BIN="$$([ -x "$(ASYNCAPI_CLI)" ] && echo "$(ASYNCAPI_CLI)")" $(UV) run pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

format: setup
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

bench: setup idp
	$(UV) run python -m bench
