# StoreOps: `make demo` runs the whole system on embedded defaults; `make test` runs the suite
# against the real PostgreSQL and Redis.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help setup browser demo test lint bench bench-noc bench-triage clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

help: ## list targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,ai]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP) ## create the virtualenv and install StoreOps with its dev tools

# Browser tests drive Debian's chromium through playwright (`playwright install` cannot
# download browsers here); install it once when it is missing.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "chromium is needed at $@ for the browser tests"; exit 1; }
	$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }

browser: $(CHROMIUM) ## install Debian's chromium for the browser tests

demo: setup ## run the control plane on SQLite with demo data; prints URLs and logins
	$(BIN)/storeops demo --reset

test: setup $(CHROMIUM) ## run the whole test suite against PostgreSQL and Redis
	$(BIN)/pytest -q

lint: setup ## ruff, mypy --strict, import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup ## API benchmark against a bare asyncpg endpoint (prints ratios)
	$(BIN)/python bench/api.py

bench-noc: setup ## the NOC fleet query at 10,000 tenants with a month of rollups
	$(BIN)/python bench/noc.py

bench-triage: setup ## triage models on the labelled incidents' held-out split
	$(BIN)/python bench/triage.py

clean: ## remove the virtualenv and embedded state
	rm -rf $(VENV) .storeops
