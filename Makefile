# The verbs are the interface: `make run` serves the API, `make test` passes every suite.
# Both create the environment first, from pyproject.toml pinned by constraints.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8080
# Port of the server the Schemathesis CLI tests; 0: a free one.
CONTRACT_PORT ?= 0
# pytest-xdist workers of `make test` (a number, or auto: one per core). Each worker has its
# own database, app and peers (conftest.py). `--dist load` hands tests out in collection order,
# two at a time to whichever worker needs more: whatever runs before a test in its worker ran
# before it without xdist too, and contract-tests still come last (their seeds leave queued
# runs that a later test's server would execute; the seed, for a workspace fixed at import,
# must not be set up twice in a process). (`loadgroup`/`loadscope` would run only one of
# Schemathesis' per-operation items: they all have the same node id. `worksteal` reorders.)
TEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist load --maxschedchunk 2
# The Schemathesis runs `make test` includes, each with every check and phase: both by default.
# CI runs each once per database: SCHEMATHESIS=pytest on SQLite, SCHEMATHESIS=cli on PostgreSQL.
SCHEMATHESIS ?= pytest cli

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run migrate test test-pytest test-unit test-integration test-api contract \
	contract-pytest contract-cli lint fmt typecheck imports check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## run: migrate the embedded SQLite database and serve on 127.0.0.1:$(PORT) in dev mode
run: install
	ENV=$${ENV:-dev} DATABASE_URL=$${DATABASE_URL:-sqlite:///./scaicrew.db} \
		$(BIN)/scaicrew serve --port $(PORT)

migrate: install
	$(BIN)/scaicrew migrate

## test: every suite (unit, integration, api, contract in pytest and via the CLI), in parallel:
## pytest and the Schemathesis CLI at the same time, each one's output printed when it ends
test: install
	$(MAKE) --no-print-directory --jobs=2 --output-sync=target \
		test-pytest $(if $(filter cli,$(SCHEMATHESIS)),contract-cli)

test-pytest: install
	$(BIN)/pytest $(PYTEST_PARALLEL) tests $(if $(filter pytest,$(SCHEMATHESIS)),contract-tests)

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/pytest tests/integration

test-api: install
	$(BIN)/pytest tests/api

## contract: Schemathesis, all checks and phases, in pytest and against a running server
contract: contract-pytest contract-cli

contract-pytest: install
	$(BIN)/pytest contract-tests

contract-cli: install
	$(BIN)/python contract-tests/run_cli.py --port $(CONTRACT_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

## check: everything CI runs
check: lint typecheck imports test

## bench: load the real server from a second process and compare with bare Starlette
bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache scaicrew.db*
