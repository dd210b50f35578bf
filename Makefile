# The two commands a fresh machine needs: `make up` and `make test` (see README.md).
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
HOST  ?= 127.0.0.1
PORT  ?= 8000

.PHONY: setup up test test-unit test-integration lint typecheck bench clean

setup:            ## provision everything locally (idempotent, seconds on a ready machine)
	bash deploy/local/setup.sh

up: setup         ## the whole stack with demo data on http://$(HOST):$(PORT)/
	$(BIN)/etp-server up --host $(HOST) --port $(PORT) --demo

test: setup       ## every test: lint, types, unit, integration, e2e
	bash deploy/local/test.sh

test-unit:
	$(BIN)/pytest -q tests/unit

test-integration:
	$(BIN)/pytest -q tests/integration

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

bench:            ## benchmarks (not part of `make test`); figures go to docs/performance.md
	@for b in ingest live history compare; do echo "== $$b"; $(BIN)/python -m tests.bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) web/node_modules web/dist .pytest_cache .mypy_cache .ruff_cache
