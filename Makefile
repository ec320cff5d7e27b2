# The verbs are the interface: `make run` serves the API, `make test` passes every suite.
# Both create the environment first, from pyproject.toml pinned by constraints.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8080
NOHOOKS_PORT ?= 0
NOHOOKS_EXAMPLES ?= 20
NOHOOKS_SECONDS ?= 100
JS := tools/js
JS_BIN := $(JS)/node_modules/.bin
JS_STAMP := $(JS)/node_modules/.installed-stamp
CLIENTS := build/clients
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
# The contract gates `make test` includes (ADR 0016); empty: none (CI runs them as a stage).
GATES ?= yes

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Redocly CLI: no usage telemetry, no update notice.
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true

.PHONY: install run migrate test test-pytest test-unit test-integration test-api contract \
	contract-pytest contract-cli contract-nohooks gates js-tools spec-lint client-python \
	client-ts clients lint fmt typecheck imports check bench clean

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

## test: every suite (unit, integration, api, contract in pytest and via the CLI) and the
## contract gates (spec lint, generated clients, the outsider's Schemathesis run), two at a
## time, each one's output printed when it ends; the outsider's run last, alone (it is
## time-bound, and next to the suites it reached too little). GATES= leaves the gates out
## (CI runs them once).
test: install
	$(MAKE) --no-print-directory --jobs=2 --output-sync=target \
		test-pytest $(if $(filter cli,$(SCHEMATHESIS)),contract-cli) $(if $(GATES),spec-lint clients)
	$(if $(GATES),$(MAKE) --no-print-directory contract-nohooks)

## gates: the contract as its consumers use it (ADR 0016): lint, generated clients, outsider
gates: spec-lint clients contract-nohooks

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

## contract-nohooks: Schemathesis CLI as an outsider runs it: no hooks, no seed, a fresh server,
## every check and phase; 2xx must be reached on every operation but the documented ones
contract-nohooks: install
	$(BIN)/python contract-tests/run_cli.py --port $(NOHOOKS_PORT) --fresh \
		--max-examples $(NOHOOKS_EXAMPLES) --max-time $(NOHOOKS_SECONDS)

## js-tools: the pinned JavaScript tools of tools/js (npm ci from its lock file)
js-tools: $(JS_STAMP)

$(JS_STAMP): $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

## spec-lint: Redocly (recommended-strict) and Spectral (spectral:oas + .spectral.yaml) on
## openapi.yaml: no error and no warning
spec-lint: js-tools
	$(JS_BIN)/redocly lint openapi.yaml --config redocly.yaml --format stylish
	$(JS_BIN)/spectral lint openapi.yaml --ruleset .spectral.yaml --fail-severity warn

## client-python: generate a client with openapi-python-client (default configuration, no
## warning allowed) and drive the main flows through it against a live server
client-python: install
	rm -rf $(CLIENTS)/python && mkdir -p $(CLIENTS)/python
	cd $(CLIENTS)/python && PATH="$(abspath $(BIN)):$$PATH" \
		openapi-python-client generate --path $(abspath openapi.yaml) --output-path generated \
		> generate.log 2>&1 || { cat generate.log; exit 1; }
	@if grep -v '^Generating ' $(CLIENTS)/python/generate.log | grep -q .; then \
		cat $(CLIENTS)/python/generate.log; echo "openapi-python-client warned"; exit 1; fi
	$(BIN)/pytest client-tests -p no:cacheprovider

## client-ts: generate TypeScript types with openapi-typescript (no warning allowed) and
## compile a small consumer with tsc --strict
client-ts: js-tools
	mkdir -p $(CLIENTS)/ts
	$(JS_BIN)/openapi-typescript openapi.yaml --default-non-nullable=false \
		-o $(CLIENTS)/ts/schema.d.ts > $(CLIENTS)/ts/generate.log 2>&1 \
		|| { cat $(CLIENTS)/ts/generate.log; exit 1; }
	@if grep -q '⚠' $(CLIENTS)/ts/generate.log; then \
		cat $(CLIENTS)/ts/generate.log; echo "openapi-typescript warned"; exit 1; fi
	$(JS_BIN)/tsc -p client-tests/typescript/tsconfig.json

## clients: both generated-client gates
clients: client-python client-ts

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache scaicrew.db* build $(JS)/node_modules
