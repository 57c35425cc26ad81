# StoreOps: `make demo` runs the whole system on embedded defaults; `make test` runs the suite
# against the real PostgreSQL and Redis.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint bench clean

help: ## list targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP) ## create the virtualenv and install StoreOps with its dev tools

demo: setup ## run the control plane on SQLite with demo data; prints URLs and logins
	$(BIN)/storeops demo --reset

test: setup ## run the whole test suite against PostgreSQL and Redis
	$(BIN)/pytest -q

lint: setup ## ruff, mypy --strict, import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup ## API benchmark against a bare asyncpg endpoint (prints ratios)
	$(BIN)/python bench/api.py

clean: ## remove the virtualenv and embedded state
	rm -rf $(VENV) .storeops
